package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// TestFilterClosesHangingTransaction starts an exactly-once filter whose
// previous session Kafka left with a transaction open: its group's offset
// commit and a record in its output, in a transaction the coordinator
// never decided (as Kafka leaves one when a broker stops during a commit).
// Until that transaction is closed the group has no stable offsets and a
// read_committed reader of the output reads nothing past it; the filter
// must close it (aborted: the coordinator never committed it) and then
// filter a visit whole, its consumer getting every selected alert and
// never the aborted record.
func TestFilterClosesHangingTransaction(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := kafkabed.StartBrokerT(t, kafkabed.WithHangableTransactions())
	const name = "hung"
	ensureStreamTopics(ctx, t, b.Bootstrap(), kclient.Topic{Name: name, Partitions: 1})
	group := stream.FilterGroup(name)
	kafkabed.Must(t, b.HangTransaction(ctx, kafkabed.Hang{TxnID: stream.FilterTransactionalID(group),
		Records: map[string]string{name: "left open"},
		Offsets: []kafkabed.GroupOffset{{Group: group, Topic: stream.AlertsTopic, Offset: 0}}}))

	var mu sync.Mutex
	var got []pipeline.Received
	stop := runReady(ctx, t, func(ctx context.Context, r func()) error {
		return pipeline.RunFilters(ctx, pipeline.FilterConfig{Bootstrap: b.Bootstrap(), Name: name,
			Specs:        []filter.Spec{{Name: name, Output: name, Expr: filter.DefaultExpr, MaxPerVisit: 1000}},
			SchemasTopic: stream.SchemasTopic, FromBeginning: true, TimingTopic: stream.TimingTopic, Ready: r})
	}, func(ctx context.Context, r func()) error {
		return pipeline.Consume(ctx, pipeline.ConsumeConfig{Bootstrap: b.Bootstrap(), Topic: name, FromBeginning: true,
			TimingTopic: stream.TimingTopic, Ready: r, OnAlert: func(a pipeline.Received) error {
				mu.Lock()
				got = append(got, a)
				mu.Unlock()
				return nil
			}})
	})

	runID := fmt.Sprintf("hang-%d", time.Now().UnixNano())
	kafkabed.Must(t, pipeline.Produce(ctx, pipeline.ProduceConfig{
		Bootstrap: b.Bootstrap(), SchemasTopic: stream.SchemasTopic, Source: pipeline.NewSynthetic(3, 0),
		AlertsPerVisit: 1000, Interval: time.Second, Visits: 1, Run: runID, TimingTopic: stream.TimingTopic,
	}))
	evs, err := pipeline.WaitComplete(ctx, b.Bootstrap(), nil, stream.TimingTopic, runID, 1, 1, time.Minute)
	stop()
	if err != nil {
		t.Fatalf("the filter did not get past the hanging transaction: %v", err)
	}
	selected := -1
	for _, e := range evs {
		if e.Kind == timing.KindFilter && e.Name == name {
			selected = e.Selected
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if selected <= 0 || len(got) != selected {
		t.Errorf("consumer got %d alerts, the filter reported %d selected", len(got), selected)
	}
	for _, v := range readValues(t, b.Bootstrap(), name) {
		if v == "left open" {
			t.Error("the record of the hanging transaction is readable: it was committed, not aborted")
		}
	}
}

// readValues reads topic's committed values from the beginning until it
// has been idle for two seconds.
func readValues(t *testing.T, bootstrap, topic string) []string {
	t.Helper()
	c, err := kafka.NewConsumer(kclient.TransactionalConsumerConfig(bootstrap, "check-"+topic, true, nil))
	kafkabed.Must(t, err)
	defer c.Close()
	kafkabed.Must(t, c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}))
	var out []string
	for idle := time.Now(); time.Since(idle) < 2*time.Second; {
		if m, ok := c.Poll(100).(*kafka.Message); ok {
			out = append(out, string(m.Value))
			idle = time.Now()
		}
	}
	return out
}
