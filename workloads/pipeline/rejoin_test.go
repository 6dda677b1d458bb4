package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// TestConsumerOutOfGroupStartsANewClient: a consumer whose broker is down
// longer than its session stays out of its group; past OutOfGroupLimit it
// replaces its Kafka client (librdkafka was seen to keep such a consumer
// out for good). It must then receive every alert sent after the broker is
// back, and none of the earlier ones twice.
func TestConsumerOutOfGroupStartsANewClient(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := kafkabed.StartBrokerT(t)
	const topic = "rejoin"
	for _, tp := range []kclient.Topic{{Name: topic, Partitions: 1}, {Name: stream.TimingTopic, Partitions: 1}} {
		kafkabed.Must(t, kclient.EnsureTopics(ctx, b.Bootstrap(), nil, tp))
	}

	var logs syncBuffer
	var mu sync.Mutex
	got := map[string]int{}
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range got {
			n += c
		}
		return n
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	ready := make(chan struct{}, 1)
	go func() {
		done <- pipeline.Consume(runCtx, pipeline.ConsumeConfig{Bootstrap: b.Bootstrap(), Topic: topic, FromBeginning: true,
			TimingTopic: stream.TimingTopic, OutOfGroupLimit: 3 * time.Second,
			Log:   slog.New(slog.NewTextHandler(&logs, nil)),
			Ready: func() { ready <- struct{}{} },
			OnAlert: func(r pipeline.Received) error {
				mu.Lock()
				got[r.ID]++
				mu.Unlock()
				return nil
			}})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-ctx.Done():
		t.Fatal("consumer not ready")
	}

	send(t, b.Bootstrap(), topic, 1, 0, 5)
	waitFor(t, ctx, "the first 5 alerts", func() bool { return total() == 5 })

	kafkabed.Must(t, b.Shutdown())
	time.Sleep(20 * time.Second) // past the 10 s session and the 3 s limit
	kafkabed.Must(t, b.Restart(ctx))
	send(t, b.Bootstrap(), topic, 2, 5, 5)
	waitFor(t, ctx, "the 5 alerts sent after the restart", func() bool { return total() >= 10 })
	time.Sleep(2 * time.Second) // room for a copy to show up
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 10 {
		if id := "a" + strconv.Itoa(i); got[id] != 1 {
			t.Errorf("alert %s received %d times, want once", id, got[id])
		}
	}
	if !strings.Contains(logs.String(), "starting a new consumer") {
		t.Errorf("the consumer never replaced its client; its log:\n%s", logs.String())
	}
}

// send writes n filtered alerts a<first>..a<first+n-1> of visit to topic,
// with the headers a filter gives them.
func send(t *testing.T, bootstrap, topic string, visit int64, first, n int) {
	t.Helper()
	p, err := kafka.NewProducer(kclient.ProducerConfig(bootstrap, nil))
	kafkabed.Must(t, err)
	defer p.Close()
	deliveries := make(chan kafka.Event, n)
	for i := range n {
		h := []kafka.Header{
			{Key: stream.HeaderRun, Value: []byte("rejoin")},
			{Key: stream.HeaderVisit, Value: []byte(strconv.FormatInt(visit, 10))},
			{Key: stream.HeaderID, Value: []byte(fmt.Sprintf("a%d", first+i))},
			{Key: stream.HeaderRank, Value: []byte(strconv.Itoa(i + 1))},
		}
		kafkabed.Must(t, p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0},
			Value: []byte("alert"), Headers: h}, deliveries))
	}
	for range n {
		select {
		case ev := <-deliveries:
			if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
				t.Fatal(m.TopicPartition.Error)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("alerts not delivered in 30 s")
		}
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s did not arrive within a minute", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConsumeUntilEnd reads a topic to its end and stops by itself, as a
// user fetching what is there would; a second read by the same group gets
// only what came since, each alert once.
func TestConsumeUntilEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := kafkabed.StartBrokerT(t)
	const topic = "until-end"
	for _, tp := range []kclient.Topic{{Name: topic, Partitions: 2}, {Name: stream.TimingTopic, Partitions: 1}} {
		kafkabed.Must(t, kclient.EnsureTopics(ctx, b.Bootstrap(), nil, tp))
	}
	read := func() []string {
		t.Helper()
		var ids []string
		rctx, stop := context.WithTimeout(ctx, 60*time.Second)
		defer stop()
		err := pipeline.Consume(rctx, pipeline.ConsumeConfig{Bootstrap: b.Bootstrap(), Topic: topic, Group: "reader",
			FromBeginning: true, UntilEnd: true, TimingTopic: stream.TimingTopic,
			OnAlert: func(r pipeline.Received) error { ids = append(ids, r.ID); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		if rctx.Err() != nil {
			t.Fatalf("the consumer did not stop at the end within a minute (read %d)", len(ids))
		}
		return ids
	}
	send(t, b.Bootstrap(), topic, 1, 0, 5)
	if got := read(); len(got) != 5 {
		t.Errorf("first read: %d alerts %v, want the 5 sent", len(got), got)
	}
	if got := read(); len(got) != 0 {
		t.Errorf("second read, nothing new: %d alerts %v", len(got), got)
	}
	send(t, b.Bootstrap(), topic, 2, 5, 3)
	if got := read(); strings.Join(got, ",") != "a5,a6,a7" {
		t.Errorf("third read: %v, want the 3 sent since", got)
	}
}
