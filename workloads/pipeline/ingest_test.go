package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// TestIngestCopiesWhatItCannotImport: what an upstream sends that the
// relay cannot give a schema (a record not in the wire format, an id the
// upstream's registry does not know, an id ours holds with another schema)
// is copied to the hub all the same, in order, with a log line, and the
// good alerts around it are copied with their schema imported under the
// upstream's id. Nothing the upstream sends stops the relay.
func TestIngestCopiesWhatItCannotImport(t *testing.T) {
	_, upstreamAddr := fakeCluster(t)
	_, hub := fakeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The upstream's registry holds the synthetic schema under id 4242,
	// and a record schema under 7, which our registry already holds with
	// another schema.
	synthetic := alert.SchemaText(alert.SyntheticSchema())
	other := `{"type":"record","name":"other","fields":[{"name":"x","type":"int"}]}`
	upReg := upstreamRegistry(ctx, t, upstreamAddr, map[int]string{4242: synthetic, 7: other})
	ours, err := service.Open(ctx, hub, nil, stream.SchemasTopic, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	if _, err := ours.Register(ctx, "mine-value", `{"type":"record","name":"mine","fields":[{"name":"y","type":"long"}]}`, 7); err != nil {
		t.Fatal(err)
	}

	gen := alert.NewGenerator(3, 0)
	good := func(i int) []byte {
		b, _, err := gen.Alert(alert.AppendWire(nil, 4242, nil), 1, i)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sent := [][]byte{good(0), []byte("not an alert"), good(1), alert.AppendWire(nil, 99999, []byte{2, 4}),
		alert.AppendWire(nil, 7, []byte{6}), good(2)}
	if err := kclient.EnsureTopics(ctx, upstreamAddr, nil, kclient.Topic{Name: "up", Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	topic := "up"
	var msgs []*kafka.Message
	for _, v := range sent {
		msgs = append(msgs, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: v})
	}
	produceAll(t, upstreamAddr, msgs)

	var logs syncLog
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Ingest(runCtx, IngestConfig{Upstream: upstreamAddr, UpstreamTopic: topic, UpstreamRegistry: upReg,
			Bootstrap: hub, Partitions: 1, SchemasTopic: stream.SchemasTopic, FromBeginning: true,
			Log: slog.New(slog.NewTextHandler(&logs, nil))})
	}()
	var got []*kafka.Message
	for len(got) < len(sent) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		got = readTopic(t, ctx, hub, stream.AlertsTopic)
	}
	time.Sleep(time.Second) // nothing more may come
	got = readTopic(t, ctx, hub, stream.AlertsTopic)
	stop()
	if err := <-done; err != nil {
		t.Errorf("Ingest returned %v after its context ended, want nil", err)
	}
	if len(got) != len(sent) {
		t.Fatalf("the hub holds %d records, the upstream sent %d", len(got), len(sent))
	}
	for i, m := range got {
		if !bytes.Equal(m.Value, sent[i]) {
			t.Errorf("record %d: %q, want %q", i, m.Value, sent[i])
		}
	}
	var imported string
	ours.Read(func(st *registry.State) {
		imported, _ = st.Schema(4242)
	})
	if imported != synthetic {
		t.Errorf("our registry's schema 4242 is %.60q, want the upstream's", imported)
	}
	for _, want := range []string{"not in the Confluent wire format", "the upstream registry has no such schema",
		"our registry refused the upstream's schema"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the relay's log does not say %q:\n%s", want, logs.String())
		}
	}
}

type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestIngestStartsWhereItChose: a new relay without FromBeginning starts
// every upstream partition at its end, and saves that at once: stopped
// before its first alert and started again, it copies exactly what came
// meanwhile, nothing older and nothing less.
func TestIngestStartsWhereItChose(t *testing.T) {
	_, upstreamAddr := fakeCluster(t)
	_, hub := fakeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	upReg := upstreamRegistry(ctx, t, upstreamAddr, map[int]string{4242: alert.SchemaText(alert.SyntheticSchema())})
	topic := "up"
	if err := kclient.EnsureTopics(ctx, upstreamAddr, nil, kclient.Topic{Name: topic, Partitions: 3}); err != nil {
		t.Fatal(err)
	}
	gen := alert.NewGenerator(4, 0)
	write := func(first, n int) {
		var msgs []*kafka.Message
		for i := first; i < first+n; i++ {
			b, _, err := gen.Alert(alert.AppendWire(nil, 4242, nil), 1, i)
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: int32(i % 3)}, Value: b})
		}
		produceAll(t, upstreamAddr, msgs)
	}
	relay := func() (stop func()) {
		runCtx, cancel := context.WithCancel(ctx)
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- Ingest(runCtx, IngestConfig{Upstream: upstreamAddr, UpstreamTopic: topic, UpstreamRegistry: upReg,
				Bootstrap: hub, Partitions: 3, SchemasTopic: stream.SchemasTopic, Log: quietLog(), Ready: func() { close(ready) }})
		}()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("relay stopped before it was ready: %v", err)
		}
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Ingest returned %v after its context ended", err)
			}
		}
	}

	write(0, 30) // before the relay: not to be copied
	stop := relay()
	stop() // before any alert
	write(30, 30)
	stop = relay()
	var got []*kafka.Message
	for deadline := time.Now().Add(20 * time.Second); len(got) < 30 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		got = readTopic(t, ctx, hub, stream.AlertsTopic)
	}
	time.Sleep(time.Second) // nothing more may come
	got = readTopic(t, ctx, hub, stream.AlertsTopic)
	stop()
	seen := map[string]bool{}
	for _, m := range got {
		seen[string(m.Value)] = true
	}
	for i := range 60 {
		b, _, _ := gen.Alert(alert.AppendWire(nil, 4242, nil), 1, i)
		if seen[string(b)] != (i >= 30) {
			t.Errorf("alert %d on the hub: %v, want %v (written %s the relay first started)", i, seen[string(b)], i >= 30,
				map[bool]string{false: "before", true: "after"}[i >= 30])
		}
	}
	if len(got) != 30 {
		t.Errorf("the hub holds %d alerts, want the 30 written after the relay first started", len(got))
	}
}

// upstreamRegistry serves a registry on the upstream cluster at addr holding
// each schema under its id, and returns a client of it.
func upstreamRegistry(ctx context.Context, t *testing.T, addr string, schemas map[int]string) *registry.Client {
	t.Helper()
	store, err := service.Open(ctx, addr, nil, "_schemas", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	for id, text := range schemas {
		if _, err := store.Register(ctx, "up-value", text, id); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(service.NewServer(store, nil, quietLog()))
	t.Cleanup(srv.Close)
	reg, err := registry.NewClient(map[string]string{registry.SettingURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}
