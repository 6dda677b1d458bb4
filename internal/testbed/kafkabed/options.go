package kafkabed

import (
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
)

// Defaults for the processes this package starts.
const (
	DefaultBrokerHeapMB = 512
	DefaultMirrorHeapMB = 384
	DefaultToolHeapMB   = 512
	// DefaultStopTimeout is how long Stop waits after SIGTERM before SIGKILL,
	// far more than a single-node broker or MirrorMaker takes to shut down.
	DefaultStopTimeout = 30 * time.Second
)

// Logf is a printf-style logger, such as testing.T.Logf.
type Logf func(format string, args ...any)

func nopLogf(string, ...any) {}

// processConfig is what the broker and MirrorMaker 2 options set alike.
type processConfig struct {
	heapMB      int
	props       map[string]string // properties file entries, applied last
	logf        Logf
	stopTimeout time.Duration
}

func newProcessConfig(heapMB int) processConfig {
	return processConfig{heapMB: heapMB, props: map[string]string{}, logf: nopLogf, stopTimeout: DefaultStopTimeout}
}

// Option configures StartBroker.
type Option func(*brokerConfig)

type brokerConfig struct {
	processConfig
	secure, tls   bool     // WithSecurity
	ca            pki.Pair // signs the broker's certificate when tls
	adminPassword string
	listenHost    string // WithListenHost; "" is 127.0.0.1
}

func newBrokerConfig(opts []Option) brokerConfig {
	c := brokerConfig{processConfig: newProcessConfig(DefaultBrokerHeapMB)}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithHeapMB sets the broker JVM heap (-Xms/-Xmx) in MiB. Default 512.
func WithHeapMB(mb int) Option { return func(c *brokerConfig) { c.heapMB = mb } }

// WithProperty overrides one server.properties entry (applied last, via
// kafkaconf.BrokerOptions.Overrides).
func WithProperty(key, value string) Option {
	return func(c *brokerConfig) { c.props[key] = value }
}

// WithListenHost binds the broker's client listener to host (an address of
// this machine, such as a lab's Gateway, where the lab's nodes reach it)
// instead of 127.0.0.1, and advertises it there; with TLS its certificate
// names host too. The broker's own listeners stay on loopback.
func WithListenHost(host string) Option { return func(c *brokerConfig) { c.listenHost = host } }

// WithLogf sends progress messages (start-up and shut-down timings, kept
// directories) to logf.
func WithLogf(logf Logf) Option { return func(c *brokerConfig) { c.logf = logf } }

// WithStopTimeout sets how long Stop waits after SIGTERM before SIGKILL.
func WithStopTimeout(d time.Duration) Option { return func(c *brokerConfig) { c.stopTimeout = d } }

// MirrorOption configures StartMirrorMaker.
type MirrorOption func(*mirrorConfig)

type mirrorConfig struct {
	processConfig
	topics                 string
	sourceAuth, targetAuth *kafkaconf.ClientAuth
}

// WithMirrorAuth is how MirrorMaker 2 authenticates to secured brokers
// (Broker.ClientAuth); nil for a broker without security.
func WithMirrorAuth(source, target *kafkaconf.ClientAuth) MirrorOption {
	return func(c *mirrorConfig) { c.sourceAuth, c.targetAuth = source, target }
}

func newMirrorConfig(opts []MirrorOption) mirrorConfig {
	c := mirrorConfig{processConfig: newProcessConfig(DefaultMirrorHeapMB)}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithMirrorHeapMB sets the MirrorMaker JVM heap in MiB. Default 384.
func WithMirrorHeapMB(mb int) MirrorOption { return func(c *mirrorConfig) { c.heapMB = mb } }

// WithMirrorTopics sets the regex of replicated topics
// (default kafkaconf.DefaultMirrorTopics, "alerts|minibroker-schemas").
func WithMirrorTopics(regex string) MirrorOption { return func(c *mirrorConfig) { c.topics = regex } }

// WithMirrorProperty overrides one mm2.properties entry, e.g.
// WithMirrorProperty("mirror.producer.linger.ms", "0").
func WithMirrorProperty(key, value string) MirrorOption {
	return func(c *mirrorConfig) { c.props[key] = value }
}

// WithMirrorLogf sends progress messages to logf.
func WithMirrorLogf(logf Logf) MirrorOption { return func(c *mirrorConfig) { c.logf = logf } }

// WithMirrorStopTimeout sets how long Stop waits after SIGTERM before SIGKILL.
func WithMirrorStopTimeout(d time.Duration) MirrorOption {
	return func(c *mirrorConfig) { c.stopTimeout = d }
}

// PerfOption configures ProducerPerf and ConsumerPerf.
type PerfOption func(*perfConfig)

type perfConfig struct {
	heapMB   int
	props    map[string]string
	timeout  time.Duration
	payloads int // ProducerPerf: pre-generated payloads; 0: --record-size
	warmup   int // ProducerPerf: --warmup-records
}

func newPerfConfig(opts []PerfOption) perfConfig {
	c := perfConfig{heapMB: DefaultToolHeapMB, props: map[string]string{}}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithPerfHeapMB sets the perf tool's JVM heap in MiB. Default 512.
func WithPerfHeapMB(mb int) PerfOption { return func(c *perfConfig) { c.heapMB = mb } }

// WithPerfProperty sets one client property of the perf tool (producer or
// consumer config, passed with --command-property). For ProducerPerf it wins
// over the producerProps map.
func WithPerfProperty(key, value string) PerfOption {
	return func(c *perfConfig) { c.props[key] = value }
}

// WithPerfPayloads makes ProducerPerf send n payloads generated beforehand
// (random capital letters of the record size, in a file of the broker's
// directory passed with --payload-file; the tool picks one at random for
// each record) instead of using --record-size, with which the tool refills
// its payload with fresh random letters before every record, one
// SplittableRandom call per byte on its only sending thread: for 80 KB
// records that refill costs about as much CPU as the producer itself.
func WithPerfPayloads(n int) PerfOption { return func(c *perfConfig) { c.payloads = n } }

// WithPerfWarmupRecords passes --warmup-records n to ProducerPerf: its
// result is then the tool's steady-state summary, over the records after
// the first n (a cold JVM, JIT compilation, connections and buffer pool
// being set up), with PerfResult.Steady set.
func WithPerfWarmupRecords(n int) PerfOption { return func(c *perfConfig) { c.warmup = n } }

// WithPerfIdleTimeout sets ConsumerPerf's --timeout: the longest gap between
// returned records before it gives up (tool default 10 s).
func WithPerfIdleTimeout(d time.Duration) PerfOption {
	return func(c *perfConfig) { c.timeout = d }
}
