package pipeline

import (
	"math/rand/v2"
	"testing"
)

// offsetRanges holds exactly the offsets added, in any order, and drops
// those below a bound; runs cost one range.
func TestOffsetRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var r offsetRanges
	want := map[int64]bool{}
	for range 2000 {
		o := rng.Int64N(500)
		r.add(o)
		want[o] = true
	}
	for o := int64(-1); o < 501; o++ {
		if r.contains(o) != want[o] {
			t.Fatalf("contains(%d) = %v, want %v", o, r.contains(o), want[o])
		}
	}
	for i := 1; i < len(r); i++ {
		if r[i-1][1] >= r[i][0] {
			t.Fatalf("ranges %v and %v touch or overlap", r[i-1], r[i])
		}
	}
	r.dropBelow(250)
	for o := int64(0); o < 501; o++ {
		if r.contains(o) != (want[o] && o >= 250) {
			t.Fatalf("after dropBelow(250): contains(%d) = %v", o, r.contains(o))
		}
	}
	var run offsetRanges
	for o := int64(100); o < 10100; o++ {
		run.add(o)
	}
	if len(run) != 1 {
		t.Errorf("a run of 10,000 offsets took %d ranges, want 1", len(run))
	}
}
