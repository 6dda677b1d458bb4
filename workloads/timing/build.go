package timing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// maxListed bounds the visit numbers quoted in one warning.
const maxListed = 10

type consumerKey struct{ name, source string }

type visitAcc struct {
	v Visit
	// upstream holds what filter events say of a visit without produce
	// events: its earliest and latest record timestamps, and the most
	// alerts and bytes one filter read.
	upstream  Visit
	runs      []string
	filters   map[string]*FilterVisit
	consumers map[consumerKey]*ConsumerVisit
}

// Build computes the report of a collection of events, in any order.
//
// Events failing Validate are skipped and counted. Several produce events
// for one visit (e.g. a split producer) are merged: earliest start, latest
// end, alerts and bytes summed. Several events of one filter for one visit
// are merged likewise (latest end, counts summed). For a consumer the
// consume event of highest rank counts (the earliest of equal ranks).
// Totals count every valid event; per-visit lags, latencies and the
// summaries need the visit's produce event, or, for a visit from an
// upstream stream, filter events carrying its record timestamps; other
// visits are reported as incomplete.
func Build(events []Event) Report {
	var r Report
	accs := map[int64]*visitAcc{}
	var firstInvalid error
	for _, e := range events {
		if err := e.Validate(); err != nil {
			if r.Totals.InvalidEvents == 0 {
				firstInvalid = err
			}
			r.Totals.InvalidEvents++
			continue
		}
		if e.Kind == KindQuarantine {
			q := Quarantine{Filter: e.Name, Visit: e.Visit, At: e.End, Reason: e.Reason}
			if !slices.ContainsFunc(r.Quarantines, func(o Quarantine) bool { return o.Filter == q.Filter && o.Visit == q.Visit }) {
				r.Quarantines = append(r.Quarantines, q)
			}
			continue
		}
		a := accs[e.Visit]
		if a == nil {
			a = &visitAcc{
				v:         Visit{Visit: e.Visit},
				filters:   map[string]*FilterVisit{},
				consumers: map[consumerKey]*ConsumerVisit{},
			}
			accs[e.Visit] = a
		}
		if e.Run != "" && !slices.Contains(a.runs, e.Run) {
			a.runs = append(a.runs, e.Run)
		}
		a.add(e, &r.Totals.DeadLetters)
	}

	visits := make([]int64, 0, len(accs))
	for v := range accs {
		visits = append(visits, v)
	}
	slices.Sort(visits)

	var (
		sends, lags, lats    []time.Duration
		dones                []time.Duration
		rates                []float64
		multiProd, multiFilt []int64
		minLag               time.Duration
		runs                 = map[string]bool{}
		perFilter            = map[string]*filterAcc{}
		perConsumer          = map[consumerKey]*consumerAcc{}
	)
	for _, num := range visits {
		a := accs[num]
		v := a.finish()
		for _, run := range a.runs {
			runs[run] = true
		}
		if v.Producers > 1 {
			multiProd = append(multiProd, num)
		}
		r.Totals.Visits++
		r.Totals.Alerts += v.Alerts
		r.Totals.Bytes += v.Bytes
		r.Totals.Selected += v.Selected
		if v.Upstream {
			r.Totals.Upstream++
		}
		if v.Complete {
			r.Totals.Complete++
			sends = append(sends, v.Send)
			if v.Send > 0 {
				rates = append(rates, v.MBps)
			}
		} else {
			r.Totals.Incomplete++
			r.Totals.IncompleteVisits = append(r.Totals.IncompleteVisits, num)
		}
		for _, f := range v.Filters {
			if f.Events > 1 && !slices.Contains(multiFilt, num) {
				multiFilt = append(multiFilt, num)
			}
			fa := perFilter[f.Name]
			if fa == nil {
				fa = &filterAcc{}
				perFilter[f.Name] = fa
			}
			fa.addTrouble(f)
			if !v.Complete {
				continue
			}
			fa.add(f)
			lags = append(lags, f.Lag)
			dones = append(dones, f.Done)
			if f.Lag < 0 {
				r.Totals.NegativeLags++
				minLag = min(minLag, f.Lag)
			}
		}
		for _, c := range v.Consumers {
			r.Totals.Received += c.Received
			k := consumerKey{c.Name, c.Source}
			ca := perConsumer[k]
			if ca == nil {
				ca = &consumerAcc{}
				perConsumer[k] = ca
			}
			if !v.Complete {
				continue
			}
			ca.add(c)
			lats = append(lats, c.Latency)
		}
		r.Visits = append(r.Visits, v)
	}

	r.Producer = Summarize(sends)
	r.FilterLag = Summarize(lags)
	r.FilterDone = Summarize(dones)
	r.ConsumerLatency = Summarize(lats)
	r.Throughput = SummarizeRates(rates)
	r.Totals.Filters = len(perFilter)
	r.Totals.Consumers = len(perConsumer)
	for run := range runs {
		r.Totals.Runs = append(r.Totals.Runs, run)
	}
	slices.Sort(r.Totals.Runs)
	for name, fa := range perFilter {
		r.Filters = append(r.Filters, fa.summary(name))
	}
	slices.SortFunc(r.Filters, func(a, b FilterSummary) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(r.Quarantines, func(a, b Quarantine) int {
		return cmp.Or(cmp.Compare(a.Visit, b.Visit), cmp.Compare(a.Filter, b.Filter))
	})
	for k, ca := range perConsumer {
		r.Consumers = append(r.Consumers, ca.summary(k))
	}
	slices.SortFunc(r.Consumers, func(a, b ConsumerSummary) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Source, b.Source))
	})

	// Warnings, in a fixed order.
	t := r.Totals
	if t.InvalidEvents > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d invalid events skipped; first: %v", t.InvalidEvents, firstInvalid))
	}
	if t.Incomplete > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d visits without a produce event, reported as incomplete and left out of the summaries: %s", t.Incomplete, listVisits(t.IncompleteVisits)))
	}
	if n := len(r.Quarantines); n > 0 {
		var names []string
		for _, q := range r.Quarantines {
			if !slices.Contains(names, q.Filter) {
				names = append(names, q.Filter)
			}
		}
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d filter quarantines (over their time budget, alerts not evaluated): %s", n, strings.Join(names, ", ")))
	}
	if t.Upstream > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d visits came from an upstream stream, without produce events: each is timed from the record timestamps of its first and last alerts, as the upstream wrote them", t.Upstream))
	}
	if t.NegativeLags > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d filter lags are negative (down to %.3f s): the clocks of the producer (or upstream) and filter hosts are skewed", t.NegativeLags, minLag.Seconds()))
	}
	if len(multiProd) > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d visits have several produce events, merged (earliest start, latest end, counts summed): %s", len(multiProd), listVisits(multiProd)))
	}
	if len(multiFilt) > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d visits have a filter reporting more than once (restarted filter?), merged (latest end, counts summed): %s", len(multiFilt), listVisits(multiFilt)))
	}
	return r
}

