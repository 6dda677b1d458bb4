package lab

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// StopDocker stops the dockerd of the node at addr as `systemctl stop
// docker` or a host shutting down would: SIGTERM, upon which dockerd stops
// its containers (in --shutdown-timeout) and its containerd, then exits; a
// dockerd still running after a minute is killed. The node's sshd goes on
// answering. It returns once dockerd is gone; StartDocker starts it again.
func (l *Lab) StopDocker(ctx context.Context, addr string) error {
	nd, err := l.readyNode(addr)
	if err != nil {
		return fmt.Errorf("lab %d: stop dockerd: %w", l.num, err)
	}
	daemons := nodeDaemons(nd, "dockerd")
	if len(daemons) == 0 {
		return fmt.Errorf("lab %d: node %s runs no dockerd", l.num, nd.Name)
	}
	signalAll(daemons, syscall.SIGTERM)
	waitGone(ctx, daemons, time.Minute)
	var left []int
	for _, pid := range daemons {
		if pidRunning(pid) {
			left = append(left, pid)
		}
	}
	if len(left) > 0 {
		signalAll(left, syscall.SIGKILL)
		waitGone(ctx, left, 10*time.Second)
		for _, pid := range left {
			if pidRunning(pid) {
				return fmt.Errorf("lab %d: dockerd %d of node %s survives SIGKILL", l.num, pid, nd.Name)
			}
		}
		l.log("lab %d: dockerd of node %s killed: it did not stop within a minute", l.num, nd.Name)
	}
	l.log("lab %d: dockerd of node %s stopped", l.num, nd.Name)
	return ctx.Err()
}

// StartDocker starts the dockerd of the node at addr, stopped by
// StopDocker, in the node's namespaces with the command line it started
// with (its log goes on in dockerd.log), and returns once it answers
// /_ping. A node whose dockerd runs is an error.
func (l *Lab) StartDocker(ctx context.Context, addr string) error {
	nd, err := l.readyNode(addr)
	if err != nil {
		return fmt.Errorf("lab %d: start dockerd: %w", l.num, err)
	}
	if running := nodeDaemons(nd, "dockerd"); len(running) > 0 {
		return fmt.Errorf("lab %d: node %s runs dockerd already (pid %v)", l.num, nd.Name, running)
	}
	pid1, err := nodeInit(nd)
	if err != nil {
		return err
	}
	return l.launchDocker(ctx, nd, pid1, "started", "a start")
}

// readyNode returns the ready node at addr.
func (l *Lab) readyNode(addr string) (*node, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.nodes {
		if n.Addr == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node at %s", addr)
}

// nodeDaemons returns the pids of the node's processes named comm (in its
// network namespace, so not its containers').
func nodeDaemons(nd *node, comm string) []int {
	var pids []int
	for _, pid := range pidsInNS("net", nd.netNS) {
		if procComm(pid) == comm {
			pids = append(pids, pid)
		}
	}
	return pids
}
