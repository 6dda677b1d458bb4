//go:build linux

package images

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
)

// TestImagesInDocker builds both archives, loads them into a throwaway dockerd
// of its own (in a fresh network namespace that has only loopback) and runs
// them the way the provider will: the workloads image's usage, two KRaft
// brokers formatted and started with kafka-storage.sh / kafka-server-start.sh
// under /bin/sh -c, MirrorMaker 2 between them, and `minibroker produce`
// against the first, whose 100 alerts must reach the second.
func TestImagesInDocker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both images and runs Kafka in a dockerd of its own; not with -short")
	}
	if os.Geteuid() != 0 {
		t.Fatal("needs root: it creates a network namespace and starts its own dockerd and containerd")
	}
	for _, tool := range []string{"dockerd", "containerd", "containerd-shim-runc-v2", "runc", "ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (needs docker.io: dockerd, containerd, runc; iproute2; util-linux): %v", tool, err)
		}
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	dir, err := os.MkdirTemp("", "mbimg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeTree(t, dir) })

	// Both builds at once: the workloads one is mostly cgo compile, the
	// Kafka one mostly jlink.
	var wl, kf Result
	var wlErr, kfErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		wl, wlErr = BuildWorkloads(ctx, WorkloadsOptions{}, filepath.Join(dir, "workloads.tar"))
	}()
	go func() {
		defer wg.Done()
		kf, kfErr = BuildKafka(ctx, KafkaOptions{}, filepath.Join(dir, "kafka.tar"))
	}()
	wg.Wait()
	if err := errors.Join(wlErr, kfErr); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s", wl)
	t.Logf("built %s", kf)

	d := startDocker(ctx, t, dir)
	for _, r := range []Result{wl, kf} {
		d.load(ctx, r.Path)
	}

	t.Run("workloads usage", func(t *testing.T) {
		for _, cmd := range [][]string{nil, {"--help"}} {
			code, logs := d.run(ctx, t, DefaultWorkloadsTag, cmd, nil)
			if code != 0 || !strings.Contains(logs, "usage: minibroker <command>") || !strings.Contains(logs, "produce") {
				t.Errorf("minibroker %q: exit %d, output:\n%s", cmd, code, logs)
			}
		}
		// The image has no shell, only the static binary.
		code, logs := d.run(ctx, t, DefaultWorkloadsTag, []string{"produce", "-h"}, nil)
		if code != 0 || !strings.Contains(logs, "-alerts-per-visit") {
			t.Errorf("minibroker produce -h: exit %d, output:\n%s", code, logs)
		}
	})
	if t.Failed() {
		return
	}

	heap := []string{"KAFKA_HEAP_OPTS=-Xmx512m -Xms512m"}
	hubProps := kafkaconf.BrokerProperties(kafkaconf.BrokerOptions{ListenerHost: "127.0.0.1", ListenerPort: 9092, ControllerPort: 9093,
		InterBrokerPort: 9096})
	mirrorProps := kafkaconf.BrokerProperties(kafkaconf.BrokerOptions{ListenerHost: "127.0.0.1", ListenerPort: 9094, ControllerPort: 9095,
		InterBrokerPort: 9097})
	// The hub is formatted with the command of the contract; the mirror with
	// kafkaconf.FormatArgs (long options), as the provider may.
	hubScript := writeFileScript("/tmp/server.properties", hubProps) +
		KafkaStorageScript + " format --ignore-formatted -t " + clusterID(t) + " -c /tmp/server.properties" +
		" && exec " + KafkaServerScript + " /tmp/server.properties"
	mirrorScript := writeFileScript("/tmp/server.properties", mirrorProps) +
		KafkaStorageScript + " " + strings.Join(kafkaconf.FormatArgs(clusterID(t), "/tmp/server.properties"), " ") +
		" && exec " + KafkaServerScript + " /tmp/server.properties"

	startedBrokers := time.Now()
	hub := d.start(ctx, t, "hub", DefaultKafkaTag, []string{"/bin/sh", "-c", hubScript}, heap)
	mirror := d.start(ctx, t, "mirror", DefaultKafkaTag, []string{"/bin/sh", "-c", mirrorScript}, heap)
	for _, id := range []string{hub, mirror} {
		logs := d.waitLog(ctx, t, id, KafkaServerStartedLine, 90*time.Second)
		if !strings.Contains(logs, "Formatting metadata directory /var/lib/kafka/data") {
			t.Errorf("the storage tool did not report formatting /var/lib/kafka/data:\n%s", tail(logs, 30))
		}
		// log4j2 found log4j2.yaml: INFO lines in the broker's pattern on stdout.
		if !strings.Contains(logs, "] INFO ") || strings.Contains(logs, "No log4j2 configuration file found") ||
			strings.Contains(logs, "StatusLogger") {
			t.Errorf("broker log does not look like log4j2.yaml's INFO to stdout:\n%s", tail(logs, 30))
		}
	}
	t.Logf("both brokers started in %s", time.Since(startedBrokers).Round(100*time.Millisecond))

	mmProps := kafkaconf.MirrorMakerProperties(kafkaconf.MirrorOptions{SourceBootstrap: "127.0.0.1:9092", TargetBootstrap: "127.0.0.1:9094"})
	startedMM := time.Now()
	mm := d.start(ctx, t, "mm2", DefaultKafkaTag, []string{"/bin/sh", "-c",
		writeFileScript("/tmp/mm2.properties", mmProps) + "exec " + KafkaMirrorMakerScript + " /tmp/mm2.properties"}, heap)
	d.waitLog(ctx, t, mm, KafkaMirrorMakerStartedLine, 90*time.Second)
	t.Logf("MirrorMaker 2 started in %s", time.Since(startedMM).Round(100*time.Millisecond))

	code, logs := d.run(ctx, t, DefaultWorkloadsTag, []string{"produce", "--bootstrap", "127.0.0.1:9092", "--visits", "1",
		"--alerts-per-visit", "100", "--interval", "1s", "--cutout-bytes", "0", "--align=false"}, nil)
	if code != 0 || !strings.Contains(logs, "visit sent") {
		t.Fatalf("minibroker produce: exit %d, output:\n%s", code, logs)
	}

	// The alerts reach the mirror: sum the end offsets of its "alerts" topic
	// with Kafka's GetOffsetShell through kafka-run-class.sh.
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, logs := d.run(ctx, t, DefaultKafkaTag, []string{KafkaRunClassScript, "org.apache.kafka.tools.GetOffsetShell",
			"--bootstrap-server", "127.0.0.1:9094", "--topic", "alerts"}, nil)
		n := sumOffsets(logs)
		if code == 0 && n == 100 {
			t.Logf("100 alerts replicated to the mirror")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mirror has %d alerts (want 100); GetOffsetShell exit %d:\n%s\nMirrorMaker log:\n%s",
				n, code, logs, tail(d.logs(ctx, t, mm), 40))
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("whole test (builds included) %s", time.Since(began).Round(100*time.Millisecond))
}

