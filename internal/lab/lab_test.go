package lab

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
		testSSHDocker(ctx, t, l, nodes[1])
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
	var netNS, pidNS []uint64
	for _, nd := range l.nodes {
		netNS = append(netNS, nd.netNS)
		pidNS = append(pidNS, nd.pidNS)
	}
	began := time.Now()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %s", time.Since(began).Round(time.Millisecond))
	assertGone(t, l.num, netNS, pidNS)
}

// testSSHDocker logs in to n as the lab user, verifying the host key against
// the lab's known_hosts, and uses a direct-streamlocal channel to the node's
// /var/run/docker.sock for GET /_ping and /info.
func testSSHDocker(ctx context.Context, t *testing.T, l *Lab, n Node) {
	signer, err := ssh.ParsePrivateKey([]byte(l.PrivateKeyPEM()))
	if err != nil {
		t.Fatalf("parse lab key: %v", err)
	}
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
	sc, err := ssh.Dial("tcp", net.JoinHostPort(n.Addr, "22"), cfg)
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
	for k := range netNS {
		for _, pid := range append(pidsInNS("net", netNS[k]), pidsInNS("pid", pidNS[k])...) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("process %d (%s, zombie %v) of node %d left: %q", pid, procComm(pid), !pidRunning(pid), k+1,
				bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
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
