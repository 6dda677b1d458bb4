package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/report"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// Settings of a run, from the environment (`make chaos` sets them).
const (
	envRounds = "MINIBROKER_CHAOS_ROUNDS" // rounds of every fault; default 1
	envSeed   = "MINIBROKER_CHAOS_SEED"   // seed of the order and moments; default 1
	envOut    = "MINIBROKER_CHAOS_OUT"    // docs/reliability.md, to write the results into
)

// drainTimeout bounds the wait for the last visit to reach every consumer.
const drainTimeout = 3 * time.Minute

func TestChaosProcessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); not run with -short")
	}
	rounds := envInt(t, envRounds, 1)
	seed := envInt(t, envSeed, 1)
	rng := rand.New(rand.NewPCG(uint64(seed), 10))
	plan := schedule(rounds, rng)

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(plan)+4)*3*visitInterval+10*time.Minute)
	defer cancel()
	b := startBed(t)
	began := time.Now()

	// The first visit warms up; each later one gets a fault, once the last
	// fault's part runs again.
	var done []injection
	next := nextVisit(time.Now()).Add(visitInterval)
	for _, f := range plan {
		start := next
		for time.Now().After(start) {
			start = start.Add(visitInterval)
		}
		at := start.Add(time.Duration(rng.Int64N(int64(f.strikeWithin))))
		if err := sleepCtx(ctx, time.Until(at)); err != nil {
			t.Fatal(err)
		}
		inj := injection{fault: f.name, visit: start.UnixMilli(), at: time.Now()}
		inj.failed = f.inject(ctx, b, rng)
		inj.back = time.Now()
		if inj.failed != nil {
			t.Errorf("%s at visit %d: %v", f.name, inj.visit, inj.failed)
		}
		t.Logf("%s struck visit %d at +%s; running again after %s", f.name, inj.visit,
			inj.at.Sub(start).Round(time.Millisecond), inj.back.Sub(inj.at).Round(time.Millisecond))
		done = append(done, inj)
		next = start.Add(visitInterval)
	}
	// One clean visit after the last fault, then stop the producer between
	// visits.
	last := nextVisit(time.Now())
	if err := sleepCtx(ctx, time.Until(last.Add(visitInterval/2))); err != nil {
		t.Fatal(err)
	}
	if !b.producer.stop() {
		t.Error("producer needed SIGKILL to stop")
	}

	// The slow filter must have been behind the others when faults struck
	// its process, or the slow lane went untested.
	if log, err := os.ReadFile(b.filters[sharedProcess].logPath); err != nil || !strings.Contains(string(log), pipeline.LogDeferred) {
		t.Errorf("the shared process never moved its slow filter to the slow lane (%v)%s", err, b.logs(b.filters[sharedProcess].name))
	}

	res := verify(ctx, t, b, done)
	res.rounds, res.seed, res.took = rounds, seed, time.Since(began)
	for _, p := range append(mapValues(b.filters), mapValues(b.consumers)...) {
		starts, kills, failures := p.runs()
		res.restarts += starts - 1
		killed := 0
		for _, f := range failures {
			if f == "signal: killed" && killed < kills {
				killed++ // one of ours
				continue
			}
			t.Errorf("%s ended by itself: %s%s", p.name, f, b.logs(p.name))
		}
	}
	text := res.markdown()
	t.Log("\n" + text)
	if out := os.Getenv(envOut); out != "" {
		if err := report.WriteBetweenMarkers(out, beginMarker, endMarker, text); err != nil {
			t.Fatal(err)
		}
	}
}

// result is what a run found, per fault.
type result struct {
	rounds, seed   int
	took           time.Duration
	visits         int
	alerts         int
	perFault       map[string]*faultFigures
	order          []string
	mirrorCopies   int // alerts MirrorMaker 2 copied more than once
	timingRepeats  int // timing events sent again after a restart
	restarts       int // filter and consumer processes restarted
	hubLost        int64
	hubDuplicates  int
	mirrorLost     int64
	unattributed   visitCheck
	problemSamples []string
}

type faultFigures struct {
	times            int
	lost, duplicated int
	overCap          int
	incomplete       int // visits × filters without exactly one completion event
	recovery         []time.Duration
}

