package lab

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

const testImage = "mblab/busybox:1"

// TestLab starts three nodes, talks to node 2's engine over SSH, forms a
// Swarm, runs services on an overlay network across nodes, then checks that
// Close leaves nothing behind.
func TestLab(t *testing.T) {
	l := ForTest(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := l.Nodes()

	t.Run("ssh streamlocal to node2 docker.sock", func(t *testing.T) {
		testSSHDocker(ctx, t, l, nodes[1], labSigner(t, l))
	})

	clients := make([]*client.Client, len(nodes))
	for k, n := range nodes {
		c, err := client.NewClientWithOpts(client.WithHost("unix://"+n.DockerSocket), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[k] = c
	}
	if !t.Run("image", func(t *testing.T) { testImageImportAndLoad(ctx, t, l, clients) }) {
		t.FailNow()
	}
	if !t.Run("swarm", func(t *testing.T) { testSwarm(ctx, t, nodes, clients) }) {
		t.FailNow()
	}
	t.Run("overlay across nodes", func(t *testing.T) { testOverlay(ctx, t, nodes, clients[0]) })

	// Remember what identifies the lab's processes, then close and look.
	netNS, pidNS := namespaces(l)
	began := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %s", time.Since(began).Round(time.Millisecond))
	assertGone(t, l.num, netNS, pidNS)
}

// testSSHDocker logs in to n as the lab user with signer, verifying the host
// key against the lab's known_hosts, and uses a direct-streamlocal channel to
// the node's /var/run/docker.sock for GET /_ping and /info.
func testSSHDocker(ctx context.Context, t *testing.T, l *Lab, n Node, signer ssh.Signer) {
	sc, err := dialSSH(ctx, t, l, n.Addr, signer)
	if err != nil {
		t.Fatalf("ssh to %s: %v", n.Addr, err)
	}
	defer sc.Close()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			return sc.Dial("unix", "/var/run/docker.sock")
		},
	}}
	get := func(path string) []byte {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("GET %s over ssh: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s over ssh: %s: %s", path, resp.Status, b)
		}
		return b
	}
	if b := get("/_ping"); string(b) != "OK" {
		t.Errorf("/_ping = %q, want OK", b)
	}
	var info struct{ Name, ServerVersion string }
	if err := json.Unmarshal(get("/info"), &info); err != nil {
		t.Fatal(err)
	}
	if info.Name != n.Name {
		t.Errorf("/info Name over ssh to %s = %q, want %q", n.Addr, info.Name, n.Name)
	}
	t.Logf("%s: docker %s, hostname %s", n.Addr, info.ServerVersion, info.Name)
}

// testImageImportAndLoad builds a FROM-scratch busybox image on node 1 with
// `docker import`, saves it, and loads the archive on the other nodes.
func testImageImportAndLoad(ctx context.Context, t *testing.T, l *Lab, clients []*client.Client) {
	rootfs, err := busyboxRootfs()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clients[0].ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"},
		testImage, image.ImportOptions{Changes: []string{`ENTRYPOINT ["/bin/busybox"]`}})
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	_, _ = io.Copy(io.Discard, rc)
	rc.Close()

	archive := filepath.Join(t.TempDir(), "busybox.tar")
	rc, err = clients[0].ImageSave(ctx, []string{testImage})
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(f, rc)
	rc.Close()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("write archive: %v", err)
	}
	for node := 2; node <= len(clients); node++ {
		if err := l.LoadImage(ctx, node, archive); err != nil {
			t.Fatal(err)
		}
	}
	for k, c := range clients {
		if _, err := c.ImageInspect(ctx, testImage); err != nil {
			t.Errorf("node %d: %v", k+1, err)
		}
	}
	if err := l.LoadImage(ctx, 9, archive); err == nil {
		t.Error("LoadImage on node 9 of 3 succeeded")
	}
}

