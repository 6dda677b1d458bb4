package filter

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	specs := []Spec{
		{Name: "bright", Expr: DefaultExpr, MaxPerVisit: 2},
		{Name: "broken", Expr: "alert.diaSource.nope > 1.0"},
		{Name: "all", Expr: "true", MaxPerVisit: -1, Output: "everything"},
		{Name: "costly", Expr: "alert.prvDiaSources.all(a, alert.prvDiaSources.all(b, a.snr > 0.0))", CostLimit: 50},
		{Name: "band", Expr: "alert.diaSource.band > 1"}, // type mismatch at run time
	}
	s, err := NewSet(specs)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 5 || s.Spec(2).Output != "everything" || s.Spec(0).Output != "bright" || s.Program(0).Expr() != DefaultExpr {
		t.Fatal("accessors")
	}
	type hit struct{ i, rank int }
	var hits []hit
	for n := int64(0); n < 4; n++ { // visit 1: 3 bright alerts and 1 faint
		flux := 50000.0
		if n == 3 {
			flux = 10
		}
		s.Evaluate(testAlert(n, 1, 10, flux, 10), 1, func(i, rank int, ok bool) {
			if ok {
				hits = append(hits, hit{i, rank})
			}
		})
	}
	s.Evaluate(testAlert(9, 2, 10, 50000, 10), 2, func(i, rank int, ok bool) {
		if ok {
			hits = append(hits, hit{i, rank})
		}
	})
	s.Evaluate(testAlert(10, 2, 10, 50000, 10), 2, nil)

	want := []hit{{0, 1}, {2, 1}, {0, 2}, {2, 2}, {2, 3}, {2, 4}, {0, 1}, {2, 1}}
	if fmt.Sprint(hits) != fmt.Sprint(want) {
		t.Fatalf("hits %v, want %v", hits, want)
	}
	st := s.Stats()
	wantStats := []Stats{
		{Name: "bright", Output: "bright", Evaluated: 6, Matched: 5, Admitted: 4},
		{Name: "broken", Output: "broken", Evaluated: 6, Errors: 6},
		{Name: "all", Output: "everything", Evaluated: 6, Matched: 6, Admitted: 6},
		{Name: "costly", Output: "costly", Evaluated: 6, Errors: 6, CostExceeded: 6},
		{Name: "band", Output: "band", Evaluated: 6, Errors: 6},
	}
	for i := range wantStats {
		got := st[i]
		msg := got.LastError
		got.LastError = ""
		if got != wantStats[i] {
			t.Errorf("stats %d: got %+v, want %+v", i, got, wantStats[i])
		}
		if (wantStats[i].Errors > 0) != (msg != "") {
			t.Errorf("stats %d: last error %q", i, msg)
		}
	}
	for i, want := range map[int]string{1: `filter "broken": evaluating filter "alert.diaSource.nope > 1.0": no such key: nope`, 3: "runtime cost limit exceeded (limit 50)", 4: "no such overload"} {
		if !strings.Contains(st[i].LastError, want) {
			t.Errorf("last error %d = %q, want %q", i, st[i].LastError, want)
		}
	}
}

