package pipeline_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// TestNewFilterStoppedBeforeItsFirstAlert: a new filter reads from the end
// of the stream (a visit sent before it started is not its business), then
// stops before any alert came. A visit sent while it is down must be
// filtered when it starts again: it resumes where it first started, not at
// the end again. Exactly-once, and at-least-once (whose path consumers
// share).
func TestNewFilterStoppedBeforeItsFirstAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	for _, alo := range []bool{false, true} {
		t.Run(map[bool]string{false: "exactly once", true: "at least once"}[alo], func(t *testing.T) {
			newFilterStoppedBeforeItsFirstAlert(t, alo)
		})
	}
}

func newFilterStoppedBeforeItsFirstAlert(t *testing.T, atLeastOnce bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := kafkabed.StartBrokerT(t)
	ensureStreamTopics(ctx, t, b.Bootstrap())
	const name = "late"
	produce := func(run string) {
		t.Helper()
		kafkabed.Must(t, pipeline.Produce(ctx, pipeline.ProduceConfig{
			Bootstrap: b.Bootstrap(), SchemasTopic: stream.SchemasTopic, Source: pipeline.NewSynthetic(5, 0),
			AlertsPerVisit: 500, Interval: time.Second, Visits: 1, Run: run, TimingTopic: stream.TimingTopic,
		}))
	}
	// start runs the filter and, with a consumer, its consumer until stop
	// is called; it returns once they are ready.
	start := func(withConsumer bool) (stop func()) {
		t.Helper()
		parts := []func(context.Context, func()) error{func(ctx context.Context, r func()) error {
			return pipeline.RunFilters(ctx, pipeline.FilterConfig{Bootstrap: b.Bootstrap(), Name: name,
				Specs:        []filter.Spec{{Name: name, Output: name, Expr: filter.DefaultExpr, MaxPerVisit: 1000}},
				SchemasTopic: stream.SchemasTopic, TimingTopic: stream.TimingTopic, AtLeastOnce: atLeastOnce, Ready: r})
		}}
		if withConsumer {
			parts = append(parts, func(ctx context.Context, r func()) error {
				return pipeline.Consume(ctx, pipeline.ConsumeConfig{Bootstrap: b.Bootstrap(), Topic: name, FromBeginning: true,
					TimingTopic: stream.TimingTopic, Ready: r, OnAlert: func(pipeline.Received) error { return nil }})
			})
		}
		stopParts := runReady(ctx, t, parts...)
		return func() {
			for _, err := range stopParts() {
				t.Error(err)
			}
		}
	}

	before := fmt.Sprintf("before-%d", time.Now().UnixNano())
	produce(before)
	stop := start(false)
	time.Sleep(3 * time.Second) // idle: no alert comes
	stop()

	during := fmt.Sprintf("during-%d", time.Now().UnixNano())
	produce(during)
	stop = start(true)
	defer stop()
	if _, err := pipeline.WaitComplete(ctx, b.Bootstrap(), nil, stream.TimingTopic, during, 1, 1, time.Minute); err != nil {
		t.Fatalf("the visit sent while the new filter was down was not filtered: %v", err)
	}
	evs, err := pipeline.ReadTiming(ctx, b.Bootstrap(), nil, stream.TimingTopic)
	kafkabed.Must(t, err)
	for _, e := range pipeline.ForRun(evs, before) {
		if e.Kind == timing.KindFilter {
			t.Errorf("the filter finished visit %d, sent before it first started", e.Visit)
		}
	}
}
