package timing

import (
	"testing"
	"time"
)

func TestDedupKeepsFirstCopies(t *testing.T) {
	at := time.Unix(100, 0)
	evs := []Event{
		{Kind: KindFilter, Run: "r", Visit: 1, Name: "F1", Source: "F1", End: at, Selected: 3},
		{Kind: KindFilter, Run: "r", Visit: 1, Name: "F2", Source: "F2", End: at},
		{Kind: KindFilter, Run: "r", Visit: 1, Name: "F1", Source: "F1", End: at.Add(time.Second), Selected: 3}, // sent again after a restart
		{Kind: KindConsume, Run: "r", Visit: 1, Name: "c", Source: "F1", Rank: 1, End: at},
		{Kind: KindConsume, Run: "r", Visit: 1, Name: "c", Source: "F1", Rank: 2, End: at},
		{Kind: KindFilter, Run: "r2", Visit: 1, Name: "F1", Source: "F1", End: at}, // another run
	}
	got, dropped := Dedup(evs)
	if dropped != 1 || len(got) != 5 {
		t.Fatalf("Dedup dropped %d, kept %d; want 1 and 5", dropped, len(got))
	}
	if !got[0].End.Equal(at) {
		t.Errorf("the first copy must be kept, got end %v", got[0].End)
	}
}
