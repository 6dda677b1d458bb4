// Package kclient holds the Kafka client settings the workloads use, and thin
// helpers around confluent-kafka-go for topics, schemas and timing events.
//
// Settings are chosen for alerts of up to ~80 KB. librdkafka's defaults
// (batch.size and max.partition.fetch.bytes of about 1 MB) hold only about a
// dozen such alerts per batch or fetch, so a 10,000-alert visit would need
// hundreds of round trips per partition. The values below, and why:
//
// Producer:
//   - acks=all and enable.idempotence=true: an acknowledged visit is durable on
//     every in-sync replica, and retries neither duplicate nor reorder alerts.
//   - batch.size=4 MiB (about 50 alerts of 80 KB) and linger.ms=5: a visit is a
//     burst, so batches fill at once; the linger only matters for the last batch.
//   - message.max.bytes=16 MiB: the largest request the client builds; topics are
//     created with max.message.bytes=16 MiB to match (see TopicConfig), so the
//     settings hold even on a broker with Kafka's 1 MB default.
//   - go.delivery.report.fields=none: a delivery report carries no copy of the
//     alert back into Go (the client's default copies key and value: 800 MB of
//     garbage per visit of 80 KB alerts).
//   - compression.type=none: cutouts are compressed FITS stamps and do not
//     compress again, while every one of the many filters would pay to
//     decompress every alert. Override with the --compression flag.
//
// Consumer:
//   - max.partition.fetch.bytes=4 MiB and fetch.max.bytes=8 MiB: a fetch
//     carries about a hundred alerts instead of a dozen (a record batch larger
//     than the limit is still returned whole, so progress never stalls).
//   - fetch.wait.max.ms=100 with fetch.min.bytes=1: a fetch is a long poll that
//     the broker answers as soon as any alert arrives, so this bounds only how
//     often an idle consumer asks again. Much lower values cost real broker CPU
//     when a node runs 100 idle consumers (docs/benchmarks-settings.md).
//   - queued.max.messages.kbytes=8 MiB: about 100 alerts of 80 KB read ahead
//     per consumer, plenty for a filter that keeps up, and bounded where a
//     node runs 100 filters: a process's memory grows with the read-ahead
//     of each of its consumers (docs/benchmarks-settings.md).
//   - fetch.queue.backoff.ms=10: when that read-ahead is full, librdkafka waits
//     this long before fetching again; its default of 1 s capped every filter at
//     one read-ahead a second (8 MB/s: 100 s for a visit of 80 KB alerts).
package kclient

