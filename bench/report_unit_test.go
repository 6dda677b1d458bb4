package bench

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// These tests need no Kafka: they check what docs/benchmarks.md shows of
// made-up measurements.

func TestReportCeilingAndProducer(t *testing.T) {
	tunedProps := maps.Clone(perfProducerProps)
	tunedProps["batch.size"] = "1048576"
	const size = 80000
	ceil := map[string]ceiling{"80KB": {
		producer:    kafkabed.PerfResult{Records: 30000, MBPerSec: 150, RecordsPerSec: 2000, CPU: 20 * time.Second},
		producerHub: 5 * time.Second,
		tuned: perfTrial{props: tunedProps, change: "the winner", records: 30000, final: true,
			res: kafkabed.PerfResult{MBPerSec: 250, RecordsPerSec: 3300, P99Ms: 500, CPU: 8 * time.Second}, hub: 4 * time.Second},
		trials: []perfTrial{
			{props: perfProducerProps, records: 10000, kept: true, res: kafkabed.PerfResult{MBPerSec: 100}},
			{props: tunedProps, change: "batch.size=1048576", records: 10000, kept: true, res: kafkabed.PerfResult{MBPerSec: 200}},
			{props: tunedProps, change: "the winner", records: 30000, final: true, res: kafkabed.PerfResult{MBPerSec: 250}},
			{props: tunedProps, change: "the winner", records: 30000, final: true, res: kafkabed.PerfResult{MBPerSec: 240}},
		},
		size: size, load: "1.00 2.00 3.00",
	}}
	// Three visits of 10,000 alerts, 0.8 GB in 2 s each: 381.5 MiB/s.
	var visits []pipeline.VisitResult
	for i := range 3 {
		start := time.Unix(int64(100*i), 0)
		visits = append(visits, pipeline.VisitResult{Start: start, End: start.Add(2 * time.Second), Alerts: alertsPerVisit, Bytes: alertsPerVisit * size})
	}
	prods := []producerResult{
		{kind: kinds[0], parallel: 1, visits: visits, cpu: 3 * time.Second, hub: 4 * time.Second},
		{kind: kinds[0], parallel: 2, visits: visits, cpu: 3 * time.Second, hub: 4 * time.Second},
	}
	// The librdkafka loop with 1 sender: 2400 MiB in 6 s, 400 MiB/s; none
	// with 2.
	loop := rdTrial{props: map[string]string{"linger.ms": "0"}, change: "the winner", records: 30000, bytes: 2400 * mib,
		elapsed: 6 * time.Second, cpu: 3 * time.Second, hub: 6 * time.Second, final: true}
	rd := map[string]map[int]rdCeiling{"80KB": {1: {parallel: 1, best: loop, load: "0.50 1.00 1.50", trials: []rdTrial{
		{records: 10000, bytes: 700 * mib, elapsed: 2 * time.Second, kept: true},
		{props: map[string]string{"linger.ms": "0"}, change: "linger.ms=0", records: 10000, bytes: 800 * mib, elapsed: 2 * time.Second, kept: true},
		loop,
	}}}}

	var r kafkaReport
	r.ceilings(kinds, map[string]int{"80KB": size}, ceil)
	r.rdCeilings(kinds, map[string]int{"80KB": size}, rd)
	r.producers(prods, ceil, rd)
	r.targets(nil, prods, ceil, rd)
	out := r.String()
	for _, want := range []string{
		"| 80KB | 150.0 | 250.0 | 3300 | 500 | batch.size=1048576 | 1.00 2.00 3.00 |",
		"| 80KB | our settings, payloads made beforehand | 10000 | 100.0 |",
		"| 80KB | batch.size=1048576 | 10000 | 200.0 | 0.0 | 0.0 | yes |",
		"| 80KB | the winner | 30000 | 250.0 | 0.0 | 0.0 | best run |",
		"| 80KB | the winner | 30000 | 240.0 | 0.0 | 0.0 |  |",
		// the librdkafka loop, its best run and every run
		"| 80KB | 1 | 400.0 | 5000 | linger.ms=0 | 1.28 | 2.56 | 0.50 1.00 1.50 |",
		"| 80KB | 1 | our settings | 10000 | 350.0 | 0.0 | 0.0 | yes |",
		"| 80KB | 1 | linger.ms=0 | 10000 | 400.0 | 0.0 | 0.0 | yes |",
		"| 80KB | 1 | the winner | 30000 | 400.0 | 3.0 | 6.0 | best run |",
		// each producer row against the faster ceiling of its sender
		// count, never the tool as it comes, and named
		"| 80KB | 1 | 2.000 | 2.000 | 381.5 | 400.0 | librdkafka loop, 1 sender | 95 % | 5000 |",
		"| 80KB | 2 | 2.000 | 2.000 | 381.5 | 250.0 | kafka-producer-perf-test tuned | 153 % | 5000 |",
		"| 80KB | kafka-producer-perf-test as it comes | 150.0 | 2.24 | 8.95 | 2.24 |",
		"| 80KB | librdkafka loop, 1 sender (best run) | 400.0 | 2.34 | 1.28 | 2.56 |",
		"| 80KB | our producer, 1 sender | 381.5 | 2.24 | 1.34 | 1.79 |",
		"| 80KB | our producer, 2 senders | 381.5 | 2.24 | 1.34 | 1.79 |",
		"Why our producer keeps up with, or outruns, the tuned Java tool",
		"| 381.5 of 400.0 MiB/s (95 %, librdkafka loop, 1 sender) | yes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestReportPipelineFilterDoneAnd50PerNode(t *testing.T) {
	t0 := time.Unix(1000, 0)
	rep := func(done ...time.Duration) timing.Report {
		ev := []timing.Event{{Kind: timing.KindProduce, Visit: 1, Name: "p", Start: t0, End: t0.Add(time.Second), Alerts: 1}}
		for i, d := range done {
			ev = append(ev, timing.Event{Kind: timing.KindFilter, Visit: 1, Name: string(rune('A' + i)), End: t0.Add(d), Alerts: 1})
		}
		return timing.Build(ev)
	}
	sc := func(n int, shared bool) scenario {
		return scenario{kind: kinds[0], filters: n, shared: shared, visits: 1}
	}
	res := []scenarioResult{
		{sc: sc(20, true), rep: rep(2*time.Second, 4*time.Second)},
		{sc: sc(200, true), rep: rep(3 * time.Second)},
		{sc: sc(originalFiltersPerNode, true), rep: rep(5*time.Second, 7*time.Second)},
		{sc: scenario{kind: kinds[1], filters: originalFiltersPerNode, visits: 1}, rep: rep(time.Second)},
	}
	var r kafkaReport
	r.pipeline(res, nil, nil, nil)
	out := r.String()
	for _, want := range []string{
		"| filter done mean s | filter done max s |",
		"| original (2018, 12 × m4.4xlarge, 20 filters per node) | 15.76 | – | 0.25 (mean) | 5.28 | – | – | – | – | – |",
		"| 80KB 20 filters shared | 1.000 | 1.000 | 3.000 | 0.000 | 0.000 | 3.000 | 4.000 |",
		"| original (2018, 50 filters per node) | – | – | – | – | – | – | – | – | – |\n| 80KB 50 filters shared |",
		"| 80KB 50 filters shared | 1.000 | 4.000 | 6.000 | 0.000 | 0.000 | 6.000 | 7.000 |",
		"| small 50 filters isolated |",
		"last filter done 3.0 s after the visit's start at most | yes |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "original (2018, 50 filters per node)"); n != 1 {
		t.Errorf("the original's 50-filter row appears %d times", n)
	}
}

func TestSelector(t *testing.T) {
	for _, c := range []struct {
		only, name string
		runs       bool
	}{
		{"", "SASL_SSL producer 80KB parallel 2", true},
		{"ceiling,producer", "ceiling librdkafka small parallel 4", true},
		{"ceiling,producer", "pipeline 80KB 20 filters shared", false},
		{"ceiling,producer,-SASL_SSL", "SASL_SSL producer 80KB parallel 2", false},
		{"ceiling,producer,-SASL_SSL", "producer 80KB parallel 2", true},
		{"-librdkafka", "ceiling librdkafka 80KB parallel 1", false},
		{"-librdkafka", "ceiling producer 80KB", true},
	} {
		if got := selector(c.only).runs(c.name); got != c.runs {
			t.Errorf("MINIBROKER_BENCH_ONLY=%q runs %q: %v, want %v", c.only, c.name, got, c.runs)
		}
	}
}

func TestScenariosInclude50PerNode(t *testing.T) {
	var got []string
	for _, s := range scenarios(2, time.Second) {
		if s.filters == originalFiltersPerNode {
			got = append(got, s.name())
		}
	}
	want := []string{"pipeline 80KB 50 filters shared", "pipeline small 50 filters isolated"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("50-filter scenarios %q, want %q", got, want)
	}
}
