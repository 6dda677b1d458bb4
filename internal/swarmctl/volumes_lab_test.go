package swarmctl

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// TestBrokersKeepTheirData deploys, with swarmctl over SSH as the provider
// does, a hub on a lab manager and a mirror (Kafka and MirrorMaker 2) on a
// filter node, all of the real Kafka image; produces to the hub, lets
// MirrorMaker 2 copy it and commits a consumer group's offsets on both
// brokers. Then, one fault at a time, it forces a new task of each broker
// (`docker service update --force`) and kills and restarts the dockerd of
// each node, and after each checks that every partition's high-water mark
// and the group's committed offsets are what they were. Producing again
// afterwards must leave the mirror with exactly the hub's records: had
// MirrorMaker 2 lost its offsets, it would copy everything again. Finally
// the mirror is removed as its resource's destroy does, then the swarm is
// destroyed, and no volume of ours may be left on any node, while a
// volume someone else made stays.
func TestBrokersKeepTheirData(t *testing.T) {
	l := lab.ForTest(t, 2)
	nodes := l.Nodes()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	sw0 := formLabSwarm(ctx, t, l, "10.124.0.0/16")
	c, mgr, formed, hosts := sw0.c, sw0.mgr, sw0.formed, sw0.hosts
	network := swarmspec.DefaultNetwork
	if _, err := mgr.EnsureNetwork(ctx, network, false); err != nil {
		t.Fatal(err)
	}
	kafka := swarmspec.Kafka{Image: images.DefaultKafkaTag, Network: network, HeapMB: 384, Partitions: 2}
	if _, err := mgr.Deploy(ctx, swarmspec.OwnerSwarm, []swarmspec.Desired{swarmspec.HubSpec(kafka)}); err != nil {
		t.Fatal(err)
	}
	// The mirror as its resource reaches the swarm: through the manager's
	// address only.
	sw, err := c.OpenSwarm(ctx, formed.ClusterID, nodes[0].Addr, "")
	if err != nil {
		t.Fatal(err)
	}
	mirrorOwner := swarmspec.MirrorOwner("m1")
	if _, err := sw.Deploy(ctx, mirrorOwner, swarmspec.MirrorSpecs(swarmspec.Mirror{
		Name: "m1", NodeIndex: 0, Kafka: kafka, MirrorMakerHeapMB: 256})); err != nil {
		t.Fatal(err)
	}

	hub := broker{service: swarmspec.HubService, node: nodes[0], cli: labEngine(t, nodes[0])}
	mirror := broker{service: swarmspec.MirrorKafkaService("m1"), node: nodes[1], cli: labEngine(t, nodes[1])}
	mcli := hub.cli // the manager's engine
	for _, b := range []broker{hub, mirror} {
		vols := volumesOn(ctx, t, b.cli)
		if !slices.Contains(vols, swarmspec.DataVolume(b.service)) {
			t.Fatalf("%s: volumes %v on %s, want %s", b.service, vols, b.node.Name, swarmspec.DataVolume(b.service))
		}
	}

	const produced, committed = 1000, 100
	hub.tool(ctx, t, fmt.Sprintf("org.apache.kafka.tools.ProducerPerformance --topic %s --num-records %d --record-size 200 "+
		"--throughput -1 --producer-props bootstrap.servers=localhost:9092 acks=all", stream.AlertsTopic, produced))
	want := hub.highWater(ctx, t)
	if total(want) != produced {
		t.Fatalf("hub high-water marks %v, want %d records", want, produced)
	}
	waitMirrored(ctx, t, hub, mirror)
	for _, b := range []broker{hub, mirror} {
		b.tool(ctx, t, fmt.Sprintf("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server localhost:9092 "+
			"--group %s --topic %s --reset-offsets --to-offset %d --execute", testGroup, stream.AlertsTopic, committed))
	}
	wantGroup := map[string]map[string]int64{hub.service: hub.groupOffsets(ctx, t), mirror.service: mirror.groupOffsets(ctx, t)}
	for name, g := range wantGroup {
		if len(g) != len(want) {
			t.Fatalf("%s: group offsets %v, want one per partition of %v", name, g, want)
		}
	}
	check := func(fault string) {
		t.Helper()
		for _, b := range []broker{hub, mirror} {
			if got := b.highWater(ctx, t); !maps.Equal(got, want) {
				t.Errorf("after %s, %s high-water marks %v, want %v", fault, b.service, got, want)
			}
			if got := b.groupOffsets(ctx, t); !maps.Equal(got, wantGroup[b.service]) {
				t.Errorf("after %s, %s committed offsets of %s %v, want %v", fault, b.service, testGroup, got, wantGroup[b.service])
			}
		}
	}

	var figures []string
	record := func(fault string, b broker, took time.Duration) {
		line := fmt.Sprintf("%-28s %-14s back (Kafka Server started) after %5.1f s", fault, b.service, took.Seconds())
		t.Log(line)
		figures = append(figures, line)
	}
	for _, b := range []broker{hub, mirror} {
		old := b.container(ctx, t)
		began := time.Now()
		forceUpdate(ctx, t, mcli, b.service)
		record("service update --force", b, b.waitBack(ctx, t, old, began))
		check("service update --force " + b.service)
	}
	for _, b := range []broker{mirror, hub} { // a worker's engine, then the manager's
		old := b.container(ctx, t)
		began := time.Now()
		if err := l.RestartDocker(ctx, b.node.Addr); err != nil {
			t.Fatal(err)
		}
		record("dockerd SIGKILL + restart", b, b.waitBack(ctx, t, old, began))
		check("dockerd restart on " + b.node.Name)
	}

	// MirrorMaker 2 resumes where it was: more records on the hub reach the
	// mirror once, nothing is copied twice.
	hub.tool(ctx, t, fmt.Sprintf("org.apache.kafka.tools.ProducerPerformance --topic %s --num-records %d --record-size 200 "+
		"--throughput -1 --producer-props bootstrap.servers=localhost:9092 acks=all", stream.AlertsTopic, produced/2))
	if got := total(waitMirrored(ctx, t, hub, mirror)); got != produced+produced/2 {
		t.Errorf("after the faults, hub and mirror hold %d records, want %d", got, produced+produced/2)
	}
	t.Logf("recovery times:\n  %s", strings.Join(figures, "\n  "))

	// A volume of ours that no service knows (a mirror left in the swarm
	// when it is destroyed) and one that is not ours.
	orphan, foreign := swarmspec.DataVolume(swarmspec.MirrorKafkaService("orphan")), "someone-elses"
	for name, labels := range map[string]map[string]string{
		orphan:  {swarmspec.LabelManaged: "true", swarmspec.LabelOwner: swarmspec.MirrorOwner("orphan")},
		foreign: nil,
	} {
		if _, err := mirror.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels}); err != nil {
			t.Fatal(err)
		}
	}

	began := time.Now()
	if err := sw.RemoveOwner(ctx, mirrorOwner); err != nil {
		t.Fatalf("remove the mirror: %v", err)
	}
	t.Logf("mirror removed, its volume with it, in %.1f s", time.Since(began).Seconds())
	if vols := volumesOn(ctx, t, mirror.cli); slices.Contains(vols, swarmspec.DataVolume(mirror.service)) || !slices.Contains(vols, orphan) {
		t.Errorf("volumes on %s after the mirror's removal: %v; want its own gone, the others kept", mirror.node.Name, vols)
	}
	began = time.Now()
	if err := c.Destroy(ctx, Teardown{Hosts: hosts, Network: network, NodeIDs: formed.NodeIDs, HostKeys: formed.HostKeys}, sw0.rec); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	t.Logf("swarm destroyed in %.1f s", time.Since(began).Seconds())
	for _, b := range []broker{hub, mirror} {
		vols := volumesOn(ctx, t, b.cli)
		ours, err := b.cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmspec.LabelManaged))})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range ours.Volumes {
			t.Errorf("%s: volume %s (labels %v) left after destroy", b.node.Name, v.Name, v.Labels)
		}
		for _, v := range vols {
			if strings.HasPrefix(v, "mb-") {
				t.Errorf("%s: volume %s left after destroy", b.node.Name, v)
			}
		}
		if b == mirror && !slices.Contains(vols, foreign) {
			t.Errorf("%s: destroy removed a volume that is not ours (%s): left %v", b.node.Name, foreign, vols)
		}
	}
}