import (
	"fmt"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// MaxMessageBytes is the largest batch the clients build and the topics accept.
const MaxMessageBytes = 16 << 20

// ProducerConfig returns the producer settings for alert streams. Overrides,
// given as librdkafka property names, win over the defaults.
func ProducerConfig(bootstrap string, overrides map[string]string) *kafka.ConfigMap {
	cm := &kafka.ConfigMap{
		"bootstrap.servers":            bootstrap,
		"acks":                         "all",
		"enable.idempotence":           true,
		"batch.size":                   4 << 20,
		"linger.ms":                    5,
		"message.max.bytes":            MaxMessageBytes,
		"compression.type":             "none",
		"queue.buffering.max.messages": 1_000_000,
		"queue.buffering.max.kbytes":   2 << 20, // 2 GiB, in KiB
		"enable.metrics.push":          false,
		"go.delivery.report.fields":    "none",
	}
	apply(cm, overrides)
	return cm
}

// TransactionTimeout is transaction.timeout.ms of the transactional
// producers: how long the coordinator lets a transaction stay open before
// aborting it. A process killed mid-transaction holds back read_committed
// readers of its outputs until its successor starts (which aborts the
// transaction at once) or this timeout passes; a transaction is normally
// open for a fraction of a second, so the margin is for a broker restart.
const TransactionTimeout = 30_000 // ms

// TransactionalProducerConfig returns ProducerConfig's settings for a
// producer whose writes commit atomically with the offsets of what it read
// (exactly-once filters). id is the stable transactional.id: a new
// producer with the same id fences the old one and aborts its open
// transaction.
func TransactionalProducerConfig(bootstrap, id string, overrides map[string]string) *kafka.ConfigMap {
	cm := ProducerConfig(bootstrap, nil)
	_ = cm.SetKey("transactional.id", id)
	_ = cm.SetKey("transaction.timeout.ms", TransactionTimeout)
	// Right after a commit the coordinator is still writing its markers and
	// answers the next transaction's first request with
	// CONCURRENT_TRANSACTIONS; librdkafka retries after retry.backoff.ms,
	// 100 ms by default: a transaction would cost at least that.
	_ = cm.SetKey("retry.backoff.ms", 5)
	apply(cm, overrides)
	return cm
}

// TransactionalConsumerConfig returns ConsumerConfig's settings for the
// reader of an exactly-once filter: offsets are never committed by the
// consumer, only in the producer's transactions, and only committed
// transactions are read.
func TransactionalConsumerConfig(bootstrap, group string, fromBeginning bool, overrides map[string]string) *kafka.ConfigMap {
	cm := ConsumerConfig(bootstrap, group, fromBeginning, nil)
	_ = cm.SetKey("enable.auto.commit", false)
	_ = cm.SetKey("enable.auto.offset.store", false)
	apply(cm, overrides)
	return cm
}

// ConsumerConfig returns the consumer settings for a member of group.
// fromBeginning selects where a new group starts reading.
func ConsumerConfig(bootstrap, group string, fromBeginning bool, overrides map[string]string) *kafka.ConfigMap {
	reset := "latest"
	if fromBeginning {
		reset = "earliest"
	}
	cm := &kafka.ConfigMap{
		"bootstrap.servers":          bootstrap,
		"group.id":                   group,
		"auto.offset.reset":          reset,
		"enable.auto.commit":         true,
		"auto.commit.interval.ms":    1000,
		"max.partition.fetch.bytes":  4 << 20,
		"fetch.max.bytes":            8 << 20,
		"receive.message.max.bytes":  MaxMessageBytes + 1<<20,
		"fetch.wait.max.ms":          100,
		"fetch.min.bytes":            1,
		"queued.max.messages.kbytes": 8 << 10, // 8 MiB, in KiB
		"fetch.queue.backoff.ms":     10,
		"allow.auto.create.topics":   false,
		"enable.metrics.push":        false,
		// Filtered streams are written in transactions: read what
		// committed only (librdkafka's default, stated as a contract).
		"isolation.level": "read_committed",
		// A process restarted after a crash gets its partitions once the
		// group has timed its predecessor out: 10 s rather than 45. (Static
		// membership would hand them over at once, but librdkafka makes a
		// static member whose session expired during a broker restart
		// fatally fenced.)
		"session.timeout.ms":    10_000,
		"heartbeat.interval.ms": 2_000,
	}
	apply(cm, overrides)
	return cm
}

// ReaderConfig returns settings for a group-less reader that assigns
// partitions itself (schemas, timing events, tests).
func ReaderConfig(bootstrap string, conn map[string]string) *kafka.ConfigMap {
	cm := ConsumerConfig(bootstrap, stream.ReaderGroup, true, ConnSettings(conn))
	_ = cm.SetKey("enable.auto.commit", false)
	_ = cm.SetKey("enable.auto.offset.store", false)
	return cm
}

// AdminConfig returns settings for an admin client.
func AdminConfig(bootstrap string, conn map[string]string) *kafka.ConfigMap {
	cm := &kafka.ConfigMap{"bootstrap.servers": bootstrap, "enable.metrics.push": false}
	apply(cm, ConnSettings(conn))
	return cm
}

func apply(cm *kafka.ConfigMap, overrides map[string]string) {
	for k, v := range overrides {
		_ = cm.SetKey(k, v)
	}
}

// ParseOverrides turns "key=value" strings (from repeated --kafka flags) into
// a map, refusing malformed entries.
func ParseOverrides(kvs []string) (map[string]string, error) {
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("kafka setting %q: want key=value, e.g. compression.type=lz4", kv)
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}

// ReadProperties reads a librdkafka properties file: key=value lines, with
// blank lines and lines starting with # or ! ignored, as Kafka's own
// .properties files and librdkafka's examples have them. Values keep
// everything after the first '=' (a JAAS line may contain more); Java's
// escapes (\n, \t, \\, \=, ...) are undone, so a PEM certificate fits on
// one line (ssl.ca.pem).
func ReadProperties(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Kafka properties: %w", err)
	}
	return ParseProperties(path, data)
}

// ParseProperties is ReadProperties for data read elsewhere (name says
// where, in errors).
//
// White space around keys and values is trimmed unless escaped: a
// value's leading or trailing space written `\ ` (as kafkaconf writes it)
// is kept.
func ParseProperties(name string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(string(data), "\n") {
		line = trimUnescaped(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := cutUnescaped(line)
		k = trimUnescaped(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s line %d: want key=value, got %q", name, i+1, line)
		}
		out[unescapeProperty(k)] = unescapeProperty(trimUnescaped(v))
	}
	return out, nil
}

// trimUnescaped trims white space from both ends of s, but for an escaped
// one at its end (after an odd number of backslashes).
func trimUnescaped(s string) string {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	for len(s) > 0 {
		r, n := utf8.DecodeLastRuneInString(s)
		if !unicode.IsSpace(r) {
			break
		}
		backslashes := 0
		for j := len(s) - n - 1; j >= 0 && s[j] == '\\'; j-- {
			backslashes++
		}
		if backslashes%2 == 1 {
			break
		}
		s = s[:len(s)-n]
	}
	return s
}

// cutUnescaped cuts a line at its first '=' that no backslash escapes.
func cutUnescaped(line string) (key, value string, ok bool) {
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case '=':
			return line[:i], line[i+1:], true
		}
	}
	return line, "", false
}

// unescapeProperty undoes java.util.Properties escaping.
func unescapeProperty(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'f':
			b.WriteByte('\f')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// ConnSettings picks, from a command's librdkafka settings, those that
// say how to reach and authenticate to a cluster (security.protocol,
// sasl.*, ssl.*, enable.ssl.*): what every client of the command needs,
// whatever its role, while tuning settings stay with the clients they
// were given for.
func ConnSettings(settings map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range settings {
		if k == "security.protocol" || strings.HasPrefix(k, "sasl.") || strings.HasPrefix(k, "ssl.") || strings.HasPrefix(k, "enable.ssl.") {
			out[k] = v
		}
	}
	return out
}
