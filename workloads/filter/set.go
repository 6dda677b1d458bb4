package filter

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Set evaluates many compiled filters on each alert, sharing one decoded
// record, in a plain loop (no goroutine per alert or filter). One filter
// failing or exceeding its cost limit affects only its own counters.
//
// Evaluate must not be called concurrently; Stats may be called from any
// goroutine at any time.
type Set struct {
	filters []setFilter
	// onQuarantine, if set, is told of each filter quarantined for a
	// visit, from within Evaluate.
	onQuarantine func(Quarantine)
}

type setFilter struct {
	spec   Spec
	prog   *Program
	cap    *Cap
	budget budget // used by Evaluate only
	// deferred takes the filter out of Evaluate (Defer).
	deferred bool

	evaluated, matched, admitted, errs, costErrs, skipped atomic.Uint64

	mu      sync.Mutex
	lastErr error
}

// Stats are one filter's counters since the Set was made.
type Stats struct {
	Name      string `json:"name"`
	Output    string `json:"output"`
	Evaluated uint64 `json:"evaluated"` // alerts evaluated
	Matched   uint64 `json:"matched"`   // alerts matching, before the cap
	Admitted  uint64 `json:"admitted"`  // alerts matching and admitted by the cap
	Errors    uint64 `json:"errors"`    // evaluations that failed, cost-exceeded ones included
	// CostExceeded counts the evaluations stopped by the cost limit.
	CostExceeded uint64 `json:"cost_exceeded"`
	// Skipped counts the alerts not evaluated while the filter was
	// quarantined (see DefaultTimeBudget).
	Skipped uint64 `json:"skipped"`
	// LastError is the message of the latest evaluation error, if any.
	LastError string `json:"last_error,omitempty"`
}

// NewSet validates and compiles the specs (defaults filled in). All the
// faulty specs are reported together, joined with errors.Join; names and
// outputs must be unique.
func NewSet(specs []Spec, opts ...Option) (*Set, error) {
	if len(specs) == 0 {
		return nil, errors.New("filter set: no filters given")
	}
	specs, progs, err := compileSpecs(specs, nil, opts...)
	if err != nil {
		return nil, err
	}
	s := &Set{filters: make([]setFilter, len(specs))}
	for i, sp := range specs {
		f := &s.filters[i]
		f.spec, f.prog, f.cap = sp, progs[i], NewCap(sp.MaxPerVisit)
		f.budget.limit = sp.TimeBudget
	}
	return s, nil
}

// OnQuarantine sets fn to be called, from within Evaluate, for each filter
// quarantined for a visit.
func (s *Set) OnQuarantine(fn func(Quarantine)) { s.onQuarantine = fn }

// VisitUse returns what filter i did with visit besides matching (its
// evaluation time, runtime errors by kind, quarantine), if it is among the
// visits it remembers.
func (s *Set) VisitUse(i int, visit int64) (VisitUse, bool) {
	for _, u := range s.filters[i].budget.visits {
		if u.Visit == visit {
			return u.copy(), true
		}
	}
	return VisitUse{}, false
}

// Len returns the number of filters.
func (s *Set) Len() int { return len(s.filters) }

// Spec returns the i-th filter's spec, defaults filled in.
func (s *Set) Spec(i int) Spec { return s.filters[i].spec }

// Program returns the i-th filter's compiled program.
func (s *Set) Program(i int) *Program { return s.filters[i].prog }

// Evaluate runs every filter not deferred (Defer) on rec, an alert of the
// given visit, and calls fn(i, rank, admitted) for each filter i that
// matches: admitted tells whether its cap lets the alert through, and rank
// is then the 1-based rank of the alert in the filter's output for the
// visit. Evaluation errors are counted in Stats and VisitUse, never
// returned. A filter quarantined for the visit (over its time budget) is
// skipped. fn may be nil.
func (s *Set) Evaluate(rec map[string]any, visit int64, fn func(i int, rank int, admitted bool)) {
	act := recordActivation{rec}
	for i := range s.filters {
		if s.filters[i].deferred {
			continue
		}
		s.evaluate(i, act, visit, fn)
	}
}

