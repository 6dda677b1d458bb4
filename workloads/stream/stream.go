// Package stream declares what every workload, the provider and the tests
// agree on about the alert stream: topic names, Kafka headers, consumer
// group names and the cadence of visits. It has no dependencies, so the
// provider (which must not link the Kafka client) imports it too.
package stream

import "time"

// Topics.
const (
	// AlertsTopic carries the full alert stream: on the hub, copied to
	// every mirror.
	AlertsTopic = "alerts"
	// SchemasTopic is the compacted topic of the alerts' Avro schemas, by
	// schema id, copied to every mirror with the stream.
	SchemasTopic = "minibroker-schemas"
	// TimingTopic, on the hub, collects the timing events of the producer,
	// filters and consumers.
	TimingTopic = "minibroker-timing"
	// DefaultPartitions is the partition count of topics the mini-broker
	// creates, and its brokers' num.partitions.
	DefaultPartitions = 4
)

// Visits, as the original deployment: one Rubin visit of 10,000 alerts
// every 39 s, sent by one sender from seed 1.
const (
	DefaultAlertsPerVisit = 10000
	DefaultInterval       = 39 * time.Second
	DefaultParallel       = 1
	DefaultSeed           = 1
)

// Kafka headers the workloads put on messages. Alerts carry their place in
// the stream, so that a filter knows when it has read a whole visit;
// filtered alerts carry their rank, so that a consumer knows which one is
// the 20th.
const (
	HeaderRun   = "mb-run"    // producer run id
	HeaderVisit = "mb-visit"  // visit id
	HeaderIndex = "mb-index"  // index of the alert in its visit, from 0
	HeaderCount = "mb-count"  // number of alerts in the visit
	HeaderRank  = "mb-rank"   // filtered alerts: 1-based rank within the visit
	HeaderID    = "mb-id"     // filtered alerts: the alert's id
	HeaderFrom  = "mb-filter" // filtered alerts: the filter that selected it
	HeaderError = "mb-error"  // dead letters: why the alert could not be decoded
	// Dead letters: where the alert was read (topic, partition) and at
	// which offset.
	HeaderSource       = "mb-source"
	HeaderSourceOffset = "mb-source-offset"
)

// DeadLetterTopic is where the filter process name copies the alerts it
// cannot decode.
func DeadLetterTopic(name string) string { return name + "-deadletter" }

// FilterStateTopic is where the filter process name keeps, in the same
// transactions as its output and its input offsets, what it must remember
// across restarts: open visits' tallies, per-visit cap counts, recently
// completed visits. It is compacted and has one partition.
func FilterStateTopic(name string) string { return name + "-state" }

// FilterTransactionalID is the transactional.id of the filter process
// whose consumer group is group: stable across restarts, so that a
// restarted process fences its predecessor and aborts what it left open.
func FilterTransactionalID(group string) string { return group }

// Upstream ingest (`minibroker ingest`): one relay per hub copies an
// upstream alert stream into AlertsTopic, exactly once, keeping in the
// same transactions, in IngestStateTopic (compacted, one partition), the
// upstream offsets it has copied up to.
const (
	IngestTransactionalID = "minibroker-ingest"
	IngestStateTopic      = "minibroker-ingest-state"
	// IngestGroup is the relay's group.id on the upstream cluster. The
	// relay assigns the upstream partitions itself and commits nothing
	// there, so the upstream need not grant it any group.
	IngestGroup = "minibroker-ingest"
)

// DefaultVisitQuiet is how long a filter waits, after the last alert of a
// visit whose alerts carry no mb-* headers (an upstream stream), before
// it closes the visit when no later visit's alert has closed it first. It
// must outlast any pause inside a visit, a restart of the relay included
// (Swarm starts it again after 5 s; it resumes within seconds): a visit
// closed early counts its later alerts as late. In a steady stream the
// next visit closes a visit long before; the quiet time closes the last
// one of a night.
const DefaultVisitQuiet = 30 * time.Second

// Consumer groups. A group id is where Kafka keeps a reader's offsets, so
// these names must not change between versions.
func FilterGroup(name string) string        { return "minibroker-filter-" + name }
func SharedFiltersGroup(name string) string { return "minibroker-filters-" + name }
func ConsumerGroup(name string) string      { return "minibroker-consumer-" + name }
func MirrorGroup(name string) string        { return "minibroker-mirror-" + name } // the in-process mirror of `minibroker local`

// ReaderGroup is the group of readers that read a topic to its end and
// commit nothing (schemas, timing events).
const ReaderGroup = "minibroker-reader"

// OffsetsTopic is Kafka's topic of consumer-group offsets, where a
// transaction's offset commit is written.
const OffsetsTopic = "__consumer_offsets"

// Topic names the mini-broker keeps for itself, on the hub and on every
// mirror: a filter may not write to them. Reserved is the one list; the
// provider refuses them at plan and `minibroker filter` before it dials.
var (
	reservedTopics = map[string]string{
		AlertsTopic:      "the full alert stream",
		SchemasTopic:     "the schema registry's topic",
		TimingTopic:      "the timing events",
		IngestStateTopic: "the upstream relay's state",
		// MirrorMaker 2 writes heartbeats on every cluster it reaches when
		// emit.heartbeats.enabled is set (mirror_maker_properties can).
		"heartbeats": "MirrorMaker 2's heartbeats topic",
	}
	reservedPrefixes = map[string]string{
		"__": "Kafka's internal topics (__consumer_offsets, __transaction_state, ...)",
	}
	reservedSuffixes = map[string]string{
		DeadLetterTopic(""):  "a filter process's dead letters (NAME" + DeadLetterTopic("") + ")",
		FilterStateTopic(""): "a filter process's state (NAME" + FilterStateTopic("") + ")",
		".internal":          "MirrorMaker 2's and Kafka Connect's internal topics (mm2-offsets.hub.internal, ...)",
	}
)

// Reserved reports whether topic is one the mini-broker uses for itself,
// and what for: the stream's topics (AlertsTopic, SchemasTopic,
// TimingTopic, IngestStateTopic), Kafka's internal topics (`__*`), the
// dead-letter and state topics of filter processes (`*-deadletter`,
// `*-state`, whatever the process's name, so that no filter writes into
// another's) and MirrorMaker 2's (`heartbeats`, `*.internal`).
func Reserved(topic string) (why string, reserved bool) {
	if why, ok := reservedTopics[topic]; ok {
		return why, true
	}
	for p, why := range reservedPrefixes {
		if len(topic) >= len(p) && topic[:len(p)] == p {
			return why, true
		}
	}
	for s, why := range reservedSuffixes {
		if len(topic) >= len(s) && topic[len(topic)-len(s):] == s {
			return why, true
		}
	}
	return "", false
}

// TopicCollisionKey is the form in which Kafka compares topic names for
// collisions: '.' and '_' are the same in its metric names, so it refuses
// to create a topic whose name differs from an existing one's only there.
func TopicCollisionKey(topic string) string {
	b := []byte(topic)
	for i, c := range b {
		if c == '.' {
			b[i] = '_'
		}
	}
	return string(b)
}
