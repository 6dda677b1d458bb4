package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/childproc"
)

// node is the lab's private view of one node.
type node struct {
	Node
	num, slot int        // lab number, node slot (names the node's dir, netns, veth, cgroup)
	addr      netip.Addr // Node.Addr, parsed
	state     nodeState  // guarded by Lab.mu
	// authorizedKeys is the content of the node's own authorized_keys for
	// root; if empty, its sshd reads the lab's (the lab's own key).
	authorizedKeys string
	hostKey        string // the node's host public key, "ssh-ed25519 AAAA..."
	cmd            *exec.Cmd
	done           chan struct{} // closed when the launcher process has been reaped; nil until started
	waitErr        error
	pidNS          uint64 // inode of the node's pid namespace (0 until known)
	netNS          uint64 // inode of the node's network namespace
}

// nodeState is where a node is in its life; Nodes lists only ready ones.
type nodeState int

const (
	nodeStarting nodeState = iota // claimed by Start or AddNode, not yet ready
	nodeReady
	nodeRemoving // RemoveNode in progress
	nodeBroken   // RemoveNode failed part way: it may be retried, and Close removes what is left
)

const nodePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// initScript is run as pid 1 of the node's pid namespace, inside the node's
// own network, mount and UTS namespaces. Every path a default dockerd, its
// containerd and sshd use is made per node by bind mounts that only this
// mount namespace sees.
const initScript = `#!/bin/sh
# Node slot {{SLOT}} of lab {{NUM}}: pid 1 of the node; started by internal/testbed/lab.
set -e
umount -R -l /run/netns 2>/dev/null || true
mount --bind {{DIR}}/run /run
mount --bind {{DIR}}/docker /var/lib/docker
mount --bind {{DIR}}/etc-docker /etc/docker
{{RESOLV}}mkdir -p /run/sshd
chmod 0755 /run/sshd
echo {{NAME}} > /proc/sys/kernel/hostname
{{DOCKERD}} >{{DIR}}/dockerd.log 2>&1 &
/usr/sbin/sshd -D -e -f {{DIR}}/sshd_config >{{DIR}}/sshd.log 2>&1 &
wait
`

// dockerdCommand starts a node's dockerd (init.sh, RestartDocker).
// Use local images without asking a registry first: the lab has none.
const dockerdCommand = "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 /usr/sbin/dockerd --cgroup-parent /{{CGROUP}} --shutdown-timeout 2"

const sshdConfig = `# sshd of lab node {{NAME}}; written by internal/testbed/lab.
ListenAddress {{ADDR}}:22
HostKey {{DIR}}/ssh_host_ed25519_key
PidFile {{DIR}}/sshd.pid
AuthorizedKeysFile {{AUTHKEYS}}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
X11Forwarding no
PrintMotd no
MaxSessions 100
MaxStartups 100:30:200
Subsystem sftp /usr/lib/openssh/sftp-server
`

// resolvConf is the node's /etc/resolv.conf. The only name server is the
// host's bridge address, where usually nothing listens: lookups of outside
// names (such as a registry when Swarm tries to pull a service's image) fail
// at once instead of timing out, and no query leaves the machine.
func resolvConf(n int) string {
	return "# lab nodes resolve no outside names\nnameserver " + gateway(n).String() + "\noptions timeout:1 attempts:1\n"
}

// resolvSetup returns the init script line that puts the node's resolv.conf
// in place, and where (relative to the node dir) to write the file. If the
// host's /etc/resolv.conf is a link into /run (systemd-resolved), the file is
// written at the link's target inside the node's own /run.
func resolvSetup(dir string) (line, file string) {
	target, err := filepath.EvalSymlinks("/etc/resolv.conf")
	if err == nil && strings.HasPrefix(target, "/run/") {
		return "", filepath.Join("run", strings.TrimPrefix(target, "/run/"))
	}
	if err != nil { // no resolv.conf on the host: nodes have none either
		return "", "resolv.conf"
	}
	return "mount --bind " + dir + "/resolv.conf " + target + "\n", "resolv.conf"
}

func expand(tmpl string, kv ...string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		tmpl = strings.ReplaceAll(tmpl, "{{"+kv[i]+"}}", kv[i+1])
	}
	return tmpl
}

