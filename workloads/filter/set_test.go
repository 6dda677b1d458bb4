package filter

import (
	"errors"
	"fmt"
	"strings"
	"testing"
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
