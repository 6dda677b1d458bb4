package timing

import (
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// testEvents: visits 1 and 2 complete, visit 3 without a produce event,
// one invalid event; filter B of visit 2 finishes 10 ms before the
// producer (skewed clocks).
func testEvents() []Event {
	ev := []Event{
		{Kind: KindProduce, Run: "r1", Visit: 1, Name: "producer", Start: at(0), End: at(ms(12000)), Alerts: 10000, Bytes: 8_000_000, DeadLetters: 1},
		{Kind: KindFilter, Visit: 1, Name: "A", End: at(ms(12200)), Alerts: 10000, Matched: 30, Selected: 20},
		{Kind: KindFilter, Visit: 1, Name: "B", End: at(ms(12300)), Alerts: 10000, Matched: 5, Selected: 5, DeadLetters: 2},
		{Kind: KindProduce, Run: "r1", Visit: 2, Name: "producer", Start: at(ms(39000)), End: at(ms(55000)), Alerts: 10000, Bytes: 8_000_000},
		{Kind: KindFilter, Visit: 2, Name: "A", End: at(ms(55300)), Alerts: 10000, Matched: 25, Selected: 20},
		{Kind: KindFilter, Visit: 2, Name: "B", End: at(ms(54990)), Alerts: 10000, Matched: 3, Selected: 3},
		{Kind: KindFilter, Visit: 3, Name: "A", End: at(ms(80000)), Alerts: 9000, Matched: 40, Selected: 20},
		{Kind: KindConsume, Visit: 3, Name: "cA", Source: "A", End: at(ms(79000)), Rank: 1, DeadLetters: 1},
		{Kind: "bogus", Visit: 1, Name: "x", End: at(0)},
	}
	for r := 1; r <= 20; r++ {
		ev = append(ev,
			Event{Kind: KindConsume, Visit: 1, Name: "cA", Source: "A", End: at(ms(250 * r)), Rank: r},
			Event{Kind: KindConsume, Visit: 2, Name: "cA", Source: "A", End: at(ms(39000 + 300*r)), Rank: r})
	}
	// A redelivered 20th alert arriving later does not count.
	ev = append(ev, Event{Kind: KindConsume, Visit: 1, Name: "cA", Source: "A", End: at(ms(6000)), Rank: 20})
	for r := 1; r <= 5; r++ {
		ev = append(ev, Event{Kind: KindConsume, Visit: 1, Name: "cB", Source: "B", End: at(ms(1100 * r)), Rank: r})
	}
	for r := 1; r <= 3; r++ {
		ev = append(ev, Event{Kind: KindConsume, Visit: 2, Name: "cB", Source: "B", End: at(ms(39000 + 1500*r)), Rank: r})
	}
	rand.New(rand.NewSource(1)).Shuffle(len(ev), func(i, j int) { ev[i], ev[j] = ev[j], ev[i] })
	return ev
}

func TestBuild(t *testing.T) {
	r := Build(testEvents())

	v1 := Visit{
		Visit: 1, Run: "r1", Complete: true, Producers: 1, Start: at(0), End: at(ms(12000)), Send: ms(12000),
		Alerts: 10000, Bytes: 8_000_000, MBps: 8_000_000 / 1e6 / 12.0,
		FiltersFinished: 2, ConsumerCount: 2, Selected: 25, DeadLetters: 3,
		Lag:     Summary{N: 2, Mean: ms(250), P50: ms(200), P99: ms(300), Max: ms(300), Min: ms(200)},
		Done:    Summary{N: 2, Mean: ms(12250), P50: ms(12200), P99: ms(12300), Max: ms(12300), Min: ms(12200)},
		Latency: Summary{N: 2, Mean: ms(5250), P50: ms(5000), P99: ms(5500), Max: ms(5500), Min: ms(5000)},
		Filters: []FilterVisit{
			{Name: "A", End: at(ms(12200)), Lag: ms(200), Done: ms(12200), Alerts: 10000, Matched: 30, Selected: 20, Events: 1},
			{Name: "B", End: at(ms(12300)), Lag: ms(300), Done: ms(12300), Alerts: 10000, Matched: 5, Selected: 5, DeadLetters: 2, Events: 1},
		},
		Consumers: []ConsumerVisit{
			{Name: "cA", Source: "A", Received: 21, Rank: 20, Arrived: at(ms(5000)), Latency: ms(5000)},
			{Name: "cB", Source: "B", Received: 5, Rank: 5, Arrived: at(ms(5500)), Latency: ms(5500)},
		},
	}
	v2 := Visit{
		Visit: 2, Run: "r1", Complete: true, Producers: 1, Start: at(ms(39000)), End: at(ms(55000)), Send: ms(16000),
		Alerts: 10000, Bytes: 8_000_000, MBps: 0.5,
		FiltersFinished: 2, ConsumerCount: 2, Selected: 23,
		Lag:     Summary{N: 2, Mean: ms(145), P50: ms(-10), P99: ms(300), Max: ms(300), Min: ms(-10)},
		Done:    Summary{N: 2, Mean: ms(16145), P50: ms(15990), P99: ms(16300), Max: ms(16300), Min: ms(15990)},
		Latency: Summary{N: 2, Mean: ms(5250), P50: ms(4500), P99: ms(6000), Max: ms(6000), Min: ms(4500)},
		Filters: []FilterVisit{
			{Name: "A", End: at(ms(55300)), Lag: ms(300), Done: ms(16300), Alerts: 10000, Matched: 25, Selected: 20, Events: 1},
			{Name: "B", End: at(ms(54990)), Lag: ms(-10), Done: ms(15990), Alerts: 10000, Matched: 3, Selected: 3, Events: 1},
		},
		Consumers: []ConsumerVisit{
			{Name: "cA", Source: "A", Received: 20, Rank: 20, Arrived: at(ms(45000)), Latency: ms(6000)},
			{Name: "cB", Source: "B", Received: 3, Rank: 3, Arrived: at(ms(43500)), Latency: ms(4500)},
		},
	}
	v3 := Visit{
		Visit: 3, FiltersFinished: 1, ConsumerCount: 1, Selected: 20, DeadLetters: 1,
		Filters:   []FilterVisit{{Name: "A", End: at(ms(80000)), Alerts: 9000, Matched: 40, Selected: 20, Events: 1}},
		Consumers: []ConsumerVisit{{Name: "cA", Source: "A", Received: 1, Rank: 1, Arrived: at(ms(79000)), DeadLetters: 1}},
	}
	want := Report{
		Visits:   []Visit{v1, v2, v3},
		Producer: Summary{N: 2, Mean: ms(14000), P50: ms(12000), P99: ms(16000), Max: ms(16000), Min: ms(12000)},
		// lags -10, 200, 300, 300 ms
		FilterLag: Summary{N: 4, Mean: ms(197) + 500*time.Microsecond, P50: ms(200), P99: ms(300), Max: ms(300), Min: ms(-10)},
		// latencies 4.5, 5, 5.5, 6 s
		ConsumerLatency: Summary{N: 4, Mean: ms(5250), P50: ms(5000), P99: ms(6000), Max: ms(6000), Min: ms(4500)},
		// from each visit's start to each filter done: 12.2, 12.3, 15.99, 16.3 s
		FilterDone: Summary{N: 4, Mean: ms(14197) + 500*time.Microsecond, P50: ms(12300), P99: ms(16300), Max: ms(16300), Min: ms(12200)},
		Throughput: RateSummary{N: 2, Mean: (0.5 + v1.MBps) / 2, P50: 0.5, P99: 8.0 / 12, Max: 8.0 / 12, Min: 0.5},
		Filters: []FilterSummary{
			{Name: "A", Visits: 2, Lag: Summary{N: 2, Mean: ms(250), P50: ms(200), P99: ms(300), Max: ms(300), Min: ms(200)},
				Done:   Summary{N: 2, Mean: ms(14250), P50: ms(12200), P99: ms(16300), Max: ms(16300), Min: ms(12200)},
				Alerts: 20000, Matched: 55, Selected: 40},
			{Name: "B", Visits: 2, Lag: Summary{N: 2, Mean: ms(145), P50: ms(-10), P99: ms(300), Max: ms(300), Min: ms(-10)},
				Done:   Summary{N: 2, Mean: ms(14145), P50: ms(12300), P99: ms(15990), Max: ms(15990), Min: ms(12300)},
				Alerts: 20000, Matched: 8, Selected: 8, DeadLetters: 2},
		},
		Consumers: []ConsumerSummary{
			{Name: "cA", Source: "A", Visits: 2, Latency: Summary{N: 2, Mean: ms(5500), P50: ms(5000), P99: ms(6000), Max: ms(6000), Min: ms(5000)}, Received: 41},
			{Name: "cB", Source: "B", Visits: 2, Latency: Summary{N: 2, Mean: ms(5000), P50: ms(4500), P99: ms(5500), Max: ms(5500), Min: ms(4500)}, Received: 8},
		},
		Totals: Totals{
			Visits: 3, Complete: 2, Incomplete: 1, IncompleteVisits: []int64{3},
			Alerts: 20000, Bytes: 16_000_000, Selected: 68, Received: 50, Filters: 2, Consumers: 2,
			DeadLetters:  DeadLetters{Produce: 1, Filter: 2, Consume: 1, Total: 4},
			NegativeLags: 1, InvalidEvents: 1, Runs: []string{"r1"},
		},
		Warnings: []string{
			`1 invalid events skipped; first: timing event: unknown kind "bogus": want "produce", "filter", "consume" or "quarantine"`,
			"1 visits without a produce event, reported as incomplete and left out of the summaries: 3",
			"1 filter lags are negative (down to -0.010 s): the clocks of the producer (or upstream) and filter hosts are skewed",
		},
	}
	if !reflect.DeepEqual(r, want) {
		diffReports(t, r, want)
	}
}

// diffReports reports the differing fields of two reports.
func diffReports(t *testing.T, got, want Report) {
	t.Helper()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := 0; i < gv.NumField(); i++ {
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("%s:\n got %+v\nwant %+v", gv.Type().Field(i).Name, gv.Field(i).Interface(), wv.Field(i).Interface())
		}
	}
}

