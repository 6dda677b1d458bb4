package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// dockerd is the command line that starts the node's dockerd.
func (nd *node) dockerd() string {
	return expand(dockerdCommand, "CGROUP", cgroupName(nd.num, nd.slot))
}

// RestartDocker kills the dockerd of the node at addr with SIGKILL, as a
// crash or an OOM kill would, and starts it again in the node's namespaces
// with the command line it started with (its log goes on in dockerd.log).
// It returns once the new dockerd answers /_ping. The node's containers
// are whatever dockerd makes of them on restart: without live-restore
// (Docker's default, and the lab's) it stops those that were running, and
// Swarm starts new tasks.
func (l *Lab) RestartDocker(ctx context.Context, addr string) error {
	l.mu.Lock()
	var nd *node
	for _, n := range l.nodes {
		if n.Addr == addr {
			nd = n
		}
	}
	l.mu.Unlock()
	if nd == nil {
		return fmt.Errorf("lab %d: restart dockerd: no node at %s", l.num, addr)
	}
	pid1, err := nodeInit(nd)
	if err != nil {
		return err
	}
	var daemons []int
	for _, pid := range pidsInNS("net", nd.netNS) {
		if procComm(pid) == "dockerd" {
			daemons = append(daemons, pid)
		}
	}
	if len(daemons) == 0 {
		return fmt.Errorf("lab %d: node %s runs no dockerd", l.num, nd.Name)
	}
	signalAll(daemons, syscall.SIGKILL)
	waitGone(ctx, daemons, 10*time.Second)
	for _, pid := range daemons {
		if pidRunning(pid) {
			return fmt.Errorf("lab %d: dockerd %d of node %s survives SIGKILL", l.num, pid, nd.Name)
		}
	}
	return l.launchDocker(ctx, nd, pid1, "restarted", "a restart")
}

// launchDocker starts the node's dockerd with the command line it started
// with (its log goes on in dockerd.log) and returns once it answers /_ping
// (within a minute); done and after name the event in the log and errors.
// nsenter forks into the node's pid namespace; the shell starts dockerd in
// the background and exits, and the node's init (pid1) adopts dockerd.
func (l *Lab) launchDocker(ctx context.Context, nd *node, pid1 int, done, after string) error {
	cmd := exec.CommandContext(ctx, "nsenter", "--target", strconv.Itoa(pid1),
		"--mount", "--uts", "--net", "--pid", "--",
		"/bin/sh", "-c", nd.dockerd()+" >>"+filepath.Join(nd.Dir, "dockerd.log")+" 2>&1 &")
	cmd.Env = []string{"PATH=" + nodePath, "HOME=/root", "LANG=C"}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab %d: start dockerd of node %s: %w: %s", l.num, nd.Name, err, strings.TrimSpace(string(out)))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ping(pctx, nd.DockerSocket)
		cancel()
		if err == nil {
			l.log("lab %d: dockerd of node %s %s", l.num, nd.Name, done)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab %d: dockerd of node %s does not answer after %s: %w; dockerd.log: %s",
				l.num, nd.Name, after, err, tail(nd.Dir, "dockerd.log", 10))
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// nodeInit returns the host pid of the node's pid 1: the child of its
// launcher (see childPidNS).
func nodeInit(nd *node) (int, error) {
	pid := nd.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, fmt.Errorf("node %s: find its init: %w", nd.Name, err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("node %s has no init", nd.Name)
	}
	return strconv.Atoi(f[0])
}
