package swarmspec

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
)

func hub() Kafka {
	return Kafka{Image: "k:1", Network: "net", HeapMB: 512, Partitions: 6, RetentionMinutes: 30}
}

func configData(t *testing.T, d Desired, target string) string {
	t.Helper()
	for _, c := range d.Configs {
		if c.Target == target {
			return string(c.Data)
		}
	}
	t.Fatalf("%s: no config mounted at %s (have %+v)", d.Name(), target, d.Configs)
	return ""
}

func TestHubSpec(t *testing.T) {
	d := HubSpec(hub())
	s := d.Spec
	if s.Name != HubService || s.Labels[LabelComponent] != ComponentHub || s.Labels[LabelOwner] != OwnerSwarm {
		t.Fatalf("name/labels: %s %v", s.Name, s.Labels)
	}
	if s.EndpointSpec.Mode != swarm.ResolutionModeDNSRR {
		t.Errorf("endpoint mode %s, want dnsrr (no IPVS needed)", s.EndpointSpec.Mode)
	}
	if got := s.TaskTemplate.Placement.Constraints; !slices.Equal(got, []string{"node.labels.minibroker.role==manager"}) {
		t.Errorf("constraints %v", got)
	}
	cs := s.TaskTemplate.ContainerSpec
	if cs.Image != "k:1" || !slices.Contains(cs.Env, "KAFKA_HEAP_OPTS=-Xmx512m -Xms512m") {
		t.Errorf("image/env: %s %v", cs.Image, cs.Env)
	}
	script := cs.Command[2]
	for _, want := range []string{
		"/opt/kafka/bin/kafka-storage.sh format --cluster-id " + ClusterID(HubService) + " --config /etc/minibroker/server.properties --ignore-formatted",
		"exec /opt/kafka/bin/kafka-server-start.sh /etc/minibroker/server.properties",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	props := configData(t, d, "/etc/minibroker/server.properties")
	for _, want := range []string{"advertised.listeners=PLAINTEXT://mb-hub:9092", "listeners=PLAINTEXT://0.0.0.0:9092",
		"num.partitions=6", "log.retention.minutes=30", "process.roles=broker,controller"} {
		if !strings.Contains(props, want) {
			t.Errorf("server.properties lacks %q", want)
		}
	}
	if len(ClusterID("x")) != 22 {
		t.Errorf("cluster id %q is not 22 characters", ClusterID("x"))
	}
	if n := s.TaskTemplate.Networks; len(n) != 1 || n[0].Target != "net" {
		t.Errorf("networks %+v", n)
	}
}

func TestHashFollowsEveryChange(t *testing.T) {
	base := HubSpec(hub())
	if again := HubSpec(hub()); again.Spec.Labels[LabelSpecHash] != base.Spec.Labels[LabelSpecHash] {
		t.Fatal("hash is not deterministic")
	}
	for name, change := range map[string]func(*Kafka){
		"heap":       func(k *Kafka) { k.HeapMB = 1024 },
		"image":      func(k *Kafka) { k.Image = "k:2" },
		"properties": func(k *Kafka) { k.Properties = map[string]string{"a": "b"} },
	} {
		k := hub()
		change(&k)
		if HubSpec(k).Spec.Labels[LabelSpecHash] == base.Spec.Labels[LabelSpecHash] {
			t.Errorf("%s change keeps the hash", name)
		}
	}
	// A new config content is a new config name: Swarm configs are immutable.
	k := hub()
	k.RetentionMinutes = 99
	if HubSpec(k).Configs[0].Name == base.Configs[0].Name {
		t.Error("config name does not follow its content")
	}
}

func TestMirrorSpecs(t *testing.T) {
	ds := MirrorSpecs(Mirror{Name: "m2", NodeIndex: 3, Kafka: hub(), Topics: "alerts", MirrorMakerHeapMB: 256})
	if len(ds) != 2 || ds[0].Name() != "mb-mirror-m2" || ds[1].Name() != "mb-mirror-m2-mm2" {
		t.Fatalf("services %v", []string{ds[0].Name(), ds[1].Name()})
	}
	for _, d := range ds {
		want := []string{"node.labels.minibroker.role==filter", "node.labels.minibroker.index==3"}
		if got := d.Spec.TaskTemplate.Placement.Constraints; !slices.Equal(got, want) {
			t.Errorf("%s constraints %v, want %v", d.Name(), got, want)
		}
		if d.Spec.Labels[LabelOwner] != "mirror/m2" {
			t.Errorf("%s owner %q", d.Name(), d.Spec.Labels[LabelOwner])
		}
	}
	if !strings.Contains(configData(t, ds[0], "/etc/minibroker/server.properties"), "advertised.listeners=PLAINTEXT://mb-mirror-m2:9092") {
		t.Error("mirror Kafka does not advertise its service name")
	}
	mm := configData(t, ds[1], "/etc/minibroker/mm2.properties")
	for _, want := range []string{"hub.bootstrap.servers=mb-hub:9092", "mirror.bootstrap.servers=mb-mirror-m2:9092",
		"hub->mirror.topics=alerts", "replication.policy.class=org.apache.kafka.connect.mirror.IdentityReplicationPolicy"} {
		if !strings.Contains(mm, want) {
			t.Errorf("mm2.properties lacks %q", want)
		}
	}
	cs := ds[1].Spec.TaskTemplate.ContainerSpec
	if !strings.Contains(cs.Command[2], "/opt/kafka/bin/connect-mirror-maker.sh /etc/minibroker/mm2.properties") ||
		!slices.Contains(cs.Env, "KAFKA_HEAP_OPTS=-Xmx256m -Xms256m") {
		t.Errorf("mm2 command/env: %v %v", cs.Command, cs.Env)
	}
}

func TestProducerSpec(t *testing.T) {
	p := Producer{Image: "w:1", Network: "net", AlertsPerVisit: 500, Interval: 2 * time.Second, Visits: 3, Seed: 7,
		Replay: []ReplayFile{{Name: "/data/fakeAlert.avro", Data: []byte("avro")}}}
	d := ProducerSpec(p)
	cs := d.Spec.TaskTemplate.ContainerSpec
	args := strings.Join(cs.Args, " ")
	for _, want := range []string{"produce --bootstrap mb-hub:9092", "--alerts-per-visit 500", "--interval 2s",
		"--visits 3", "--seed 7", "--replay /etc/minibroker/replay/0-fakeAlert.avro"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
	if d.Spec.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionOnFailure {
		t.Error("a producer with a finite number of visits must not be restarted when it ends")
	}
	p.Visits = 0
	if ProducerSpec(p).Spec.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionAny {
		t.Error("an endless producer must always be restarted")
	}
	if !bytes.Equal(d.Configs[0].Data, []byte("avro")) {
		t.Error("replay file content not in its config")
	}
}

func group(mode string) FilterGroup {
	return FilterGroup{Name: "g1", Mode: mode, Image: "w:1", Network: "net", Mirror: "m1", MirrorNodeIndex: 1,
		Filters: []Filter{
			{Name: "Bright_Stars", Expression: "alert.diaSource.snr > 50.0", MaxPerVisit: 20, ConsumerNode: -1},
			{Name: "faint", Expression: "alert.diaSource.snr < 6.0", MaxPerVisit: -1, Output: "faint-out", ConsumerNode: 2},
			{Name: "quiet", Expression: "true", MaxPerVisit: 5, NoConsumer: true, ConsumerNode: -1},
		}}
}

func names(ds []Desired) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name())
	}
	return out
}

