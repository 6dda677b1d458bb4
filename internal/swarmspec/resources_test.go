package swarmspec

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// allServices is one of every service the provider deploys, defaults
// throughout; a finite producer among them.
func allServices(t *testing.T) []Desired {
	t.Helper()
	out := []Desired{HubSpec(hub()), ProducerSpec(Producer{Image: "w:1", Network: "net", Visits: 3}),
		IngestSpec(Ingest{Image: "w:1", Network: "net", Upstream: Upstream{Bootstrap: "up:9092", Topic: "alerts", RegistryURL: "http://up:8081"}})}
	out = append(out, MirrorSpecs(Mirror{Name: "m1", NodeIndex: 1, Kafka: hub()})...)
	for _, mode := range []string{ModeIsolated, ModeShared} {
		ds, err := FilterGroupSpecs(group(mode))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ds...)
	}
	return out
}

// resourcesOf reads a task's requirements back as Resources.
func resourcesOf(t *testing.T, d Desired) Resources {
	t.Helper()
	r := d.Spec.TaskTemplate.Resources
	if r == nil || r.Limits == nil || r.Reservations == nil {
		t.Fatalf("%s: resources %+v, want limits and reservations", d.Name(), r)
	}
	return Resources{CPUs: float64(r.Limits.NanoCPUs) / 1e9, MemoryMB: int(r.Limits.MemoryBytes >> 20),
		ReserveCPUs: float64(r.Reservations.NanoCPUs) / 1e9, ReserveMemoryMB: int(r.Reservations.MemoryBytes >> 20)}
}

func TestEveryServiceHasLimitsAndReservations(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range allServices(t) {
		component := d.Spec.Labels[LabelComponent]
		seen[component] = true
		got := resourcesOf(t, d)
		want := DefaultResources(component)
		switch component {
		case ComponentHub, ComponentMirrorKafka:
			want.MemoryMB = hub().HeapMB + JVMOffHeapMB + KafkaPageCacheMB
		case ComponentMirrorMaker:
			want.MemoryMB = DefaultMirrorMakerHeapMB + JVMOffHeapMB
		}
		if got != want {
			t.Errorf("%s (%s): %+v, want %+v", d.Name(), component, got, want)
		}
		if got.CPUs <= 0 || got.CPUs > 2 || got.MemoryMB <= 0 || got.ReserveCPUs <= 0 || got.ReserveMemoryMB <= 0 {
			t.Errorf("%s: %+v: want positive values and at most 2 CPUs (Docker refuses more than a node has)", d.Name(), got)
		}
		if got.ReserveCPUs > got.CPUs || got.ReserveMemoryMB > got.MemoryMB {
			t.Errorf("%s: %+v reserves more than its limit", d.Name(), got)
		}
		// Swarm refuses less than 0.001 CPUs or 4 MiB; Docker a memory
		// limit under 6 MiB.
		if got.ReserveCPUs < 0.001 || got.ReserveMemoryMB < 4 || got.MemoryMB < 6 {
			t.Errorf("%s: %+v is below what Docker accepts", d.Name(), got)
		}
	}
	for _, c := range []string{ComponentHub, ComponentProducer, ComponentIngest, ComponentMirrorKafka, ComponentMirrorMaker,
		ComponentFilter, ComponentFilters, ComponentConsumer} {
		if !seen[c] {
			t.Errorf("no %s service checked", c)
		}
	}
	// The JVMs' limits leave their heaps comfortable room.
	for _, heap := range []int{128, DefaultKafkaHeapMB, 8192} {
		if JVMMemoryMB(heap, false) < heap+MinJVMOffHeapMB || JVMMemoryMB(heap, true) < JVMMemoryMB(heap, false)+1024 {
			t.Errorf("heap %d: limits %d (MirrorMaker 2), %d (broker)", heap, JVMMemoryMB(heap, false), JVMMemoryMB(heap, true))
		}
	}
}

func TestRestartPolicies(t *testing.T) {
	for _, d := range append(allServices(t), ProducerSpec(Producer{Image: "w:1", Network: "net"})) {
		p := d.Spec.TaskTemplate.RestartPolicy
		want := swarm.RestartPolicyConditionAny
		if d.Name() == ProducerService && strings.Contains(strings.Join(d.Spec.TaskTemplate.ContainerSpec.Args, " "), "--visits 3") {
			want = swarm.RestartPolicyConditionOnFailure // it ends when its visits are sent
		}
		if p == nil || p.Condition != want || p.Delay == nil || *p.Delay != 5*time.Second ||
			p.MaxAttempts == nil || *p.MaxAttempts != 0 || p.Window == nil || *p.Window != 0 {
			t.Errorf("%s: restart policy %s, want %s after 5s, never giving up", d.Name(), fmtPolicy(p), want)
		}
	}
}

func fmtPolicy(p *swarm.RestartPolicy) string {
	if p == nil {
		return "nil"
	}
	s := string(p.Condition)
	if p.Delay != nil {
		s += fmt.Sprintf(" delay %s", *p.Delay)
	}
	if p.MaxAttempts != nil {
		s += fmt.Sprintf(" attempts %d", *p.MaxAttempts)
	}
	if p.Window != nil {
		s += fmt.Sprintf(" window %s", *p.Window)
	}
	return s
}