const testGroup = "persistence-test"

// broker is a Kafka service of the test and the engine of its node.
type broker struct {
	service string
	node    lab.Node
	cli     *client.Client
}

// container returns the id of the service's running container.
func (b broker) container(ctx context.Context, t *testing.T) string {
	t.Helper()
	list, err := b.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "com.docker.swarm.service.name="+b.service), filters.Arg("status", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%s: %d running containers on %s, want 1", b.service, len(list), b.node.Name)
	}
	return list[0].ID
}

// waitBack waits until a container other than old runs the service and its
// Kafka has logged that it serves, and returns the time since began.
func (b broker) waitBack(ctx context.Context, t *testing.T, old string, began time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		list, err := b.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", "com.docker.swarm.service.name="+b.service), filters.Arg("status", "running"))})
		if err == nil {
			for _, c := range list {
				if c.ID != old && strings.Contains(b.logs(ctx, c.ID), images.KafkaServerStartedLine) {
					return time.Since(began)
				}
			}
		}
		sleep(ctx, 200*time.Millisecond)
	}
	t.Fatalf("%s did not come back on %s within 5 minutes", b.service, b.node.Name)
	return 0
}

func (b broker) logs(ctx context.Context, id string) string {
	rc, err := b.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return ""
	}
	defer rc.Close()
	return strings.Join(LogLines(rc), "\n")
}

