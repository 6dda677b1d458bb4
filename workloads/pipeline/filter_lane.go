package pipeline

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// The slow lane. The filters of a shared process run one after another on
// each alert, so one slow filter (say one at its cost limit on every
// alert, 23 ms each) would hold up every other filter by all its time,
// up to its time budget per visit. So an exactly-once process moves a
// filter whose evaluations are slow (filter.SlowEvaluation) out of the
// inline loop into its lane: the main loop queues the decoded alerts for
// it and goes on, and works the queue only when no alert has come for
// laneIdle (laneSlice at a time). The others keep their usual lag, delayed
// by a few slow evaluations at most; the slow filter catches up in the
// gaps between visits (or is quarantined once over its budget), and goes
// back inline once it has. A process of one filter, or whose other filters
// are all deferred already, defers nothing: no neighbour would gain.
//
// Exactly-once across the two: each transaction commits, per partition,
// the lowest offset any deferred filter still needs, and saves in the
// state record how far the main loop got (mainNext) and what each deferred
// filter still needs (upTo), plus the offsets the main loop dropped
// (copies, dead letters). A restarted process reads again from the
// committed offsets; what lies below mainNext goes to the deferred
// filters that need it alone (replay). A visit the main loop completed
// keeps each deferred filter's completion event held, in the state, until
// that filter has passed the visit's last alert in every partition.

// Bounds of the lane.
const (
	// laneIdle is how long the input must have been quiet before the
	// lane is worked: while a visit streams in, the client's fetch queue
	// runs empty for moments, and working the lane at each would add a
	// slow evaluation to the others' time at each.
	laneIdle = 5 * time.Millisecond
	// laneSlice is how long the lane is worked at a time once the input
	// is quiet (at least one alert's evaluations).
	laneSlice = 10 * time.Millisecond
	// maxLaneBytes bounds the alerts queued (their encoded size, counted
	// twice for the decoded record): over it, the main loop works the
	// lane before it reads on, as if the slow filter ran inline.
	maxLaneBytes = 256 << 20
	// laneCheckEvery is how often, while the lane is worked, it looks for
	// held events to release and filters caught up (a pass over the
	// queue); at once when the queue empties.
	laneCheckEvery = 100 * time.Millisecond
)

// laneEntry is an alert the deferred filters have to evaluate.
type laneEntry struct {
	m       *kafka.Message
	rec     map[string]any
	visit   int64    // the cap's visit
	key     visitKey // the visit the alert is counted in, if timed
	timed   bool
	filters []int
}

func (e laneEntry) size() int { return 2 * len(e.m.Value) }

// heldEvent is a deferred filter's completion event for a visit the main
// loop completed, held until the filter has evaluated every alert of the
// visit: until it needs nothing below until in any partition.
type heldEvent struct {
	Event timing.Event    `json:"event"`
	Until map[int32]int64 `json:"until"`
}

// lane is the slow lane: what is queued (not saved: a restart reads it
// again) and where everyone stands (saved with the state).
type lane struct {
	enabled bool // exactly-once only: at least once, every filter runs inline
	queue   []laneEntry
	bytes   int
	// upTo holds, per deferred filter and partition, the offset below
	// which every record has been evaluated by the filter or queued for
	// it.
	upTo map[int]map[int32]int64
	// mainNext holds, per partition, the next offset the main loop
	// handles: below it, records are replayed to the deferred filters
	// alone.
	mainNext map[int32]int64
	// skip holds, per partition, offsets below mainNext the main loop
	// dropped (copies, dead letters): no deferred filter evaluates them.
	skip    map[int32]*offsetRanges
	checked time.Time // when workLane last looked for held events and filters caught up
	// moved is set when a filter went back inline, so that the offsets
	// it no longer holds back are committed soon.
	moved bool
	held  []heldEvent
	// last holds, per partition, the highest offset ever queued: a
	// higher one is appended, a lower one (parked) inserted in order.
	last map[int32]int64
}

func newLane(enabled bool) *lane {
	return &lane{enabled: enabled, upTo: map[int]map[int32]int64{}, mainNext: map[int32]int64{},
		skip: map[int32]*offsetRanges{}, last: map[int32]int64{}}
}

// active reports whether any filter is deferred.
func (l *lane) active() bool { return len(l.upTo) > 0 }

// replaying reports whether m lies below where the main loop got.
func (l *lane) replaying(m *kafka.Message) bool {
	next, ok := l.mainNext[m.TopicPartition.Partition]
	return ok && int64(m.TopicPartition.Offset) < next
}