// prepare writes the node's directory: the bind-mount sources, sshd config
// with its authorized_keys (if the node has its own) and host key, and the
// init script. labAuthKeys is the lab's authorized_keys file.
func (nd *node) prepare(labAuthKeys string, hostKey *sshKey) error {
	if err := os.Mkdir(nd.Dir, 0o755); err != nil {
		return fmt.Errorf("create node dir of %s: %w", nd.Name, err)
	}
	for _, d := range []string{"run", "docker", "etc-docker"} {
		if err := os.MkdirAll(filepath.Join(nd.Dir, d), 0o755); err != nil {
			return fmt.Errorf("create node dir: %w", err)
		}
	}
	resolvMount, resolvFile := resolvSetup(nd.Dir)
	pemKey, err := hostKey.privatePEM("root@" + nd.Name)
	if err != nil {
		return err
	}
	nd.hostKey = hostKey.authorizedKey()
	type file struct {
		name string
		data string
		mode os.FileMode
	}
	authKeys := labAuthKeys
	var files []file
	if nd.authorizedKeys != "" {
		authKeys = filepath.Join(nd.Dir, "authorized_keys")
		files = append(files, file{"authorized_keys", nd.authorizedKeys, 0o600})
	}
	files = append(files,
		file{"ssh_host_ed25519_key", string(pemKey), 0o600},
		file{"ssh_host_ed25519_key.pub", nd.hostKey + " root@" + nd.Name + "\n", 0o644},
		file{"sshd_config", expand(sshdConfig, "NAME", nd.Name, "ADDR", nd.Addr, "DIR", nd.Dir, "AUTHKEYS", authKeys), 0o644},
		file{"etc-docker/daemon.json", "{}\n", 0o644},
		file{resolvFile, resolvConf(nd.num), 0o644},
		file{"init.sh", expand(initScript, "SLOT", strconv.Itoa(nd.slot), "NUM", strconv.Itoa(nd.num),
			"DIR", nd.Dir, "NAME", nd.Name, "DOCKERD", nd.dockerd(), "RESOLV", resolvMount), 0o755},
	)
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(nd.Dir, f.name)), 0o755); err != nil {
			return fmt.Errorf("write %s of %s: %w", f.name, nd.Name, err)
		}
		if err := os.WriteFile(filepath.Join(nd.Dir, f.name), []byte(f.data), f.mode); err != nil {
			return fmt.Errorf("write %s of %s: %w", f.name, nd.Name, err)
		}
	}
	return nil
}

// start launches the node: nsenter into its network namespace, then unshare
// mount, UTS and pid namespaces and run init.sh as pid 1 there. We use
// nsenter rather than `ip netns exec`, which remounts /sys and so hides the
// cgroup mounts dockerd needs. If this process dies, the kernel kills the
// launcher (Pdeathsig) and unshare kills the node's pid 1 (--kill-child),
// which takes every process of the node's pid namespace with it.
func (nd *node) start() error {
	logf, err := os.OpenFile(filepath.Join(nd.Dir, "init.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open init log of %s: %w", nd.Name, err)
	}
	defer logf.Close()
	nd.cmd = exec.Command("nsenter", "--net="+netnsPath(nd.num, nd.slot), "--",
		"unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child=SIGKILL", "--mount-proc",
		"--propagation", "private", "--", "/bin/sh", filepath.Join(nd.Dir, "init.sh"))
	nd.cmd.Env = []string{"PATH=" + nodePath, "HOME=/root", "LANG=C"}
	nd.cmd.Dir = "/"
	nd.cmd.Stdout = logf
	nd.cmd.Stderr = logf
	if err := childproc.Start(nd.cmd); err != nil {
		return fmt.Errorf("start node %s: %w", nd.Name, err)
	}
	nd.done = make(chan struct{})
	go func() {
		nd.waitErr = nd.cmd.Wait()
		close(nd.done)
	}()
	return nil
}

// waitLauncher waits until the node's launcher process has been reaped; it
// exits by itself once the node's pid 1 is gone.
func (nd *node) waitLauncher(ctx context.Context) error {
	if nd.done == nil { // never started
		return nil
	}
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-nd.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for launcher of %s: %w", nd.Name, ctx.Err())
	case <-t.C:
		return fmt.Errorf("launcher of %s did not exit", nd.Name)
	}
}

