package timing

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// WriteTable writes the report as fixed-width text: totals, the summary
// statistics (the write-up's four measures and the throughput), the
// comparison with the 2018 prototype, then one line per
// visit, per filter and per consumer, and the warnings. Times are in
// seconds.
func (r Report) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	t := r.Totals

	p("MINI-BROKER TIMING REPORT\n=========================\n")
	if len(t.Runs) > 0 {
		p("Runs:         %s\n", strings.Join(t.Runs, ", "))
	}
	p("Visits:       %d (%d complete, %d incomplete", t.Visits, t.Complete, t.Incomplete)
	if t.Upstream > 0 {
		p("; %d from an upstream stream, timed by their record timestamps", t.Upstream)
	}
	if t.Incomplete > 0 {
		p(": %s", listVisits(t.IncompleteVisits))
	}
	p(")\n")
	p("Producer:     %d alerts, %.3f MB\n", t.Alerts, float64(t.Bytes)/1e6)
	p("Filters:      %d, %d alerts selected\n", t.Filters, t.Selected)
	p("Consumers:    %d, %d alerts received\n", t.Consumers, t.Received)
	p("Dead letters: %d (produce %d, filter %d, consume %d)\n",
		t.DeadLetters.Total, t.DeadLetters.Produce, t.DeadLetters.Filter, t.DeadLetters.Consume)
	if t.InvalidEvents > 0 {
		p("Invalid events skipped: %d\n", t.InvalidEvents)
	}

	p("\n%-30s %6s %9s %9s %9s %9s %9s\n", "Summary", "N", "mean", "p50", "p99", "max", "min")
	sum := func(label string, s Summary) {
		p("%-30s %6d %9s %9s %9s %9s %9s\n", label, s.N,
			secs(s.Mean, s.N), secs(s.P50, s.N), secs(s.P99, s.N), secs(s.Max, s.N), secs(s.Min, s.N))
	}
	sum("producer visit send time (s)", r.Producer)
	sum("filter lag (s)", r.FilterLag)
	sum("20th alert at consumer (s)", r.ConsumerLatency)
	sum("visit start to filter done (s)", r.FilterDone)
	tp := r.Throughput
	p("%-30s %6d %9s %9s %9s %9s %9s\n", "producer throughput (MB/s)", tp.N,
		rate(tp.Mean, tp.N), rate(tp.P50, tp.N), rate(tp.P99, tp.N), rate(tp.Max, tp.N), rate(tp.Min, tp.N))

	p("\n%-40s %10s %10s\n", "Compared with the 2018 prototype", "original", "this run")
	for _, c := range r.comparisons() {
		p("%-40s %10s %10s\n", c.label, c.originalText(), c.oursText())
	}

	p("\nPer visit (seconds)\n")
	p("%10s %7s %9s %8s %8s %7s %8s %8s %8s %8s %5s %8s %8s %8s %5s\n",
		"visit", "alerts", "MB", "send", "MB/s", "filters", "lag min", "lag p50", "lag max", "done max", "cons", "lat p50", "lat max", "selected", "dead")
	for _, v := range r.Visits {
		if !v.Complete {
			p("%10d %7s %9s %8s %8s %7d %8s %8s %8s %8s %5d %8s %8s %8d %5d  incomplete: no produce event\n",
				v.Visit, "-", "-", "-", "-", v.FiltersFinished, "-", "-", "-", "-", v.ConsumerCount, "-", "-", v.Selected, v.DeadLetters)
			continue
		}
		p("%10d %7d %9.3f %8.3f %8.3f %7d %8s %8s %8s %8s %5d %8s %8s %8d %5d\n",
			v.Visit, v.Alerts, float64(v.Bytes)/1e6, v.Send.Seconds(), v.MBps, v.FiltersFinished,
			secs(v.Lag.Min, v.Lag.N), secs(v.Lag.P50, v.Lag.N), secs(v.Lag.Max, v.Lag.N), secs(v.Done.Max, v.Done.N), v.ConsumerCount,
			secs(v.Latency.P50, v.Latency.N), secs(v.Latency.Max, v.Latency.N), v.Selected, v.DeadLetters)
	}

	if len(r.Filters) > 0 {
		nw := len("filter")
		for _, f := range r.Filters {
			nw = max(nw, width(f.Name))
		}
		p("\nPer filter (lag, and done from the visit's start, in seconds)\n")
		p("%-*s %6s %8s %8s %8s %8s %9s %9s %9s %9s %5s\n", nw, "filter", "visits", "mean", "p50", "p99", "max",
			"done mean", "done max", "matched", "selected", "dead")
		for _, f := range r.Filters {
			s, d := f.Lag, f.Done
			p("%-*s %6d %8s %8s %8s %8s %9s %9s %9d %9d %5d\n", nw, f.Name, f.Visits,
				secs(s.Mean, s.N), secs(s.P50, s.N), secs(s.P99, s.N), secs(s.Max, s.N),
				secs(d.Mean, d.N), secs(d.Max, d.N), f.Matched, f.Selected, f.DeadLetters)
		}
	}
	if len(r.Quarantines) > 0 || r.anyFilterErrors() {
		p("\nFilter errors and quarantines\n")
		for _, f := range r.Filters {
			if len(f.Errors) == 0 && f.QuarantinedVisits == 0 {
				continue
			}
			p("  %s: runtime errors %s; quarantined in %d visits, %d alerts not evaluated\n", f.Name, errorKinds(f.Errors), f.QuarantinedVisits, f.Skipped)
		}
		for _, q := range r.Quarantines {
			p("  visit %d: %s quarantined at %s: %s\n", q.Visit, q.Filter, q.At.UTC().Format("15:04:05.000"), q.Reason)
		}
	}
	if len(r.Consumers) > 0 {
		nw := len("consumer <- source")
		for _, c := range r.Consumers {
			nw = max(nw, width(c.Name+" <- "+c.Source))
		}
		p("\nPer consumer (latency of the last-ranked alert, seconds)\n")
		p("%-*s %6s %8s %8s %8s %8s %9s %5s\n", nw, "consumer <- source", "visits", "mean", "p50", "p99", "max", "received", "dead")
		for _, c := range r.Consumers {
			s := c.Latency
			p("%-*s %6d %8s %8s %8s %8s %9d %5d\n", nw, c.Name+" <- "+c.Source, c.Visits,
				secs(s.Mean, s.N), secs(s.P50, s.N), secs(s.P99, s.N), secs(s.Max, s.N), c.Received, c.DeadLetters)
		}
	}
	if len(r.Warnings) > 0 {
		p("\nWarnings\n")
		for _, w := range r.Warnings {
			p("  - %s\n", w)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing timing table: %w", err)
	}
	return nil
}