func TestBuildMerges(t *testing.T) {
	ev := []Event{
		// A split producer: two produce events for visit 5.
		{Kind: KindProduce, Run: "a", Visit: 5, Name: "p1", Start: at(ms(100)), End: at(ms(9000)), Alerts: 5000, Bytes: 100},
		{Kind: KindProduce, Run: "b", Visit: 5, Name: "p2", Start: at(0), End: at(ms(8000)), Alerts: 5000, Bytes: 200},
		// A filter reporting twice.
		{Kind: KindFilter, Visit: 5, Name: "F", End: at(ms(9500)), Alerts: 6000, Selected: 10},
		{Kind: KindFilter, Visit: 5, Name: "F", End: at(ms(9100)), Alerts: 4000, Selected: 10},
	}
	r := Build(ev)
	v := r.Visits[0]
	if v.Start != at(0) || v.End != at(ms(9000)) || v.Send != ms(9000) || v.Alerts != 10000 || v.Bytes != 300 || v.Producers != 2 || v.Run != "a,b" {
		t.Errorf("merged produce: %+v", v)
	}
	f := v.Filters[0]
	if f.End != at(ms(9500)) || f.Lag != ms(500) || f.Done != ms(9500) || f.Alerts != 10000 || f.Selected != 20 || f.Events != 2 {
		t.Errorf("merged filter: %+v", f)
	}
	if len(r.Warnings) != 2 || !strings.Contains(r.Warnings[0], "several produce events") || !strings.Contains(r.Warnings[1], "more than once") {
		t.Errorf("warnings: %q", r.Warnings)
	}
	if !reflect.DeepEqual(r.Totals.Runs, []string{"a", "b"}) {
		t.Errorf("runs %v", r.Totals.Runs)
	}
}

