package pipeline

import (
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

	data, err := book.snapshot(set)
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
	data, err := book.snapshot(set)
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
