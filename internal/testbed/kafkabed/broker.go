package kafkabed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
)

// Kafka main classes used for the broker.
const (
	brokerMainClass  = "kafka.Kafka"
	storageMainClass = "kafka.tools.StorageTool"
)

// bindAttempts is how often StartBroker retries with new ports when another
// process took a port between choosing and binding it.
const bindAttempts = 3

// Broker is a running single-node KRaft Kafka (broker and controller in one
// JVM) listening on 127.0.0.1.
type Broker struct {
	libs, java string
	dir        string // temp dir: configs, data/, logs
	bootstrap  string
	// selfBootstrap is the loopback BROKER listener: PLAINTEXT and a super
	// user on a secured broker, which the bed's own admin calls use.
	selfBootstrap string
	clusterID     string
	adminPassword string // WithSecurity: the admin user's password
	tls           bool
	caPath        string
	proc          *process
	spec          jvmSpec // how proc was started, for Restart
	logf          Logf
	stopTimeout   time.Duration

	stopOnce sync.Once
	stopErr  error
}

// StartBroker formats a fresh log directory and starts a broker on free
// loopback ports, returning once it serves metadata requests. ctx bounds the
// start-up only; the broker runs until Stop. On failure the error includes
// the tail of the broker log.
func StartBroker(ctx context.Context, opts ...Option) (*Broker, error) {
	cfg := newBrokerConfig(opts)
	libs, err := LibsDir()
	if err != nil {
		return nil, err
	}
	java, err := javaBinary()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		b, err := startBrokerOnce(ctx, cfg, libs, java)
		if err == nil || attempt == bindAttempts || !errors.Is(err, errPortTaken) {
			return b, err
		}
		cfg.logf("kafkabed: broker port was taken, retrying with new ports (%v)", err)
	}
}

// errPortTaken marks a start-up failure caused by a port race.
var errPortTaken = errors.New("port already in use")

func startBrokerOnce(ctx context.Context, cfg brokerConfig, libs, java string) (*Broker, error) {
	began := time.Now()
	dir, err := os.MkdirTemp("", "kafkabed-broker-")
	if err != nil {
		return nil, fmt.Errorf("kafkabed: broker temp dir: %w", err)
	}
	b := &Broker{libs: libs, java: java, dir: dir, logf: cfg.logf, stopTimeout: cfg.stopTimeout}
	fail := func(err error) (*Broker, error) {
		_ = b.stop(false)
		return nil, err
	}

	ports, err := freeLoopbackPorts(3)
	if err != nil {
		return fail(err)
	}
	host := cmp.Or(cfg.listenHost, "127.0.0.1")
	b.bootstrap = net.JoinHostPort(host, strconv.Itoa(ports[0]))
	b.selfBootstrap = "127.0.0.1:" + strconv.Itoa(ports[2])
	var security *kafkaconf.BrokerSecurity
	if cfg.secure {
		if security, err = b.prepareSecurity(cfg); err != nil {
			return fail(err)
		}
	}
	props := kafkaconf.BrokerProperties(kafkaconf.BrokerOptions{
		Security:        security,
		ListenerHost:    host,
		ListenerPort:    ports[0],
		ControllerPort:  ports[1],
		InterBrokerPort: ports[2],
		LogDirs:         filepath.Join(dir, "data"),
		Overrides:       cfg.props,
	})
	propsPath := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(propsPath, []byte(props), 0o644); err != nil {
		return fail(fmt.Errorf("kafkabed: write server.properties: %w", err))
	}
	logPath := filepath.Join(dir, "broker.log")
	log4j, err := writeLog4j(dir, "broker", logPath, "INFO")
	if err != nil {
		return fail(err)
	}
	if b.clusterID, err = newClusterID(); err != nil {
		return fail(err)
	}

	format := jvmSpec{java: java, libs: libs, heapMB: 256, mainClass: storageMainClass,
		args: kafkaconf.FormatArgs(b.clusterID, propsPath), log4j: log4j}
	if _, err := runTool(ctx, dir, format); err != nil {
		return fail(fmt.Errorf("kafkabed: format broker storage in %s: %w", dir, err))
	}

	b.spec = jvmSpec{java: java, libs: libs, heapMB: cfg.heapMB, mainClass: brokerMainClass,
		args: []string{propsPath}, log4j: log4j}
	b.proc, err = startProcess("broker "+b.bootstrap, dir, filepath.Join(dir, "broker.out"), logPath, b.spec)
	if err != nil {
		return fail(err)
	}
	if err := b.waitReady(ctx); err != nil {
		if fileContains(logPath, "Address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return fail(fmt.Errorf("%w%s", err, b.proc.tail()))
	}
	cfg.logf("kafkabed: broker %s ready in %s (pid %d, log %s)",
		b.bootstrap, time.Since(began).Round(time.Millisecond), b.PID(), logPath)
	return b, nil
}

// waitReady waits until the broker answers metadata requests, failing fast if
// the process exits.
func (b *Broker) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-b.proc.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err := waitTCP(ctx, b.bootstrap)
	if err == nil {
		err = waitCluster(ctx, b.selfBootstrap, b.clusterID)
	}
	if err == nil {
		return nil
	}
	if b.proc.exited() {
		return fmt.Errorf("kafkabed: broker %s exited during start-up (%v)", b.bootstrap, b.proc.waitErr)
	}
	return fmt.Errorf("kafkabed: broker %s not ready: %w", b.bootstrap, err)
}

