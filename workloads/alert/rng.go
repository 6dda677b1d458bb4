package alert

import "math"

// rng is a tiny splitmix64 generator. It is a value type (no allocation) and
// its output is fully specified here, so generated alerts do not change
// with the Go version.
type rng struct{ s uint64 }

// mix64 is the splitmix64 finaliser, a good 64-bit hash.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// newRNG seeds a stream from a list of keys, so that streams for different
// keys (seed, visit, index, purpose) are independent.
func newRNG(keys ...uint64) rng {
	h := uint64(0x243f6a8885a308d3)
	for _, k := range keys {
		h = mix64(h ^ mix64(k+0x9e3779b97f4a7c15))
	}
	return rng{s: h}
}

func (r *rng) uint64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix64(r.s)
}

// float64 returns a uniform value in [0, 1).
func (r *rng) float64() float64 { return float64(r.uint64()>>11) * (1.0 / (1 << 53)) }

// intn returns a uniform value in [0, n), n > 0.
func (r *rng) intn(n int) int { return int((r.uint64() >> 1) % uint64(n)) }

// norm returns a standard normal deviate (Box-Muller, one of the pair).
func (r *rng) norm() float64 {
	u := 1 - r.float64() // (0, 1]
	v := r.float64()
	return math.Sqrt(-2*math.Log(u)) * math.Cos(2*math.Pi*v)
}