// tool runs a Kafka tool (a main class and its arguments) in the broker's
// container, with a small heap and no JMX agent, and returns its output.
func (b broker) tool(ctx context.Context, t *testing.T, classAndArgs string) string {
	t.Helper()
	var last string
	for attempt := 1; attempt <= 3; attempt++ {
		out, err := b.exec(ctx, images.KafkaRunClassScript+" "+classAndArgs)
		if err == nil {
			return out
		}
		last = err.Error()
		sleep(ctx, 2*time.Second)
	}
	t.Fatalf("%s: %s: %s", b.service, classAndArgs, last)
	return ""
}

func (b broker) exec(ctx context.Context, cmd string) (string, error) {
	list, err := b.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "com.docker.swarm.service.name="+b.service), filters.Arg("status", "running"))})
	if err != nil || len(list) != 1 {
		return "", fmt.Errorf("no single running container (%d, %v)", len(list), err)
	}
	ex, err := b.cli.ContainerExecCreate(ctx, list[0].ID, container.ExecOptions{
		Cmd: []string{"/bin/sh", "-c", cmd}, AttachStdout: true, AttachStderr: true,
		Env: []string{"KAFKA_HEAP_OPTS=-Xmx128m", "KAFKA_JMX_OPTS=-Dcom.sun.management.jmxremote=false"},
	})
	if err != nil {
		return "", err
	}
	resp, err := b.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", err
	}
	defer resp.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, resp.Reader); err != nil {
		return "", err
	}
	res, err := b.cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("exit %d: %s %s", res.ExitCode, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// highWater returns the high-water mark of every partition of the alerts
// topic ("alerts:0" -> 503).
func (b broker) highWater(ctx context.Context, t *testing.T) map[string]int64 {
	t.Helper()
	out := b.tool(ctx, t, "org.apache.kafka.tools.GetOffsetShell --bootstrap-server localhost:9092 --topic "+stream.AlertsTopic)
	hw := map[string]int64{}
	for _, line := range strings.Fields(out) {
		i := strings.LastIndex(line, ":")
		if n, err := strconv.ParseInt(line[i+1:], 10, 64); i > 0 && err == nil {
			hw[line[:i]] = n
		}
	}
	return hw
}

// groupOffsets returns the test group's committed offsets by partition.
func (b broker) groupOffsets(ctx context.Context, t *testing.T) map[string]int64 {
	t.Helper()
	out := b.tool(ctx, t, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand --bootstrap-server localhost:9092 --describe --group "+testGroup)
	got := map[string]int64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == testGroup {
			if n, err := strconv.ParseInt(f[3], 10, 64); err == nil {
				got[f[1]+":"+f[2]] = n
			}
		}
	}
	return got
}

func total(hw map[string]int64) int64 {
	var n int64
	for _, v := range hw {
		n += v
	}
	return n
}

// waitMirrored waits until the mirror holds what the hub holds, partition
// by partition, and returns that.
func waitMirrored(ctx context.Context, t *testing.T, hub, mirror broker) map[string]int64 {
	t.Helper()
	want := hub.highWater(ctx, t)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := mirror.exec(ctx, images.KafkaRunClassScript+" org.apache.kafka.tools.GetOffsetShell --bootstrap-server localhost:9092 --topic "+stream.AlertsTopic)
		if err == nil {
			got := map[string]int64{}
			for _, line := range strings.Fields(out) {
				i := strings.LastIndex(line, ":")
				if n, err := strconv.ParseInt(line[i+1:], 10, 64); i > 0 && err == nil {
					got[line[:i]] = n
				}
			}
			if maps.Equal(got, want) {
				return want
			}
			if total(got) > total(want) {
				t.Fatalf("the mirror holds more than the hub: %v, hub %v (MirrorMaker 2 copied records again)", got, want)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror does not catch up with the hub %v (last: %q, %v)", want, out, err)
		}
		sleep(ctx, 2*time.Second)
	}
}

// forceUpdate does what `docker service update --force` does: a new task
// with the same spec.
func forceUpdate(ctx context.Context, t *testing.T, mcli *client.Client, service string) {
	t.Helper()
	svc, _, err := mcli.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := svc.Spec
	spec.TaskTemplate.ForceUpdate++
	if _, err := mcli.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// volumesOn lists the names of the volumes on an engine.
func volumesOn(ctx context.Context, t *testing.T, cli *client.Client) []string {
	t.Helper()
	list, err := cli.VolumeList(ctx, volume.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range list.Volumes {
		names = append(names, v.Name)
	}
	slices.Sort(names)
	return names
}

// labEngine is a Docker client on a lab node's own socket: the test's view,
// not through swarmctl.
func labEngine(t *testing.T, n lab.Node) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+n.DockerSocket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}
