package kafkabed

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

const (
	alertSize  = 80_000
	alertCount = 100
)

// needJava skips under -short (`make unit`: tests that need neither Java nor
// Docker). Without -short these tests always run, and fail if the jars are
// missing.
func needJava(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts real Kafka (Java); run `make test`")
	}
}

// assertGone fails unless the process group led by pid no longer exists.
func assertGone(t *testing.T, what string, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("%s pid %d still exists after Stop (kill 0: %v)", what, pid, err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("%s process group %d still exists after Stop (kill 0: %v)", what, pid, err)
	}
}

func TestMirrorMakerReplicatesAlerts(t *testing.T) {
	needJava(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	hub := StartBrokerT(t)
	mirror := StartBrokerT(t)
	Must(t, hub.CreateTopic(ctx, "alerts", 1, nil))
	// Like the schema topic of the design: compacted, and must stay so.
	Must(t, hub.CreateTopic(ctx, "minibroker-schemas", 1, map[string]string{"cleanup.policy": "compact"}))

	began := time.Now()
	// A wider regex than the default, so that a topic created later matches.
	mm := StartMirrorMakerT(t, hub, mirror, WithMirrorTopics("alerts.*|minibroker-schemas"))
	lat, err := mm.WaitReplication(ctx, "minibroker-schemas")
	Must(t, err)
	t.Logf("MirrorMaker start-to-replicating %s; first probe produce-to-visible %s",
		time.Since(began).Round(time.Millisecond), lat.Round(time.Millisecond))
	lat, err = mm.WaitReplication(ctx, "minibroker-schemas")
	Must(t, err)
	t.Logf("second probe produce-to-visible %s", lat.Round(time.Millisecond))
	lat, err = mm.WaitReplication(ctx, "alerts-probe")
	Must(t, err)
	t.Logf("probe on a topic created after MirrorMaker started: produce-to-visible %s", lat.Round(time.Millisecond))

	cfg, err := mirror.TopicConfig(ctx, "minibroker-schemas")
	Must(t, err)
	if cfg["cleanup.policy"] != "compact" {
		t.Fatalf("mirrored minibroker-schemas has cleanup.policy %q, want compact (configs: %v)", cfg["cleanup.policy"], cfg)
	}

	// Produce 100 distinct ~80 KB alerts to the hub.
	sent := make([][]byte, alertCount)
	for i := range sent {
		sent[i] = make([]byte, alertSize)
		_, _ = rand.Read(sent[i])
	}
	produceStart := time.Now()
	produceAll(ctx, t, hub.Bootstrap(), "alerts", sent)

	// Read them back from the mirror: same topic name, same bytes, same order.
	got := consumeN(ctx, t, mirror.Bootstrap(), "alerts", alertCount)
	t.Logf("%d x %d B alerts hub -> mirror end to end in %s",
		alertCount, alertSize, time.Since(produceStart).Round(time.Millisecond))
	for i, m := range got {
		if topic := *m.TopicPartition.Topic; topic != "alerts" {
			t.Fatalf("record %d arrived on topic %q, want alerts (identity policy)", i, topic)
		}
		if want := fmt.Sprintf("alert-%03d", i); string(m.Key) != want {
			t.Fatalf("record %d has key %q, want %q", i, m.Key, want)
		}
		if !bytes.Equal(m.Value, sent[i]) {
			t.Fatalf("record %d value differs (len %d, want %d)", i, len(m.Value), len(sent[i]))
		}
	}

	// Stop in order and check nothing is left running.
	pids := map[string]int{"mirrormaker": mm.PID(), "hub": hub.PID(), "mirror": mirror.PID()}
	Must(t, mm.Stop())
	Must(t, hub.Stop())
	Must(t, mirror.Stop())
	for what, pid := range pids {
		assertGone(t, what, pid)
	}
}

func produceAll(ctx context.Context, t *testing.T, bootstrap, topic string, values [][]byte) {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap,
		"acks":              "all",
		"linger.ms":         5,
		"batch.size":        4 << 20,
		"message.max.bytes": 16 << 20,
	})
	Must(t, err)
	defer p.Close()
	events := make(chan kafka.Event, len(values))
	for i, v := range values {
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0},
			Key:            []byte(fmt.Sprintf("alert-%03d", i)),
			Value:          v,
		}
		Must(t, p.Produce(msg, events))
	}
	for range values {
		select {
		case ev := <-events:
			if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				t.Fatalf("delivery to %s: %v", bootstrap, m.TopicPartition.Error)
			}
		case <-ctx.Done():
			t.Fatalf("delivery to %s: %v", bootstrap, ctx.Err())
		}
	}
}

