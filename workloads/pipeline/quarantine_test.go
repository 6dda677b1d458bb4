package pipeline_test

import (
	"context"
	"log/slog"
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
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// TestRunawayFilterQuarantined: on a real broker, one shared filter
// process runs a cheap filter, one that hits its cost limit on every alert
// (about 20 ms each: 10,000 alerts would take minutes) and one that fails
// at run time on every alert, over a visit of 10,000 alerts. The runaway
// filter is quarantined once over its time budget and named in the report;
// the errors are counted by kind; the cheap filter's output is exactly an
// independent evaluation, and its lag is reported beside its lag when it
// runs alone over the same kind of visit (the runaway is deferred to the
// slow lane, so the two should be close).
func TestRunawayFilterQuarantined(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	broker := kafkabed.StartBrokerT(t)
	bootstrap := broker.Bootstrap()
	ensureStreamTopics(ctx, t, bootstrap)

	const perVisit, seed = 10000, 21
	cheap := filter.Spec{Name: "cheap", Expr: "alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0", MaxPerVisit: -1}
	runaway := filter.Spec{Name: "runaway", Expr: "alert.prvDiaSources.all(x, alert.prvDiaSources.all(y, " +
		"alert.prvDiaSources.all(z, x.psfFlux + y.psfFlux + z.psfFlux > 0.0)))"}
	broken := filter.Spec{Name: "broken", Expr: "alert.diaSource.noSuchField > 1.0"}

	// Each run: one visit, read by a filter process of its own.
	run := func(name string, specs ...filter.Spec) (lag time.Duration, sent pipeline.VisitResult, events []timing.Event) {
		t.Helper()
		for i := range specs {
			specs[i].Output = name + "-" + specs[i].Name
		}
		stop := runReady(ctx, t, func(ctx context.Context, ready func()) error {
			return pipeline.RunFilters(ctx, pipeline.FilterConfig{Bootstrap: bootstrap, Specs: specs, Name: name,
				SchemasTopic: stream.SchemasTopic, TimingTopic: stream.TimingTopic, Log: slog.New(slog.DiscardHandler), Ready: ready})
		})
		defer stop()
		err := pipeline.Produce(ctx, pipeline.ProduceConfig{Bootstrap: bootstrap, SchemasTopic: stream.SchemasTopic,
			Source: pipeline.NewSynthetic(seed, 0), AlertsPerVisit: perVisit, Interval: time.Second, Visits: 1, Run: name,
			TimingTopic: stream.TimingTopic, Log: slog.New(slog.DiscardHandler), OnVisit: func(v pipeline.VisitResult) { sent = v }})
		kafkabed.Must(t, err)
		waitFor(t, ctx, name+"'s completion events", func() bool {
			evs, err := pipeline.ReadTiming(ctx, bootstrap, nil, stream.TimingTopic)
			kafkabed.Must(t, err)
			events = pipeline.ForRun(evs, name)
			n := 0
			for _, e := range events {
				if e.Kind == timing.KindFilter {
					n++
				}
			}
			return n == len(specs)
		})
		for _, e := range events {
			if e.Kind == timing.KindFilter && e.Name == cheap.Name {
				lag = e.End.Sub(sent.End)
			}
		}
		// Quarantine events carry no run: take this visit's.
		evs, err := pipeline.ReadTiming(ctx, bootstrap, nil, stream.TimingTopic)
		kafkabed.Must(t, err)
		for _, e := range evs {
			if e.Kind == timing.KindQuarantine && e.Visit == sent.Visit {
				events = append(events, e)
			}
		}
		return lag, sent, events
	}
	alone, _, _ := run("alone", cheap)
	shared, visit, events := run("shared", cheap, runaway, broken)
	t.Logf("the cheap filter's lag: %.3f s alone, %.3f s beside a runaway and a broken filter", alone.Seconds(), shared.Seconds())

	report := timing.Build(events)
	var table strings.Builder
	kafkabed.Must(t, report.WriteTable(&table))
	byName := map[string]timing.FilterSummary{}
	for _, f := range report.Filters {
		byName[f.Name] = f
	}
	if r := byName[runaway.Name]; r.QuarantinedVisits != 1 || r.Skipped == 0 || r.Errors[filter.ErrKindCostLimit] == 0 {
		t.Errorf("the runaway filter: %+v, want quarantined in its visit, alerts skipped, cost-limit errors", r)
	}
	if len(report.Quarantines) != 1 || report.Quarantines[0].Filter != runaway.Name || !strings.Contains(table.String(), "runaway quarantined") {
		t.Errorf("quarantines %+v; the report:\n%s", report.Quarantines, table.String())
	}
	if b := byName[broken.Name]; b.Errors[filter.ErrKindNoSuchKey] != perVisit || b.QuarantinedVisits != 0 {
		t.Errorf("the broken filter: %+v, want %d no_such_key errors", b, perVisit)
	}
	if !strings.Contains(table.String(), "no_such_key 10000") {
		t.Errorf("the report does not count the broken filter's errors:\n%s", table.String())
	}
	t.Logf("report:\n%s", table.String())

	// The cheap filter's output: exactly the independent evaluation.
	gen := alert.NewGenerator(seed, 0)
	want := map[string]bool{}
	for i := range perVisit {
		_, tr, err := gen.Alert(nil, visit.Visit, i)
		kafkabed.Must(t, err)
		if tr.Snr > 5 && tr.PsfFlux > 36310 {
			want[strconv.FormatInt(tr.DiaSourceID, 10)] = true
		}
	}
	got := map[string]bool{}
	kafkabed.Must(t, kclient.ReadAll(ctx, bootstrap, nil, "shared-"+cheap.Name, func(m *kafka.Message) error {
		got[headerValue(m.Headers, stream.HeaderID)] = true
		return nil
	}))
	if len(got) != len(want) {
		t.Errorf("the cheap filter selected %d alerts, want %d", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("alert %s not selected by the cheap filter", id)
			break
		}
	}
}