// waitReady waits until the node's dockerd answers /_ping on its socket and
// its sshd accepts TCP connections on port 22.
func (nd *node) waitReady(ctx context.Context) error {
	dockerOK, sshOK := false, false
	for {
		select {
		case <-nd.done:
			return fmt.Errorf("node %s exited during start (%v); init.log: %s; dockerd.log: %s; sshd.log: %s",
				nd.Name, nd.waitErr, tail(nd.Dir, "init.log", 5), tail(nd.Dir, "dockerd.log", 10), tail(nd.Dir, "sshd.log", 5))
		default:
		}
		if nd.pidNS == 0 {
			nd.pidNS = childPidNS(nd.cmd.Process.Pid)
		}
		if !dockerOK {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			dockerOK = ping(pctx, nd.DockerSocket) == nil
			cancel()
		}
		if !sshOK {
			var d net.Dialer
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			c, err := d.DialContext(dctx, "tcp", net.JoinHostPort(nd.Addr, "22"))
			cancel()
			if err == nil {
				c.Close()
				sshOK = true
			}
		}
		if dockerOK && sshOK && nd.pidNS != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for node %s (docker ready %v, ssh ready %v): %w; dockerd.log: %s; sshd.log: %s",
				nd.Name, dockerOK, sshOK, ctx.Err(), tail(nd.Dir, "dockerd.log", 10), tail(nd.Dir, "sshd.log", 5))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// childPidNS returns the pid namespace inode of the first child of pid (the
// node's pid 1, forked by unshare), or 0 if there is none yet.
func childPidNS(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	ino, err := nsInode("/proc/" + f[0] + "/ns/pid")
	if err != nil {
		return 0
	}
	return ino
}

// tail returns the last n lines of a file in dir, for error messages.
func tail(dir, name string, n int) string { return childproc.TailFile(filepath.Join(dir, name), n) }

// gracefulStop is how long dockerd gets to stop its containers before the
// whole node is killed. Swarm tasks whose process ignores SIGTERM take their
// 10 s grace period to stop, and nothing a node leaves behind survives the
// kill (mounts and container namespaces die with the node's namespaces;
// cgroups are removed below), so a short wait is enough.
const gracefulStop = 3 * time.Second

// stopNode stops node slot i of lab n using only what is on the machine:
// SIGTERM to dockerd (which stops its containers and containerd) and sshd,
// then SIGKILL to every process left in the node's network namespace, which
// includes the node's pid 1 and so ends its whole pid namespace, containers
// included. Finally the node's cgroups are emptied and removed.
func stopNode(ctx context.Context, n, i int, graceful time.Duration) error {
	ino, err := nsInode(netnsPath(n, i))
	if err == nil {
		var daemons []int
		for _, pid := range pidsInNS("net", ino) {
			switch procComm(pid) {
			case "dockerd", "sshd":
				daemons = append(daemons, pid)
			}
		}
		signalAll(daemons, syscall.SIGTERM)
		waitGone(ctx, daemons, graceful)
		// Kill the node's own processes (pid 1 first takes the rest) but not
		// its launcher (nsenter/unshare, in our pid namespace): the launcher
		// must live to reap the node's pid 1, which otherwise lingers as a
		// zombie of init. It exits by itself once pid 1 is gone.
		hostPidNS, _ := nsInode("/proc/self/ns/pid")
		deadline := time.Now().Add(10 * time.Second)
		launcherGrace := time.Now().Add(2 * time.Second)
		for {
			var node, launchers []int
			for _, pid := range pidsInNS("net", ino) {
				if ns, err := nsInode(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns == hostPidNS {
					launchers = append(launchers, pid)
				} else {
					node = append(node, pid)
				}
			}
			if len(node)+len(launchers) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("processes of node %s survive SIGKILL: %v", netnsName(n, i), append(node, launchers...))
			}
			signalAll(node, syscall.SIGKILL)
			if len(node) == 0 && time.Now().After(launcherGrace) {
				signalAll(launchers, syscall.SIGKILL)
			}
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				return fmt.Errorf("stop node %s: %w", netnsName(n, i), err)
			}
		}
	}
	return removeCgroups(ctx, cgroupName(n, i))
}

// waitGone waits until none of pids is running, or d has passed, or ctx ends.
func waitGone(ctx context.Context, pids []int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		alive := false
		for _, pid := range pids {
			alive = alive || pidRunning(pid)
		}
		if !alive || sleep(ctx, 50*time.Millisecond) != nil {
			return
		}
	}
}

// sleep waits for d, or returns ctx's error if ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// removeCgroups kills what is left in, then removes, every cgroup named name
// directly under a cgroup hierarchy root (the node's --cgroup-parent).
func removeCgroups(ctx context.Context, name string) error {
	roots := []string{filepath.Join("/sys/fs/cgroup", name)}
	sub, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", name))
	roots = append(roots, sub...)
	var errs []error
	for _, root := range roots {
		if _, err := os.Stat(root); err != nil {
			continue
		}
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		deadline := time.Now().Add(5 * time.Second)
		for k := len(dirs) - 1; k >= 0; k-- { // children before parents
			for {
				err := syscall.Rmdir(dirs[k])
				if err == nil || errors.Is(err, syscall.ENOENT) {
					break
				}
				if time.Now().After(deadline) {
					errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[k], err))
					break
				}
				signalAll(cgroupProcs(dirs[k]), syscall.SIGKILL)
				if err := sleep(ctx, 20*time.Millisecond); err != nil {
					return fmt.Errorf("remove cgroup %s: %w", dirs[k], err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func cgroupProcs(dir string) []int {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
