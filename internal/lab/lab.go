// Package lab creates throw-away "hosts" on this machine for tests: each node
// has its own network, mount, UTS and pid namespaces, its own dockerd (with
// its own containerd, data and sockets) and its own sshd, and the nodes share
// a bridge. To a client a node looks like a Linux host with Docker reachable
// over SSH as root (for example through a direct-streamlocal channel to
// /var/run/docker.sock), so a Docker Swarm can be formed across them.
//
// Lab number N (1..254) is allocated under the flock /run/mblab.lock. Lab N
// uses the bridge mblabN (198.18.N.1/24), network namespaces mblabN-n1... with
// node i at 198.18.N.(10+i), the directory /tmp/mblabN and host iptables rules
// on the bridge; a lab whose owner process died is removed by the next Start.
// Everything needs root.
//
// Things tests on a lab should know:
//   - Nodes reach each other and the host, nothing else: the host drops what
//     they would route elsewhere, and their resolv.conf names only the host's
//     bridge address, so a lookup of an outside name (Swarm trying to pull a
//     service's image from a registry) fails at once. Load images with
//     LoadImage (or the Engine API) on every node that runs them.
//   - The kernel here has no IPVS: give Swarm services EndpointSpec Mode
//     dnsrr; a virtual IP resolves but does not route.
//   - Overlay networks default to 10.0.0.0/8; SwarmInit's DefaultAddrPool
//     (e.g. 10.200.0.0/16) keeps them clear of the host's networks.
//   - Each node's dockerd runs with Docker's defaults (docker0, iptables in
//     the node's own network namespace), plus a cgroup parent mblabN-ni so
//     that Close can remove its containers' cgroups.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configures Start.
type Options struct {
	// Nodes is the number of nodes (1..200).
	Nodes int
	// Prefix is the hostname prefix; node i is named Prefix+i. Default "node".
	Prefix string
	// LogWriter, if set, receives progress messages.
	LogWriter io.Writer
}

// Node describes one node of a lab.
type Node struct {
	// Name is the node's hostname (as reported by `hostname` and Docker's /info).
	Name string
	// Addr is the node's IPv4 address on the lab bridge, e.g. 198.18.3.11.
	// sshd listens on Addr:22; Swarm should advertise Addr.
	Addr string
	// DockerSocket is the host path of the node's /var/run/docker.sock, for
	// talking to its engine directly, without SSH.
	DockerSocket string
	// Dir is the node's directory on the host (logs, configs, Docker data).
	Dir string
}

// Lab is a running set of nodes. Close it to remove everything.
type Lab struct {
	num        int
	dir        string
	nodes      []*node
	keyPEM     string
	knownHosts string
	log        func(string, ...any)

	closeOnce sync.Once
	closeErr  error
}

var reHostname = regexp.MustCompile(`^[a-zA-Z]([a-zA-Z0-9-]{0,40})$`)

// Start creates a lab of opts.Nodes nodes and returns once every node's
// dockerd answers /_ping and every sshd accepts TCP connections on port 22.
// If ctx has no deadline, Start gives up after 3 minutes. On error nothing is
// left behind.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Nodes < 1 || opts.Nodes > maxNodes {
		return nil, fmt.Errorf("lab: Nodes must be 1..%d, got %d", maxNodes, opts.Nodes)
	}
	if opts.Prefix == "" {
		opts.Prefix = "node"
	}
	if !reHostname.MatchString(opts.Prefix) {
		return nil, fmt.Errorf("lab: Prefix %q is not a valid hostname prefix", opts.Prefix)
	}
	if err := CheckPrereqs(); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
	}
	l := &Lab{log: func(string, ...any) {}}
	if w := opts.LogWriter; w != nil {
		var mu sync.Mutex
		l.log = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(w, "mblab: "+format+"\n", args...)
		}
	}
	began := time.Now()
	num, err := allocate(ctx, l.log)
	if err != nil {
		return nil, fmt.Errorf("lab: allocate: %w", err)
	}
	l.num, l.dir = num, labDir(num)
	if err := l.start(ctx, opts); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup after failed start: %w", cerr))
		}
		return nil, fmt.Errorf("lab %d: start: %w", num, err)
	}
	l.log("lab %d: %d nodes ready in %s", num, opts.Nodes, time.Since(began).Round(time.Millisecond))
	return l, nil
}

