package swarmspec

import (
	"fmt"
	"math"

	"github.com/docker/docker/api/types/swarm"
)

// Resources are the CPU and memory of a service's tasks. Limits are what
// Docker enforces on the container: its CPU time is throttled at CPUs, and
// it is killed (exit 137) when its memory, page cache of the files it
// writes included (cgroup v2), cannot be brought back under MemoryMB. The
// reservations are what Swarm's scheduler counts: a node takes a task only
// while the reservations of its tasks fit in the node's CPUs and memory,
// and a task that fits nowhere stays pending ("insufficient resources").
// They give the container nothing by themselves.
//
// A zero field takes the service's default (DefaultResources, and for a
// JVM's memory limit JVMMemoryMB).
type Resources struct {
	CPUs            float64 // limit, in CPUs (docker service create --limit-cpu)
	MemoryMB        int     // limit, in MiB (--limit-memory)
	ReserveCPUs     float64 // reservation, in CPUs (--reserve-cpu)
	ReserveMemoryMB int     // reservation, in MiB (--reserve-memory)
}

// The defaults below were chosen against two constraints:
//
//   - Limits of at most 2 CPUs: Docker refuses a container whose CPU limit
//     exceeds its node's CPUs, and the lab's nodes, like an m5.large, have 2.
//     On a 2-CPU node a 2-CPU limit throttles nothing; on a larger one it
//     keeps one runaway from taking the node.
//   - Reservations that leave the densest node schedulable with margin. The
//     densest in the benchmarks and examples is a filter node with a mirror
//     Kafka, its MirrorMaker 2 and 100 isolated filters (or a consumer node
//     with 100 consumers), on a lab node that reports the machine's 2 CPUs
//     and 23.5 GiB: 0.25+0.1+100×0.005 = 0.85 CPUs and 1024+512+100×64 MiB =
//     7.75 GiB are reserved there, a third of the node
//     (TestDensestNodeSchedules); a consumer node with 100 consumers
//     reserves 0.5 CPUs and 3.1 GiB.
//
// Use was measured with real Kafka 4.3.1 (internal/testbed/kafkabed) and
// the minibroker binary as separate processes, 6 visits of 10,000 alerts
// of 80 KB, heaps at their defaults: peak resident memory and CPU in 2 s
// samples, figures in docs/benchmarks-settings.md.
var (
	// HubResources: the hub Kafka has the manager node to itself. Its limit
	// is JVMMemoryMB of its heap plus KafkaPageCacheMB.
	HubResources = Resources{CPUs: 2, ReserveCPUs: 0.5, ReserveMemoryMB: 1024}
	// MirrorKafkaResources: the mirror Kafka, which every filter of its node
	// reads; its limit as the hub's.
	MirrorKafkaResources = Resources{CPUs: 2, ReserveCPUs: 0.25, ReserveMemoryMB: 1024}
	// MirrorMakerResources: MirrorMaker 2 copies the stream with under half
	// a core (0.44 at most); capped at one, it leaves the mirror Kafka the
	// other.
	MirrorMakerResources = Resources{CPUs: 1, ReserveCPUs: 0.1, ReserveMemoryMB: 512}
	// ProducerResources: the producer keeps a visit in librdkafka's queue
	// until the hub acknowledges it (978 MiB at most for 10,000 alerts of
	// 80 KB), and the queue may hold up to 2 GiB (queue.buffering.max.kbytes
	// in workloads/kclient) when the hub falls behind: 3 GiB holds that.
	ProducerResources = Resources{CPUs: 2, MemoryMB: 3072, ReserveCPUs: 0.25, ReserveMemoryMB: 1024}
	// IngestResources: the upstream relay takes the producer's node and
	// writes to the hub with the same client settings, so its queue may
	// hold as much: the producer's figures (not measured on their own).
	// The swarm's resources.producer sets either.
	IngestResources = ProducerResources
	// FilterResources: one filter (isolated: 146 MiB and 0.18 of a core at
	// most) or a shared process of many (100 filters, 10 of them reading
	// cutouts: 277 MiB and 0.25 of a core). The 1 GiB limit leaves room for a
	// larger filters file and cutout-heavy expressions; the reservations are
	// small because a node may run 100 isolated filters.
	FilterResources = Resources{CPUs: 1, MemoryMB: 1024, ReserveCPUs: 0.005, ReserveMemoryMB: 64}
	// ConsumerResources: a consumer holds a little read-ahead and writes one
	// line per alert (40 MiB, 0.01 of a core, with the default cap of 20
	// alerts a visit; an uncapped filter passes it more).
	ConsumerResources = Resources{CPUs: 1, MemoryMB: 256, ReserveCPUs: 0.005, ReserveMemoryMB: 32}
	// AccessResources: the one-shot job that applies an access plan (one
	// admin client per cluster, for seconds).
	AccessResources = Resources{CPUs: 0.5, MemoryMB: 128, ReserveCPUs: 0.005, ReserveMemoryMB: 16}
)

