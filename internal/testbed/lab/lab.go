// Package lab creates throw-away "hosts" on this machine for tests: each node
// has its own network, mount, UTS and pid namespaces, its own dockerd (with
// its own containerd, data and sockets) and its own sshd, and the nodes share
// a bridge. To a client a node looks like a Linux host with Docker reachable
// over SSH as root (for example through a direct-streamlocal channel to
// /var/run/docker.sock), so a Docker Swarm can be formed across them.
//
// Start creates a lab with Options.Nodes nodes (node i is named Prefix+i and
// listens at 198.18.N.(10+i)), or an empty one when Nodes is 0. Nodes can then
// be added and removed one at a time while the lab runs: AddNode starts a node
// at an address of the caller's choice in Subnet(), with a hostname and the
// authorized_keys for root of the caller's choice (say, those of an emulated
// EC2 instance), and RemoveNode removes it completely. Nodes lists the current
// nodes and KnownHostsFile their host keys; both are kept up to date.
//
// Lab number N (1..254) is allocated under the flock /run/mblab.lock. Lab N
// uses the bridge mblabN, on which the host is 198.18.N.1 (Gateway) of
// 198.18.N.0/24 (Subnet), the directory /tmp/mblabN and host iptables rules
// on the bridge. Each node occupies a slot I, the lowest free one when it is
// created and unrelated to its address, which names the node's directory
// /tmp/mblabN/nI, network namespace mblabN-nI, veth mblabNvI and cgroup
// parent mblabN-nI. A lab whose owner process died is removed, with all its
// nodes however they were added, by the next Start. Everything needs root.
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
//     the node's own network namespace), plus a cgroup parent mblabN-nI so
//     that Close and RemoveNode can remove its containers' cgroups.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
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
	// Nodes is the number of nodes to start with (0..200). With 0 the lab is
	// empty (bridge, directory and keys only) until AddNode adds nodes.
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
	// NetNS is the name of the node's network namespace, for `ip -n NetNS`
	// (e.g. to list the IPsec states an encrypted overlay sets up).
	NetNS string
}

// Lab is a running set of nodes. Close it to remove everything. Its methods
// are safe for concurrent use.
type Lab struct {
	num        int
	dir        string
	keyPEM     string
	knownHosts string
	log        func(string, ...any)

	// closing ends when Close begins, which cancels AddNode calls in progress.
	closing     context.Context
	stopClosing context.CancelFunc

	mu     sync.Mutex
	nodes  []*node       // the ready nodes, in the order they became ready
	slots  map[int]*node // every node, by slot, from creation until fully removed
	closed bool
	ops    sync.WaitGroup // AddNode and RemoveNode calls in progress

	closeOnce sync.Once
	closeErr  error
}

var reHostname = regexp.MustCompile(`^[a-zA-Z]([a-zA-Z0-9-]{0,40})$`)

