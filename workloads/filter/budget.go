package filter

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
)

// Time budgets. Besides the cost limit of one evaluation, each filter has a
// budget of evaluation time per visit: a filter that spends more on one
// visit is quarantined for the rest of it (its alerts are not evaluated),
// which bounds what one expensive filter costs its process (a slow filter
// is also deferred, so that it does not hold up the others: see
// SlowEvaluation). A filter that exceeds its budget in two visits running
// is then quarantined for the next QuarantineVisits visits whole.
const (
	// DefaultTimeBudget is a filter's evaluation time per visit. A
	// filter of the usual kind spends a few µs per alert, well under 0.1 s
	// on a visit of 10,000 alerts; one that hits the default cost limit on
	// every alert spends about 23 ms on each, and would take 230 s.
	DefaultTimeBudget = 2 * time.Second
	// MinTimeBudget and MaxTimeBudget bound a configured budget.
	MinTimeBudget = 10 * time.Millisecond
	MaxTimeBudget = time.Minute
	// QuarantineVisits is how many later visits a filter that exceeded its
	// budget in two visits running is quarantined for.
	QuarantineVisits = 5
	// budgetVisits is how many visits' use a filter remembers.
	budgetVisits = 8
)

// Slow filters. In a shared process a filter is slow in a visit once its
// evaluations there (two at least) average SlowEvaluation or more and add
// up to slowAfter, its longest one left out: the process moves it out of
// the inline loop (see Set.Defer), so that it delays the others by a
// couple of evaluations at most. A filter of the usual kind takes a few
// µs per alert, one at its cost limit about 23 ms; leaving the longest
// out keeps one evaluation held up by the machine (a thread descheduled
// for 20 ms) from making a cheap filter look slow.
const (
	SlowEvaluation = 50 * time.Microsecond
	slowAfter      = 10 * time.Millisecond
)

// Kinds of CEL runtime errors, as counted per filter and visit.
const (
	ErrKindCostLimit    = "cost_limit"       // the evaluation hit the cost limit
	ErrKindNoSuchKey    = "no_such_key"      // a field absent from the alert
	ErrKindTypeMismatch = "type_mismatch"    // no overload for the operand types (e.g. a string compared with a number), or a null iterated
	ErrKindDivByZero    = "division_by_zero" // division or modulus by zero
	ErrKindNotBool      = "not_bool"         // the expression returned something else than a bool
	ErrKindOther        = "other"
)

// ErrorKind classifies an evaluation error of a filter.
func ErrorKind(err error) string {
	if errors.Is(err, ErrCostLimit) {
		return ErrKindCostLimit
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "no such key"), strings.Contains(msg, "no such attribute"), strings.Contains(msg, "no such field"):
		return ErrKindNoSuchKey
	case strings.Contains(msg, "no such overload"), strings.Contains(msg, "no matching overload"),
		strings.Contains(msg, "expected iterable type"), strings.Contains(msg, "got 'types."):
		return ErrKindTypeMismatch // also a null where a list or map was wanted
	case strings.Contains(msg, "division by zero"), strings.Contains(msg, "modulus by zero"):
		return ErrKindDivByZero
	case strings.Contains(msg, "want bool"):
		return ErrKindNotBool
	}
	return ErrKindOther
}

// VisitUse is what a filter did with one visit besides matching: the time
// it spent evaluating, its runtime errors and whether it was quarantined.
type VisitUse struct {
	Visit     int64         `json:"visit"`
	Spent     time.Duration `json:"spent"`
	Evaluated int           `json:"evaluated,omitempty"`
	// Longest is the longest evaluation.
	Longest time.Duration  `json:"longest,omitempty"`
	Errors  map[string]int `json:"errors,omitempty"` // by kind (ErrKind*)
	// Skipped counts the alerts not evaluated while quarantined.
	Skipped     int    `json:"skipped,omitempty"`
	Quarantined bool   `json:"quarantined,omitempty"`
	Reason      string `json:"reason,omitempty"` // why it was quarantined
	// Over is set when the filter exceeded its budget in this visit (not
	// merely quarantined for it whole).
	Over bool `json:"over,omitempty"`
}