// passed records that the main loop handles m: every deferred filter gets
// it queued (evaluate) or, if the main loop drops it, never.
func (l *lane) passed(m *kafka.Message) {
	if !l.enabled {
		return
	}
	p, o := m.TopicPartition.Partition, int64(m.TopicPartition.Offset)
	l.mainNext[p] = max(l.mainNext[p], o+1)
	for _, up := range l.upTo {
		up[p] = max(up[p], o+1)
	}
}

// dropped records that the main loop dropped m, so that a replay does not
// hand it to a deferred filter.
func (l *lane) dropped(m *kafka.Message) {
	if l.active() {
		p := m.TopicPartition.Partition
		if l.skip[p] == nil {
			l.skip[p] = &offsetRanges{}
		}
		l.skip[p].add(int64(m.TopicPartition.Offset))
	}
}

// skipped reports whether the main loop dropped m.
func (l *lane) skipped(m *kafka.Message) bool {
	r := l.skip[m.TopicPartition.Partition]
	return r != nil && r.contains(int64(m.TopicPartition.Offset))
}

// defer moves filter i to the lane: the main loop has handled every record
// below mainNext for it.
func (l *lane) deferFilter(i int) { l.upTo[i] = maps.Clone(l.mainNext) }

// push queues an alert for the deferred filters, in offset order within
// its partition (an alert parked for its schema comes after later ones).
func (l *lane) push(e laneEntry) {
	l.bytes += e.size()
	p, o := e.m.TopicPartition.Partition, int64(e.m.TopicPartition.Offset)
	if last, ok := l.last[p]; !ok || o > last {
		l.last[p] = o
		l.queue = append(l.queue, e)
		return
	}
	at := slices.IndexFunc(l.queue, func(q laneEntry) bool {
		return q.m.TopicPartition.Partition == p && int64(q.m.TopicPartition.Offset) > o
	})
	if at < 0 {
		at = len(l.queue)
	}
	l.queue = slices.Insert(l.queue, at, e)
}

// needs returns, per deferred filter and partition, the lowest offset it
// still needs: its first queued alert there, or where it is up to. One
// pass over the queue.
func (l *lane) needs() map[int]map[int32]int64 {
	out := make(map[int]map[int32]int64, len(l.upTo))
	for i, up := range l.upTo {
		out[i] = maps.Clone(up)
	}
	for _, e := range l.queue {
		p, o := e.m.TopicPartition.Partition, int64(e.m.TopicPartition.Offset)
		for _, i := range e.filters {
			if n, ok := out[i][p]; ok && o < n {
				out[i][p] = o
			}
		}
	}
	return out
}

// behind returns, per deferred filter and partition, what it still needs
// where that is below mainNext.
func (l *lane) behind() map[int]map[int32]int64 {
	out := map[int]map[int32]int64{}
	for i, parts := range l.needs() {
		for p, n := range parts {
			if n < l.mainNext[p] {
				if out[i] == nil {
					out[i] = map[int32]int64{}
				}
				out[i][p] = n
			}
		}
	}
	return out
}

// limit lowers the offsets to commit to what the deferred filters still
// need.
func (l *lane) limit(offsets []kafka.TopicPartition) {
	for _, parts := range l.behind() {
		for k, tp := range offsets {
			if n, ok := parts[tp.Partition]; ok && n < int64(tp.Offset) {
				offsets[k].Offset = kafka.Offset(n)
			}
		}
	}
}

// prune forgets the skipped offsets below committed, the offsets about to
// be committed: nothing below them is read again.
func (l *lane) prune(committed []kafka.TopicPartition) {
	for _, tp := range committed {
		if r := l.skip[tp.Partition]; r != nil {
			if r.dropBelow(int64(tp.Offset)); len(*r) == 0 {
				delete(l.skip, tp.Partition)
			}
		}
	}
}

// replayPending reports whether some partition's offset to commit lies
// below mainNext: a restart would replay from there, so mainNext must be
// saved even when no filter is deferred any more (one removed by a
// restart leaves its records to be read past, not handled again).
func (l *lane) replayPending(committed []kafka.TopicPartition) bool {
	for _, tp := range committed {
		if next, ok := l.mainNext[tp.Partition]; ok && int64(tp.Offset) < next {
			return true
		}
	}
	return false
}