// JVM memory: a Kafka broker's or MirrorMaker 2's limit follows its heap.
const (
	// JVMOffHeapMB is what a JVM takes beyond its heap: metaspace, code
	// cache, thread stacks, GC structures and NIO's per-thread direct
	// buffers, which grow with the largest request (16 MiB batches here).
	// MirrorMaker 2 with a 512 MiB heap peaked at 717 MiB, so over 200 MiB;
	// the rest is headroom.
	JVMOffHeapMB = 1024
	// KafkaPageCacheMB is room for a broker's page cache: the kernel
	// charges the log segments a broker writes to its container and, at the
	// limit, evicts them, after which readers lagging behind (MirrorMaker 2
	// on the hub, isolated filters on a mirror) read them from disk. Two
	// visits of 80 KB alerts are 1.6 GB.
	KafkaPageCacheMB = 2048
	// MinJVMOffHeapMB is the least a memory limit may leave beyond the heap;
	// below it a JVM is killed as soon as its heap fills.
	MinJVMOffHeapMB = 256
)

// JVMMemoryMB is the default memory limit of a JVM with the given heap:
// the heap, JVMOffHeapMB and, for a broker, KafkaPageCacheMB.
func JVMMemoryMB(heapMB int, broker bool) int {
	if broker {
		return heapMB + JVMOffHeapMB + KafkaPageCacheMB
	}
	return heapMB + JVMOffHeapMB
}

// DefaultResources returns the default resources of a component's tasks
// (one of the Component* values). A JVM's memory limit is left at zero:
// it follows the heap (JVMMemoryMB).
func DefaultResources(component string) Resources {
	switch component {
	case ComponentHub:
		return HubResources
	case ComponentMirrorKafka:
		return MirrorKafkaResources
	case ComponentMirrorMaker:
		return MirrorMakerResources
	case ComponentProducer:
		return ProducerResources
	case ComponentIngest:
		return IngestResources
	case ComponentFilter, ComponentFilters:
		return FilterResources
	case ComponentConsumer:
		return ConsumerResources
	case ComponentAccess:
		return AccessResources
	}
	return Resources{}
}

// Or returns r with its zero fields taken from def.
func (r Resources) Or(def Resources) Resources {
	if r.CPUs == 0 {
		r.CPUs = def.CPUs
	}
	if r.MemoryMB == 0 {
		r.MemoryMB = def.MemoryMB
	}
	if r.ReserveCPUs == 0 {
		r.ReserveCPUs = def.ReserveCPUs
	}
	if r.ReserveMemoryMB == 0 {
		r.ReserveMemoryMB = def.ReserveMemoryMB
	}
	return r
}

// Check refuses a reservation above its limit: Swarm would set aside for
// the task more than Docker lets it use. Zero fields are not checked.
func (r Resources) Check() error {
	if r.CPUs > 0 && r.ReserveCPUs > r.CPUs {
		return fmt.Errorf("a reservation of %g CPUs is above the limit of %g", r.ReserveCPUs, r.CPUs)
	}
	if r.MemoryMB > 0 && r.ReserveMemoryMB > r.MemoryMB {
		return fmt.Errorf("a reservation of %d MiB is above the memory limit of %d MiB", r.ReserveMemoryMB, r.MemoryMB)
	}
	return nil
}

// CheckJVMMemory refuses a memory limit that leaves a JVM with the given
// heap less than MinJVMOffHeapMB beyond it.
func CheckJVMMemory(limitMB, heapMB int) error {
	if limitMB < heapMB+MinJVMOffHeapMB {
		return fmt.Errorf("a memory limit of %d MiB leaves a JVM heap of %d MiB less than the %d MiB it needs beyond the heap "+
			"(measured: about 200 MiB); Docker would kill the process once its heap fills. Default: %d MiB for a broker, %d MiB for MirrorMaker 2",
			limitMB, heapMB, MinJVMOffHeapMB, JVMMemoryMB(heapMB, true), JVMMemoryMB(heapMB, false))
	}
	return nil
}

// jvmResources is r with the defaults of component and a memory limit
// that follows the heap.
func jvmResources(r Resources, component string, heapMB int) Resources {
	def := DefaultResources(component)
	def.MemoryMB = JVMMemoryMB(heapMB, component != ComponentMirrorMaker)
	return r.Or(def)
}

// requirements is r as a task's resource requirements. A field still zero
// sets nothing.
func (r Resources) requirements() *swarm.ResourceRequirements {
	return &swarm.ResourceRequirements{
		Limits:       &swarm.Limit{NanoCPUs: nanoCPUs(r.CPUs), MemoryBytes: mib(r.MemoryMB)},
		Reservations: &swarm.Resources{NanoCPUs: nanoCPUs(r.ReserveCPUs), MemoryBytes: mib(r.ReserveMemoryMB)},
	}
}

func nanoCPUs(cpus float64) int64 { return int64(math.Round(cpus * 1e9)) }

func mib(mb int) int64 { return int64(mb) << 20 }