// busyboxRootfs returns a tar of a root file system holding only
// /bin/busybox (statically linked, from busybox-static) and /bin/sh.
func busyboxRootfs() ([]byte, error) {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return nil, fmt.Errorf("need a static /bin/busybox (apt-get install busybox-static): %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdrs := []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bb))},
		{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
	}
	for _, h := range hdrs {
		h.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Name == "bin/busybox" {
			if _, err := tw.Write(bb); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// testSwarm initialises a swarm on node 1 and joins the others as workers.
func testSwarm(ctx context.Context, t *testing.T, nodes []Node, clients []*client.Client) {
	_, err := clients[0].SwarmInit(ctx, swarm.InitRequest{
		ListenAddr:      "0.0.0.0:2377",
		AdvertiseAddr:   nodes[0].Addr,
		DefaultAddrPool: []string{"10.200.0.0/16"},
		SubnetSize:      24,
	})
	if err != nil {
		t.Fatalf("swarm init: %v", err)
	}
	sw, err := clients[0].SwarmInspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := 1; k < len(nodes); k++ {
		err := clients[k].SwarmJoin(ctx, swarm.JoinRequest{
			ListenAddr:    "0.0.0.0:2377",
			AdvertiseAddr: nodes[k].Addr,
			RemoteAddrs:   []string{net.JoinHostPort(nodes[0].Addr, "2377")},
			JoinToken:     sw.JoinTokens.Worker,
		})
		if err != nil {
			t.Fatalf("swarm join %s: %v", nodes[k].Name, err)
		}
	}
	waitFor(ctx, t, "all swarm nodes ready", func() (bool, string) {
		list, err := clients[0].NodeList(ctx, swarm.NodeListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		var states []string
		for _, n := range list {
			states = append(states, n.Description.Hostname+"="+string(n.Status.State))
			if n.Status.State == swarm.NodeStateReady {
				ready++
			}
		}
		return ready == len(nodes), strings.Join(states, " ")
	})
}

// testOverlay runs service a (2 replicas, dnsrr, not on node3) and, on node3,
// a one-shot service b that pings both tasks of a and resolves a by name.
func testOverlay(ctx context.Context, t *testing.T, nodes []Node, mgr *client.Client) {
	if _, err := mgr.NetworkCreate(ctx, "mbnet", network.CreateOptions{Driver: "overlay", Attachable: true}); err != nil {
		t.Fatalf("create overlay network: %v", err)
	}
	two := uint64(2)
	one := uint64(1)
	last := nodes[len(nodes)-1].Name
	a := createService(ctx, t, mgr, "a", []string{"sleep", "600"}, "node.hostname!="+last, two, nil)
	var addrs []string
	waitFor(ctx, t, "2 tasks of a running", func() (bool, string) {
		tasks := serviceTasks(ctx, t, mgr, a)
		addrs = addrs[:0]
		var states []string
		for _, tk := range tasks {
			states = append(states, string(tk.Status.State))
			if tk.Status.State == swarm.TaskStateRunning && len(tk.NetworksAttachments) > 0 &&
				len(tk.NetworksAttachments[0].Addresses) > 0 {
				ip, _, _ := net.ParseCIDR(tk.NetworksAttachments[0].Addresses[0])
				addrs = append(addrs, ip.String())
			}
		}
		return len(addrs) == 2, strings.Join(states, " ")
	})
	script := fmt.Sprintf("ping -c1 -W5 %s && ping -c1 -W5 %s && nslookup a", addrs[0], addrs[1])
	b := createService(ctx, t, mgr, "b", []string{"sh", "-c", script}, "node.hostname=="+last, one,
		&swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone})
	var final swarm.Task
	waitFor(ctx, t, "task of b finished", func() (bool, string) {
		for _, tk := range serviceTasks(ctx, t, mgr, b) {
			final = tk
			switch tk.Status.State {
			case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected:
				return true, ""
			}
			return false, string(tk.Status.State)
		}
		return false, "no task"
	})
	logs := serviceLogs(ctx, mgr, b)
	if final.Status.State != swarm.TaskStateComplete {
		t.Fatalf("b on %s: %s (%s, exit %d); logs:\n%s", last, final.Status.State, final.Status.Err,
			final.Status.ContainerStatus.ExitCode, logs)
	}
	for _, ip := range addrs {
		if !strings.Contains(logs, "64 bytes from "+ip) {
			t.Errorf("no ping reply from %s in logs of b:\n%s", ip, logs)
		}
	}
	t.Logf("b on %s reached a at %v across the overlay", last, addrs)
}

func createService(ctx context.Context, t *testing.T, c *client.Client, name string, args []string,
	constraint string, replicas uint64, restart *swarm.RestartPolicy) string {
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: testImage, Args: args},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: "mbnet"}},
			Placement:     &swarm.Placement{Constraints: []string{constraint}},
			RestartPolicy: restart,
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR}, // no IPVS here
	}
	resp, err := c.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("create service %s: %v", name, err)
	}
	return resp.ID
}