func (l *Lab) start(ctx context.Context, opts Options) error {
	// Mount points for the per-node bind mounts; a host with docker.io
	// installed has them anyway.
	for _, d := range []string{"/var/lib/docker", "/etc/docker"} {
		if err := os.MkdirAll(d, 0o710); err != nil {
			return fmt.Errorf("create mount point %s: %w", d, err)
		}
	}
	client, err := newSSHKey()
	if err != nil {
		return err
	}
	pemKey, err := client.privatePEM(fmt.Sprintf("mblab%d", l.num))
	if err != nil {
		return err
	}
	l.keyPEM = string(pemKey)
	authKeys := filepath.Join(l.dir, "authorized_keys")
	l.knownHosts = filepath.Join(l.dir, "known_hosts")
	var known strings.Builder
	for i := 1; i <= opts.Nodes; i++ {
		nd := &node{num: l.num, idx: i}
		nd.Name = opts.Prefix + strconv.Itoa(i)
		nd.Addr = nodeAddr(l.num, i)
		nd.Dir = nodeDir(l.num, i)
		nd.DockerSocket = nodeDockerSock(nd.Dir)
		hostKey, err := newSSHKey()
		if err != nil {
			return err
		}
		if err := nd.prepare(authKeys, hostKey); err != nil {
			return err
		}
		fmt.Fprintf(&known, "%s %s\n", nd.Addr, hostKey.authorizedKey())
		l.nodes = append(l.nodes, nd)
	}
	for _, f := range []struct{ name, data string }{
		{"id_ed25519", l.keyPEM},
		{"id_ed25519.pub", client.authorizedKey() + " mblab\n"},
		{"authorized_keys", client.authorizedKey() + " mblab\n"},
		{"known_hosts", known.String()},
	} {
		if err := os.WriteFile(filepath.Join(l.dir, f.name), []byte(f.data), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}

	if err := createNetwork(ctx, l.num, opts.Nodes); err != nil {
		return err
	}
	for _, nd := range l.nodes {
		if nd.netNS, err = nsInode(netnsPath(l.num, nd.idx)); err != nil {
			return err
		}
		if err := nd.start(); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(l.nodes))
	for k, nd := range l.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = nd.waitReady(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Nodes returns the nodes; Nodes()[0] is node 1.
func (l *Lab) Nodes() []Node {
	out := make([]Node, len(l.nodes))
	for k, nd := range l.nodes {
		out[k] = nd.Node
	}
	return out
}

// Number returns the lab number N (bridge mblabN, addresses 198.18.N.0/24).
func (l *Lab) Number() int { return l.num }

// Dir returns the lab's directory on the host (removed by Close).
func (l *Lab) Dir() string { return l.dir }

// SSHUser is the user to log in as on every node.
func (l *Lab) SSHUser() string { return "root" }

// PrivateKeyPEM returns the client private key (ed25519, OpenSSH PEM format,
// unencrypted) that every node's sshd accepts for SSHUser.
func (l *Lab) PrivateKeyPEM() string { return l.keyPEM }

// PrivateKeyFile returns the path of a file holding PrivateKeyPEM (mode 0600).
func (l *Lab) PrivateKeyFile() string { return filepath.Join(l.dir, "id_ed25519") }

// KnownHostsFile returns the path of a known_hosts file listing every node's
// host key under the node's address.
func (l *Lab) KnownHostsFile() string { return l.knownHosts }

// Close stops every node (dockerd with its containerd and containers, sshd)
// and removes the lab's namespaces, veths, bridge, iptables rules, cgroups,
// mounts and directory. It is safe to call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		began := time.Now()
		err := destroy(l.num, l.log)
		// Reap our launcher processes (they die with their nodes).
		for _, nd := range l.nodes {
			if nd.done == nil {
				continue
			}
			select {
			case <-nd.done:
			case <-time.After(10 * time.Second):
				err = errors.Join(err, fmt.Errorf("launcher of %s did not exit", nd.Name))
			}
		}
		if err != nil {
			l.closeErr = fmt.Errorf("lab %d: close: %w", l.num, err)
		}
		l.log("lab %d: closed in %s", l.num, time.Since(began).Round(time.Millisecond))
	})
	return l.closeErr
}

// destroy removes every trace of lab n, using only what is on the machine, so
// that it works for labs of dead owners too.
func destroy(n int, logf func(string, ...any)) error {
	idx := map[int]bool{}
	for _, name := range dirNames(labDir(n)) {
		if i, err := strconv.Atoi(strings.TrimPrefix(name, "n")); err == nil && strings.HasPrefix(name, "n") {
			idx[i] = true
		}
	}
	for _, name := range dirNames("/run/netns") {
		if m := reNetns.FindStringSubmatch(name); m != nil && m[1] == strconv.Itoa(n) {
			i, _ := strconv.Atoi(reNodeNS.FindStringSubmatch(name)[1])
			idx[i] = true
		}
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for i := range idx {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stopNode(n, i, gracefulStop); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		// Do not remove directories that processes may still use.
		return errors.Join(errs...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := removeNetwork(ctx, n); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(labDir(n)); err != nil {
		errs = append(errs, err)
	}
	if err := removeLabDir(n); err != nil {
		errs = append(errs, err)
	}
	logf("lab %d removed", n)
	return errors.Join(errs...)
}

// unmountUnder detaches every mount (in our mount namespace) below dir. The
// nodes mount only in their own namespaces, so normally there is none.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mps = append(mps, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mps)))
	var errs []error
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// removeLabDir removes the lab directory, its owner record last, so that a
// half-removed lab is still recognised as owned until the end.
func removeLabDir(n int) error {
	dir := labDir(n)
	for _, name := range dirNames(dir) {
		if name == "owner" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("remove %s: %w", name, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove lab dir: %w", err)
	}
	return nil
}

// Tools the lab runs, and the Debian package that provides each.
var requiredTools = []struct{ path, pkg string }{
	{"/usr/sbin/dockerd", "docker.io"},
	{"/usr/bin/containerd", "docker.io (containerd)"},
	{"/usr/sbin/runc", "docker.io (runc)"},
	{"/usr/sbin/sshd", "openssh-server"},
	{"ip", "iproute2"},
	{"iptables", "iptables"},
	{"nsenter", "util-linux"},
	{"unshare", "util-linux"},
	{"mount", "mount"},
}

// CheckPrereqs reports why a lab cannot run here: not root, or a tool
// missing (with the package to install). It returns nil if all is well.
func CheckPrereqs() error {
	if os.Geteuid() != 0 {
		return errors.New("lab: must run as root (network namespaces, mounts, dockerd)")
	}
	var missing, pkgs []string
	for _, t := range requiredTools {
		if _, err := exec.LookPath(t.path); err != nil {
			missing = append(missing, t.path)
			pkgs = append(pkgs, strings.Fields(t.pkg)[0])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("lab: missing %s; install with: apt-get install -y %s",
			strings.Join(missing, ", "), strings.Join(uniq(pkgs), " "))
	}
	return nil
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
