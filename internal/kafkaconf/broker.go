package kafkaconf

import (
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Broker defaults. Ports are Kafka's conventional ones; the test bed always
// overrides them with free loopback ports.
const (
	DefaultNodeID          = 1
	DefaultListenerPort    = 9092
	DefaultControllerPort  = 9093
	DefaultInterBrokerPort = 9094
	DefaultControllerHost  = "127.0.0.1"
	DefaultLogDirs         = "/var/lib/kafka/data"
	DefaultNumPartitions   = 1
	// DefaultOffsetsTopicPartitions replaces Kafka's 50 partitions for
	// __consumer_offsets: a single-node broker gains nothing from 50, and
	// creating them slows down the first consumer-group join noticeably.
	DefaultOffsetsTopicPartitions = 8
	// DefaultSocketBufferBytes is used for both send and receive socket
	// buffers (Kafka default: 100 KiB send / 100 KiB receive), sized so a
	// multi-MB batch of ~80 KB alerts moves in few round trips.
	DefaultSocketBufferBytes = 1 * MiB
)

// BrokerOptions describes one single-node KRaft Kafka server that acts as both
// broker and controller (process.roles=broker,controller). Zero values mean
// "use the default" documented on each field.
type BrokerOptions struct {
	// NodeID is node.id and the id of the single quorum voter. Default 1.
	NodeID int
	// ListenerHost is the interface the PLAINTEXT (client) listener binds to.
	// Default "" binds all interfaces, as a container needs.
	ListenerHost string
	// ListenerPort is the PLAINTEXT listener port. Default 9092.
	ListenerPort int
	// AdvertisedHost is the host name clients are told to connect to.
	// Default: ListenerHost when that is a concrete address, else "localhost".
	AdvertisedHost string
	// AdvertisedPort is the port clients are told to connect to (differs from
	// ListenerPort behind a published/NATed port). Default ListenerPort.
	AdvertisedPort int
	// ControllerHost is where the CONTROLLER listener binds and where the
	// node finds its own quorum voter. Only the node itself talks to it, so
	// the default is loopback, 127.0.0.1.
	ControllerHost string
	// ControllerPort is the CONTROLLER listener port. Default 9093.
	ControllerPort int
	// InterBrokerPort is the port of the BROKER listener, the one this
	// broker uses to reach itself as a broker (transaction markers above
	// all). It binds and is advertised at ControllerHost: the broker is
	// alone, and its traffic to itself must not depend on the name clients
	// use, which Swarm resolves only while the task is running. Default 9094.
	InterBrokerPort int
	// LogDirs is log.dirs, comma-separated. Default /var/lib/kafka/data.
	LogDirs string
	// MessageMaxBytes bounds a record batch (message.max.bytes) and the
	// replica fetch size. Default DefaultMessageMaxBytes (16 MiB).
	MessageMaxBytes int
	// NumPartitions is num.partitions for auto-created topics. Default 1.
	NumPartitions int
	// Security, when set, requires SASL/SCRAM-SHA-512 (and TLS where it
	// says) on every client listener and turns on the authorizer; nil
	// leaves one PLAINTEXT client listener open to anyone who reaches it.
	// Callers check it with BrokerSecurity.Check.
	Security *BrokerSecurity
	// Overrides are applied last and win over everything above.
	Overrides map[string]string
}

// withDefaults returns a copy of o with every zero field filled in.
func (o BrokerOptions) withDefaults() BrokerOptions {
	if o.NodeID == 0 {
		o.NodeID = DefaultNodeID
	}
	if o.ListenerPort == 0 {
		o.ListenerPort = DefaultListenerPort
	}
	if o.AdvertisedHost == "" {
		o.AdvertisedHost = o.ListenerHost
		if o.AdvertisedHost == "" || o.AdvertisedHost == "0.0.0.0" || o.AdvertisedHost == "::" {
			o.AdvertisedHost = "localhost"
		}
	}
	if o.AdvertisedPort == 0 {
		o.AdvertisedPort = o.ListenerPort
	}
	if o.ControllerHost == "" {
		o.ControllerHost = DefaultControllerHost
	}
	if o.ControllerPort == 0 {
		o.ControllerPort = DefaultControllerPort
	}
	if o.InterBrokerPort == 0 {
		o.InterBrokerPort = DefaultInterBrokerPort
	}
	if o.LogDirs == "" {
		o.LogDirs = DefaultLogDirs
	}
	if o.MessageMaxBytes == 0 {
		o.MessageMaxBytes = DefaultMessageMaxBytes
	}
	if o.NumPartitions == 0 {
		o.NumPartitions = DefaultNumPartitions
	}
	return o
}

// BrokerProperties renders server.properties for a single-node combined
// broker+controller in KRaft mode (no ZooKeeper).
//
// The quorum is static (controller.quorum.voters), so the storage directory is
// formatted with a plain `kafka-storage format -t <cluster-id> -c <file>`, the
// same command the apache/kafka image runs on first start; see FormatArgs.
func BrokerProperties(o BrokerOptions) string {
	o = o.withDefaults()
	ctrl := hostPort(o.ControllerHost, o.ControllerPort)
	self := hostPort(o.ControllerHost, o.InterBrokerPort)
	itoa := strconv.Itoa

	p := Properties{
		// KRaft, one process is both roles and the only quorum voter.
		"process.roles":             "broker,controller",
		"node.id":                   itoa(o.NodeID),
		"controller.quorum.voters":  fmt.Sprintf("%d@%s", o.NodeID, ctrl),
		"controller.listener.names": "CONTROLLER",
		// The broker reaches itself on loopback (see InterBrokerPort): a
		// restarted broker whose own client address did not resolve yet
		// once recorded a transaction committed without writing its
		// markers, leaving it open in its partitions for ever.
		"inter.broker.listener.name": "BROKER",
		"listeners": fmt.Sprintf("PLAINTEXT://%s,BROKER://%s,CONTROLLER://%s",
			hostPort(o.ListenerHost, o.ListenerPort), self, ctrl),
		"advertised.listeners": fmt.Sprintf("PLAINTEXT://%s,BROKER://%s",
			hostPort(o.AdvertisedHost, o.AdvertisedPort), self),
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"log.dirs":                       o.LogDirs,

		// One broker: every replication factor and min ISR must be 1, or
		// internal topics (offsets, transactions, share groups) never get
		// created and consumers/transactions hang.
		"default.replication.factor":                       "1",
		"min.insync.replicas":                              "1",
		"offsets.topic.replication.factor":                 "1",
		"offsets.topic.num.partitions":                     itoa(DefaultOffsetsTopicPartitions),
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		"num.partitions":                                   itoa(o.NumPartitions),

		// Consumers join immediately instead of waiting 3 s for more members;
		// this is a latency-sensitive pipeline and groups are small.
		"group.initial.rebalance.delay.ms": "0",

		// Alerts are ~80 KB and producers batch several MB: raise the batch
		// limit and make replica/consumer fetches able to carry such a batch.
		"message.max.bytes":                itoa(o.MessageMaxBytes),
		"replica.fetch.max.bytes":          itoa(o.MessageMaxBytes),
		"replica.fetch.response.max.bytes": itoa(2 * o.MessageMaxBytes),

		"socket.send.buffer.bytes":    itoa(DefaultSocketBufferBytes),
		"socket.receive.buffer.bytes": itoa(DefaultSocketBufferBytes),
		// Must exceed the largest produce request (a full batch plus
		// headers); Kafka's 100 MiB default already does for 16 MiB batches,
		// stated explicitly so raising MessageMaxBytes keeps it consistent.
		"socket.request.max.bytes": itoa(max(100*MiB, 4*o.MessageMaxBytes)),
	}
	if o.Security != nil {
		p.merge(securedListeners(o, self, ctrl))
	}
	p.merge(o.Overrides)
	return p.Render("Kafka KRaft single-node broker+controller.\nGenerated by internal/kafkaconf; do not edit.")
}

// ClusterID encodes 16 bytes as a KRaft cluster id, as
// `kafka-storage random-uuid` prints one (URL-safe base64 without padding,
// 22 characters); ok is false when the id starts with '-', which the
// storage tool would take for an option: draw other bytes then.
func ClusterID(b [16]byte) (id string, ok bool) {
	id = base64.RawURLEncoding.EncodeToString(b[:])
	return id, id[0] != '-'
}

// FormatArgs returns the arguments for Kafka's storage tool (main class
// kafka.tools.StorageTool, script kafka-storage.sh) that format the log
// directories of a node configured by BrokerProperties.
func FormatArgs(clusterID, propertiesPath string) []string {
	return []string{"format", "--cluster-id", clusterID, "--config", propertiesPath, "--ignore-formatted"}
}

// hostPort joins host and port, bracketing IPv6 literals. An empty host yields
// ":port", which Kafka reads as "all interfaces".
func hostPort(host string, port int) string {
	if host == "" {
		return ":" + strconv.Itoa(port)
	}
	if strings.Contains(host, ":") {
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	return host + ":" + strconv.Itoa(port)
}