func serviceTasks(ctx context.Context, t *testing.T, c *client.Client, id string) []swarm.Task {
	tasks, err := c.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id))})
	if err != nil {
		t.Fatalf("list tasks: %v", err)
	}
	return tasks
}

func serviceLogs(ctx context.Context, c *client.Client, id string) string {
	rc, err := c.ServiceLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "(logs: " + err.Error() + ")"
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		fmt.Fprintf(&out, "(logs: %v)", err)
	}
	return out.String()
}

// waitFor polls cond until it holds, failing the test when ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (last: %s)", what, ctx.Err(), state)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// labSigner returns the lab's own client key.
func labSigner(t *testing.T, l *Lab) ssh.Signer {
	t.Helper()
	signer, err := ssh.ParsePrivateKey([]byte(l.PrivateKeyPEM()))
	if err != nil {
		t.Fatalf("parse lab key: %v", err)
	}
	return signer
}

// dialSSH logs in to addr:22 as the lab user with signer, verifying the host
// key against the lab's known_hosts file as it is now.
func dialSSH(ctx context.Context, t *testing.T, l *Lab, addr string, signer ssh.Signer) (*ssh.Client, error) {
	t.Helper()
	hostKeys, err := knownhosts.New(l.KnownHostsFile())
	if err != nil {
		t.Fatalf("read known_hosts: %v", err)
	}
	cfg := &ssh.ClientConfig{
		User:            l.SSHUser(),
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: hostKeys,
		Timeout:         10 * time.Second,
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hostPort := net.JoinHostPort(addr, "22")
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", hostPort)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl) // for the handshake
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, hostPort, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// namespaces returns the network and pid namespace inodes of every node the
// lab knows, in any state, to look for leftover processes later.
func namespaces(l *Lab) (netNS, pidNS []uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, nd := range l.slots {
		netNS = append(netNS, nd.netNS)
		pidNS = append(pidNS, nd.pidNS)
	}
	return netNS, pidNS
}

// assertGone checks that lab n left nothing: namespaces, links, processes,
// cgroups, iptables rules, mounts, directory.
func assertGone(t *testing.T, n int, netNS, pidNS []uint64) {
	t.Helper()
	pfx := fmt.Sprintf("%s%d", namePfx, n)
	for _, name := range dirNames("/run/netns") {
		if strings.HasPrefix(name, pfx+"-") {
			t.Errorf("netns %s left", name)
		}
	}
	for _, name := range dirNames("/sys/class/net") {
		if m := reLink.FindStringSubmatch(name); m != nil && m[1] == fmt.Sprint(n) {
			t.Errorf("link %s left", name)
		}
	}
	assertNoProcesses(t, n, netNS, pidNS)
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/" + pfx + "-n*"); len(m) > 0 {
		t.Errorf("cgroups left: %v", m)
	}
	if out, err := exec.Command("iptables", "-w", "-S").CombinedOutput(); err != nil {
		t.Errorf("iptables -S: %v", err)
	} else if strings.Contains(string(out), " "+pfx+" ") {
		t.Errorf("iptables rules left:\n%s", out)
	}
	for _, mi := range []string{"/proc/self/mountinfo", "/proc/1/mountinfo"} {
		b, _ := os.ReadFile(mi)
		if strings.Contains(string(b), labDir(n)) {
			t.Errorf("mounts under %s left in %s", labDir(n), mi)
		}
	}
	if _, err := os.Stat(labDir(n)); !os.IsNotExist(err) {
		t.Errorf("lab dir %s left (%v)", labDir(n), err)
	}
}

// TestDynamicNodes starts an empty lab, adds nodes at addresses chosen out of
// order with their own authorized key (as an EC2 emulator does for the key
// pair of an instance), removes one, adds one again at the removed address,
// adds and removes nodes concurrently, then checks that Close leaves nothing.
func TestDynamicNodes(t *testing.T) {
	l := ForTest(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	num := l.Number()
	at := func(host byte) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(num), host}) }

	t.Run("empty", func(t *testing.T) {
		if got := l.Nodes(); len(got) != 0 {
			t.Errorf("Nodes() = %v, want none", got)
		}
		if want := netip.MustParsePrefix(fmt.Sprintf("198.18.%d.0/24", num)); l.Subnet() != want {
			t.Errorf("Subnet() = %s, want %s", l.Subnet(), want)
		}
		if l.Gateway() != at(1) {
			t.Errorf("Gateway() = %s, want %s", l.Gateway(), at(1))
		}
		assertHostAddr(t, bridgeName(num), l.Gateway())
		if b, err := os.ReadFile(l.KnownHostsFile()); err != nil || len(b) != 0 {
			t.Errorf("known_hosts of an empty lab: %q, %v", b, err)
		}
		if _, err := ssh.ParsePrivateKey([]byte(l.PrivateKeyPEM())); err != nil {
			t.Errorf("lab key: %v", err)
		}
		if slots := nodeSlots(num); len(slots) != 0 {
			t.Errorf("node slots of an empty lab: %v", slots)
		}
	})

	// The key pair of the "instance".
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	userKey, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	authKeys := string(ssh.MarshalAuthorizedKey(userKey.PublicKey()))

	began := time.Now()
	n77, err := l.AddNode(ctx, NodeOptions{Addr: at(77), AuthorizedKeys: authKeys})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("AddNode took %s", time.Since(began).Round(time.Millisecond))
	n23, err := l.AddNode(ctx, NodeOptions{Addr: at(23), Name: "worker23", AuthorizedKeys: authKeys})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("ip-198-18-%d-77", num); n77.Name != want {
		t.Errorf("default name %q, want %q", n77.Name, want)
	}
	if n77.Addr != at(77).String() || n23.Addr != at(23).String() || n23.Name != "worker23" {
		t.Errorf("nodes %+v and %+v", n77, n23)
	}
	if n77.Dir != nodeDir(num, 1) || n23.Dir != nodeDir(num, 2) {
		t.Errorf("node dirs %s and %s, want slots 1 and 2", n77.Dir, n23.Dir)
	}
	assertNodes(t, l, n77, n23)

	for _, n := range []Node{n77, n23} {
		t.Run("ssh with the instance key to "+n.Name, func(t *testing.T) {
			if out := sshOutput(ctx, t, l, n.Addr, userKey, "hostname"); out != n.Name {
				t.Errorf("hostname on %s = %q, want %q", n.Addr, out, n.Name)
			}
			testSSHDocker(ctx, t, l, n, userKey)
		})
		t.Run("lab key refused by "+n.Name, func(t *testing.T) {
			assertRefused(ctx, t, l, n.Addr, labSigner(t, l))
		})
		t.Run("docker ping on "+n.Name, func(t *testing.T) {
			if err := ping(ctx, n.DockerSocket); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("nodes reach each other", func(t *testing.T) {
		assertReaches(ctx, t, l, n77, n23.Addr, userKey)
		assertReaches(ctx, t, l, n23, n77.Addr, userKey)
	})

	t.Run("AddNode errors", func(t *testing.T) {
		other := netip.AddrFrom4([4]byte{198, 18, byte(num%254 + 1), 5})
		for _, c := range []struct {
			what string
			o    NodeOptions
		}{
			{"no address", NodeOptions{}},
			{"outside the subnet", NodeOptions{Addr: netip.MustParseAddr("10.0.0.5")}},
			{"another lab's subnet", NodeOptions{Addr: other}},
			{"IPv6", NodeOptions{Addr: netip.MustParseAddr("fd00::5")}},
			{"gateway", NodeOptions{Addr: l.Gateway()}},
			{"network address", NodeOptions{Addr: at(0)}},
			{"broadcast address", NodeOptions{Addr: at(255)}},
			{"duplicate", NodeOptions{Addr: at(77)}},
			{"duplicate of a node with a name", NodeOptions{Addr: at(23), Name: "other"}},
			{"bad name", NodeOptions{Addr: at(30), Name: "-bad"}},
			{"blank authorized_keys", NodeOptions{Addr: at(30), AuthorizedKeys: " \n"}},
		} {
			if n, err := l.AddNode(ctx, c.o); err == nil {
				t.Errorf("AddNode with %s succeeded: %+v", c.what, n)
			} else {
				t.Logf("%s: %v", c.what, err)
			}
		}
		assertNodes(t, l, n77, n23)
		if slots := nodeSlots(num); !slices.Equal(slots, []int{1, 2}) {
			t.Errorf("node slots after failed AddNode calls: %v, want [1 2]", slots)
		}
	})

	// What identifies the processes of every node the lab had, removed ones
	// included, for the final check.
	var allNetNS, allPidNS []uint64
	remember := func() {
		netNS, pidNS := namespaces(l)
		allNetNS, allPidNS = append(allNetNS, netNS...), append(allPidNS, pidNS...)
	}
	remember()

	t.Run("RemoveNode", func(t *testing.T) {
		net77, pid77 := nodeNamespaces(t, l, at(77))
		began := time.Now()
		if err := l.RemoveNode(ctx, at(77)); err != nil {
			t.Fatal(err)
		}
		t.Logf("RemoveNode took %s", time.Since(began).Round(time.Millisecond))
		assertNodes(t, l, n23)
		assertNodeGone(t, num, 1)
		assertNoProcesses(t, num, []uint64{net77}, []uint64{pid77})
		known, err := os.ReadFile(l.KnownHostsFile())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(known), n77.Addr+" ") || !strings.Contains(string(known), n23.Addr+" ") {
			t.Errorf("known_hosts after removing %s:\n%s", n77.Addr, known)
		}
		var d net.Dialer
		dctx, dcancel := context.WithTimeout(ctx, 4*time.Second)
		defer dcancel()
		if c, err := d.DialContext(dctx, "tcp", net.JoinHostPort(n77.Addr, "22")); err == nil {
			c.Close()
			t.Errorf("%s:22 still answers after RemoveNode", n77.Addr)
		}
		if out := sshOutput(ctx, t, l, n23.Addr, userKey, "hostname"); out != n23.Name {
			t.Errorf("hostname on %s = %q after removing the other node", n23.Addr, out)
		}
		if err := l.RemoveNode(ctx, at(77)); err == nil {
			t.Error("second RemoveNode of the same address succeeded")
		}
		if err := l.RemoveNode(ctx, at(99)); err == nil {
			t.Error("RemoveNode of an unknown address succeeded")
		}
	})
	t.Run("AddNode at a removed address", func(t *testing.T) {
		again, err := l.AddNode(ctx, NodeOptions{Addr: at(77), Name: "again"})
		if err != nil {
			t.Fatal(err)
		}
		if again.Dir != nodeDir(num, 1) {
			t.Errorf("node dir %s, want the free slot 1", again.Dir)
		}
		assertNodes(t, l, n23, again)
		// A new host key under the old address: known_hosts must have it.
		if out := sshOutput(ctx, t, l, again.Addr, labSigner(t, l), "hostname"); out != "again" {
			t.Errorf("hostname on %s = %q, want again", again.Addr, out)
		}
		assertRefused(ctx, t, l, again.Addr, userKey)
		remember()
		// The other node must not use the removed node's cached MAC address.
		assertReaches(ctx, t, l, n23, again.Addr, userKey)
	})

	t.Run("concurrent AddNode and RemoveNode", func(t *testing.T) {
		addrs := []netip.Addr{at(5), at(254), at(150)}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		defer func() { close(stop); wg.Wait() }()
		wg.Add(1)
		go func() { // readers while nodes come and go
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, n := range l.Nodes() {
					if n.Addr == "" || n.Name == "" {
						t.Errorf("Nodes() lists %+v", n)
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
		errs := make([]error, len(addrs)+1)
		var ops sync.WaitGroup
		for k, a := range addrs {
			ops.Add(1)
			go func() {
				defer ops.Done()
				_, errs[k] = l.AddNode(ctx, NodeOptions{Addr: a})
			}()
		}
		ops.Add(1)
		go func() {
			defer ops.Done()
			errs[len(addrs)] = l.RemoveNode(ctx, at(23))
		}()
		ops.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, n := range l.Nodes() {
			got[n.Addr] = true
		}
		if len(got) != 4 || !got[at(77).String()] || got[at(23).String()] {
			t.Errorf("nodes after concurrent AddNode and RemoveNode: %v", got)
		}
		for _, a := range addrs {
			if out := sshOutput(ctx, t, l, a.String(), labSigner(t, l), "hostname"); !strings.HasPrefix(out, "ip-") {
				t.Errorf("hostname on %s = %q", a, out)
			}
		}
		remember()
		for k, a := range addrs {
			ops.Add(1)
			go func() {
				defer ops.Done()
				errs[k] = l.RemoveNode(ctx, a)
			}()
		}
		ops.Wait()
		if err := errors.Join(errs[:len(addrs)]...); err != nil {
			t.Fatal(err)
		}
		if nodes := l.Nodes(); len(nodes) != 1 || nodes[0].Name != "again" {
			t.Errorf("nodes after removing the concurrently added ones: %v", nodes)
		}
		if slots := nodeSlots(num); !slices.Equal(slots, []int{1}) {
			t.Errorf("node slots left: %v, want [1]", slots)
		}
	})

	remember()
	began = time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %s", time.Since(began).Round(time.Millisecond))
	assertGone(t, num, allNetNS, allPidNS)
	if _, err := l.AddNode(ctx, NodeOptions{Addr: at(40)}); err == nil {
		t.Error("AddNode after Close succeeded")
	}
}

// assertNoProcesses checks that no process is left in any of the network and
// pid namespaces (given by inode; 0 stands for none).
func assertNoProcesses(t *testing.T, n int, netNS, pidNS []uint64) {
	t.Helper()
	// The kernel reuses a freed namespace's inode: a lab of another test
	// running meanwhile may now own one. A leaked process of ours would
	// still hold our namespace, so a process in another lab's node is not
	// ours.
	others := map[uint64]bool{}
	for _, name := range dirNames("/run/netns") {
		if strings.HasPrefix(name, namePfx) && !strings.HasPrefix(name, fmt.Sprintf("%s%d-", namePfx, n)) {
			if ino, err := nsInode(filepath.Join("/run/netns", name)); err == nil {
				others[ino] = true
			}
		}
	}
	for k := range netNS {
		for _, pid := range append(pidsInNS("net", netNS[k]), pidsInNS("pid", pidNS[k])...) {
			if ino, err := nsInode(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && others[ino] {
				continue
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("process %d (%s, zombie %v) of node #%d left: %q", pid, procComm(pid), !pidRunning(pid), k+1,
				bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
}

// nodeNamespaces returns the network and pid namespace inodes of the node at addr.
func nodeNamespaces(t *testing.T, l *Lab, addr netip.Addr) (netNS, pidNS uint64) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, nd := range l.slots {
		if nd.addr == addr {
			if nd.netNS == 0 || nd.pidNS == 0 {
				t.Fatalf("node at %s: namespaces unknown (net %d, pid %d)", addr, nd.netNS, nd.pidNS)
			}
			return nd.netNS, nd.pidNS
		}
	}
	t.Fatalf("no node at %s", addr)
	return 0, 0
}

// assertNodeGone checks that nothing of node slot i of lab n is left on the
// machine: directory, network namespace, veth, cgroups.
func assertNodeGone(t *testing.T, n, i int) {
	t.Helper()
	for _, p := range []string{nodeDir(n, i), netnsPath(n, i), filepath.Join("/sys/class/net", vethName(n, i))} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left (%v)", p, err)
		}
	}
	cgroups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", cgroupName(n, i)))
	v1, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupName(n, i)))
	if m := append(cgroups, v1...); len(m) > 0 {
		t.Errorf("cgroups left: %v", m)
	}
	if nodeTraces(n, i) {
		t.Errorf("nodeTraces(%d, %d) still finds something", n, i)
	}
}

// assertNodes checks that l.Nodes() is exactly want, in order.
func assertNodes(t *testing.T, l *Lab, want ...Node) {
	t.Helper()
	if got := l.Nodes(); !slices.Equal(got, want) {
		t.Errorf("Nodes() = %+v, want %+v", got, want)
	}
}

// assertHostAddr checks that the host's interface ifname carries addr/24.
func assertHostAddr(t *testing.T, ifname string, addr netip.Addr) {
	t.Helper()
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatalf("bridge: %v", err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		t.Fatalf("addresses of %s: %v", ifname, err)
	}
	want := netip.PrefixFrom(addr, 24).String()
	for _, a := range addrs {
		if a.String() == want {
			return
		}
	}
	t.Errorf("%s has addresses %v, want %s", ifname, addrs, want)
}

// sshOutput runs cmd on addr over SSH (logging in with signer, checking the
// host key against the lab's known_hosts) and returns its trimmed output.
func sshOutput(ctx context.Context, t *testing.T, l *Lab, addr string, signer ssh.Signer, cmd string) string {
	t.Helper()
	c, err := dialSSH(ctx, t, l, addr, signer)
	if err != nil {
		t.Fatalf("ssh to %s: %v", addr, err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("ssh session on %s: %v", addr, err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("ssh %s %q: %v: %s", addr, cmd, err, out)
	}
	return strings.TrimSpace(string(out))
}

// assertRefused checks that addr's sshd refuses signer (but has a host key
// that known_hosts accepts: the failure must be authentication).
func assertRefused(ctx context.Context, t *testing.T, l *Lab, addr string, signer ssh.Signer) {
	t.Helper()
	c, err := dialSSH(ctx, t, l, addr, signer)
	if err == nil {
		c.Close()
		t.Fatalf("%s accepted key %s", addr, ssh.FingerprintSHA256(signer.PublicKey()))
	}
	if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("ssh to %s with a key it should refuse: %v, want an authentication failure", addr, err)
	}
}

// assertReaches logs in to from (with signer) and, from there, connects to
// to:22 with bash's /dev/tcp, expecting an SSH banner.
func assertReaches(ctx context.Context, t *testing.T, l *Lab, from Node, to string, signer ssh.Signer) {
	t.Helper()
	cmd := fmt.Sprintf(`timeout 10 bash -c 'exec 3<>/dev/tcp/%s/22 && head -c 8 <&3'`, to)
	if out := sshOutput(ctx, t, l, from.Addr, signer, cmd); out != "SSH-2.0-" {
		t.Errorf("%s connecting to %s:22 read %q, want an SSH banner", from.Name, to, out)
	} else {
		t.Logf("%s (%s) reached %s:22", from.Name, from.Addr, to)
	}
}

// ownerEnv, when set, makes the test binary act as the owner of a lab for
// TestStaleLabWithAddedNodes instead of running tests.
const ownerEnv = "MBLAB_TEST_STALE_OWNER"

func TestMain(m *testing.M) {
	if os.Getenv(ownerEnv) != "" {
		if err := runStaleOwner(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

// runStaleOwner starts a lab of one node, adds a second, reports the lab
// number on stdout and waits to be killed.
func runStaleOwner() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, Options{Nodes: 1})
	if err != nil {
		return err
	}
	addr := netip.AddrFrom4([4]byte{198, 18, byte(l.Number()), 99})
	if _, err := l.AddNode(ctx, NodeOptions{Addr: addr}); err != nil {
		return err
	}
	fmt.Printf("ready %d\n", l.Number())
	select {} // until killed
}

// TestStaleLabWithAddedNodes kills the owner of a lab that has a node of
// Start and one of AddNode, and checks that the next Start removes both.
func TestStaleLabWithAddedNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("lab: needs root, dockerd and sshd; skipped under -short")
	}
	if err := CheckPrereqs(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	owner := exec.CommandContext(ctx, os.Args[0])
	owner.Env = append(os.Environ(), ownerEnv+"=1")
	owner.Stderr = os.Stderr
	stdout, err := owner.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	var num int
	_, scanErr := fmt.Fscanf(stdout, "ready %d\n", &num)
	// Kill the owner without letting it clean up, as a crash would.
	_ = owner.Process.Kill()
	_ = owner.Wait()
	if scanErr != nil {
		t.Fatalf("owner did not report its lab: %v", scanErr)
	}
	if slots := nodeSlots(num); !slices.Equal(slots, []int{1, 2}) {
		t.Fatalf("lab %d of the killed owner has node slots %v, want [1 2]", num, slots)
	}
	if ownerAlive(num) {
		t.Fatalf("owner of lab %d still alive", num)
	}

	l, err := Start(ctx, Options{Nodes: 0, LogWriter: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}()
	if l.Number() == num {
		// The new lab took over the number: nothing of the old nodes may be left.
		if slots := nodeSlots(num); len(slots) != 0 {
			t.Errorf("node slots of the stale lab %d left: %v", num, slots)
		}
	} else {
		assertGone(t, num, nil, nil)
	}
}
