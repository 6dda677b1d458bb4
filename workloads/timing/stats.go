package timing

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Summary describes a sample of durations. Percentiles use the
// nearest-rank method: Pp is the smallest value such that at least p% of
// the sample is less than or equal to it, i.e. the value of rank
// ceil(p/100 × N) in ascending order. Mean is rounded toward zero to the
// nanosecond. All fields are zero when N is 0.
type Summary struct {
	N    int
	Mean time.Duration
	P50  time.Duration
	P99  time.Duration
	Max  time.Duration
	Min  time.Duration
}

// Summarize computes the Summary of durations (the slice is not modified).
func Summarize(durations []time.Duration) Summary {
	if len(durations) == 0 {
		return Summary{}
	}
	s := slices.Clone(durations)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Summary{
		N:    len(s),
		Mean: sum / time.Duration(len(s)),
		P50:  NearestRank(s, 50),
		P99:  NearestRank(s, 99),
		Max:  s[len(s)-1],
		Min:  s[0],
	}
}

// RateSummary describes a sample of rates (MB/s), like Summary.
type RateSummary struct {
	N    int
	Mean float64
	P50  float64
	P99  float64
	Max  float64
	Min  float64
}

// SummarizeRates computes the RateSummary of rates.
func SummarizeRates(rates []float64) RateSummary {
	if len(rates) == 0 {
		return RateSummary{}
	}
	s := slices.Clone(rates)
	slices.Sort(s)
	var sum float64
	for _, r := range s {
		sum += r
	}
	return RateSummary{
		N:    len(s),
		Mean: sum / float64(len(s)),
		P50:  NearestRank(s, 50),
		P99:  NearestRank(s, 99),
		Max:  s[len(s)-1],
		Min:  s[0],
	}
}

// NearestRank returns the p-th percentile (0 < p <= 100) of an ascending
// sample by the nearest-rank method: the element of 1-based rank
// ceil(p/100 × N), clamped to [1, N]. It returns the zero value for an
// empty sample.
func NearestRank[T cmp.Ordered](sorted []T, p float64) T {
	var zero T
	n := len(sorted)
	if n == 0 {
		return zero
	}
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}