func TestIsolatedGroup(t *testing.T) {
	ds, err := FilterGroupSpecs(group(ModeIsolated))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mb-g1-bright-stars", "mb-g1-faint", "mb-g1-quiet", "mb-g1-bright-stars-c", "mb-g1-faint-c"}
	if !slices.Equal(names(ds), want) {
		t.Fatalf("services %v, want %v", names(ds), want)
	}
	f := strings.Join(ds[1].Spec.TaskTemplate.ContainerSpec.Args, " ")
	for _, want := range []string{"filter --bootstrap mb-mirror-m1:9092 --timing-bootstrap mb-hub:9092", "--name faint",
		"--expr alert.diaSource.snr < 6.0", "--max-per-visit -1", "--output faint-out"} {
		if !strings.Contains(f, want) {
			t.Errorf("filter args %q lack %q", f, want)
		}
	}
	if got := ds[0].Spec.TaskTemplate.Placement.Constraints; !slices.Contains(got, "node.labels.minibroker.index==1") {
		t.Errorf("filter not on the mirror's node: %v", got)
	}
	c := ds[4].Spec.TaskTemplate
	if !slices.Equal(c.Placement.Constraints, []string{"node.labels.minibroker.role==consumer", "node.labels.minibroker.index==2"}) {
		t.Errorf("pinned consumer constraints %v", c.Placement.Constraints)
	}
	if !strings.Contains(strings.Join(c.ContainerSpec.Args, " "), "--topic faint-out") {
		t.Errorf("consumer reads the wrong topic: %v", c.ContainerSpec.Args)
	}
	if got := ds[3].Spec.TaskTemplate.Placement.Constraints; len(got) != 1 {
		t.Errorf("unpinned consumer should allow every consumer node: %v", got)
	}
}