// add merges one valid event into the visit.
func (a *visitAcc) add(e Event, dl *DeadLetters) {
	dl.Total += e.DeadLetters
	a.v.DeadLetters += e.DeadLetters
	switch e.Kind {
	case KindProduce:
		v := &a.v
		if v.Producers == 0 || e.Start.Before(v.Start) {
			v.Start = e.Start
		}
		if v.Producers == 0 || e.End.After(v.End) {
			v.End = e.End
		}
		v.Producers++
		v.Complete = true
		v.Alerts += e.Alerts
		v.Bytes += e.Bytes
		dl.Produce += e.DeadLetters
	case KindFilter:
		f := a.filters[e.Name]
		if f == nil {
			f = &FilterVisit{Name: e.Name, End: e.End}
			a.filters[e.Name] = f
		}
		if e.End.After(f.End) {
			f.End = e.End
		}
		f.Events++
		for kind, n := range e.Errors {
			if f.Errors == nil {
				f.Errors = map[string]int{}
			}
			f.Errors[kind] += n
		}
		f.Skipped += e.Skipped
		f.Quarantined = f.Quarantined || e.Quarantined
		if !e.Start.IsZero() && !e.Sent.IsZero() {
			u := &a.upstream
			if u.Start.IsZero() || e.Start.Before(u.Start) {
				u.Start = e.Start
			}
			if e.Sent.After(u.End) {
				u.End = e.Sent
			}
			u.Alerts, u.Bytes = max(u.Alerts, e.Alerts), max(u.Bytes, e.Bytes)
		}
		f.Alerts += e.Alerts
		f.Matched += e.Matched
		f.Selected += e.Selected
		f.DeadLetters += e.DeadLetters
		dl.Filter += e.DeadLetters
	case KindConsume:
		k := consumerKey{e.Name, e.Source}
		c := a.consumers[k]
		if c == nil {
			c = &ConsumerVisit{Name: e.Name, Source: e.Source}
			a.consumers[k] = c
		}
		c.Received++
		if e.Rank > c.Rank || e.Rank == c.Rank && e.End.Before(c.Arrived) {
			c.Rank, c.Arrived = e.Rank, e.End
		}
		c.DeadLetters += e.DeadLetters
		dl.Consume += e.DeadLetters
	}
}

