package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

const rubinAlert = "../../../shared/data/rubin-alert-v11/fakeAlert.avro"

// TestReplayRubinAlertsThroughAFilter replays the real Rubin v11 sample
// alert: the filter knows its schema only from the schemas topic, and the
// cap works per visit because the producer rewrites diaSource.visit.
func TestReplayRubinAlertsThroughAFilter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bootstrap := c.ListenAddrs()[0]
	if err := kclient.EnsureTopics(ctx, bootstrap, nil, kclient.Topic{Name: stream.AlertsTopic, Partitions: 2}); err != nil {
		t.Fatal(err)
	}

	src, skipped, err := pipeline.NewReplay(alert.DefaultVisitPath, rubinAlert)
	if err == nil && len(skipped) > 0 {
		err = fmt.Errorf("bad blocks skipped: %v", skipped)
	}
	if err != nil {
		t.Fatalf("loading the Rubin sample alert (from the shared data folder): %v", err)
	}
	spec := filter.Spec{Name: "RBand", Output: "RBand", Expr: `alert.diaSource.band == "r" && alert.diaSource.snr > 5.0`, MaxPerVisit: 20}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	ready := make(chan struct{}, 2)
	errs := make(chan error, 2)
	var mu sync.Mutex
	got := map[int64][]int{} // visit -> ranks
	wg.Add(2)
	go func() {
		defer wg.Done()
		errs <- pipeline.RunFilters(runCtx, pipeline.FilterConfig{Bootstrap: bootstrap, Specs: []filter.Spec{spec},
			SchemasTopic: stream.SchemasTopic, FromBeginning: true, TimingTopic: stream.TimingTopic,
			Ready: func() { ready <- struct{}{} }})
	}()
	go func() {
		defer wg.Done()
		errs <- pipeline.Consume(runCtx, pipeline.ConsumeConfig{Bootstrap: bootstrap, Topic: "RBand", FromBeginning: true,
			TimingTopic: stream.TimingTopic, Ready: func() { ready <- struct{}{} },
			OnAlert: func(r pipeline.Received) error {
				mu.Lock()
				got[r.Visit] = append(got[r.Visit], r.Rank)
				mu.Unlock()
				return nil
			}})
	}()
	for range 2 {
		select {
		case <-ready:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("filter and consumer not ready")
		}
	}
	run := "replay-test"
	var visits []int64
	if err := pipeline.Produce(ctx, pipeline.ProduceConfig{Bootstrap: bootstrap, SchemasTopic: stream.SchemasTopic,
		Source: src, AlertsPerVisit: 50, Interval: 200 * time.Millisecond, Visits: 2, Run: run,
		TimingTopic: stream.TimingTopic, OnVisit: func(v pipeline.VisitResult) { visits = append(visits, v.Visit) }}); err != nil {
		t.Fatal(err)
	}
	evs, err := pipeline.WaitComplete(ctx, bootstrap, nil, stream.TimingTopic, run, 1, 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	wg.Wait()

	for _, e := range evs {
		if e.Kind != timing.KindFilter {
			continue
		}
		if e.Alerts != 50 || e.Matched != 50 || e.Selected != 20 || e.DeadLetters != 0 {
			t.Errorf("visit %d: filter read %d, matched %d, selected %d, dead %d; want 50, 50, 20, 0",
				e.Visit, e.Alerts, e.Matched, e.Selected, e.DeadLetters)
		}
	}
	for _, v := range visits {
		ranks := got[v]
		if len(ranks) != 20 {
			t.Errorf("visit %d: consumer got %d alerts, want the cap of 20 (is diaSource.visit rewritten per visit?)", v, len(ranks))
		}
		for i, r := range ranks {
			if r != i+1 {
				t.Errorf("visit %d: alert %d has rank %d", v, i, r)
			}
		}
	}
}
