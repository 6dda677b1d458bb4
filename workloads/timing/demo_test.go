package timing

import (
	"fmt"
	"math/rand"
	"os"
	"testing"
	"time"
)

// TestDemoHTML writes a realistic report to $TIMING_DEMO (skipped when
// unset): 30 visits, 100 filters, 20 consumers.
func TestDemoHTML(t *testing.T) {
	out := os.Getenv("TIMING_DEMO")
	if out == "" {
		t.Skip("TIMING_DEMO not set")
	}
	rng := rand.New(rand.NewSource(7))
	var ev []Event
	for v := int64(100); v < 130; v++ {
		start := t0.Add(time.Duration(v-100) * 39 * time.Second)
		send := time.Duration(12000+rng.Intn(4000)) * time.Millisecond
		end := start.Add(send)
		if v != 117 {
			ev = append(ev, Event{Kind: KindProduce, Run: "demo", Visit: v, Name: "producer", Start: start, End: end, Alerts: 10000, Bytes: 80_000_000})
		}
		for f := 0; f < 100; f++ {
			lag := time.Duration(rng.Intn(500)-20) * time.Millisecond
			ev = append(ev, Event{Kind: KindFilter, Visit: v, Name: fmt.Sprintf("Filter%03d", f), End: end.Add(lag), Alerts: 10000, Matched: 25, Selected: 20})
		}
		for c := 0; c < 20; c++ {
			lat := time.Duration(4000+rng.Intn(2500)) * time.Millisecond
			ev = append(ev, Event{Kind: KindConsume, Visit: v, Name: fmt.Sprintf("consumer%02d", c), Source: fmt.Sprintf("Filter%03d", c), End: start.Add(lat), Rank: 20})
		}
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Build(ev).WriteHTML(f); err != nil {
		t.Fatal(err)
	}
}