func verify(ctx context.Context, t *testing.T, b *bed, done []injection) *result {
	res := &result{perFault: map[string]*faultFigures{}}
	byVisit := map[int64]string{}
	for _, f := range faults {
		res.perFault[f.name] = &faultFigures{}
		res.order = append(res.order, f.name)
	}
	hub, err := readAlerts(ctx, b.hub.Bootstrap())
	if err != nil {
		t.Fatal(err)
	}
	// A fault belongs to the visit running when it struck: the latest one
	// started by then (a producer held up by a hub outage skips a slot).
	for i, inj := range done {
		for _, v := range hub.visits() {
			if v <= inj.at.UnixMilli() {
				done[i].visit = v
			}
		}
		res.perFault[inj.fault].times++
		byVisit[done[i].visit] = inj.fault
	}
	for _, n := range hub.missing() {
		res.hubLost += n
	}
	for _, n := range hub.copies {
		res.hubDuplicates += n
	}
	visits := hub.visits()
	res.visits, res.alerts = len(visits), len(hub.alerts)
	if res.hubLost > 0 || res.hubDuplicates > 0 {
		t.Errorf("hub: %d alerts missing, %d sent twice", res.hubLost, res.hubDuplicates)
	}

	// Wait until the last visit has reached every consumer (or time out).
	var mirror *produced
	var outs map[string][]outputAlert
	var got map[string][]consumed
	var events map[string]map[int64][]timing.Event
	deadline := time.Now().Add(drainTimeout)
	for {
		mirror, outs, got, events, res.timingRepeats, err = readEverything(ctx, b)
		if err == nil && drained(hub, visits, mirror, outs, got, events) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("not drained %s after the last visit (last error: %v)", drainTimeout, err)
			break
		}
		_ = sleepCtx(ctx, time.Second)
	}
	if mirror == nil {
		t.Fatalf("cannot read the mirror: %v", err)
	}
	for _, n := range mirror.missing() {
		res.mirrorLost += n
	}
	for v := range hub.count {
		if _, ok := mirror.count[v]; !ok {
			res.mirrorLost += hub.count[v]
		}
	}
	for _, n := range mirror.copies {
		res.mirrorCopies += n
	}

	for _, f := range filters {
		for _, v := range visits {
			c := checkVisit(f, expect(mirror, f, v), filterVisit(outs[f.name], v), consumedVisit(got[f.name], v))
			evs := events[f.name][v]
			if len(evs) == 0 {
				c.problems = append(c.problems, "never reported complete")
			} else if !sameCounts(evs) {
				c.problems = append(c.problems, fmt.Sprintf("reported complete %d times with different counts: %+v", len(evs), evs))
			} else if e := evs[0]; e.Alerts != int(hub.count[v]) || e.Matched != len(expect(mirror, f, v).matches) ||
				e.Selected != len(filterVisit(outs[f.name], v)) {
				c.problems = append(c.problems, fmt.Sprintf("completion event counts alerts %d matched %d selected %d; want %d, %d, %d",
					e.Alerts, e.Matched, e.Selected, hub.count[v], len(expect(mirror, f, v).matches), len(filterVisit(outs[f.name], v))))
			}
			fig := res.perFault[byVisit[v]]
			if fig == nil {
				fig = &faultFigures{}
				res.perFault[""] = fig
			}
			fig.lost += c.lost
			fig.duplicated += c.duplicated
			fig.overCap += c.overCap
			if len(c.problems) > 0 {
				if len(evs) == 0 || !sameCounts(evs) {
					fig.incomplete++
				}
				msg := fmt.Sprintf("%s visit %d (fault: %q): %s", f.name, v, byVisit[v], strings.Join(c.problems, "; "))
				t.Error(msg)
				if len(res.problemSamples) < 10 {
					res.problemSamples = append(res.problemSamples, msg)
				}
			}
		}
	}
	// Recovery: from the fault until every filter had finished its visit.
	for _, inj := range done {
		var finished time.Time
		for _, f := range filters {
			for _, e := range events[f.name][inj.visit] {
				if e.End.After(finished) {
					finished = e.End
				}
			}
		}
		if !finished.IsZero() {
			res.perFault[inj.fault].recovery = append(res.perFault[inj.fault].recovery, max(0, finished.Sub(inj.at)))
		}
	}
	return res
}

func readEverything(ctx context.Context, b *bed) (*produced, map[string][]outputAlert, map[string][]consumed,
	map[string]map[int64][]timing.Event, int, error) {
	mirror, err := readAlerts(ctx, b.mirror.Bootstrap())
	if err != nil {
		return nil, nil, nil, nil, 0, err
	}
	outs, got := map[string][]outputAlert{}, map[string][]consumed{}
	for _, f := range filters {
		if outs[f.name], err = readOutput(ctx, b.mirror.Bootstrap(), f.name); err != nil {
			return nil, nil, nil, nil, 0, err
		}
		if got[f.name], err = readOutFile(b.outFile(f.name)); err != nil {
			return nil, nil, nil, nil, 0, err
		}
	}
	events, repeats, err := filterEvents(ctx, b.hub.Bootstrap())
	return mirror, outs, got, events, repeats, err
}