// LogDeferred is the message a shared filter process logs (at WARN, with
// the filter's name) when it moves a slow filter to the slow lane.
const LogDeferred = "slow filter moved out of the inline loop: evaluated while the input is quiet, so that the others keep their lag"

// deferSlow moves the filters whose evaluations of visit are slow to the
// lane. Not while alerts are parked: their later evaluation would come
// after records the filter already evaluated inline.
func (f *filterRun) deferSlow(visit int64) {
	if !f.visits.lane.enabled || len(f.parked) > 0 || f.resolving {
		return
	}
	inline := f.set.Len() - len(f.visits.lane.upTo)
	for i := range f.set.Len() {
		if inline >= 2 && !f.set.Deferred(i) && f.set.Slow(i, visit) {
			inline--
			f.set.Defer(i, true)
			f.visits.lane.deferFilter(i)
			f.log.Warn(LogDeferred, "name", f.cfg.Specs[i].Name, "visit", visit, "slow_over", filter.SlowEvaluation)
		}
	}
}

// queueDeferred queues an alert the main loop evaluated for the deferred
// filters.
func (f *filterRun) queueDeferred(m *kafka.Message, rec map[string]any, visit int64, key visitKey, timed bool) {
	l := f.visits.lane
	if !l.active() {
		return
	}
	e := laneEntry{m: m, rec: rec, visit: visit, key: key, timed: timed}
	for i := range l.upTo {
		e.filters = append(e.filters, i)
	}
	slices.Sort(e.filters)
	l.push(e)
}

// replay hands a record below mainNext, read again after a restart, to
// the deferred filters that still need it. Its schema was known when the
// main loop read it (else it was dead-lettered, and skipped); if the
// schemas topic cannot be read now, the transaction aborts and the session
// reads it again.
func (f *filterRun) replay(ctx context.Context, m *kafka.Message) {
	l := f.visits.lane
	p, o := m.TopicPartition.Partition, int64(m.TopicPartition.Offset)
	var filters []int
	for i, up := range l.upTo {
		if o >= up[p] {
			filters = append(filters, i)
		}
	}
	if len(filters) == 0 {
		return
	}
	advance := func() {
		for _, i := range filters {
			l.upTo[i][p] = o + 1
		}
	}
	if l.skipped(m) {
		advance()
		return
	}
	rec, id, err := f.dec.DecodeMessage(m.Value)
	if errors.Is(err, alert.ErrUnknownSchema) {
		if err := sleepUntil(ctx, f.book.last.Add(schemaRefreshEvery)); err != nil {
			f.mustRetry(learnError{err})
			return
		}
		if err := f.book.refresh(ctx); err != nil {
			f.mustRetry(learnError{err})
			return
		}
		rec, id, err = f.dec.DecodeMessage(m.Value)
	}
	advance()
	if err != nil {
		f.log.Error("alert replayed to the slow lane does not decode any more: not evaluated by the deferred filters",
			"at", m.TopicPartition.String(), "schema_id", id, "err", err)
		return
	}
	e := laneEntry{m: m, rec: rec, filters: filters}
	if count, ok := headerInt(m.Headers, stream.HeaderCount); ok && count > 0 {
		e.key.Run = headerString(m.Headers, stream.HeaderRun)
		e.key.Visit, _ = headerInt(m.Headers, stream.HeaderVisit)
		e.timed = true
		if e.visit, err = alert.LookupInt(rec, f.cfg.VisitPath); err != nil {
			e.visit = e.key.Visit
		}
	} else if e.visit, err = alert.LookupInt(rec, f.cfg.VisitPath); err == nil {
		e.key, e.timed = visitKey{Visit: e.visit}, true
	}
	// Counted as the main loop counted it: in its visit's open tally or
	// held event, not at all for a straggler of a visit closed.
	e.timed = e.timed && (f.visits.open[e.key] != nil || f.heldIndex(e.key) >= 0)
	slices.Sort(e.filters)
	l.push(e)
}

// hasWork reports whether alerts are queued for the deferred filters.
func (l *lane) hasWork() bool { return len(l.queue) > 0 }