func TestBuildEmptyAndIncompleteOnly(t *testing.T) {
	r := Build(nil)
	if r.Totals.Visits != 0 || r.Producer.N != 0 || len(r.Visits) != 0 || len(r.Warnings) != 0 {
		t.Errorf("empty: %+v", r)
	}
	r = Build([]Event{{Kind: KindFilter, Visit: 9, Name: "F", End: at(0)}})
	if r.Totals.Incomplete != 1 || r.Totals.Complete != 0 || r.FilterLag.N != 0 || r.FilterDone.N != 0 || r.Visits[0].Done.N != 0 || r.Visits[0].Complete || r.Filters[0].Visits != 0 {
		t.Errorf("incomplete only: %+v", r)
	}
}

func TestListVisits(t *testing.T) {
	var v []int64
	for i := int64(1); i <= 12; i++ {
		v = append(v, i)
	}
	if got := listVisits(v); got != "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, … (2 more)" {
		t.Errorf("got %q", got)
	}
}

// TestBuildUpstreamVisit: a visit with no produce event whose filter
// events carry record timestamps (an upstream stream) is complete, timed
// from the earliest to the latest record timestamp; one without them stays
// incomplete.
func TestBuildUpstreamVisit(t *testing.T) {
	r := Build([]Event{
		{Kind: KindFilter, Visit: 7, Name: "A", Start: at(ms(100)), Sent: at(ms(2000)), End: at(ms(2300)), Alerts: 500, Bytes: 5000, Selected: 20},
		{Kind: KindFilter, Visit: 7, Name: "B", Start: at(ms(50)), Sent: at(ms(2100)), End: at(ms(2600)), Alerts: 500, Bytes: 5000, Selected: 3},
		{Kind: KindConsume, Visit: 7, Name: "cA", Source: "A", End: at(ms(2500)), Rank: 20},
		{Kind: KindFilter, Visit: 8, Name: "A", End: at(ms(40000)), Alerts: 10},
	})
	if r.Totals.Complete != 1 || r.Totals.Upstream != 1 || r.Totals.Incomplete != 1 {
		t.Fatalf("totals: complete %d, upstream %d, incomplete %d; want 1, 1, 1", r.Totals.Complete, r.Totals.Upstream, r.Totals.Incomplete)
	}
	v := r.Visits[0]
	if !v.Upstream || !v.Start.Equal(at(ms(50))) || !v.End.Equal(at(ms(2100))) || v.Send != ms(2050) || v.Alerts != 500 || v.Bytes != 5000 {
		t.Errorf("upstream visit: upstream %v start %v end %v send %v alerts %d bytes %d", v.Upstream, v.Start, v.End, v.Send, v.Alerts, v.Bytes)
	}
	if got := []time.Duration{v.Filters[0].Lag, v.Filters[1].Lag, v.Consumers[0].Latency}; !reflect.DeepEqual(got, []time.Duration{ms(200), ms(500), ms(2450)}) {
		t.Errorf("lags A, B and latency: %v; want 200ms, 500ms, 2.45s", got)
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "1 visits came from an upstream stream") {
		t.Errorf("warnings do not say the visit came from upstream: %q", r.Warnings)
	}
	var sb strings.Builder
	if err := r.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "1 from an upstream stream") {
		t.Errorf("table does not count the upstream visit:\n%s", sb.String())
	}
}

