package pipeline

import (
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// TestFilterStateRoundTrip saves a process's state and restores it into a
// new process, as a restart after a crash does: tallies, handled indexes,
// completed visits, pending events and cap counts all come back.
func TestFilterStateRoundTrip(t *testing.T) {
	specs := []filter.Spec{{Name: "A", Expr: "true", MaxPerVisit: 3}, {Name: "B", Expr: "true", MaxPerVisit: 3}}
	set, err := filter.NewSet(specs)
	if err != nil {
		t.Fatal(err)
	}
	book := newVisitBook()
	open := visitKey{Run: "r", Visit: 2}
	tl := newTally(10, 2)
	for _, i := range []int64{0, 3, 9} {
		if !tl.firstSight(i, true) {
			t.Fatalf("index %d seen before", i)
		}
	}
	if tl.firstSight(3, true) {
		t.Fatal("index 3 handled twice is not a duplicate")
	}
	tl.seen, tl.dups, tl.matched[1], tl.selected[1] = 3, 1, 2, 2
	book.open[open] = tl
	book.complete(visitKey{Run: "r", Visit: 1})
	book.pending = []timing.Event{{Kind: timing.KindFilter, Run: "r", Visit: 1, Name: "A"}}
	set.Evaluate(map[string]any{}, 2, nil)
	set.Evaluate(map[string]any{}, 2, nil)

	data, err := book.snapshot(set, false)
	if err != nil {
		t.Fatal(err)
	}
	// The restarted process has its filters in another order.
	set2, err := filter.NewSet([]filter.Spec{specs[1], specs[0]})
	if err != nil {
		t.Fatal(err)
	}
	got, err := restoreBook(data, set2)
	if err != nil {
		t.Fatal(err)
	}
	rt := got.open[open]
	if rt == nil || rt.seen != 3 || rt.dups != 1 || rt.matched[0] != 2 || rt.selected[0] != 2 || rt.matched[1] != 0 {
		t.Fatalf("restored tally %+v", rt)
	}
	if rt.firstSight(9, true) || !rt.firstSight(4, true) {
		t.Error("handled indexes not restored")
	}
	if !got.isDone(visitKey{Run: "r", Visit: 1}) || len(got.pending) != 1 {
		t.Errorf("done %v, pending %v", got.done, got.pending)
	}
	var ranks []int
	set2.Evaluate(map[string]any{}, 2, func(i, rank int, admitted bool) { ranks = append(ranks, rank) })
	if len(ranks) != 2 || ranks[0] != 3 || ranks[1] != 3 {
		t.Errorf("ranks after restore %v, want [3 3]: both filters had admitted 2 alerts of visit 2", ranks)
	}
}

// A session that resumes with no state record (the first transaction
// aborted) starts its caps afresh: ranks of the aborted work are forgotten.
func TestRestoreWithoutStateResetsCaps(t *testing.T) {
	set, err := filter.NewSet([]filter.Spec{{Name: "A", Expr: "true", MaxPerVisit: 3}})
	if err != nil {
		t.Fatal(err)
	}
	set.Evaluate(map[string]any{}, 7, nil)
	set.Evaluate(map[string]any{}, 7, nil)
	if _, err := restoreBook(nil, set); err != nil {
		t.Fatal(err)
	}
	var rank int
	set.Evaluate(map[string]any{}, 7, func(_, r int, _ bool) { rank = r })
	if rank != 1 {
		t.Errorf("rank after a restore without state = %d, want 1", rank)
	}
}

// TestFilterStateRoundTripHeaderless: a header-less visit's record
// timestamps and last handling, and each partition's newest visit, survive
// a restart, so a restored visit is closed and timed as it would have been.
func TestFilterStateRoundTripHeaderless(t *testing.T) {
	set, err := filter.NewSet([]filter.Spec{{Name: "A", Expr: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	book := newVisitBook()
	tl := newTally(0, 1)
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	tl.arrived(t0.Add(2*time.Second), kafka.TimestampCreateTime, t0.Add(5*time.Second))
	tl.arrived(t0, kafka.TimestampCreateTime, t0.Add(6*time.Second))
	tl.arrived(time.Time{}, kafka.TimestampNotAvailable, t0.Add(7*time.Second))
	tl.seen = 3
	book.open[visitKey{Visit: 41}] = tl
	book.newest[0], book.newest[3] = 42, 41
	data, err := book.snapshot(set, false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := restoreBook(data, set)
	if err != nil {
		t.Fatal(err)
	}
	rt := got.open[visitKey{Visit: 41}]
	if rt == nil || rt.count != 0 || rt.seen != 3 || !rt.first.Equal(t0) || !rt.sent.Equal(t0.Add(2*time.Second)) || !rt.last.Equal(t0.Add(7*time.Second)) {
		t.Fatalf("restored header-less tally %+v", rt)
	}
	if got.newest[0] != 42 || got.newest[3] != 41 || len(got.newest) != 2 {
		t.Errorf("restored newest visits %v", got.newest)
	}
}

// The slow lane's standing survives a restart: the deferred filter is
// deferred again, what it still needs and where the main loop got come
// back (a replayed record goes to it alone, a dropped one to nobody), and
// a held completion event is kept until the filter has passed its visit.
func TestFilterStateRoundTripLane(t *testing.T) {
	specs := []filter.Spec{{Name: "cheap", Expr: "true"}, {Name: "slow", Expr: "true"}}
	set, err := filter.NewSet(specs)
	if err != nil {
		t.Fatal(err)
	}
	book := newVisitBook()
	book.lane.enabled = true
	topic := "alerts"
	msg := func(p int32, o int64) *kafka.Message {
		return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(o)}}
	}
	book.lane.passed(msg(0, 9))
	book.lane.passed(msg(1, 4))
	book.lane.deferFilter(1) // evaluated inline up to 0:10 and 1:5
	set.Defer(1, true)
	for o := int64(10); o < 14; o++ {
		book.lane.passed(msg(0, o))
		if o == 12 {
			book.lane.dropped(msg(0, o)) // a copy the main loop dropped
			continue
		}
		book.lane.push(laneEntry{m: msg(0, o), filters: []int{1}, timed: true, key: visitKey{Run: "r", Visit: 3}})
	}
	book.lane.held = []heldEvent{{Event: timing.Event{Kind: timing.KindFilter, Run: "r", Visit: 3, Name: "slow"}, Until: map[int32]int64{0: 14, 1: 5}}}
	set.Evaluate(map[string]any{}, 3, nil)
	data, err := book.snapshot(set, false)
	if err != nil {
		t.Fatal(err)
	}
	offsets := []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: 14}, {Topic: &topic, Partition: 1, Offset: 5}}
	book.lane.limit(offsets)
	if offsets[0].Offset != 10 || offsets[1].Offset != 5 {
		t.Errorf("offsets to commit %v, want 0:10 (the slow filter's first queued alert) and 1:5", offsets)
	}

	set2, err := filter.NewSet(specs)
	if err != nil {
		t.Fatal(err)
	}
	got, err := restoreBook(data, set2)
	if err != nil {
		t.Fatal(err)
	}
	if !set2.Deferred(1) || set2.Deferred(0) {
		t.Errorf("deferred after restore: cheap %v, slow %v; want only slow", set2.Deferred(0), set2.Deferred(1))
	}
	l := got.lane
	if !l.replaying(msg(0, 11)) || l.replaying(msg(0, 14)) || l.replaying(msg(1, 5)) {
		t.Error("replay routing after restore: want 0:11 replayed, 0:14 and 1:5 read by the main loop")
	}
	if n := l.needs()[1][0]; n != 10 {
		t.Errorf("the slow filter needs 0:%d after restore, want 0:10", n)
	}
	if !l.skipped(msg(0, 12)) || l.skipped(msg(0, 11)) {
		t.Errorf("skipped offsets after restore %v, want 0:12 alone", l.skip[0])
	}
	if len(l.held) != 1 || l.held[0].Event.Name != "slow" || l.held[0].Until[0] != 14 {
		t.Errorf("held events after restore %+v", l.held)
	}
	if _, ok := set2.VisitUse(0, 3); !ok {
		t.Error("the cheap filter's budget use of visit 3 not restored")
	}
}

// An alert parked for its schema joins the slow lane's queue after later
// ones of its partition were queued: it is put before them, so each
// partition's alerts are evaluated, and committed, in offset order.
func TestLaneQueueKeepsPartitionOrder(t *testing.T) {
	l := newLane(true)
	topic := "alerts"
	push := func(p int32, o int64) {
		l.push(laneEntry{m: &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(o)}}})
	}
	push(0, 10)
	push(1, 3)
	push(0, 11)
	push(0, 5) // parked, resolved late
	push(1, 4)
	var got []string
	for _, e := range l.queue {
		got = append(got, e.m.TopicPartition.String())
	}
	want := []string{"alerts[0]@5", "alerts[0]@10", "alerts[1]@3", "alerts[0]@11", "alerts[1]@4"}
	if !slices.Equal(got, want) {
		t.Errorf("queue %v, want %v", got, want)
	}
}