// writeFileScript returns sh that writes content to path.
func writeFileScript(path, content string) string {
	return "cat > " + path + " <<'MINIBROKER_EOF'\n" + strings.TrimSuffix(content, "\n") + "\nMINIBROKER_EOF\n"
}

// clusterID returns a random Kafka cluster id (see kafkaconf.ClusterID).
func clusterID(t *testing.T) string {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		if id, ok := kafkaconf.ClusterID(b); ok {
			return id
		}
	}
}

// sumOffsets adds up GetOffsetShell's "topic:partition:offset" lines.
func sumOffsets(out string) int {
	n := 0
	for _, line := range strings.Split(out, "\n") {
		parts := strings.Split(strings.TrimSpace(line), ":")
		if len(parts) != 3 || parts[0] != "alerts" {
			continue
		}
		if v, err := strconv.Atoi(parts[2]); err == nil {
			n += v
		}
	}
	return n
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// docker is a throwaway containerd + dockerd pair in a network namespace of
// their own, with a client.
type docker struct {
	t      *testing.T
	dir    string
	netns  string
	cli    *client.Client
	dlog   string
	mu     sync.Mutex
	ids    []string // containers to remove
	serial int
}

// startDocker starts containerd and dockerd in a new network namespace (only
// loopback, up) under dir, and registers their teardown. containerd is our own
// too, so that neither a system containerd (/run/containerd) nor the host's
// network namespace can get involved.
func startDocker(ctx context.Context, t *testing.T, dir string) *docker {
	t.Helper()
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	d := &docker{t: t, dir: dir, netns: "mbimg-" + hex.EncodeToString(suffix[:])}
	began := time.Now()

	if out, err := exec.Command("ip", "netns", "add", d.netns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", d.netns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", d.netns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", d.netns, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", d.netns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v\n%s", d.netns, err, out)
	}

	ctd := filepath.Join(dir, "containerd")
	sock := filepath.Join(ctd, "containerd.sock")
	if err := os.MkdirAll(ctd, 0o711); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(ctd, "root"), filepath.Join(ctd, "state"), sock, filepath.Join(ctd, "opt"))
	if err := os.WriteFile(filepath.Join(ctd, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	containerd := d.daemon("containerd", filepath.Join(dir, "containerd.log"), "containerd", "--config", filepath.Join(ctd, "config.toml"))
	t.Cleanup(func() { containerd.stop(t, 10*time.Second) })
	if err := waitFor(ctx, 20*time.Second, containerd, func() bool { _, err := os.Stat(sock); return err == nil }); err != nil {
		t.Fatalf("containerd did not start: %v\n%s", err, tailFile(containerd.log, 30))
	}

	cgroupParent := "/" + d.netns
	dsock := filepath.Join(dir, "docker.sock")
	d.dlog = filepath.Join(dir, "dockerd.log")
	dockerd := d.daemon("dockerd", d.dlog, "dockerd", "--containerd", sock,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "-H", "unix://"+dsock,
		"--bridge", "none", "--iptables=false", "--ip-forward=false", "--ip-masq=false",
		"--cgroup-parent", cgroupParent, "--shutdown-timeout", "5")
	t.Cleanup(func() {
		dockerd.stop(t, 20*time.Second)
		for _, cg := range append([]string{"/sys/fs/cgroup" + cgroupParent}, globOrNil("/sys/fs/cgroup/*"+cgroupParent)...) {
			_ = os.Remove(cg) // empty once the containers are gone
		}
	})

	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+dsock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	d.cli = cli
	// Registered after the daemons' stops, so it runs before them.
	t.Cleanup(func() {
		d.removeContainers()
		cli.Close()
	})
	if err := waitFor(ctx, 60*time.Second, dockerd, func() bool {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := cli.Ping(pctx)
		return err == nil
	}); err != nil {
		t.Fatalf("dockerd did not start: %v\n%s", err, tailFile(d.dlog, 30))
	}
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dockerd %s (API %s) up in netns %s in %s", v.Version, cli.ClientVersion(), d.netns, time.Since(began).Round(100*time.Millisecond))
	return d
}

// daemon is a long-running process started in the test's network namespace.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (d *docker) daemon(name, logPath string, argv ...string) *daemon {
	d.t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	// nsenter --net, not `ip netns exec`: the latter also remounts /sys in a
	// new mount namespace, which the daemons must not live in.
	args := append([]string{"--net=/var/run/netns/" + d.netns}, argv...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", name, err)
	}
	p := &daemon{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p
}

func (p *daemon) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL after timeout.
func (p *daemon) stop(t *testing.T, timeout time.Duration) {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Errorf("%s did not stop within %s of SIGTERM; killing it", p.name, timeout)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitFor polls ok until it holds, the daemon exits, or the time is up.
func waitFor(ctx context.Context, timeout time.Duration, p *daemon, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for !ok() {
		if p.exited() {
			return fmt.Errorf("%s exited: %v", p.name, p.err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready after %s", p.name, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

// load loads an archive and checks that docker gives the image the ID and
// tag that ReadArchiveFile reads from it.
func (d *docker) load(ctx context.Context, archive string) {
	t := d.t
	t.Helper()
	want, err := ReadArchiveFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	began := time.Now()
	resp, err := d.cli.ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatalf("docker load %s: %v", archive, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("docker load %s: %v", archive, err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var msg struct {
			Stream      string `json:"stream"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			break
		}
		if msg.ErrorDetail != nil {
			t.Fatalf("docker load %s: %s", archive, msg.ErrorDetail.Message)
		}
	}
	for _, img := range want {
		for _, tag := range img.RepoTags {
			got, err := d.cli.ImageInspect(ctx, tag)
			if err != nil {
				t.Fatalf("after loading %s: inspect %s: %v\n%s", archive, tag, err, body)
			}
			if got.ID != img.ID {
				t.Errorf("%s loaded as %s, but ReadArchiveFile says %s", tag, got.ID, img.ID)
			}
		}
	}
	t.Logf("loaded %s in %s", filepath.Base(archive), time.Since(began).Round(10*time.Millisecond))
}

// start creates and starts a container with host networking (the test's
// namespace) and returns its id.
func (d *docker) start(ctx context.Context, t *testing.T, name, image string, cmd, env []string) string {
	t.Helper()
	d.mu.Lock()
	d.serial++
	name = fmt.Sprintf("%s-%d", name, d.serial)
	d.mu.Unlock()
	resp, err := d.cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: cmd, Env: env},
		&container.HostConfig{NetworkMode: "host"}, nil, nil, name)
	if err != nil {
		t.Fatalf("create %s (%s %q): %v", name, image, cmd, err)
	}
	d.mu.Lock()
	d.ids = append(d.ids, resp.ID)
	d.mu.Unlock()
	if err := d.cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	return resp.ID
}

// run runs a container to completion and returns its exit code and output
// (stdout and stderr).
func (d *docker) run(ctx context.Context, t *testing.T, image string, cmd, env []string) (int, string) {
	t.Helper()
	id := d.start(ctx, t, "run", image, cmd, env)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	waitC, errC := d.cli.ContainerWait(rctx, id, container.WaitConditionNotRunning)
	var code int
	select {
	case w := <-waitC:
		code = int(w.StatusCode)
	case err := <-errC:
		t.Fatalf("wait for %s %q: %v\n%s", image, cmd, err, d.logs(ctx, t, id))
	}
	return code, d.logs(ctx, t, id)
}

// logs returns a container's stdout and stderr so far.
func (d *docker) logs(ctx context.Context, t *testing.T, id string) string {
	t.Helper()
	rc, err := d.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs of %s: %v", id[:12], err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("logs of %s: %v", id[:12], err)
	}
	return out.String()
}

// waitLog waits until a running container's output contains line, and
// returns the output. It fails at once if the container stops.
func (d *docker) waitLog(ctx context.Context, t *testing.T, id, line string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		logs := d.logs(ctx, t, id)
		if strings.Contains(logs, line) {
			return logs
		}
		info, err := d.cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !info.State.Running {
			t.Fatalf("container %s exited (%d) before logging %q:\n%s", info.Name, info.State.ExitCode, line, tail(logs, 60))
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s did not log %q within %s:\n%s", info.Name, line, timeout, tail(logs, 60))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (d *docker) removeContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d.mu.Lock()
	ids := slices.Clone(d.ids)
	d.mu.Unlock()
	for _, id := range ids {
		if err := d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil && !strings.Contains(err.Error(), "No such container") {
			d.t.Errorf("remove container %s: %v", id[:12], err)
		}
	}
}

// removeTree unmounts whatever dockerd left mounted under dir (e.g. its
// exec-root/netns/default bind mount), deepest first, and removes dir.
func removeTree(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err == nil {
		var mounts []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 {
				mp := unescapeMount(fields[4])
				if strings.HasPrefix(mp, dir+"/") {
					mounts = append(mounts, mp)
				}
			}
		}
		f.Close()
		slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
		for _, mp := range mounts {
			if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", mp, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func tailFile(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return tail(string(data), lines)
}

func globOrNil(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}
