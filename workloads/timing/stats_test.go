package timing

import (
	"testing"
	"time"
)

func TestNearestRank(t *testing.T) {
	ten := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	cases := []struct {
		p    float64
		want int
	}{{50, 5}, {99, 10}, {90, 9}, {91, 10}, {10, 1}, {1, 1}, {100, 10}, {0, 1}}
	for _, c := range cases {
		if got := NearestRank(ten, c.p); got != c.want {
			t.Errorf("p%v of 1..10 = %d, want %d", c.p, got, c.want)
		}
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	if got := NearestRank(hundred, 99); got != 99 {
		t.Errorf("p99 of 1..100 = %d, want 99", got)
	}
	if got := NearestRank(hundred, 50); got != 50 {
		t.Errorf("p50 of 1..100 = %d, want 50", got)
	}
	// p99 of 7 values: rank ceil(6.93) = 7; p50 of 7: rank ceil(3.5) = 4.
	seven := []float64{1, 2, 3, 4, 5, 6, 7}
	if NearestRank(seven, 99) != 7 || NearestRank(seven, 50) != 4 {
		t.Error("seven values")
	}
	// p50 of 4 values: rank 2, not an interpolation.
	if got := NearestRank([]float64{1, 2, 3, 4}, 50); got != 2 {
		t.Errorf("p50 of 4 = %v", got)
	}
	if NearestRank([]int{}, 50) != 0 || NearestRank([]int{7}, 99) != 7 {
		t.Error("empty or single")
	}
}

func TestSummarize(t *testing.T) {
	in := []time.Duration{3 * time.Second, -time.Second, 2 * time.Second, 1}
	got := Summarize(in)
	want := Summary{N: 4, Mean: (4*time.Second + 1) / 4, P50: 1, P99: 3 * time.Second, Max: 3 * time.Second, Min: -time.Second}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if in[0] != 3*time.Second {
		t.Error("input modified")
	}
	if (Summarize(nil) != Summary{}) {
		t.Error("empty")
	}
	// The mean rounds toward zero.
	if s := Summarize([]time.Duration{1, 2}); s.Mean != 1 {
		t.Errorf("mean of 1ns, 2ns = %v", s.Mean)
	}
	if s := Summarize([]time.Duration{-1, -2}); s.Mean != -1 {
		t.Errorf("mean of -1ns, -2ns = %v", s.Mean)
	}
	r := SummarizeRates([]float64{4, 1, 2})
	if (r != RateSummary{N: 3, Mean: 7.0 / 3, P50: 2, P99: 4, Max: 4, Min: 1}) {
		t.Errorf("rates %+v", r)
	}
	if (SummarizeRates(nil) != RateSummary{}) {
		t.Error("empty rates")
	}
}
