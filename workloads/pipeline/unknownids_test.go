package pipeline_test

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// TestUnknownSchemaFlood: on a real broker, the schemas topic holds a
// garbage record between two good schemas, and one visit mixes 1,000 good
// alerts of each schema with 1,000 alerts of random, unregistered ids. The
// filter learns both schemas (the garbage record skipped and logged),
// filters every good alert, dead-letters every bad one, and completes the
// visit in bounded time: one re-read of the schemas topic serves every
// unknown id (it took a second per id before).
func TestUnknownSchemaFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	broker := kafkabed.StartBrokerT(t)
	bootstrap := broker.Bootstrap()
	ensureStreamTopics(ctx, t, bootstrap)
	// The broker may not list a topic it has just created yet.
	_, err := kclient.WaitTopic(ctx, bootstrap, nil, stream.SchemasTopic)
	kafkabed.Must(t, err)

	// The schemas: the synthetic one, a garbage record, then the same
	// schema under another name (so another id) that only a reader going
	// past the garbage learns.
	store, err := service.Open(ctx, bootstrap, nil, stream.SchemasTopic, slog.New(slog.DiscardHandler))
	kafkabed.Must(t, err)
	defer store.Close()
	subject := registry.ValueSubject(stream.AlertsTopic)
	first := alert.SchemaText(alert.SyntheticSchema())
	v1, err := store.Register(ctx, subject, first, 0)
	kafkabed.Must(t, err)
	garbage := stream.SchemasTopic
	produceRaw(t, bootstrap, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &garbage, Partition: kafka.PartitionAny},
		Key: []byte(`{"keytype":"SCHEMA","subject":"x","version":1,"magic":1}`), Value: []byte("{{{ not a schema")})
	second := strings.ReplaceAll(first, "minibroker.v1", "minibroker.v1b") // the same layout under other names
	if second == first {
		t.Fatal("test setup: the synthetic schema's names do not contain minibroker.v1")
	}
	v2, err := store.Register(ctx, subject, second, 0)
	kafkabed.Must(t, err)

	const perKind = 1000
	const visit = int64(777)
	gen := alert.NewGenerator(9, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	topic := stream.AlertsTopic
	var msgs []*kafka.Message
	wantSelected := map[string]bool{}
	badKeys := map[string]bool{}
	total := 3 * perKind
	for i := range total {
		var id uint32
		switch i % 3 {
		case 0:
			id = uint32(v1.ID)
		case 1:
			id = uint32(v2.ID)
		default:
			for id == 0 || id == uint32(v1.ID) || id == uint32(v2.ID) {
				id = rng.Uint32()
			}
		}
		b, tr, err := gen.Alert(alert.AppendWire(nil, id, nil), visit, i)
		kafkabed.Must(t, err)
		key := strconv.Itoa(i)
		if i%3 == 2 {
			badKeys[key] = true
		} else if tr.Snr > 5 {
			wantSelected[strconv.FormatInt(tr.DiaSourceID, 10)] = true
		}
		msgs = append(msgs, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Key: []byte(key), Value: b,
			Headers: []kafka.Header{{Key: stream.HeaderRun, Value: []byte("flood")}, {Key: stream.HeaderVisit, Value: []byte(strconv.FormatInt(visit, 10))},
				{Key: stream.HeaderIndex, Value: []byte(strconv.Itoa(i))}, {Key: stream.HeaderCount, Value: []byte(strconv.Itoa(total))}}})
	}
	produceRaw(t, bootstrap, msgs...)

	var logs syncBuffer
	spec := filter.Spec{Name: "Flood", Expr: "alert.diaSource.snr > 5.0", MaxPerVisit: -1}
	began := time.Now()
	stop := runReady(ctx, t, func(ctx context.Context, ready func()) error {
		return pipeline.RunFilters(ctx, pipeline.FilterConfig{Bootstrap: bootstrap, Specs: []filter.Spec{spec}, SchemasTopic: stream.SchemasTopic,
			FromBeginning: true, TimingTopic: stream.TimingTopic, Log: slog.New(slog.NewTextHandler(&logs, nil)), Ready: ready})
	})
	defer stop()

	var ev timing.Event
	waitFor(t, ctx, "the visit's completion event", func() bool {
		evs, err := pipeline.ReadTiming(ctx, bootstrap, nil, stream.TimingTopic)
		kafkabed.Must(t, err)
		for _, e := range evs {
			if e.Kind == timing.KindFilter && e.Visit == visit {
				ev = e
				return true
			}
		}
		return false
	})
	took := ev.End.Sub(began)
	t.Logf("visit of %d alerts (%d with random schema ids) filtered %.1f s after the filter started", total, perKind, took.Seconds())
	if took > time.Minute {
		t.Errorf("the visit took %v: unknown ids are not looked up in bounded time", took)
	}
	if ev.Alerts != total || ev.DeadLetters != perKind || ev.Selected != len(wantSelected) {
		t.Errorf("completion: %d alerts, %d dead letters, %d selected; want %d, %d, %d", ev.Alerts, ev.DeadLetters, ev.Selected, total, perKind, len(wantSelected))
	}

	got := map[string]bool{}
	kafkabed.Must(t, kclient.ReadAll(ctx, bootstrap, nil, spec.Name, func(m *kafka.Message) error {
		id := headerValue(m.Headers, stream.HeaderID)
		if got[id] {
			t.Errorf("alert %s selected twice", id)
		}
		got[id] = true
		return nil
	}))
	if len(got) != len(wantSelected) {
		t.Errorf("selected %d alerts, want %d", len(got), len(wantSelected))
	}
	for id := range wantSelected {
		if !got[id] {
			t.Errorf("good alert %s not selected", id)
			break
		}
	}
	dead := 0
	kafkabed.Must(t, kclient.ReadAll(ctx, bootstrap, nil, stream.DeadLetterTopic(spec.Name), func(m *kafka.Message) error {
		dead++
		if !badKeys[string(m.Key)] {
			t.Errorf("dead letter %s is a good alert: %s", m.Key, headerValue(m.Headers, stream.HeaderError))
		}
		return nil
	}))
	if dead != perKind {
		t.Errorf("%d dead letters, want %d", dead, perKind)
	}
	if !strings.Contains(logs.String(), "skipped a record of the schemas topic") {
		t.Errorf("the filter did not log the garbage record of the schemas topic:\n%s", logs.String())
	}
}

func produceRaw(t *testing.T, bootstrap string, msgs ...*kafka.Message) {
	t.Helper()
	p, err := kafka.NewProducer(kclient.ProducerConfig(bootstrap, nil))
	kafkabed.Must(t, err)
	defer p.Close()
	deliveries := make(chan kafka.Event, len(msgs))
	for _, m := range msgs {
		kafkabed.Must(t, p.Produce(m, deliveries))
	}
	for range msgs {
		select {
		case ev := <-deliveries:
			if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
				t.Fatal(m.TopicPartition.Error)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("not delivered in 30 s")
		}
	}
}

func headerValue(hs []kafka.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(bytes.Clone(h.Value))
		}
	}
	return ""
}
