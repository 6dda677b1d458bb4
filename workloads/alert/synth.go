package alert

import "math"

// pointing is the per-visit part of an alert: where and when the telescope
// looked, and through which filter.
type pointing struct {
	ra, dec float64 // field centre [deg]
	mjd     float64 // midpoint, MJD TAI
	band    int     // index into bands
}

// visitPointing derives the pointing of visit from the seed alone, so every
// alert of a visit agrees on it.
func (g *Generator) visitPointing(visit int64) pointing {
	r := newRNG(uint64(g.seed), tagVisit, uint64(visit))
	return pointing{
		ra:   360 * r.float64(),
		dec:  -70 + 80*r.float64(), // the sky south of +10°
		mjd:  surveyStartMjd + float64(visit)*visitSeconds/86400,
		band: r.intn(len(bands)),
	}
}

// sampleMag draws a magnitude from N(<m) ∝ 10^(alpha·m) on
// [MagBright, MagDepth] by inverting the cumulative distribution.
func sampleMag(u float64) float64 {
	lo := math.Pow(10, NumberCountSlope*MagBright)
	hi := math.Pow(10, NumberCountSlope*MagDepth)
	return math.Log10(lo+u*(hi-lo)) / NumberCountSlope
}

// magToFlux converts an AB magnitude to a flux in nJy.
func magToFlux(m float64) float64 { return math.Pow(10, (ZeroPointNJy-m)/2.5) }

// skySigma is the background-limited flux error at the 5-sigma depth.
var skySigma = magToFlux(MagDepth) / 5

// measure returns a noisy flux, its error and the signal-to-noise ratio for
// a true flux, all rounded to float32 as they are encoded.
func measure(r *rng, flux float64) (f, e, snr float32) {
	bg := skySigma * (0.9 + 0.2*r.float64())
	sigma := math.Sqrt(bg*bg + fluxFloor*fluxFloor*flux*flux)
	f = float32(flux + sigma*r.norm())
	e = float32(sigma)
	snr = float32(math.Abs(float64(f)) / float64(e))
	return f, e, snr
}

// onSky returns a position uniform in the field of view around p.
func onSky(r *rng, p pointing) (ra, dec float64) {
	rad := FieldRadiusDeg * math.Sqrt(r.float64())
	th := 2 * math.Pi * r.float64()
	dec = p.dec + rad*math.Sin(th)
	ra = math.Mod(p.ra+rad*math.Cos(th)/math.Cos(dec*math.Pi/180)+360, 360)
	return ra, dec
}

// fill sets s.rec to alert index of visit and returns its Truth (without
// Size). It only reads g.
func (g *Generator) fill(s *genScratch, visit int64, index int) Truth {
	p := g.visitPointing(visit)
	r := newRNG(uint64(g.seed), tagAlert, uint64(visit), uint64(index))
	a := &s.rec
	*a = alertRec{}

	id := DiaSourceID(visit, index)
	mag := sampleMag(r.float64())
	sign := 1.0
	if r.float64() < NegativeFraction {
		sign = -1
	}
	flux, ferr, snr := measure(&r, sign*magToFlux(mag))
	ra, dec := onSky(&r, p)
	src := &a.DiaSource
	*src = diaSourceRec{
		DiaSourceID:    id,
		Visit:          visit,
		Detector:       int32(r.intn(NumDetectors)),
		MidpointMjdTai: p.mjd,
		Ra:             ra,
		Dec:            dec,
		X:              float32(4072 * r.float64()),
		Y:              float32(4000 * r.float64()),
		PsfFlux:        flux,
		PsfFluxErr:     ferr,
		Snr:            snr,
		Band:           bands[p.band : p.band+1],
	}
	a.DiaSourceID = id

	t := Truth{
		DiaSourceID: id, Visit: visit, Index: index, Detector: src.Detector,
		MidpointMjdTai: p.mjd, Ra: ra, Dec: dec, Mag: mag,
		PsfFlux: float64(flux), PsfFluxErr: float64(ferr), Snr: float64(snr),
		Band: src.Band,
	}

	if r.float64() >= solarFraction {
		g.fillObject(s, &r, visit, math.Abs(magToFlux(mag)))
		t.DiaObjectID = a.DiaObject.DiaObjectID
		t.NPrv = len(a.PrvDiaSources)
	}

	if g.cutoutBytes > 0 {
		a.CutoutDifference = g.cutout(&r)
		a.CutoutScience = g.cutout(&r)
		a.CutoutTemplate = g.cutout(&r)
	}
	return t
}