func TestSharedGroupYAMLRoundTrips(t *testing.T) {
	g := group(ModeShared)
	ds, err := FilterGroupSpecs(g)
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].Name() != "mb-g1-filters" || len(ds) != 3 {
		t.Fatalf("services %v", names(ds))
	}
	specs, err := filter.LoadSpecs(strings.NewReader(configData(t, ds[0], "/etc/minibroker/filters.yaml")))
	if err != nil {
		t.Fatalf("the filters file does not load: %v", err)
	}
	if len(specs) != len(g.Filters) {
		t.Fatalf("%d specs, want %d", len(specs), len(g.Filters))
	}
	for i, s := range specs {
		f := g.Filters[i]
		if s.Name != f.Name || s.Expr != f.Expression || s.MaxPerVisit != f.MaxPerVisit || s.WithDefaults().Output != f.OutputTopic() {
			t.Errorf("spec %d = %+v, want %+v", i, s, f)
		}
	}
	if _, err := FilterGroupSpecs(FilterGroup{Mode: "both"}); err == nil || !strings.Contains(err.Error(), "isolated") {
		t.Errorf("bad mode: %v", err)
	}
}

func TestNamesFitDocker(t *testing.T) {
	g := strings.Repeat("g", MaxGroupNameLen)
	f := strings.Repeat("F", MaxFilterNameLen)
	for _, n := range []string{ConsumerService(g, f), FilterService(g, f), MirrorMakerService(strings.Repeat("m", MaxMirrorNameLen))} {
		if len(n) > 63 {
			t.Errorf("%s is %d characters; Docker allows 63", n, len(n))
		}
	}
	for name, ok := range map[string]bool{"m1": true, "a-b": true, "-a": false, "A": false, "a_b": false, "": false} {
		if err := ValidObjectName(name, 20); (err == nil) != ok {
			t.Errorf("ValidObjectName(%q) = %v", name, err)
		}
	}
}

func TestTaskHashIgnoresServiceLabels(t *testing.T) {
	d := HubSpec(hub())
	th := d.Spec.TaskTemplate.ContainerSpec.Labels[LabelTaskHash]
	if th == "" || th != TaskHash(d.Spec.TaskTemplate, d.Configs) {
		t.Fatalf("task hash %q not set or not reproducible", th)
	}
	d.Spec.Labels["minibroker.settings"] = "{}" // restarts nothing
	if TaskHash(d.Spec.TaskTemplate, d.Configs) != th {
		t.Error("a service label changed the task hash")
	}
	k := hub()
	k.HeapMB = 2048
	if HubSpec(k).Spec.TaskTemplate.ContainerSpec.Labels[LabelTaskHash] == th {
		t.Error("a new heap keeps the task hash")
	}
}