// finish computes the derived figures of the visit.
func (a *visitAcc) finish() Visit {
	v := a.v
	slices.Sort(a.runs)
	v.Run = strings.Join(a.runs, ",")
	if u := a.upstream; !v.Complete && !u.Start.IsZero() {
		v.Complete, v.Upstream = true, true
		v.Start, v.End, v.Alerts, v.Bytes = u.Start, u.End, u.Alerts, u.Bytes
	}
	if v.Complete {
		v.Send = v.End.Sub(v.Start)
		if v.Send > 0 {
			v.MBps = float64(v.Bytes) / 1e6 / v.Send.Seconds()
		}
	}
	var lags, dones, lats []time.Duration
	for _, f := range a.filters {
		if v.Complete {
			f.Lag = f.End.Sub(v.End)
			f.Done = f.End.Sub(v.Start)
			lags = append(lags, f.Lag)
			dones = append(dones, f.Done)
		}
		v.Selected += f.Selected
		v.Filters = append(v.Filters, *f)
	}
	slices.SortFunc(v.Filters, func(x, y FilterVisit) int { return cmp.Compare(x.Name, y.Name) })
	for _, c := range a.consumers {
		if v.Complete {
			c.Latency = c.Arrived.Sub(v.Start)
			lats = append(lats, c.Latency)
		}
		v.Consumers = append(v.Consumers, *c)
	}
	slices.SortFunc(v.Consumers, func(x, y ConsumerVisit) int {
		return cmp.Or(cmp.Compare(x.Name, y.Name), cmp.Compare(x.Source, y.Source))
	})
	v.FiltersFinished = len(v.Filters)
	v.ConsumerCount = len(v.Consumers)
	v.Lag = Summarize(lags)
	v.Done = Summarize(dones)
	v.Latency = Summarize(lats)
	return v
}

type filterAcc struct {
	s           FilterSummary
	lags, dones []time.Duration
}

func (fa *filterAcc) add(f FilterVisit) {
	fa.s.Visits++
	fa.s.Alerts += f.Alerts
	fa.s.Matched += f.Matched
	fa.s.Selected += f.Selected
	fa.s.DeadLetters += f.DeadLetters
	fa.lags = append(fa.lags, f.Lag)
	fa.dones = append(fa.dones, f.Done)
}

// addTrouble counts a visit's errors, skipped alerts and quarantine,
// which matter whether or not the visit is complete.
func (fa *filterAcc) addTrouble(f FilterVisit) {
	for kind, n := range f.Errors {
		if fa.s.Errors == nil {
			fa.s.Errors = map[string]int{}
		}
		fa.s.Errors[kind] += n
	}
	fa.s.Skipped += f.Skipped
	if f.Quarantined {
		fa.s.QuarantinedVisits++
	}
}

func (fa *filterAcc) summary(name string) FilterSummary {
	s := fa.s
	s.Name = name
	s.Lag = Summarize(fa.lags)
	s.Done = Summarize(fa.dones)
	return s
}

type consumerAcc struct {
	s    ConsumerSummary
	lats []time.Duration
}

func (ca *consumerAcc) add(c ConsumerVisit) {
	ca.s.Visits++
	ca.s.Received += c.Received
	ca.s.DeadLetters += c.DeadLetters
	ca.lats = append(ca.lats, c.Latency)
}

func (ca *consumerAcc) summary(k consumerKey) ConsumerSummary {
	s := ca.s
	s.Name, s.Source = k.name, k.source
	s.Latency = Summarize(ca.lats)
	return s
}

func listVisits(v []int64) string {
	var b strings.Builder
	for i, n := range v {
		if i == maxListed {
			fmt.Fprintf(&b, ", … (%d more)", len(v)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, n)
	}
	return b.String()
}
