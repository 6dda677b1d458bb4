package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// TestSlowFilterDeferredAcrossRestart: in a shared process, a filter that
// is slow on every alert (but within its budget) is moved to the slow
// lane, so the cheap filter beside it completes the visit before it. The
// process is stopped while the slow filter is still behind, and a new
// process finishes its work from the saved state: both filters' outputs
// are exactly an independent evaluation, no alert twice, ranks 1..n, and
// each filter's completion event is sent once with the right counts.
func TestSlowFilterDeferredAcrossRestart(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{"message.max.bytes": fmt.Sprint(kclient.MaxMessageBytes)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ensureStreamTopics(ctx, t, addr)

	const perVisit, seed = 3000, 31
	cheap := filter.Spec{Name: "cheap", Expr: "alert.diaSource.snr > 5.0", MaxPerVisit: -1}
	// Each evaluation compares every pair of the alert's up to 30 earlier
	// sources (about 0.3 ms); the pairs always pass, so it selects snr > 7.
	slow := filter.Spec{Name: "slow", MaxPerVisit: -1, TimeBudget: time.Minute,
		Expr: "(alert.prvDiaSources == null || alert.prvDiaSources.all(x, alert.prvDiaSources.all(y, " +
			"x.psfFlux + y.psfFlux > -1.0e30))) && alert.diaSource.snr > 7.0"}
	specs := []filter.Spec{cheap, slow}
	var logs syncBuffer
	start := func() func() []error {
		return runReady(ctx, t, func(ctx context.Context, ready func()) error {
			return pipeline.RunFilters(ctx, pipeline.FilterConfig{Bootstrap: addr, Specs: specs, Name: "lane",
				SchemasTopic: stream.SchemasTopic, TimingTopic: stream.TimingTopic, FromBeginning: true,
				Log: slog.New(slog.NewTextHandler(&logs, nil)), Ready: ready})
		})
	}
	filterEvents := func() map[string][]timing.Event {
		evs, err := pipeline.ReadTiming(ctx, addr, nil, stream.TimingTopic)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]timing.Event{}
		for _, e := range evs {
			if e.Kind == timing.KindFilter {
				out[e.Name] = append(out[e.Name], e)
			}
		}
		return out
	}

	stop := start()
	var sent pipeline.VisitResult
	if err := pipeline.Produce(ctx, pipeline.ProduceConfig{Bootstrap: addr, SchemasTopic: stream.SchemasTopic,
		Source: pipeline.NewSynthetic(seed, 0), AlertsPerVisit: perVisit, Interval: time.Second, Visits: 1, Run: "lane",
		TimingTopic: stream.TimingTopic, Log: slog.New(slog.DiscardHandler), OnVisit: func(v pipeline.VisitResult) { sent = v }}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the cheap filter's completion event", func() bool { return len(filterEvents()[cheap.Name]) > 0 })
	early := filterEvents()
	if errs := stop(); len(errs) > 0 {
		t.Fatalf("first process: %v", errs)
	}
	if !strings.Contains(logs.String(), "slow filter moved out of the inline loop") {
		t.Errorf("the slow filter was not deferred; log:\n%s", logs.String())
	}
	if len(early[slow.Name]) > 0 {
		t.Errorf("the slow filter completed the visit before the cheap one's event was read: the cheap filter waited for it")
	}
	t.Logf("the cheap filter completed the visit %.3f s after it was sent; the first process stopped with the slow filter behind",
		early[cheap.Name][0].End.Sub(sent.End).Seconds())

	stop = start()
	waitFor(t, ctx, "the slow filter's completion event", func() bool { return len(filterEvents()[slow.Name]) > 0 })
	time.Sleep(time.Second) // anything sent twice would show now
	if errs := stop(); len(errs) > 0 {
		t.Fatalf("second process: %v", errs)
	}

	gen := alert.NewGenerator(seed, 0)
	want := map[string]map[string]bool{cheap.Name: {}, slow.Name: {}}
	for i := range perVisit {
		_, tr, err := gen.Alert(nil, sent.Visit, i)
		if err != nil {
			t.Fatal(err)
		}
		id := strconv.FormatInt(tr.DiaSourceID, 10)
		if tr.Snr > 5 {
			want[cheap.Name][id] = true
		}
		if tr.Snr > 7 {
			want[slow.Name][id] = true
		}
	}
	events := filterEvents()
	for _, s := range specs {
		got := map[string]bool{}
		ranks := map[string]bool{}
		if err := kclient.ReadAll(ctx, addr, nil, s.Name, func(m *kafka.Message) error {
			id, rank := headerValue(m.Headers, stream.HeaderID), headerValue(m.Headers, stream.HeaderRank)
			if got[id] || ranks[rank] {
				t.Errorf("%s: alert %s (rank %s) written twice", s.Name, id, rank)
			}
			got[id], ranks[rank] = true, true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		missing := 0
		for id := range want[s.Name] {
			if !got[id] {
				missing++
			}
		}
		if missing > 0 || len(got) != len(want[s.Name]) {
			t.Errorf("%s: wrote %d alerts, want %d; %d of those wanted are missing", s.Name, len(got), len(want[s.Name]), missing)
		}
		for r := 1; r <= len(want[s.Name]); r++ {
			if !ranks[strconv.Itoa(r)] {
				t.Errorf("%s: no alert of rank %d", s.Name, r)
				break
			}
		}
		evs := events[s.Name]
		if len(evs) != 1 || evs[0].Alerts != perVisit || evs[0].Selected != len(want[s.Name]) || evs[0].Matched != len(want[s.Name]) {
			t.Errorf("%s: completion events %+v, want one with %d alerts, %d matched and selected", s.Name, evs, perVisit, len(want[s.Name]))
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.String())
	}
}