// Bootstrap returns the broker's bootstrap.servers value, "127.0.0.1:PORT" (the
// WithListenHost host instead, when given).
func (b *Broker) Bootstrap() string { return b.bootstrap }

// ClusterID returns the id the broker's storage was formatted with.
func (b *Broker) ClusterID() string { return b.clusterID }

// Dir returns the broker's temp directory (server.properties, data/, logs).
func (b *Broker) Dir() string { return b.dir }

// LogPath returns the path of the broker's log4j2 log file.
func (b *Broker) LogPath() string { return filepath.Join(b.dir, "broker.log") }

// PID returns the broker JVM's process id (also its process group id).
func (b *Broker) PID() int { return b.proc.pid() }

// CreateTopic creates topic with the given partition count, replication
// factor 1 and optional topic configs. An existing topic is not an error.
// It returns once every partition has a leader.
func (b *Broker) CreateTopic(ctx context.Context, topic string, partitions int, configs map[string]string) error {
	if err := createTopic(ctx, b.selfBootstrap, topic, partitions, configs); err != nil {
		return err
	}
	if _, err := waitTopic(ctx, b.selfBootstrap, topic); err != nil {
		return fmt.Errorf("kafkabed: topic %q on %s has no leader: %w", topic, b.bootstrap, err)
	}
	return nil
}

// TopicConfig returns topic's configs that are not Kafka defaults (set on
// the topic, or on the broker as in server.properties), e.g.
// {"cleanup.policy": "compact", "message.max.bytes": "16777216"}.
func (b *Broker) TopicConfig(ctx context.Context, topic string) (map[string]string, error) {
	return topicConfig(ctx, b.selfBootstrap, topic)
}

// Kill ends the broker with SIGKILL, as a crash would, and keeps its
// directory: Restart starts it again on the same data and ports.
func (b *Broker) Kill() {
	killGroup(b.PID(), syscall.SIGKILL)
	<-b.proc.done
}

// Shutdown ends the broker cleanly (SIGTERM, SIGKILL after the stop
// timeout) and keeps its directory for Restart.
func (b *Broker) Shutdown() error { return b.proc.stop(b.stopTimeout) }

// Restart starts a broker that was killed or shut down again, on the same
// log directory and ports, and returns once it serves metadata requests.
func (b *Broker) Restart(ctx context.Context) error {
	if !b.proc.exited() {
		return fmt.Errorf("kafkabed: broker %s (pid %d) is still running", b.bootstrap, b.PID())
	}
	began := time.Now()
	proc, err := startProcess("broker "+b.bootstrap, b.dir, filepath.Join(b.dir, "broker.out"), b.LogPath(), b.spec)
	if err != nil {
		return err
	}
	b.proc = proc
	if err := b.waitReady(ctx); err != nil {
		return fmt.Errorf("%w%s", err, b.proc.tail())
	}
	b.logf("kafkabed: broker %s restarted in %s (pid %d)", b.bootstrap, time.Since(began).Round(time.Millisecond), b.PID())
	return nil
}

// Stop ends the broker (SIGTERM to its process group, SIGKILL after the stop
// timeout) and removes its temp directory unless MINIBROKER_KEEP_BED=1. It is
// safe to call more than once.
func (b *Broker) Stop() error {
	b.stopOnce.Do(func() { b.stopErr = b.stop(true) })
	return b.stopErr
}

func (b *Broker) stop(logTimes bool) error {
	began := time.Now()
	var err error
	if b.proc != nil {
		err = b.proc.stop(b.stopTimeout)
		if logTimes {
			b.logf("kafkabed: broker %s stopped in %s", b.bootstrap, time.Since(began).Round(time.Millisecond))
		}
	}
	return errors.Join(err, removeDir(b.dir, b.logf))
}

// fileContains reports whether the file at path contains s.
func fileContains(path, s string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), s)
}

// fileContainsAfter reports whether the file at path contains s after its
// first from bytes.
func fileContainsAfter(path, s string, from int64) bool {
	data, err := os.ReadFile(path)
	return err == nil && int64(len(data)) >= from && strings.Contains(string(data[from:]), s)
}

// removeDir deletes dir unless MINIBROKER_KEEP_BED=1.
func removeDir(dir string, logf Logf) error {
	if os.Getenv(EnvKeepBed) == "1" {
		logf("kafkabed: keeping %s (%s=1)", dir, EnvKeepBed)
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("kafkabed: remove %s: %w", dir, err)
	}
	return nil
}