func consumeN(ctx context.Context, t *testing.T, bootstrap, topic string, n int) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           "kafkabed-test",
		"enable.auto.commit": false,
	})
	Must(t, err)
	defer c.Close()
	Must(t, c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}))
	var out []*kafka.Message
	for len(out) < n {
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records from %s/%s: %v", len(out), n, bootstrap, topic, ctx.Err())
		}
		m, err := c.ReadMessage(500 * time.Millisecond)
		var kerr kafka.Error
		switch {
		case err == nil:
			out = append(out, m)
		case errors.As(err, &kerr) && (kerr.IsTimeout() || !kerr.IsFatal()):
		default:
			t.Fatalf("read %s/%s: %v", bootstrap, topic, err)
		}
	}
	return out
}

func TestPerfTools(t *testing.T) {
	needJava(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := StartBrokerT(t)
	Must(t, b.CreateTopic(ctx, "perf", 1, nil))

	const records = 2000
	pr, err := ProducerPerf(ctx, b, "perf", records, alertSize, map[string]string{
		"linger.ms":        "5",
		"batch.size":       "1048576",
		"max.request.size": "16777216",
		"acks":             "all",
	})
	Must(t, err)
	t.Logf("producer perf: %s (wall %s)", pr.Summary, pr.Elapsed.Round(time.Millisecond))
	if pr.Records != records || pr.MBPerSec <= 0 || pr.RecordsPerSec <= 0 {
		t.Fatalf("implausible producer result %+v", pr)
	}

	// Payloads made beforehand, and the steady state after a warm-up.
	pp, err := ProducerPerf(ctx, b, "perf-payloads", records, alertSize, map[string]string{"max.request.size": "16777216"},
		WithPerfPayloads(8), WithPerfWarmupRecords(records/4))
	Must(t, err)
	t.Logf("producer perf with payloads: %s (CPU %s)", pp.Summary, pp.CPU.Round(time.Millisecond))
	if !pp.Steady || pp.Records != records-records/4 || pp.MBPerSec <= 0 || pp.CPU <= 0 {
		t.Fatalf("implausible steady-state result %+v", pp)
	}
	if _, err := os.Stat(filepath.Join(b.Dir(), fmt.Sprintf("perf-payloads-%d-8.txt", alertSize))); err != nil {
		t.Fatalf("payload file: %v", err)
	}

	cr, err := ConsumerPerf(ctx, b, "perf", records)
	Must(t, err)
	t.Logf("consumer perf: %.1f MB/s, %.0f msg/s, fetch %.1f MB/s (wall %s)",
		cr.MBPerSec, cr.RecordsPerSec, cr.FetchMBPerSec, cr.Elapsed.Round(time.Millisecond))
	if cr.Records < records || cr.MBPerSec <= 0 || cr.RecordsPerSec <= 0 {
		t.Fatalf("implausible consumer result %+v", cr)
	}

	pid := b.PID()
	Must(t, b.Stop())
	assertGone(t, "broker", pid)
}

func TestConsumerPerfReportsShortfall(t *testing.T) {
	needJava(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := StartBrokerT(t)
	Must(t, b.CreateTopic(ctx, "short", 1, nil))
	_, err := ProducerPerf(ctx, b, "short", 10, 1000, nil)
	Must(t, err)
	// The idle timeout leaves a loaded machine time to join the group and fetch.
	res, err := ConsumerPerf(ctx, b, "short", 20, WithPerfIdleTimeout(15*time.Second))
	if err == nil || !strings.Contains(err.Error(), "10 of 20") {
		t.Fatalf("err = %v, want a shortfall of 10 of 20", err)
	}
	if res.Records != 10 {
		t.Fatalf("partial result has %d records, want 10", res.Records)
	}
}

func TestStartBrokerFailureShowsLog(t *testing.T) {
	needJava(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := StartBroker(ctx, WithProperty("message.max.bytes", "not-a-number"), WithLogf(t.Logf))
	if err == nil {
		b.Stop()
		t.Fatal("StartBroker succeeded with an invalid message.max.bytes")
	}
	if !strings.Contains(err.Error(), "message.max.bytes") {
		t.Fatalf("error does not explain the failure:\n%v", err)
	}
	t.Logf("expected failure:\n%v", err)
}