// comparison is one line of the comparison with the 2018 prototype.
type comparison struct {
	label    string
	original time.Duration
	known    bool // the write-up's figure is recorded here
	ours     time.Duration
	n        int // sample size behind ours; 0: no data
}

func (c comparison) originalText() string {
	if !c.known {
		return "-"
	}
	return fmt.Sprintf("%.2f s", c.original.Seconds())
}

func (c comparison) oursText() string {
	if c.n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", c.ours.Seconds())
}

func (r Report) comparisons() []comparison {
	return []comparison{
		{"producer visit send time (max)", OriginalProducerVisitMax, true, r.Producer.Max, r.Producer.N},
		{"filter lag (mean)", OriginalFilterLagMean, true, r.FilterLag.Mean, r.FilterLag.N},
		{"20th alert at consumer (mean)", OriginalConsumerLatencyMean, true, r.ConsumerLatency.Mean, r.ConsumerLatency.N},
		// The fourth measure: no 2018 figure is recorded for it.
		{"visit start to filter done (mean)", 0, false, r.FilterDone.Mean, r.FilterDone.N},
		{"visit start to filter done (max)", 0, false, r.FilterDone.Max, r.FilterDone.N},
	}
}

// secs formats a duration in seconds with millisecond precision, or "-"
// when the sample behind it is empty.
func secs(d time.Duration, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", d.Seconds())
}

func rate(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", v)
}

// width is the number of characters of s, for padding.
func width(s string) int { return utf8.RuneCountInString(s) }

// anyFilterErrors reports whether a filter had runtime errors.
func (r Report) anyFilterErrors() bool {
	for _, f := range r.Filters {
		if len(f.Errors) > 0 {
			return true
		}
	}
	return false
}

// errorKinds renders errors by kind as "kind n, kind n" ("none" if empty).
func errorKinds(errs map[string]int) string {
	if len(errs) == 0 {
		return "none"
	}
	var parts []string
	for _, kind := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s %d", kind, errs[kind]))
	}
	return strings.Join(parts, ", ")
}