func TestNewSetErrors(t *testing.T) {
	_, err := NewSet(nil)
	if err == nil {
		t.Fatal("empty set accepted")
	}
	_, err = NewSet([]Spec{
		{Name: "a", Expr: "true"},
		{Name: "a", Expr: "true"},
		{Name: "b", Expr: "nope"},
		{Name: "c", Expr: "true", Output: "a"},
	})
	var se *SpecError
	if !errors.As(err, &se) || se.Index != 1 {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{`filters[1]: filter "a": duplicate name`, `filters[2]: filter "b": filter expression: 1:1: undeclared reference to 'nope'`, `filters[3]: filter "c": output topic "a" already written by filter "a"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestSetStatsConcurrent(t *testing.T) {
	s, err := NewSet([]Spec{{Name: "f", Expr: DefaultExpr}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			_ = s.Stats()
		}
	}()
	rec := testAlert(1, 1, 10, 50000, 0)
	for i := 0; i < 100; i++ {
		s.Evaluate(rec, int64(i), nil)
	}
	<-done
	if st := s.Stats()[0]; st.Evaluated != 100 || st.Admitted != 100 {
		t.Fatalf("%+v", st)
	}
}

// TestSetErrorKinds: runtime errors are counted per visit by kind.
func TestSetErrorKinds(t *testing.T) {
	s, err := NewSet([]Spec{
		{Name: "nokey", Expr: "alert.diaSource.nope > 1.0"},
		{Name: "types", Expr: "alert.diaSource.band > 1"},
		{Name: "div", Expr: "1 / int(alert.diaSource.snr - alert.diaSource.snr) > 0"},
		{Name: "costly", Expr: "alert.prvDiaSources.all(a, alert.prvDiaSources.all(b, a.snr > 0.0))", CostLimit: 50},
		{Name: "fine", Expr: "true"},
		{Name: "nulls", Expr: "alert.ssObject.all(k, true)"}, // a null where a map is iterated
	})
	if err != nil {
		t.Fatal(err)
	}
	for n := range int64(3) {
		s.Evaluate(testAlert(n, 7, 10, 50000, 10), 7, nil)
	}
	for i, kind := range []string{ErrKindNoSuchKey, ErrKindTypeMismatch, ErrKindDivByZero, ErrKindCostLimit, "", ErrKindTypeMismatch} {
		u, ok := s.VisitUse(i, 7)
		want := map[string]int{}
		if kind != "" {
			want[kind] = 3
		}
		if !ok || fmt.Sprint(u.Errors) != fmt.Sprint(want) || u.Quarantined {
			t.Errorf("filter %s: use %+v (%v), want errors %v", s.Spec(i).Name, u, ok, want)
		}
	}
}

// TestSetQuarantine: a filter over its time budget for a visit is
// quarantined for the rest of it (the others go on), named to the hook;
// one over it in two visits running sits out the next QuarantineVisits
// visits whole, then is evaluated again.
func TestSetQuarantine(t *testing.T) {
	runaway := "alert.prvDiaSources.all(x, alert.prvDiaSources.all(y, alert.prvDiaSources.all(z, x.psfFlux + y.psfFlux + z.psfFlux > 0.0)))"
	s, err := NewSet([]Spec{
		{Name: "cheap", Expr: "true", MaxPerVisit: -1},
		{Name: "runaway", Expr: runaway, TimeBudget: MinTimeBudget},
	})
	if err != nil {
		t.Fatal(err)
	}
	var told []Quarantine
	s.OnQuarantine(func(q Quarantine) { told = append(told, q) })
	const perVisit = 100
	cheap := map[int64]int{}
	visit := func(v int64) {
		for n := range int64(perVisit) {
			s.Evaluate(testAlert(n, v, 20, 50000, 30), v, func(i, _ int, ok bool) {
				if i == 0 && ok {
					cheap[v]++
				}
			})
		}
	}
	visit(1)
	u, _ := s.VisitUse(1, 1)
	if !u.Quarantined || u.Skipped == 0 || u.Skipped >= perVisit || u.Spent < MinTimeBudget || u.Errors[ErrKindCostLimit] == 0 {
		t.Fatalf("visit 1: runaway's use %+v: want quarantined part-way, over its budget, with cost-limit errors", u)
	}
	if len(told) != 1 || told[0].Filter != "runaway" || told[0].Visit != 1 || !strings.Contains(told[0].Reason, "over its time budget") {
		t.Fatalf("quarantines told: %+v", told)
	}
	t.Logf("visit 1: runaway evaluated %d alerts in %v, skipped %d: %s", perVisit-u.Skipped, u.Spent, u.Skipped, u.Reason)

	visit(2) // over again: benched
	if len(told) != 2 || !strings.Contains(told[1].Reason, fmt.Sprintf("for the next %d visits", QuarantineVisits)) {
		t.Fatalf("visit 2: quarantines told %+v", told)
	}
	for v := int64(3); v < 3+QuarantineVisits; v++ {
		visit(v)
		if u, _ := s.VisitUse(1, v); !u.Quarantined || u.Skipped != perVisit || u.Spent != 0 {
			t.Errorf("visit %d: runaway's use %+v, want quarantined whole", v, u)
		}
	}
	last := int64(3 + QuarantineVisits)
	visit(last)
	if u, _ := s.VisitUse(1, last); u.Skipped == perVisit || u.Spent == 0 {
		t.Errorf("visit %d: runaway's use %+v, want it evaluated again", last, u)
	}
	for v := int64(1); v <= last; v++ {
		if cheap[v] != perVisit {
			t.Errorf("visit %d: the cheap filter admitted %d of %d", v, cheap[v], perVisit)
		}
	}
	if got := len(told); got != 2+QuarantineVisits+1 {
		t.Errorf("%d quarantines told, want %d (2 over budget, %d benched, the last visit over again)", got, 2+QuarantineVisits+1, QuarantineVisits)
	}
}

// A slow filter is told apart from a cheap one; deferred, it is left out
// of Evaluate and run by EvaluateOne; its budget (a quarantine included)
// survives a save and restore into a new Set, as after a restart.
func TestSetDeferAndBudgetState(t *testing.T) {
	slowExpr := "alert.prvDiaSources.all(x, alert.prvDiaSources.all(y, x.psfFlux + y.psfFlux > -1.0e30))"
	specs := []Spec{{Name: "cheap", Expr: "true", MaxPerVisit: -1}, {Name: "slow", Expr: slowExpr, MaxPerVisit: -1}}
	s, err := NewSet(specs)
	if err != nil {
		t.Fatal(err)
	}
	evaluated := func(visit int64, one int) []int {
		var got []int
		fn := func(i, _ int, ok bool) { got = append(got, i) }
		if one >= 0 {
			s.EvaluateOne(one, testAlert(1, visit, 20, 50000, 30), visit, fn)
		} else {
			s.Evaluate(testAlert(1, visit, 20, 50000, 30), visit, fn)
		}
		return got
	}
	for n := 0; !s.Slow(1, 1); n++ {
		if n == 10000 {
			u, _ := s.VisitUse(1, 1)
			t.Fatalf("the slow filter not found slow after %d alerts: %+v", n, u)
		}
		evaluated(1, -1)
	}
	if s.Slow(0, 1) {
		t.Error("the cheap filter found slow")
	}
	s.Defer(1, true)
	if got := evaluated(1, -1); !slices.Equal(got, []int{0}) {
		t.Errorf("Evaluate with the slow filter deferred matched %v, want [0]", got)
	}
	if got := evaluated(1, 1); !slices.Equal(got, []int{1}) {
		t.Errorf("EvaluateOne(1) matched %v, want [1]", got)
	}

	q, err := NewSet([]Spec{{Name: "q", Expr: "true", TimeBudget: MinTimeBudget}})
	if err != nil {
		t.Fatal(err)
	}
	q.RestoreBudget(0, BudgetState{Visits: []VisitUse{{Visit: 4, Spent: time.Second, Quarantined: true, Over: true}}, Benched: 2})
	saved := q.Budget(0)
	r, err := NewSet([]Spec{{Name: "q", Expr: "true", TimeBudget: MinTimeBudget}})
	if err != nil {
		t.Fatal(err)
	}
	r.RestoreBudget(0, saved)
	for v := int64(5); v <= 7; v++ {
		r.Evaluate(map[string]any{}, v, nil)
		if u, _ := r.VisitUse(0, v); u.Quarantined != (v < 7) {
			t.Errorf("visit %d after restore: %+v, want quarantined for 2 visits (benched), then evaluated", v, u)
		}
	}
	if u, ok := r.VisitUse(0, 4); !ok || !u.Quarantined || u.Spent != time.Second {
		t.Errorf("visit 4 after restore: %+v, %v", u, ok)
	}
}

// One evaluation held up by the machine does not make a cheap filter
// slow; two at the cost limit make a runaway slow at once.
func TestSlowLeavesOutTheLongest(t *testing.T) {
	b := budget{limit: time.Minute}
	cheap, _ := b.use(1)
	b.spend(cheap, 20*time.Millisecond) // a thread descheduled
	for range 100 {
		b.spend(cheap, 3*time.Microsecond)
	}
	if cheap.slow() {
		t.Errorf("a cheap filter with one 20 ms evaluation found slow: %+v", cheap)
	}
	runaway, _ := b.use(2)
	b.spend(runaway, 23*time.Millisecond)
	if runaway.slow() {
		t.Error("slow after one evaluation")
	}
	b.spend(runaway, 23*time.Millisecond)
	if !runaway.slow() {
		t.Errorf("two evaluations of 23 ms not found slow: %+v", runaway)
	}
}
