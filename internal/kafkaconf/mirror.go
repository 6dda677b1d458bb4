package kafkaconf

import (
	"strconv"

	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// MirrorMaker 2 defaults.
const (
	DefaultSourceAlias = "hub"
	DefaultTargetAlias = "mirror"
	// DefaultMirrorTopics is the regex of topics replicated from the hub: the
	// alert stream and the schemas filters need to decode it. Timing events
	// stay on the hub (filters and consumers write them there directly), and
	// Kafka or MM2 internals are never copied. MM2 anchors the regex
	// (whole-name match).
	DefaultMirrorTopics = stream.AlertsTopic + "|" + stream.SchemasTopic
	// DefaultRefreshTopicsSeconds replaces MM2's 600 s topic-discovery period
	// so a topic created on the hub starts replicating within seconds.
	DefaultRefreshTopicsSeconds = 5
	// IdentityReplicationPolicy keeps topic names unchanged on the target
	// ("alerts" stays "alerts", not "hub.alerts").
	IdentityReplicationPolicy = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
	// MirrorMakerMainClass is the dedicated-mode MirrorMaker 2 entry point
	// (what connect-mirror-maker.sh runs).
	MirrorMakerMainClass = "org.apache.kafka.connect.mirror.MirrorMaker"
)

// MirrorOptions describes one dedicated-mode MirrorMaker 2 process that copies
// topics one way, from SourceAlias to TargetAlias. Zero values mean "use the
// default" documented on each field.
type MirrorOptions struct {
	// SourceAlias names the source cluster in MM2 properties. Default "hub".
	SourceAlias string
	// TargetAlias names the target cluster. Default "mirror".
	TargetAlias string
	// SourceBootstrap and TargetBootstrap are bootstrap.servers lists.
	SourceBootstrap string
	TargetBootstrap string
	// SourceAuth and TargetAuth, when set, are how MirrorMaker 2's clients
	// authenticate to a secured hub and mirror. The rendered file then
	// holds a password: deliver it as a secret.
	SourceAuth, TargetAuth *ClientAuth
	// Topics is the Java regex of source topics to replicate.
	// Default DefaultMirrorTopics.
	Topics string
	// ReplicationFactor is used for replicated topics and for every MM2 and
	// Connect internal topic. Default 1 (single-node clusters).
	ReplicationFactor int
	// RefreshTopicsSeconds is refresh.topics.interval.seconds. Default 5.
	RefreshTopicsSeconds int
	// MessageMaxBytes bounds the mirror producer's requests and the consumer's
	// per-partition fetch. Default DefaultMessageMaxBytes (16 MiB).
	MessageMaxBytes int
	// Overrides are applied last and win over everything above; use the MM2
	// key forms, e.g. "hub->mirror.tasks.max" or "mirror.producer.acks".
	Overrides map[string]string
}

func (o MirrorOptions) withDefaults() MirrorOptions {
	if o.SourceAlias == "" {
		o.SourceAlias = DefaultSourceAlias
	}
	if o.TargetAlias == "" {
		o.TargetAlias = DefaultTargetAlias
	}
	if o.Topics == "" {
		o.Topics = DefaultMirrorTopics
	}
	if o.ReplicationFactor == 0 {
		o.ReplicationFactor = 1
	}
	if o.RefreshTopicsSeconds == 0 {
		o.RefreshTopicsSeconds = DefaultRefreshTopicsSeconds
	}
	if o.MessageMaxBytes == 0 {
		o.MessageMaxBytes = DefaultMessageMaxBytes
	}
	return o
}

// MirrorMakerProperties renders the mm2.properties file for
// `org.apache.kafka.connect.mirror.MirrorMaker` (dedicated mode).
//
// Key forms used, as MirrorMakerConfig interprets them:
//   - "<alias>.x" is a cluster property; "<alias>.producer.x",
//     "<alias>.consumer.x" and "<alias>.admin.x" configure clients talking to
//     that cluster. The target's "producer.*" becomes the Connect worker's
//     producer, which writes the replicated records; the source's
//     "consumer.*" becomes the MirrorSourceTask consumer.
//   - "<source>-><target>.x" is a property of that replication flow.
//   - A few top-level keys (replication.policy.*, *.storage.*, and the
//     connector settings such as replication.factor) apply to every flow.
func MirrorMakerProperties(o MirrorOptions) string {
	o = o.withDefaults()
	src, dst := o.SourceAlias, o.TargetAlias
	flow := src + "->" + dst + "."
	rf := strconv.Itoa(o.ReplicationFactor)
	itoa := strconv.Itoa

	p := Properties{
		"clusters":                 src + "," + dst,
		src + ".bootstrap.servers": o.SourceBootstrap,
		dst + ".bootstrap.servers": o.TargetBootstrap,

		// Exactly one flow. The reverse flow is disabled explicitly; with
		// heartbeats off (below) MM2 then does not even start a herder for it.
		flow + "enabled":                  "true",
		flow + "topics":                   o.Topics,
		dst + "->" + src + ".enabled":     "false",
		"replication.policy.class":        IdentityReplicationPolicy,
		"refresh.topics.interval.seconds": itoa(o.RefreshTopicsSeconds),

		// Replication factors: replicated topics (default 2), MM2's own
		// topics (default 3) and the Connect worker's internal topics
		// (default 3) would all fail on single-node clusters. There is no
		// offset-syncs.topic.* key on purpose: with emit.offset-syncs.enabled
		// false, MirrorSourceConnector rejects any offset-syncs.* setting.
		"replication.factor":                   rf,
		"checkpoints.topic.replication.factor": rf,
		"heartbeats.topic.replication.factor":  rf,
		"offset.storage.replication.factor":    rf,
		"config.storage.replication.factor":    rf,
		"status.storage.replication.factor":    rf,

		// We mirror a stream, not consumer groups: no heartbeats topic, no
		// checkpoints, no group-offset sync and hence no offset-sync topic
		// written back to the hub. This keeps the hub free of MM2 writes.
		// Dedicated mode still submits MirrorCheckpointConnector and logs
		// once, at start-up, that it "can't run with emit.checkpoints.enabled
		// set to false"; that ERROR is expected and harmless.
		"emit.heartbeats.enabled":    "false",
		"emit.checkpoints.enabled":   "false",
		"sync.group.offsets.enabled": "false",
		"refresh.groups.enabled":     "false",
		"emit.offset-syncs.enabled":  "false",
		// ACLs are the provider's: each cluster has its own principals, so
		// copying the hub's ACLs to a mirror would be wrong. Topic-config sync stays
		// on (default): it creates mirrored topics with the source's configs,
		// so the compacted minibroker-schemas stays compacted.
		"sync.topic.acls.enabled": "false",

		// Source consumer (MirrorSourceTask): fetch whole multi-MB batches of
		// ~80 KB alerts and return as soon as data is there (default waits up
		// to 500 ms for fetch.min.bytes).
		src + ".consumer.max.partition.fetch.bytes": itoa(o.MessageMaxBytes),
		src + ".consumer.fetch.max.bytes":           itoa(4 * o.MessageMaxBytes),
		src + ".consumer.fetch.max.wait.ms":         "10",
		src + ".consumer.receive.buffer.bytes":      itoa(DefaultSocketBufferBytes),
		// The upstream relay (minibroker ingest) writes the hub's alerts in
		// transactions, and Java's consumer reads uncommitted records by
		// default: a relay killed mid-transaction would have its aborted
		// alerts copied to every mirror, and then again once it commits
		// them. Copy only what committed.
		src + ".consumer.isolation.level": "read_committed",

		// Target producer (Connect worker producer): small linger for low
		// latency, large batches for throughput, requests as large as the
		// brokers' message.max.bytes.
		dst + ".producer.linger.ms":         "5",
		dst + ".producer.batch.size":        itoa(2 * MiB),
		dst + ".producer.max.request.size":  itoa(o.MessageMaxBytes),
		dst + ".producer.buffer.memory":     itoa(4 * o.MessageMaxBytes),
		dst + ".producer.send.buffer.bytes": itoa(DefaultSocketBufferBytes),

		// Connect worker settings for the flow's herder (taken from the
		// target cluster's properties in dedicated mode). Commit source
		// offsets every 5 s (default 60 s) so a restart re-sends little, and
		// reassign a departed worker's tasks at once rather than holding them
		// up to 5 minutes for it to return: with a single MM2 node nobody
		// else will take them, and a restarted node could wait that long.
		dst + ".offset.flush.interval.ms":         "5000",
		dst + ".scheduled.rebalance.max.delay.ms": "0",

		// Every Connect plugin in the Kafka distribution has a ServiceLoader
		// manifest; skipping the reflective classpath scan (once for the
		// top-level config, once for the flow's worker) saves seconds of
		// start-up (docs/benchmarks-settings.md).
		"plugin.discovery":        "service_load",
		dst + ".plugin.discovery": "service_load",
	}
	for alias, auth := range map[string]*ClientAuth{src: o.SourceAuth, dst: o.TargetAuth} {
		if auth == nil {
			continue
		}
		// A cluster property applies to every client MM2 opens on that
		// cluster (consumer, producer, admin, the Connect worker's own).
		for k, v := range JavaClientProperties(*auth) {
			p[alias+"."+k] = v
		}
	}
	p.merge(o.Overrides)
	return p.Render("MirrorMaker 2 (dedicated mode), " + src + " -> " + dst + ".\nGenerated by internal/kafkaconf; do not edit.")
}
