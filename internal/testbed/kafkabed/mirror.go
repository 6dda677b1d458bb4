package kafkabed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
)

// mirrorStartedLine is what MirrorMaker 2 (4.x) logs once MirrorSourceConnector
// runs, i.e. topic discovery works and replication tasks can be assigned.
const mirrorStartedLine = "Started MirrorSourceConnector"

// MirrorMaker is a running dedicated-mode MirrorMaker 2 process replicating
// from a source broker to a target broker with topic names kept unchanged.
type MirrorMaker struct {
	source, target *Broker
	dir            string
	topics         string
	proc           *process
	spec           jvmSpec // how proc was started, for Restart
	name           string
	logf           Logf
	stopTimeout    time.Duration

	stopOnce sync.Once
	stopErr  error
}

// StartMirrorMaker starts MirrorMaker 2 (org.apache.kafka.connect.mirror.MirrorMaker)
// with kafkaconf.MirrorMakerProperties for the flow hub (source) -> mirror
// (target), and returns once its MirrorSourceConnector has started, which
// takes several seconds: give ctx a generous deadline. Use WaitReplication to
// prove records actually flow.
func StartMirrorMaker(ctx context.Context, source, target *Broker, opts ...MirrorOption) (*MirrorMaker, error) {
	began := time.Now()
	cfg := newMirrorConfig(opts)
	if source == nil || target == nil {
		return nil, errors.New("kafkabed: StartMirrorMaker needs a source and a target broker")
	}
	dir, err := os.MkdirTemp("", "kafkabed-mm2-")
	if err != nil {
		return nil, fmt.Errorf("kafkabed: mirrormaker temp dir: %w", err)
	}
	m := &MirrorMaker{source: source, target: target, dir: dir, logf: cfg.logf, stopTimeout: cfg.stopTimeout}
	fail := func(err error) (*MirrorMaker, error) {
		_ = m.stop(false)
		return nil, err
	}

	mo := kafkaconf.MirrorOptions{
		SourceBootstrap: source.Bootstrap(),
		TargetBootstrap: target.Bootstrap(),
		SourceAuth:      cfg.sourceAuth,
		TargetAuth:      cfg.targetAuth,
		Topics:          cfg.topics,
		Overrides:       cfg.props,
	}
	m.topics = cfg.topics
	if m.topics == "" {
		m.topics = kafkaconf.DefaultMirrorTopics
	}
	propsPath := filepath.Join(dir, "mm2.properties")
	if err := os.WriteFile(propsPath, []byte(kafkaconf.MirrorMakerProperties(mo)), 0o644); err != nil {
		return fail(fmt.Errorf("kafkabed: write mm2.properties: %w", err))
	}
	logPath := filepath.Join(dir, "mm2.log")
	log4j, err := writeLog4j(dir, "mm2", logPath, "INFO")
	if err != nil {
		return fail(err)
	}
	m.spec = jvmSpec{java: source.java, libs: source.libs, heapMB: cfg.heapMB,
		mainClass: kafkaconf.MirrorMakerMainClass, args: []string{propsPath}, log4j: log4j}
	name := fmt.Sprintf("mirrormaker %s->%s", source.Bootstrap(), target.Bootstrap())
	m.name = name
	if m.proc, err = startProcess(name, dir, filepath.Join(dir, "mm2.out"), logPath, m.spec); err != nil {
		return fail(err)
	}
	if err := m.waitLog(ctx, mirrorStartedLine, 0); err != nil {
		return fail(fmt.Errorf("kafkabed: %s not started: %w%s", name, err, m.proc.tail()))
	}
	cfg.logf("kafkabed: %s started in %s (pid %d, log %s)",
		name, time.Since(began).Round(time.Millisecond), m.PID(), logPath)
	return m, nil
}

// waitLog waits until the MM2 log contains line after its first from
// bytes, failing if the process exits.
func (m *MirrorMaker) waitLog(ctx context.Context, line string, from int64) error {
	for {
		if fileContainsAfter(m.proc.logPath, line, from) {
			return nil
		}
		if m.proc.exited() {
			return fmt.Errorf("process exited (%v)", m.proc.waitErr)
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %q in the log: %w", line, err)
		}
	}
}

// Kill ends MirrorMaker with SIGKILL, as a crash would; Restart starts it
// again with the same configuration. Its state lives in Kafka topics.
func (m *MirrorMaker) Kill() {
	killGroup(m.PID(), syscall.SIGKILL)
	<-m.proc.done
}