// A restart that removes the deferred filter still reads past, rather than
// handles again, what the main loop had handled: mainNext stays saved
// until the position to commit has passed it.
func TestLaneMainNextOutlivesARemovedFilter(t *testing.T) {
	specs := []filter.Spec{{Name: "cheap", Expr: "true"}, {Name: "slow", Expr: "true"}}
	set, err := filter.NewSet(specs)
	if err != nil {
		t.Fatal(err)
	}
	book := newVisitBook()
	book.lane.enabled = true
	topic := "alerts"
	msg := func(o int64) *kafka.Message {
		return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0, Offset: kafka.Offset(o)}}
	}
	book.lane.passed(msg(49))
	book.lane.deferFilter(1)
	for o := int64(50); o < 100; o++ {
		book.lane.passed(msg(o))
		book.lane.push(laneEntry{m: msg(o), filters: []int{1}})
	}
	data, err := book.snapshot(set, false)
	if err != nil {
		t.Fatal(err)
	}
	// Restarted without the slow filter: nothing is deferred, 50..99 are
	// read past.
	only, err := filter.NewSet(specs[:1])
	if err != nil {
		t.Fatal(err)
	}
	got, err := restoreBook(data, only)
	if err != nil {
		t.Fatal(err)
	}
	if got.lane.active() || !got.lane.replaying(msg(70)) || got.lane.replaying(msg(100)) {
		t.Fatalf("after the restart: active %v, replaying 70 %v, 100 %v; want read past below 100 alone",
			got.lane.active(), got.lane.replaying(msg(70)), got.lane.replaying(msg(100)))
	}
	// Its next commit, at 70, keeps mainNext; one at 100 need not.
	at := func(o int64) []kafka.TopicPartition {
		return []kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.Offset(o)}}
	}
	data, err = got.snapshot(only, got.lane.replayPending(at(70)))
	if err != nil {
		t.Fatal(err)
	}
	again, err := restoreBook(data, only)
	if err != nil {
		t.Fatal(err)
	}
	if !again.lane.replaying(msg(80)) {
		t.Error("a second restart, from 70, would handle 70..99 again: mainNext was not saved")
	}
	if again.lane.replayPending(at(100)) {
		t.Error("replay still pending at 100")
	}
}