// TestBuildErrorsAndQuarantines: filter events' runtime errors and
// quarantines reach the filter summaries, the quarantine events (sent
// twice by a restarted filter) are listed once, and every output names
// the quarantined filter.
func TestBuildErrorsAndQuarantines(t *testing.T) {
	q := Event{Kind: KindQuarantine, Visit: 1, Name: "slow", End: at(ms(900)), Reason: "spent 2.001s evaluating alerts of visit 1, over its time budget of 2s"}
	r := Build([]Event{
		{Kind: KindProduce, Visit: 1, Name: "producer", Start: at(0), End: at(ms(500)), Alerts: 100},
		{Kind: KindFilter, Visit: 1, Name: "slow", End: at(ms(2000)), Alerts: 100, Errors: map[string]int{"cost_limit": 87}, Skipped: 13, Quarantined: true},
		{Kind: KindFilter, Visit: 1, Name: "typo", End: at(ms(600)), Alerts: 100, Errors: map[string]int{"no_such_key": 100}},
		{Kind: KindFilter, Visit: 1, Name: "fine", End: at(ms(600)), Alerts: 100, Matched: 3, Selected: 3},
		q, q,
	})
	if len(r.Quarantines) != 1 || r.Quarantines[0].Filter != "slow" || r.Quarantines[0].Reason != q.Reason {
		t.Fatalf("quarantines %+v", r.Quarantines)
	}
	byName := map[string]FilterSummary{}
	for _, f := range r.Filters {
		byName[f.Name] = f
	}
	if s := byName["slow"]; s.Errors["cost_limit"] != 87 || s.Skipped != 13 || s.QuarantinedVisits != 1 {
		t.Errorf("slow: %+v", s)
	}
	if s := byName["typo"]; s.Errors["no_such_key"] != 100 || s.QuarantinedVisits != 0 {
		t.Errorf("typo: %+v", s)
	}
	if r.Totals.Visits != 1 || r.Totals.InvalidEvents != 0 {
		t.Errorf("totals %+v: the quarantine events are not visits", r.Totals)
	}
	var table, js, html strings.Builder
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"table": table.String(), "JSON": js.String(), "HTML": html.String()} {
		for _, want := range []string{"slow", "no_such_key", "over its time budget"} {
			if !strings.Contains(out, want) {
				t.Errorf("the %s report does not say %q", name, want)
			}
		}
	}
}