// workLane evaluates queued alerts until no more than target bytes of them
// are left or deadline has passed (one alert at least); then, every
// laneCheckEvery or once the queue is empty, it releases the held events
// of visits the deferred filters have finished and puts back inline the
// filters that have caught up. Not while alerts are parked (see push).
func (f *filterRun) workLane(ctx context.Context, deadline time.Time, target int) {
	l := f.visits.lane
	if len(l.queue) == 0 || len(f.parked) > 0 {
		return
	}
	for len(l.queue) > 0 && (target == 0 || l.bytes > target) {
		e := l.queue[0]
		l.queue[0] = laneEntry{}
		l.queue = l.queue[1:]
		l.bytes -= e.size()
		f.evaluateDeferred(ctx, e)
		if !time.Now().Before(deadline) {
			break
		}
	}
	if len(l.queue) == 0 {
		l.queue = nil // let the backing array go
	} else if time.Since(l.checked) < laneCheckEvery {
		return
	}
	l.checked = time.Now()
	needs := l.needs()
	f.releaseHeld(needs)
	for i, parts := range needs {
		caughtUp := true
		for p, n := range parts {
			caughtUp = caughtUp && n >= l.mainNext[p]
		}
		if caughtUp {
			delete(l.upTo, i)
			f.set.Defer(i, false)
			l.moved = true
			f.log.Info("slow filter caught up: back inline", "name", f.cfg.Specs[i].Name)
		}
	}
}

// evaluateDeferred runs the deferred filters of e, counting what they
// select in the visit's tally, or in the held event of a visit completed.
func (f *filterRun) evaluateDeferred(ctx context.Context, e laneEntry) {
	id, _ := alert.Lookup(e.rec, f.cfg.IDPath)
	tally := f.visits.open[e.key]
	for _, i := range e.filters {
		f.set.EvaluateOne(i, e.rec, e.visit, func(i, rank int, admitted bool) {
			ev := f.heldFor(e, i)
			switch {
			case tally != nil && e.timed:
				tally.matched[i]++
			case ev != nil:
				ev.Matched++
			}
			if !admitted {
				return
			}
			switch {
			case tally != nil && e.timed:
				tally.selected[i]++
			case ev != nil:
				ev.Selected++
			}
			f.selected++
			f.emitSelected(ctx, e.m, i, rank, e.visit, id)
		})
	}
}

// heldFor returns filter i's held event for e's visit, if there is one.
func (f *filterRun) heldFor(e laneEntry, i int) *timing.Event {
	if !e.timed {
		return nil
	}
	for k := range f.visits.lane.held {
		ev := &f.visits.lane.held[k].Event
		if ev.Run == e.key.Run && ev.Visit == e.key.Visit && ev.Name == f.cfg.Specs[i].Name {
			return ev
		}
	}
	return nil
}

// heldIndex returns the index of a held event of visit key, or -1.
func (f *filterRun) heldIndex(key visitKey) int {
	return slices.IndexFunc(f.visits.lane.held, func(h heldEvent) bool {
		return h.Event.Run == key.Run && h.Event.Visit == key.Visit
	})
}

// holdIfBehind holds ev, filter i's completion event of a visit the main
// loop has just completed, if i is deferred and still behind the main
// loop; it reports whether it did.
func (f *filterRun) holdIfBehind(i int, ev timing.Event) bool {
	l := f.visits.lane
	if _, deferred := l.upTo[i]; !deferred || len(l.behind()[i]) == 0 {
		return false
	}
	ev.End = time.Time{} // stamped when sent, once the filter has passed the visit
	l.held = append(l.held, heldEvent{Event: ev, Until: maps.Clone(l.mainNext)})
	return true
}

// releaseHeld moves the held events whose filter has passed their visit
// (needs: l.needs()) to the pending ones, with the filter's final use of
// the visit.
func (f *filterRun) releaseHeld(needs map[int]map[int32]int64) {
	l := f.visits.lane
	if len(l.held) == 0 {
		return
	}
	l.held = slices.DeleteFunc(l.held, func(h heldEvent) bool {
		i := f.specIndex(h.Event.Name)
		if i >= 0 {
			for p, until := range h.Until {
				if n, deferred := needs[i][p]; deferred && n < until {
					return false
				}
			}
			if use, ok := f.set.VisitUse(i, h.Event.Visit); ok {
				h.Event.Skipped, h.Event.Quarantined = use.Skipped, use.Quarantined
				h.Event.Errors = nil
				if len(use.Errors) > 0 {
					h.Event.Errors = use.Errors
				}
			}
		}
		f.visits.pending = append(f.visits.pending, h.Event)
		f.finished = true
		return true
	})
}

func (f *filterRun) specIndex(name string) int {
	return slices.IndexFunc(f.cfg.Specs, func(s filter.Spec) bool { return s.Name == name })
}
