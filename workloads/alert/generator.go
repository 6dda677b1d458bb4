package alert

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/hamba/avro/v2"
)

// Generator parameters. The magnitude distribution is calibrated so that
// the default filter "snr > 5 && psfFlux > 36310 nJy" (brighter than 20th
// magnitude, positive) keeps about 1 % of alerts: P(m < 20) ≈ 1.43 % from
// the power law, times 75 % positive fluxes ≈ 1.07 %, i.e. ~107 alerts of a
// 10,000-alert visit, well above a per-visit cap of 20.
const (
	// MaxAlertsPerVisit bounds the index of an alert within a visit; the
	// synthetic diaSourceId is visit*MaxAlertsPerVisit + index.
	MaxAlertsPerVisit = 100_000
	// DefaultCutoutBytes is the size of each of the three cutouts that makes
	// an encoded alert about 80 KB (80,000 ± 1,500 bytes), Rubin's design
	// size.
	DefaultCutoutBytes = 26_400
	// NumDetectors is the number of science detectors (ids 0..188).
	NumDetectors = 189
	// MaxHistory is the largest number of prvDiaSources of an alert.
	MaxHistory = 30

	// MagBright and MagDepth bound the difference-flux magnitudes; MagDepth
	// is the single-visit 5-sigma depth.
	MagBright = 16.0
	MagDepth  = 24.5
	// NumberCountSlope is alpha in N(<m) ∝ 10^(alpha·m).
	NumberCountSlope = 0.41
	// NegativeFraction is the fraction of alerts with negative difference
	// flux (dimmings of variable sources).
	NegativeFraction = 0.25
	// ZeroPointNJy is the AB zero point for fluxes in nJy:
	// flux = 10^((ZeroPointNJy - m)/2.5).
	ZeroPointNJy = 31.4
	// FieldRadiusDeg is the radius of the field of view around a pointing.
	FieldRadiusDeg = 1.75

	surveyStartMjd = 60800.0 // first visit's midpoint, MJD TAI
	visitSeconds   = 40.0    // cadence: 30 s exposure plus overheads
	fluxFloor      = 0.01    // relative flux error floor (calibration)
	solarFraction  = 0.05    // alerts without diaObject (solar system)
	historyVisits  = 200_000 // history spans the previous ~3 years of visits
	bands          = "ugrizy"
)

// Stream tags separate the random streams derived from one seed.
const (
	tagVisit uint64 = iota + 1
	tagAlert
	tagPool
)

// Truth is what the generator put into one alert, for cross-checks. Float
// fields hold the exact values encoded: float32 fields widened to float64.
type Truth struct {
	DiaSourceID    int64
	Visit          int64
	Index          int
	Detector       int32
	DiaObjectID    int64 // 0 when diaObject is null
	MidpointMjdTai float64
	Ra, Dec        float64
	Mag            float64 // magnitude of the difference flux before noise
	PsfFlux        float64 // nJy, negative for dimmings
	PsfFluxErr     float64
	Snr            float64
	Band           string
	NPrv           int // number of prvDiaSources (0: the field is null)
	Size           int // bytes of the encoded payload
}

// Generator produces synthetic alerts in the schema of SyntheticSchema.
//
// It is immutable after NewGenerator and safe for concurrent use: any
// number of goroutines may call Alert, e.g. each for a disjoint range of
// indexes of a visit. Every alert depends only on (seed, visit, index).
type Generator struct {
	seed        int64
	cutoutBytes int
	pool        []byte // incompressible cutout content, read-only
	schema      avro.Schema
	scratch     sync.Pool // *genScratch
}

type genScratch struct {
	rec alertRec
	prv [MaxHistory]diaSourceRec
	w   *avro.Writer
}

// NewGenerator returns a Generator for seed whose alerts carry three
// cutouts of cutoutBytes bytes each (DefaultCutoutBytes for Rubin-size
// alerts). With cutoutBytes <= 0 the cutouts are null and an alert takes a
// few hundred bytes. Cutout bytes are slices of a pseudo-random pool of
// max(1 MiB, 4·cutoutBytes) made once here.
func NewGenerator(seed int64, cutoutBytes int) *Generator {
	cutoutBytes = max(cutoutBytes, 0)
	g := &Generator{seed: seed, cutoutBytes: cutoutBytes, schema: SyntheticSchema()}
	if cutoutBytes > 0 {
		g.pool = makePool(seed, max(1<<20, 4*cutoutBytes))
	}
	g.scratch.New = func() any {
		return &genScratch{w: avro.NewWriter(nil, 1024)}
	}
	return g
}

func makePool(seed int64, n int) []byte {
	r := newRNG(uint64(seed), tagPool)
	b := make([]byte, n+7)
	for i := 0; i < n; i += 8 {
		v := r.uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b[:n:n]
}

// Schema returns the schema of the generated payloads (SyntheticSchema).
func (g *Generator) Schema() avro.Schema { return g.schema }

// Seed returns the generator's seed.
func (g *Generator) Seed() int64 { return g.seed }

// CutoutBytes returns the size of each cutout (0: cutouts are null).
func (g *Generator) CutoutBytes() int { return g.cutoutBytes }

// DiaSourceID returns the diaSourceId of alert index of visit:
// visit*MaxAlertsPerVisit + index.
func DiaSourceID(visit int64, index int) int64 {
	return visit*MaxAlertsPerVisit + int64(index)
}

// ErrAlertRange means a visit or index is outside what synthetic ids hold.
var ErrAlertRange = errors.New("alert visit or index out of range")

// Alert appends the Avro binary payload (no wire header; see AppendWire) of
// alert index of visit to dst and returns it with the alert's Truth. The
// same (seed, visit, index) always gives the same bytes. visit must be in
// [0, MaxInt64/MaxAlertsPerVisit) and index in [0, MaxAlertsPerVisit).
func (g *Generator) Alert(dst []byte, visit int64, index int) ([]byte, Truth, error) {
	if visit < 0 || visit >= math.MaxInt64/MaxAlertsPerVisit || index < 0 || index >= MaxAlertsPerVisit {
		return dst, Truth{}, fmt.Errorf("%w: visit %d (want 0..%d), index %d (want 0..%d)",
			ErrAlertRange, visit, int64(math.MaxInt64/MaxAlertsPerVisit-1), index, MaxAlertsPerVisit-1)
	}
	s := g.scratch.Get().(*genScratch)
	defer g.scratch.Put(s)

	t := g.fill(s, visit, index)
	s.w.Reset(nil)
	s.w.WriteVal(g.schema, &s.rec)
	if err := s.w.Error; err != nil {
		s.w = avro.NewWriter(nil, 1024) // drop the writer's sticky error
		return dst, Truth{}, fmt.Errorf("encode synthetic alert visit %d index %d: %w", visit, index, err)
	}
	t.Size = len(s.w.Buffer())
	return append(dst, s.w.Buffer()...), t, nil
}