// BudgetState is what a filter's budget remembers: its use of its recent
// visits, oldest first, and how many later visits it is still benched
// for. A process saves it with its other state, so that a restart neither
// forgets a quarantine nor grants a fresh budget for a visit half spent.
type BudgetState struct {
	Visits  []VisitUse `json:"visits,omitempty"`
	Benched int        `json:"benched,omitempty"`
}

// Quarantine reports a filter quarantined for a visit.
type Quarantine struct {
	Filter string
	Visit  int64
	Reason string
}

// budget keeps a filter's use of its recent visits.
type budget struct {
	limit   time.Duration
	visits  []*VisitUse // oldest first, at most budgetVisits
	benched int         // later visits still to be quarantined whole
}

// use returns the visit's record, and whether it is new.
func (b *budget) use(visit int64) (*VisitUse, bool) {
	for i := len(b.visits) - 1; i >= 0; i-- {
		if b.visits[i].Visit == visit {
			return b.visits[i], false
		}
	}
	u := &VisitUse{Visit: visit, Errors: map[string]int{}}
	if len(b.visits) == budgetVisits {
		b.visits = append(b.visits[:0], b.visits[1:]...)
	}
	b.visits = append(b.visits, u)
	return u, true
}

// overBefore reports whether the filter exceeded its budget in the visit
// it handled before u.
func (b *budget) overBefore(u *VisitUse) bool {
	for i := len(b.visits) - 1; i > 0; i-- {
		if b.visits[i] == u {
			return b.visits[i-1].Over
		}
	}
	return false
}

// start quarantines a new visit whole while the filter is benched.
func (b *budget) start(u *VisitUse) bool {
	if b.benched == 0 {
		return false
	}
	b.benched--
	u.Quarantined = true
	u.Reason = fmt.Sprintf("quarantined for %d visits after exceeding its time budget of %v in two visits running", QuarantineVisits, b.limit)
	return true
}

// spend adds an evaluation's time to u and quarantines the filter for the
// rest of the visit when it is over its budget.
func (b *budget) spend(u *VisitUse, d time.Duration) bool {
	u.Spent += d
	u.Evaluated++
	u.Longest = max(u.Longest, d)
	if u.Spent <= b.limit || u.Quarantined {
		return false
	}
	u.Quarantined, u.Over = true, true
	u.Reason = fmt.Sprintf("spent %v evaluating alerts of visit %d, over its time budget of %v", u.Spent.Round(time.Millisecond), u.Visit, b.limit)
	if b.overBefore(u) {
		b.benched = QuarantineVisits
		u.Reason += fmt.Sprintf(", as in its previous visit: quarantined for the next %d visits too", QuarantineVisits)
	}
	return true
}

// copy returns a copy of u that the caller may keep.
func (u *VisitUse) copy() VisitUse {
	c := *u
	c.Errors = maps.Clone(u.Errors)
	return c
}

// slow reports whether the filter's evaluations of u's visit are slow (see
// SlowEvaluation).
func (u *VisitUse) slow() bool {
	rest := u.Spent - u.Longest
	return u.Evaluated >= 2 && rest >= slowAfter && rest/time.Duration(u.Evaluated-1) >= SlowEvaluation
}

// state returns a copy of what b remembers.
func (b *budget) state() BudgetState {
	st := BudgetState{Benched: b.benched}
	for _, u := range b.visits {
		st.Visits = append(st.Visits, u.copy())
	}
	return st
}

// restore sets what b remembers (the latest budgetVisits visits of st).
func (b *budget) restore(st BudgetState) {
	b.visits, b.benched = nil, st.Benched
	for _, u := range st.Visits[max(0, len(st.Visits)-budgetVisits):] {
		u := u.copy()
		if u.Errors == nil {
			u.Errors = map[string]int{}
		}
		b.visits = append(b.visits, &u)
	}
}