// Restart starts a killed MirrorMaker again and returns once its
// MirrorSourceConnector has started.
func (m *MirrorMaker) Restart(ctx context.Context) error {
	if !m.proc.exited() {
		return fmt.Errorf("kafkabed: %s (pid %d) is still running", m.name, m.PID())
	}
	began := time.Now()
	var from int64
	if st, err := os.Stat(m.LogPath()); err == nil {
		from = st.Size()
	}
	proc, err := startProcess(m.name, m.dir, filepath.Join(m.dir, "mm2.out"), m.LogPath(), m.spec)
	if err != nil {
		return err
	}
	m.proc = proc
	if err := m.waitLog(ctx, mirrorStartedLine, from); err != nil {
		return fmt.Errorf("kafkabed: %s not restarted: %w%s", m.name, err, m.proc.tail())
	}
	m.logf("kafkabed: %s restarted in %s (pid %d)", m.name, time.Since(began).Round(time.Millisecond), m.PID())
	return nil
}

// LogPath returns the path of MirrorMaker's log4j2 log file.
func (m *MirrorMaker) LogPath() string { return filepath.Join(m.dir, "mm2.log") }

// Dir returns MirrorMaker's temp directory (mm2.properties and logs).
func (m *MirrorMaker) Dir() string { return m.dir }

// PID returns the MirrorMaker JVM's process id (also its process group id).
func (m *MirrorMaker) PID() int { return m.proc.pid() }

// Topics returns the regex of replicated topics.
func (m *MirrorMaker) Topics() string { return m.topics }

// WaitTopic waits until topic exists, with leaders, on the target broker.
// MirrorMaker creates it within refresh.topics.interval.seconds (5 s) of the
// topic appearing on the source. On timeout the error has MM2's log tail.
func (m *MirrorMaker) WaitTopic(ctx context.Context, topic string) error {
	if _, err := waitTopic(ctx, m.target.selfBootstrap, topic); err != nil {
		return fmt.Errorf("kafkabed: topic %q did not appear on target %s: %w%s",
			topic, m.target.Bootstrap(), err, m.proc.tail())
	}
	return nil
}

// WaitReplication proves replication is live end to end: it creates topic on
// the source if needed (topic must match Topics()), produces a unique probe
// record there, and waits until that record can be read from the target. It
// returns the probe's produce-to-read latency; when the topic is already
// mirrored the reader is positioned before producing, so that is the
// replication latency plus one fetch. On timeout the error has MM2's log tail.
func (m *MirrorMaker) WaitReplication(ctx context.Context, topic string) (time.Duration, error) {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	probe := []byte("kafkabed-probe-" + hex.EncodeToString(nonce[:]))
	fail := func(err error) (time.Duration, error) {
		return 0, fmt.Errorf("kafkabed: probe on %q not replicated %s -> %s (topic regex %q): %w%s",
			topic, m.source.Bootstrap(), m.target.Bootstrap(), m.topics, err, m.proc.tail())
	}

	if err := m.source.CreateTopic(ctx, topic, 1, nil); err != nil {
		return 0, err
	}
	reader, err := m.readerAtEnd(ctx, topic)
	if err != nil {
		return fail(err)
	}
	began := time.Now()
	if err := produceOne(ctx, m.source.selfBootstrap, topic, probe); err != nil {
		if reader != nil {
			reader.Close()
		}
		return 0, err
	}
	if reader == nil { // not mirrored yet: wait for MM2 to create it, read it all
		partitions, err := waitTopic(ctx, m.target.selfBootstrap, topic)
		if err != nil {
			return fail(err)
		}
		if reader, err = newTopicReader(m.target.selfBootstrap, topic, partitions, false); err != nil {
			return fail(err)
		}
	}
	defer reader.Close()
	if err := reader.await(ctx, probe); err != nil {
		return fail(err)
	}
	return time.Since(began), nil
}

// readerAtEnd returns a reader positioned at the end of topic on the target,
// or nil if the topic is not there (yet).
func (m *MirrorMaker) readerAtEnd(ctx context.Context, topic string) (*topicReader, error) {
	a, err := newAdmin(m.target.selfBootstrap)
	if err != nil {
		return nil, err
	}
	n, err := describeTopic(ctx, a, topic)
	a.Close()
	if err != nil || n == 0 {
		return nil, err
	}
	return newTopicReader(m.target.selfBootstrap, topic, n, true)
}

// Stop ends MirrorMaker (SIGTERM to its process group, SIGKILL after the stop
// timeout) and removes its temp directory unless MINIBROKER_KEEP_BED=1. Stop
// it before its brokers. Safe to call more than once.
func (m *MirrorMaker) Stop() error {
	m.stopOnce.Do(func() { m.stopErr = m.stop(true) })
	return m.stopErr
}

func (m *MirrorMaker) stop(logTimes bool) error {
	began := time.Now()
	var err error
	if m.proc != nil {
		err = m.proc.stop(m.stopTimeout)
		if logTimes {
			m.logf("kafkabed: mirrormaker stopped in %s", time.Since(began).Round(time.Millisecond))
		}
	}
	return errors.Join(err, removeDir(m.dir, m.logf))
}
