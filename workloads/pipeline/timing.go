package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// timingSink writes timing events to a topic. A nil sink drops events, so
// workloads can run without timing.
type timingSink struct {
	p     *kafka.Producer
	topic string
	log   *slog.Logger

	trackOnce sync.Once
	reports   chan kafka.Event // delivery reports of EmitTracked
}

func newTimingSink(bootstrap string, conn map[string]string, topic string, log *slog.Logger) (*timingSink, error) {
	if topic == "" || bootstrap == "" {
		return nil, nil
	}
	// No delivery timeout: an event waits out a hub outage in the client.
	p, err := kafka.NewProducer(kclient.ProducerConfig(bootstrap, mergeKafka(map[string]string{"linger.ms": "50", "message.timeout.ms": "0"}, kclient.ConnSettings(conn))))
	if err != nil {
		return nil, fmt.Errorf("timing producer for %s: %w", bootstrap, err)
	}
	go drainEvents(p, log)
	return &timingSink{p: p, topic: topic, log: log}, nil
}

// Emit queues one event; delivery failures are logged, never fatal.
func (s *timingSink) Emit(ev timing.Event) {
	if s == nil {
		return
	}
	b, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("encode timing event", "err", err)
		return
	}
	err = s.p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &s.topic, Partition: kafka.PartitionAny}, Value: b}, nil)
	if err != nil {
		s.log.Error("queue timing event", "err", err)
	}
}

// EmitTracked queues ev and sends it to acked once the hub has stored it
// (at once when the sink drops events). A failed delivery is logged and
// not sent: the caller keeps the event and emits it again later.
func (s *timingSink) EmitTracked(ev timing.Event, acked chan<- timing.Event) {
	if s == nil {
		acked <- ev
		return
	}
	b, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("encode timing event", "err", err)
		return
	}
	s.trackOnce.Do(func() {
		s.reports = make(chan kafka.Event, 1024)
		go func() {
			for e := range s.reports {
				if m, ok := e.(*kafka.Message); ok {
					t := m.Opaque.(tracked)
					if m.TopicPartition.Error != nil {
						s.log.Error("timing event not delivered", "visit", t.ev.Visit, "err", m.TopicPartition.Error)
						continue
					}
					t.acked <- t.ev
				}
			}
		}()
	})
	err = s.p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &s.topic, Partition: kafka.PartitionAny},
		Value: b, Opaque: tracked{ev, acked}}, s.reports)
	if err != nil {
		s.log.Error("queue timing event", "err", err)
	}
}

// tracked is an event whose delivery someone waits for.
type tracked struct {
	ev    timing.Event
	acked chan<- timing.Event
}

// Close flushes queued events (see flush) and closes the producer.
func (s *timingSink) Close(ctx context.Context) {
	if s == nil {
		return
	}
	flush(ctx, s.p)
	s.p.Close()
	if s.reports != nil {
		close(s.reports)
	}
}

// drainEvents logs the delivery failures of a producer whose messages need no
// per-message handling, until the producer is closed.
func drainEvents(p *kafka.Producer, log *slog.Logger) {
	for ev := range p.Events() {
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				log.Error("delivery failed", "topic", *e.TopicPartition.Topic, "err", e.TopicPartition.Error)
			}
		case kafka.Error:
			log.Warn("kafka", "err", e)
		}
	}
}

// closeTimeout bounds how long a stopping workload waits for its queued
// messages (timing events, filtered alerts) to be delivered.
const closeTimeout = 10 * time.Second

// flush waits until every queued message of p is delivered, for at most
// closeTimeout, even when ctx has ended: a stopping workload still delivers
// what it has, but never hangs on an unreachable broker.
func flush(ctx context.Context, p *kafka.Producer) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	for p.Len() > 0 && ctx.Err() == nil {
		p.Flush(100)
	}
}

// ReadTiming reads every timing event on the topic so far, each once: a
// workload restarted after a crash may have sent one again (timing.Dedup).
func ReadTiming(ctx context.Context, bootstrap string, conn map[string]string, topic string) ([]timing.Event, error) {
	evs, err := ReadTimingRaw(ctx, bootstrap, conn, topic)
	evs, _ = timing.Dedup(evs)
	return evs, err
}

// ReadTimingRaw reads every timing event on the topic so far, repeats
// included.
func ReadTimingRaw(ctx context.Context, bootstrap string, conn map[string]string, topic string) ([]timing.Event, error) {
	var evs []timing.Event
	err := kclient.ReadAll(ctx, bootstrap, conn, topic, func(m *kafka.Message) error {
		var ev timing.Event
		if err := json.Unmarshal(m.Value, &ev); err != nil {
			return fmt.Errorf("timing event at %s: %w", m.TopicPartition, err)
		}
		evs = append(evs, ev)
		return nil
	})
	return evs, err
}
