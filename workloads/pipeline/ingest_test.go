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
	upStore, err := service.Open(ctx, upstreamAddr, nil, "_schemas", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer upStore.Close()
	synthetic := alert.SchemaText(alert.SyntheticSchema())
	other := `{"type":"record","name":"other","fields":[{"name":"x","type":"int"}]}`
	for id, text := range map[int]string{4242: synthetic, 7: other} {
		if _, err := upStore.Register(ctx, "up-value", text, id); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(service.NewServer(upStore, nil, quietLog()))
	defer srv.Close()
	upReg, err := registry.NewClient(map[string]string{registry.SettingURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
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