// drained reports whether every visit has reached the mirror, every filter
// has reported it complete and every consumer has what its filter wrote.
func drained(hub *produced, visits []int64, mirror *produced, outs map[string][]outputAlert,
	got map[string][]consumed, events map[string]map[int64][]timing.Event) bool {
	if len(mirror.indexes) < len(hub.indexes) {
		return false
	}
	for _, f := range filters {
		for _, v := range visits {
			if len(events[f.name][v]) == 0 {
				return false
			}
		}
		if len(got[f.name]) < len(outs[f.name]) {
			return false
		}
	}
	return true
}

// sameCounts reports whether every copy of a completion event says the
// same: a copy sent again after a restart is the same event.
func sameCounts(evs []timing.Event) bool {
	for _, e := range evs[1:] {
		if e.Alerts != evs[0].Alerts || e.Matched != evs[0].Matched || e.Selected != evs[0].Selected ||
			e.DeadLetters != evs[0].DeadLetters || e.Duplicates != evs[0].Duplicates {
			return false
		}
	}
	return true
}

func filterVisit(outs []outputAlert, v int64) []outputAlert {
	var r []outputAlert
	for _, o := range outs {
		if o.visit == v {
			r = append(r, o)
		}
	}
	return r
}

func consumedVisit(got []consumed, v int64) []consumed {
	var r []consumed
	for _, g := range got {
		if g.Visit == v {
			r = append(r, g)
		}
	}
	return r
}

func (r *result) markdown() string {
	var isolated, shared, slow int
	for _, f := range filters {
		switch {
		case !f.shared:
			isolated++
		case f.slow:
			shared++
			slow++
		default:
			shared++
		}
	}
	var m report.Markdown
	m.F("Generated by `make chaos` on %s (seed %d, %d round(s) of every fault, %s). Do not edit: run it again.\n\n",
		report.Stamp(), r.seed, r.rounds, r.took.Round(time.Second))
	m.F("Real Kafka 4.3.1 hub and mirror with MirrorMaker 2 between them (`internal/testbed/kafkabed`) and real `minibroker` "+
		"processes: a producer (%d small alerts every %s), %d isolated filters, one process of %d shared filters (%d of them "+
		"slow, about 0.3 ms an alert: evaluated in the slow lane, behind the others), one consumer per "+
		"filter writing `--out`. A supervisor restarts a dead process after %s, as Swarm would. Each visit after the first gets "+
		"one fault at a seeded random moment while that stage is busy with it. %d visits, %d alerts; %d filter and consumer "+
		"restarts.\n\n", alertsPerVisit, visitInterval, isolated, shared, slow, restartDelay, r.visits, r.alerts, r.restarts)
	m.F("Checked per filter and visit against an independent evaluation of its expression over the alerts on the mirror: " +
		"every match when they fit under the cap, otherwise exactly cap alerts, each partition's first matches in offset " +
		"order; ranks 1..k; each alert once in the output and once in the consumer's file; one completion event with the " +
		"right counts.\n\n")
	m.F("| fault | injected | alerts lost | alerts duplicated | over cap | visits not reported complete once | recovery mean | recovery max |\n")
	m.F("|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range r.order {
		f := r.perFault[name]
		m.F("| %s | %d | %d | %d | %d | %d | %s | %s |\n", name, f.times, f.lost, f.duplicated, f.overCap, f.incomplete,
			meanSecs(f.recovery), maxSecs(f.recovery))
	}
	if f := r.perFault[""]; f != nil {
		m.F("| (visits without a fault) | – | %d | %d | %d | %d | – | – |\n", f.lost, f.duplicated, f.overCap, f.incomplete)
	}
	m.F("\nRecovery: from the fault until every filter had finished the visit it struck (0 when the visit was already through).\n\n")
	m.F("On the way: the hub got %d alerts twice and lacked %d; MirrorMaker 2 copied %d alerts to the mirror more than once "+
		"(its restarts), which the filters recognised by their run/visit/index headers and dropped; the mirror lacked %d. "+
		"%d timing events were sent a second time by a restarted filter and counted once by the report.\n",
		r.hubDuplicates, r.hubLost, r.mirrorCopies, r.mirrorLost, r.timingRepeats)
	if len(r.problemSamples) > 0 {
		m.F("\nProblems (first %d):\n\n", len(r.problemSamples))
		for _, p := range r.problemSamples {
			m.F("- %s\n", p)
		}
	}
	return m.String()
}

func meanSecs(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return fmt.Sprintf("%.1f s", (sum / time.Duration(len(ds))).Seconds())
}

func maxSecs(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f s", slices.Max(ds).Seconds())
}

// Markers of the generated section in docs/reliability.md.
const (
	beginMarker = "<!-- chaos:begin (generated by make chaos) -->"
	endMarker   = "<!-- chaos:end -->"
)

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func mapValues(m map[string]*supervised) []*supervised {
	var out []*supervised
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