// fillObject attaches a diaObject and a history of 0..MaxHistory earlier
// detections (oldest first) to s.rec.
func (g *Generator) fillObject(s *genScratch, r *rng, visit int64, baseFlux float64) {
	a := &s.rec
	objID := int64(r.uint64()>>2) | 1
	a.DiaSource.DiaObjectID = &objID

	obj := &diaObjectRec{DiaObjectID: objID, Ra: a.DiaSource.Ra, Dec: a.DiaSource.Dec}
	var sum [len(bands)]float64
	var cnt [len(bands)]int
	b0 := int(a.DiaSource.Band[0])
	sum[bandIndex(b0)] += float64(a.DiaSource.PsfFlux)
	cnt[bandIndex(b0)]++

	// The history length does not depend on the visit number; its visits
	// are drawn from the previous historyVisits visits (none for visit 0).
	u := r.float64()
	n := int(float64(MaxHistory+1) * u * u * u) // 0..30, mean ~7.5
	if visit == 0 {
		n = 0
	}
	lo := max(0, visit-historyVisits)
	prv := s.prv[:n]
	for k := range prv {
		pv := lo + int64(r.uint64()%uint64(visit-lo))
		band := r.intn(len(bands))
		f, e, snr := measure(r, baseFlux*(1+0.3*r.norm()))
		prv[k] = diaSourceRec{
			DiaSourceID:    DiaSourceID(pv, r.intn(MaxAlertsPerVisit)),
			Visit:          pv,
			Detector:       int32(r.intn(NumDetectors)),
			DiaObjectID:    &objID,
			MidpointMjdTai: surveyStartMjd + float64(pv)*visitSeconds/86400,
			Ra:             obj.Ra + 3e-5*r.norm(),
			Dec:            obj.Dec + 3e-5*r.norm(),
			X:              float32(4072 * r.float64()),
			Y:              float32(4000 * r.float64()),
			PsfFlux:        f,
			PsfFluxErr:     e,
			Snr:            snr,
			Band:           bands[band : band+1],
		}
		sum[band] += float64(f)
		cnt[band]++
	}
	// Oldest first, as in Rubin alerts (insertion sort: n <= 30).
	for i := 1; i < len(prv); i++ {
		for j := i; j > 0 && prv[j].Visit < prv[j-1].Visit; j-- {
			prv[j], prv[j-1] = prv[j-1], prv[j]
		}
	}
	if len(prv) > 0 {
		a.PrvDiaSources = prv
	}
	obj.NDiaSources = int32(len(prv) + 1)
	// Pointers into the scratch object: one allocation for all six bands.
	means := new([len(bands)]float32)
	for b := range bands {
		if cnt[b] > 0 {
			means[b] = float32(sum[b] / float64(cnt[b]))
			*obj.bandFlux(b) = &means[b]
		}
	}
	a.DiaObject = obj
}

func bandIndex(c int) int {
	for i := range len(bands) {
		if int(bands[i]) == c {
			return i
		}
	}
	return 0
}

// cutout returns a pseudo-random slice of the pool (read-only).
func (g *Generator) cutout(r *rng) []byte {
	off := r.intn(len(g.pool) - g.cutoutBytes + 1)
	return g.pool[off : off+g.cutoutBytes : off+g.cutoutBytes]
}