// TestClusterIDNeverAnOption checks that no derived cluster id starts with
// '-' (kafka-storage would read it as an option and the broker would never
// start), including names whose first hash gives one, and that a name whose
// first hash is usable keeps that id.
func TestClusterIDNeverAnOption(t *testing.T) {
	rehashed := 0
	for i := range 1000 {
		name := MirrorKafkaService(fmt.Sprintf("m%d", i))
		id := ClusterID(name)
		if len(id) != 22 || id[0] == '-' {
			t.Fatalf("ClusterID(%q) = %q", name, id)
		}
		sum := sha256.Sum256([]byte("minibroker/" + name))
		first, ok := kafkaconf.ClusterID([16]byte(sum[:16]))
		switch {
		case !ok:
			rehashed++
		case id != first:
			t.Errorf("ClusterID(%q) = %q, want the first hash's %q", name, id, first)
		}
	}
	if rehashed == 0 {
		t.Fatal("no name in the sample needed a second hash: the test checks nothing")
	}
	t.Logf("%d of 1000 mirror names needed a second hash", rehashed)
}

// TestBrokersKeepTheirData: the hub and each mirror Kafka mount a named
// local volume of their own, labelled with their owner, at the log
// directory the broker writes (log.dirs, KRaft metadata included); nothing
// else mounts one.
func TestBrokersKeepTheirData(t *testing.T) {
	mirror := MirrorSpecs(Mirror{Name: "m2", NodeIndex: 3, Kafka: hub()})
	brokers := map[string]Desired{OwnerSwarm: HubSpec(hub()), MirrorOwner("m2"): mirror[0]}
	for owner, d := range brokers {
		mounts := d.Spec.TaskTemplate.ContainerSpec.Mounts
		if len(mounts) != 1 {
			t.Fatalf("%s: mounts %+v, want one volume", d.Name(), mounts)
		}
		m := mounts[0]
		if m.Type != mount.TypeVolume || m.Source != DataVolume(d.Name()) || m.Target != kafkaDataDir || m.ReadOnly {
			t.Errorf("%s: mount %+v, want volume %s at %s", d.Name(), m, DataVolume(d.Name()), kafkaDataDir)
		}
		if m.VolumeOptions == nil || m.VolumeOptions.NoCopy || m.VolumeOptions.DriverConfig != nil {
			t.Errorf("%s: volume options %+v: want the local driver, filled from the image (its ownership)", d.Name(), m.VolumeOptions)
		} else if l := m.VolumeOptions.Labels; l[LabelManaged] != "true" || l[LabelOwner] != owner {
			t.Errorf("%s: volume labels %v, want managed and owner %s", d.Name(), l, owner)
		}
		if !strings.Contains(configData(t, d, ConfigDir+"/server.properties"), "log.dirs="+kafkaDataDir+"\n") {
			t.Errorf("%s: log.dirs is not the volume's directory", d.Name())
		}
	}
	if DataVolume(HubService) != "mb-hub-data" || DataVolume(MirrorKafkaService("m2")) != "mb-mirror-m2-data" {
		t.Errorf("volume names %s, %s", DataVolume(HubService), DataVolume(MirrorKafkaService("m2")))
	}
	volumeName := regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`) // Docker's
	if n := DataVolume(MirrorKafkaService(strings.Repeat("m", MaxMirrorNameLen))); !volumeName.MatchString(n) {
		t.Errorf("volume name %q is not one Docker takes", n)
	}

	others := []Desired{mirror[1], ProducerSpec(Producer{Image: "w:1", Network: "net"})}
	for _, mode := range []string{ModeIsolated, ModeShared} {
		ds, err := FilterGroupSpecs(group(mode))
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, ds...)
	}
	for _, d := range others {
		if m := d.Spec.TaskTemplate.ContainerSpec.Mounts; len(m) > 0 {
			t.Errorf("%s mounts %+v; only brokers keep data", d.Name(), m)
		}
	}

	// The mount is part of what a task runs: a deployment from before it
	// sees one update, which gives its broker the volume.
	noVolume := HubSpec(hub())
	noVolume.Spec.TaskTemplate.ContainerSpec.Mounts = nil
	if TaskHash(noVolume.Spec.TaskTemplate, noVolume.Configs) == TaskHash(brokers[OwnerSwarm].Spec.TaskTemplate, brokers[OwnerSwarm].Configs) ||
		Hash(noVolume.Spec, noVolume.Configs) == brokers[OwnerSwarm].Spec.Labels[LabelSpecHash] {
		t.Error("the hashes do not follow the mount")
	}
}