// EvaluateOne is Evaluate for filter i alone, deferred or not.
func (s *Set) EvaluateOne(i int, rec map[string]any, visit int64, fn func(i int, rank int, admitted bool)) {
	s.evaluate(i, recordActivation{rec}, visit, fn)
}

// Defer takes filter i out of Evaluate (on) or puts it back (off): its
// caller then evaluates it apart, with EvaluateOne.
func (s *Set) Defer(i int, on bool) { s.filters[i].deferred = on }

// Deferred reports whether filter i is deferred.
func (s *Set) Deferred(i int) bool { return s.filters[i].deferred }

// Slow reports whether filter i's evaluations of visit are slow enough to
// defer (see SlowEvaluation).
func (s *Set) Slow(i int, visit int64) bool {
	b := &s.filters[i].budget
	return len(b.visits) > 0 && b.visits[len(b.visits)-1].Visit == visit && b.visits[len(b.visits)-1].slow()
}

// Budget returns what filter i's time budget remembers, to be saved.
func (s *Set) Budget(i int) BudgetState { return s.filters[i].budget.state() }

// RestoreBudget sets what filter i's time budget remembers.
func (s *Set) RestoreBudget(i int, st BudgetState) { s.filters[i].budget.restore(st) }

func (s *Set) evaluate(i int, act recordActivation, visit int64, fn func(i int, rank int, admitted bool)) {
	f := &s.filters[i]
	u, fresh := f.budget.use(visit)
	if fresh && f.budget.start(u) {
		s.quarantined(f, u)
	}
	if u.Quarantined {
		u.Skipped++
		f.skipped.Add(1)
		return
	}
	f.evaluated.Add(1)
	began := time.Now()
	ok, err := f.prog.eval(act)
	if f.budget.spend(u, time.Since(began)) {
		s.quarantined(f, u)
	}
	if err != nil {
		f.fail(err)
		u.Errors[ErrorKind(err)]++
		return
	}
	if ok {
		f.match(i, visit, fn)
	}
}

// match counts a match of filter i on an alert of visit, takes its rank
// in the visit's cap and tells fn.
func (f *setFilter) match(i int, visit int64, fn func(i int, rank int, admitted bool)) {
	f.matched.Add(1)
	rank, admitted := f.cap.Admit(visit)
	if admitted {
		f.admitted.Add(1)
	}
	if fn != nil {
		fn(i, rank, admitted)
	}
}

func (s *Set) quarantined(f *setFilter, u *VisitUse) {
	if s.onQuarantine != nil {
		s.onQuarantine(Quarantine{Filter: f.spec.Name, Visit: u.Visit, Reason: u.Reason})
	}
}

// CapCounts returns filter i's per-visit counts for its n highest visits
// (see Cap.Recent).
func (s *Set) CapCounts(i, n int) []VisitCount { return s.filters[i].cap.Recent(n) }

// RestoreCaps sets filter i's per-visit counts (see Cap.Restore).
func (s *Set) RestoreCaps(i int, counts []VisitCount) { s.filters[i].cap.Restore(counts) }

func (f *setFilter) fail(err error) {
	f.errs.Add(1)
	if isCostError(err) {
		f.costErrs.Add(1)
	}
	f.mu.Lock()
	f.lastErr = err
	f.mu.Unlock()
}

// Stats returns every filter's counters, in spec order.
func (s *Set) Stats() []Stats {
	out := make([]Stats, len(s.filters))
	for i := range s.filters {
		f := &s.filters[i]
		st := Stats{
			Name:         f.spec.Name,
			Output:       f.spec.Output,
			Evaluated:    f.evaluated.Load(),
			Matched:      f.matched.Load(),
			Admitted:     f.admitted.Load(),
			Errors:       f.errs.Load(),
			CostExceeded: f.costErrs.Load(),
			Skipped:      f.skipped.Load(),
		}
		f.mu.Lock()
		if f.lastErr != nil {
			st.LastError = fmt.Sprintf("filter %q: %v", f.spec.Name, f.prog.describe(f.lastErr))
		}
		f.mu.Unlock()
		out[i] = st
	}
	return out
}
