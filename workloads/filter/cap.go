package filter

import (
	"cmp"
	"slices"
)

// CapVisits is the number of distinct visits a Cap remembers.
const CapVisits = 64

// Cap enforces a filter's per-visit limit: at most max alerts of one visit
// are admitted.
//
// Memory is bounded over an endless stream: a Cap remembers the counts of
// the CapVisits most recently started visits only (a fixed ring; a new
// visit replaces the visit that started longest ago). An alert of a visit
// that has been forgotten is treated as the start of that visit again and
// gets a fresh quota. The choice favours liveness over strictness: a Cap
// never blocks a visit number forever (visit numbers may restart with a new
// producer run), and the limit holds exactly as long as all the alerts of a
// visit arrive within CapVisits visits of each other — at one visit every
// 39 s, some 40 minutes of lateness.
//
// A Cap is not safe for concurrent use.
type Cap struct {
	max     int
	entries [CapVisits]capEntry
	used    int // entries in use
	next    int // ring slot the next new visit takes once full
	last    int // slot of the most recent hit, checked first
}

type capEntry struct {
	visit int64
	count int
}

// NewCap returns a Cap admitting max alerts per visit, or every alert when
// max is not positive. max is a limit already resolved by
// Spec.WithDefaults, where a max_per_visit of 0 has become
// DefaultMaxPerVisit: a 0 that reaches NewCap means no cap, like a
// negative one, so that a Cap never blocks a stream.
func NewCap(max int) *Cap { return &Cap{max: max} }

// Max returns the per-visit limit (<= 0: unlimited).
func (c *Cap) Max() int { return c.max }

// Admit counts one more alert of visit. It returns the alert's 1-based
// rank within the visit and true, or 0 and false when the visit already
// has max admitted alerts.
func (c *Cap) Admit(visit int64) (rank int, ok bool) {
	e := c.find(visit)
	if c.max > 0 && e.count >= c.max {
		return 0, false
	}
	e.count++
	return e.count, true
}

// Count returns how many alerts of visit have been admitted, as far as the
// Cap remembers.
func (c *Cap) Count(visit int64) int {
	for i := 0; i < c.used; i++ {
		if c.entries[i].visit == visit {
			return c.entries[i].count
		}
	}
	return 0
}

// find returns the entry of visit, creating it (and evicting the oldest
// visit when full) if needed.
func (c *Cap) find(visit int64) *capEntry {
	if c.used > 0 && c.entries[c.last].visit == visit {
		return &c.entries[c.last]
	}
	for i := 0; i < c.used; i++ {
		if c.entries[i].visit == visit {
			c.last = i
			return &c.entries[i]
		}
	}
	var slot int
	if c.used < CapVisits {
		slot = c.used
		c.used++
	} else {
		slot = c.next
		c.next = (c.next + 1) % CapVisits
	}
	c.entries[slot] = capEntry{visit: visit}
	c.last = slot
	return &c.entries[slot]
}

// VisitCount is how many alerts of one visit a Cap has admitted: what a
// filter saves with its committed offsets, to resume its ranks after a
// restart.
type VisitCount struct {
	Visit int64 `json:"v"`
	Count int   `json:"n"`
}

// Recent returns the counts of the n highest visit numbers the Cap
// remembers, highest first.
func (c *Cap) Recent(n int) []VisitCount {
	out := make([]VisitCount, 0, c.used)
	for i := 0; i < c.used; i++ {
		out = append(out, VisitCount{Visit: c.entries[i].visit, Count: c.entries[i].count})
	}
	slices.SortFunc(out, func(a, b VisitCount) int { return cmp.Compare(b.Visit, a.Visit) })
	if len(out) > n {
		out = out[:n]
	}
	return out
}

// Restore makes the Cap remember exactly the given counts, as if it had
// admitted them (at most CapVisits, the highest visits kept).
func (c *Cap) Restore(counts []VisitCount) {
	*c = Cap{max: c.max}
	counts = slices.Clone(counts)
	slices.SortFunc(counts, func(a, b VisitCount) int { return cmp.Compare(a.Visit, b.Visit) })
	if len(counts) > CapVisits {
		counts = counts[len(counts)-CapVisits:]
	}
	for _, vc := range counts {
		c.find(vc.Visit).count = vc.Count
	}
}