// Start creates a lab of opts.Nodes nodes and returns once every node's
// dockerd answers /_ping and every sshd accepts TCP connections on port 22.
// If ctx has no deadline, Start gives up after 3 minutes. On error nothing is
// left behind.
func Start(ctx context.Context, opts Options) (*Lab, error) {
	if opts.Nodes < 0 || opts.Nodes > maxNodes {
		return nil, fmt.Errorf("lab: Nodes must be 0..%d, got %d", maxNodes, opts.Nodes)
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
	l := &Lab{log: func(string, ...any) {}, slots: map[int]*node{}}
	l.closing, l.stopClosing = context.WithCancel(context.Background())
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
	l.knownHosts = filepath.Join(l.dir, "known_hosts")
	for _, f := range []struct{ name, data string }{
		{"id_ed25519", l.keyPEM},
		{"id_ed25519.pub", client.authorizedKey() + " mblab\n"},
		{"authorized_keys", client.authorizedKey() + " mblab\n"},
		{"known_hosts", ""},
	} {
		if err := os.WriteFile(filepath.Join(l.dir, f.name), []byte(f.data), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	if err := createBridge(ctx, l.num); err != nil {
		return err
	}
	if opts.Nodes == 0 {
		return nil
	}

	nodes := make([]*node, opts.Nodes)
	l.mu.Lock()
	for k := range nodes {
		slot := k + 1
		nodes[k] = l.newNode(slot, startAddr(l.num, slot), opts.Prefix+strconv.Itoa(slot), "")
		l.slots[slot] = nodes[k]
	}
	l.mu.Unlock()
	// On error, Start's Close removes the nodes.
	if err := l.launch(ctx, nodes); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, nd := range nodes {
		nd.state = nodeReady
	}
	l.nodes = append(l.nodes, nodes...)
	return l.writeKnownHosts()
}

// newNode returns the description of a node in slot slot, not yet created.
func (l *Lab) newNode(slot int, addr netip.Addr, name, authorizedKeys string) *node {
	nd := &node{num: l.num, slot: slot, addr: addr, state: nodeStarting, authorizedKeys: authorizedKeys}
	nd.Name = name
	nd.Addr = addr.String()
	nd.Dir = nodeDir(l.num, slot)
	nd.DockerSocket = nodeDockerSock(nd.Dir)
	nd.NetNS = netnsName(l.num, slot)
	return nd
}

// launch creates nodes (directories, host keys, network namespaces), starts
// them and waits until every one is ready. On error the caller removes them.
func (l *Lab) launch(ctx context.Context, nodes []*node) error {
	authKeys := filepath.Join(l.dir, "authorized_keys")
	for _, nd := range nodes {
		hostKey, err := newSSHKey()
		if err != nil {
			return err
		}
		if err := nd.prepare(authKeys, hostKey); err != nil {
			return err
		}
	}
	if err := addNodeNetworks(ctx, l.num, nodes); err != nil {
		return err
	}
	for _, nd := range nodes {
		var err error
		if nd.netNS, err = nsInode(netnsPath(l.num, nd.slot)); err != nil {
			return err
		}
		if err := nd.start(); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(nodes))
	for k, nd := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = nd.waitReady(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writeKnownHosts rewrites the lab's known_hosts file with the host key of
// every ready node. The new file replaces the old one in a single rename, so
// a reader never sees it half written. l.mu must be held.
func (l *Lab) writeKnownHosts() error {
	var b strings.Builder
	for _, nd := range l.nodes {
		fmt.Fprintf(&b, "%s %s\n", nd.Addr, nd.hostKey)
	}
	tmp := l.knownHosts + ".new"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write known_hosts: %w", err)
	}
	if err := os.Rename(tmp, l.knownHosts); err != nil {
		return fmt.Errorf("replace known_hosts: %w", err)
	}
	return nil
}

// Nodes returns the current nodes: first those of Start (Nodes()[0] is node
// 1), then those of AddNode in the order they became ready. A node being
// added or removed is not listed.
func (l *Lab) Nodes() []Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Node, len(l.nodes))
	for k, nd := range l.nodes {
		out[k] = nd.Node
	}
	return out
}

// Number returns the lab number N (bridge mblabN, addresses 198.18.N.0/24).
func (l *Lab) Number() int { return l.num }

// Subnet returns the lab's network, 198.18.N.0/24.
func (l *Lab) Subnet() netip.Prefix { return subnet(l.num) }

// Gateway returns the host's address on the lab bridge, 198.18.N.1, which
// is also the nodes' default route and name server.
func (l *Lab) Gateway() netip.Addr { return gateway(l.num) }

// Dir returns the lab's directory on the host (removed by Close).
func (l *Lab) Dir() string { return l.dir }

// SSHUser is the user to log in as on every node.
func (l *Lab) SSHUser() string { return "root" }

// PrivateKeyPEM returns the client private key (ed25519, OpenSSH PEM format,
// unencrypted) that the sshd of every node accepts for SSHUser, except nodes
// added with their own NodeOptions.AuthorizedKeys.
func (l *Lab) PrivateKeyPEM() string { return l.keyPEM }

// PrivateKeyFile returns the path of a file holding PrivateKeyPEM (mode 0600).
func (l *Lab) PrivateKeyFile() string { return filepath.Join(l.dir, "id_ed25519") }

// KnownHostsFile returns the path of a known_hosts file listing every current
// node's host key under the node's address. AddNode and RemoveNode replace
// the file (by rename) before they return; read it afresh after either.
func (l *Lab) KnownHostsFile() string { return l.knownHosts }

// Close stops every node (dockerd with its containerd and containers, sshd),
// however it was added, and removes the lab's namespaces, veths, bridge,
// iptables rules, cgroups, mounts and directory. AddNode calls in progress are
// cancelled. It is safe to call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		began := time.Now()
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		l.stopClosing()
		l.ops.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		err := destroy(ctx, l.num, l.log)
		// Reap our launcher processes (they die with their nodes). No
		// AddNode or RemoveNode runs any more to change l.slots.
		l.mu.Lock()
		slots := l.slots
		l.nodes, l.slots = nil, map[int]*node{}
		l.mu.Unlock()
		for _, nd := range slots {
			if werr := nd.waitLauncher(ctx); werr != nil {
				err = errors.Join(err, werr)
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
// that it works for labs of dead owners too, and finds every node whether
// Start or AddNode created it.
func destroy(ctx context.Context, n int, logf func(string, ...any)) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, i := range nodeSlots(n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := stopNode(ctx, n, i, gracefulStop); err != nil {
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