func TestResourcesOverride(t *testing.T) {
	k := hub()
	k.HeapMB = 3000
	k.Resources = Resources{CPUs: 1.5, ReserveMemoryMB: 2048}
	if got, want := resourcesOf(t, HubSpec(k)), (Resources{CPUs: 1.5, MemoryMB: 3000 + JVMOffHeapMB + KafkaPageCacheMB,
		ReserveCPUs: HubResources.ReserveCPUs, ReserveMemoryMB: 2048}); got != want {
		t.Errorf("hub: %+v, want %+v (unset fields from the defaults, the limit from the heap)", got, want)
	}
	k.Resources.MemoryMB = 5000
	if got := resourcesOf(t, HubSpec(k)); got.MemoryMB != 5000 {
		t.Errorf("hub: memory limit %d, want the 5000 given", got.MemoryMB)
	}

	m := MirrorSpecs(Mirror{Name: "m1", Kafka: hub(), MirrorMakerHeapMB: 700,
		MirrorMakerResources: Resources{ReserveCPUs: 0.3}})
	if got, want := resourcesOf(t, m[1]), (Resources{CPUs: MirrorMakerResources.CPUs, MemoryMB: 700 + JVMOffHeapMB,
		ReserveCPUs: 0.3, ReserveMemoryMB: MirrorMakerResources.ReserveMemoryMB}); got != want {
		t.Errorf("MirrorMaker 2: %+v, want %+v", got, want)
	}
	if got := resourcesOf(t, m[0]); got.ReserveCPUs != MirrorKafkaResources.ReserveCPUs {
		t.Errorf("the mirror Kafka took MirrorMaker 2's reservation: %+v", got)
	}

	p := Resources{CPUs: 0.75, MemoryMB: 4096, ReserveCPUs: 0.5, ReserveMemoryMB: 2048}
	if got := resourcesOf(t, ProducerSpec(Producer{Image: "w:1", Resources: p})); got != p {
		t.Errorf("producer: %+v, want %+v", got, p)
	}

	for _, mode := range []string{ModeIsolated, ModeShared} {
		g := group(mode)
		g.FilterResources = Resources{CPUs: 0.25, MemoryMB: 300, ReserveCPUs: 0.01, ReserveMemoryMB: 100}
		g.ConsumerResources = Resources{MemoryMB: 128}
		ds, err := FilterGroupSpecs(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			want := g.FilterResources
			if d.Spec.Labels[LabelComponent] == ComponentConsumer {
				want = ConsumerResources
				want.MemoryMB = 128
			}
			if got := resourcesOf(t, d); got != want {
				t.Errorf("%s %s: %+v, want %+v", mode, d.Name(), got, want)
			}
		}
	}

	// Resources are part of what a task runs: a change updates the task.
	a, b := HubSpec(hub()), HubSpec(Kafka{Image: "k:1", Network: "net", HeapMB: 512, Partitions: 6, RetentionMinutes: 30,
		Resources: Resources{CPUs: 1}})
	if TaskHash(a.Spec.TaskTemplate, a.Configs) == TaskHash(b.Spec.TaskTemplate, b.Configs) ||
		a.Spec.Labels[LabelSpecHash] == b.Spec.Labels[LabelSpecHash] {
		t.Error("the hashes do not follow the resources")
	}
}

// TestDensestNodeSchedules sums the reservations on the most crowded
// nodes the benchmarks and examples deploy, a filter node with a mirror
// and 100 isolated filters and a consumer node with 100 consumers, against
// a lab node (the machine's 2 CPUs and 23.5 GiB): Swarm leaves a task
// pending when the reservations of a node's tasks would exceed it. Half
// of the node stays free for what else a user places there.
func TestDensestNodeSchedules(t *testing.T) {
	const nodeCPUs, nodeMiB = 2.0, 23.5 * 1024
	g := FilterGroup{Name: "node1", Mode: ModeIsolated, Image: "w:1", Network: "net", Mirror: "node1"}
	for i := range 100 {
		g.Filters = append(g.Filters, Filter{Name: fmt.Sprintf("Filter%03d", i+1), Expression: "true", ConsumerNode: 0})
	}
	ds, err := FilterGroupSpecs(g)
	if err != nil {
		t.Fatal(err)
	}
	ds = append(ds, MirrorSpecs(Mirror{Name: "node1", Kafka: Kafka{Image: "k:1", Network: "net"}})...)
	cpus, mem := map[string]float64{}, map[string]int{}
	for _, d := range ds {
		node := strings.Join(d.Spec.TaskTemplate.Placement.Constraints, ",")
		r := resourcesOf(t, d)
		cpus[node] += r.ReserveCPUs
		mem[node] += r.ReserveMemoryMB
	}
	if len(cpus) != 2 {
		t.Fatalf("nodes %v, want the filter node and one consumer node", cpus)
	}
	for node := range cpus {
		t.Logf("%s: %.2f CPUs, %d MiB reserved", node, cpus[node], mem[node])
		if cpus[node] > nodeCPUs/2 || float64(mem[node]) > nodeMiB/2 {
			t.Errorf("%s reserves %.2f CPUs and %d MiB: more than half of a lab node (%.0f CPUs, %.0f MiB)",
				node, cpus[node], mem[node], nodeCPUs, nodeMiB)
		}
	}
}
