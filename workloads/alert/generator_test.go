package alert

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/hamba/avro/v2"
)

func TestGeneratorDeterministic(t *testing.T) {
	for _, cut := range []int{0, DefaultCutoutBytes} {
		a, b := NewGenerator(42, cut), NewGenerator(42, cut)
		other := NewGenerator(43, cut)
		for i := range 50 {
			pa, ta, err := a.Alert(nil, 1234, i)
			if err != nil {
				t.Fatal(err)
			}
			pb, tb, _ := b.Alert(nil, 1234, i)
			if !bytes.Equal(pa, pb) || ta != tb {
				t.Fatalf("cutouts %d, index %d: same seed gave different alerts", cut, i)
			}
			// Asking again (scratch reuse) gives the same bytes.
			pa2, _, _ := a.Alert(nil, 1234, i)
			if !bytes.Equal(pa, pa2) {
				t.Fatalf("cutouts %d, index %d: second call differs", cut, i)
			}
			po, _, _ := other.Alert(nil, 1234, i)
			if bytes.Equal(pa, po) {
				t.Fatalf("cutouts %d, index %d: seeds 42 and 43 gave identical alerts", cut, i)
			}
		}
	}
}

// Alerts are independent across indexes: generating a visit's indexes in
// parallel and in any order gives the same bytes as sequentially.
func TestGeneratorConcurrent(t *testing.T) {
	g := NewGenerator(5, 1000)
	const n = 400
	want := make([][]byte, n)
	for i := range n {
		want[i], _, _ = g.Alert(nil, 77, i)
	}
	got := make([][]byte, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := n - 1 - w; i >= 0; i -= 4 {
				p, _, err := g.Alert(nil, 77, i)
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = p
			}
		})
	}
	wg.Wait()
	for i := range n {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("index %d differs when generated concurrently", i)
		}
	}
}

func TestGeneratorIDsUnique(t *testing.T) {
	g := NewGenerator(1, 0)
	seen := map[int64]bool{}
	for _, visit := range []int64{0, 1, 2, 99, 100000} {
		for _, i := range []int{0, 1, 2, 9999, 50000, MaxAlertsPerVisit - 1} {
			_, tr, err := g.Alert(nil, visit, i)
			if err != nil {
				t.Fatal(err)
			}
			if tr.DiaSourceID != visit*MaxAlertsPerVisit+int64(i) || tr.DiaSourceID != DiaSourceID(visit, i) {
				t.Fatalf("visit %d index %d: diaSourceId %d", visit, i, tr.DiaSourceID)
			}
			if seen[tr.DiaSourceID] {
				t.Fatalf("duplicate diaSourceId %d", tr.DiaSourceID)
			}
			seen[tr.DiaSourceID] = true
		}
	}
}

func TestGeneratorRange(t *testing.T) {
	g := NewGenerator(1, 0)
	for _, c := range []struct {
		visit int64
		index int
	}{{-1, 0}, {0, -1}, {0, MaxAlertsPerVisit}, {math.MaxInt64 / MaxAlertsPerVisit, 0}} {
		dst := []byte("keep")
		out, _, err := g.Alert(dst, c.visit, c.index)
		if !errors.Is(err, ErrAlertRange) || string(out) != "keep" {
			t.Errorf("Alert(visit %d, index %d): err %v, dst %q", c.visit, c.index, err, out)
		}
	}
}

// Decoding a generated payload gives back its Truth, and the payload also
// decodes with hamba/avro into the Go mirror (an independent decoder).
func TestGeneratorDecodeMatchesTruth(t *testing.T) {
	g := NewGenerator(9, 64)
	for i := range 300 {
		visit := int64(500 + i%3)
		p, tr, err := g.Alert([]byte{0xAA}, visit, i)
		if err != nil {
			t.Fatal(err)
		}
		if p[0] != 0xAA || tr.Size != len(p)-1 {
			t.Fatal("Alert did not append to dst or Size is wrong")
		}
		p = p[1:]
		rec, err := Decode(g.Schema(), p)
		if err != nil {
			t.Fatalf("index %d: %v", i, err)
		}
		checkTruth(t, rec, tr)

		var mirror alertRec
		if err := avro.Unmarshal(g.Schema(), p, &mirror); err != nil {
			t.Fatalf("hamba decode: %v", err)
		}
		if mirror.DiaSource.Snr != float32(tr.Snr) || len(mirror.PrvDiaSources) != tr.NPrv || len(mirror.CutoutScience) != 64 {
			t.Fatalf("index %d: hamba mirror disagrees with Truth", i)
		}
	}
}

func checkTruth(t *testing.T, rec map[string]any, tr Truth) {
	t.Helper()
	want := map[string]any{
		"diaSourceId":              tr.DiaSourceID,
		"diaSource.diaSourceId":    tr.DiaSourceID,
		"diaSource.visit":          tr.Visit,
		"diaSource.detector":       int64(tr.Detector),
		"diaSource.midpointMjdTai": tr.MidpointMjdTai,
		"diaSource.ra":             tr.Ra,
		"diaSource.dec":            tr.Dec,
		"diaSource.psfFlux":        tr.PsfFlux,
		"diaSource.psfFluxErr":     tr.PsfFluxErr,
		"diaSource.snr":            tr.Snr,
		"diaSource.band":           tr.Band,
	}
	if tr.DiaObjectID != 0 {
		want["diaObject.diaObjectId"] = tr.DiaObjectID
		want["diaSource.diaObjectId"] = tr.DiaObjectID
		want["diaObject.nDiaSources"] = int64(tr.NPrv + 1)
	} else {
		want["diaObject"] = nil
		want["diaSource.diaObjectId"] = nil
	}
	for path, w := range want {
		got, ok := Lookup(rec, path)
		if !ok || got != w {
			t.Errorf("alert %d: %s = %#v (found %v), want %#v", tr.DiaSourceID, path, got, ok, w)
		}
	}
	prv, _ := Lookup(rec, "prvDiaSources")
	if tr.NPrv == 0 && prv != nil {
		t.Errorf("alert %d: prvDiaSources = %v, want null", tr.DiaSourceID, prv)
	}
	if tr.NPrv > 0 {
		arr, ok := prv.([]any)
		if !ok || len(arr) != tr.NPrv {
			t.Fatalf("alert %d: prvDiaSources %T of length %d, want %d", tr.DiaSourceID, prv, len(arr), tr.NPrv)
		}
		last := int64(-1)
		for _, e := range arr {
			v, err := LookupInt(e.(map[string]any), "visit")
			if err != nil || v < last || v >= tr.Visit {
				t.Fatalf("alert %d: history visits not sorted before %d: %v", tr.DiaSourceID, tr.Visit, arr)
			}
			last = v
		}
	}
}

// The default filter "snr > 5.0 && psfFlux > 36310.0" keeps 0.5-2 % of a
// 10,000-alert visit, so a per-visit cap of 20 binds.
func TestGeneratorDefaultFilterFraction(t *testing.T) {
	g := NewGenerator(2018, 0)
	const n = 10_000
	kept, negative, withHistory, totalHistory := 0, 0, 0, 0
	var buf []byte
	for i := range n {
		var tr Truth
		var err error
		buf, tr, err = g.Alert(buf[:0], 1000, i)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := Decode(g.Schema(), buf)
		if err != nil {
			t.Fatal(err)
		}
		snr, _ := Lookup(rec, "diaSource.snr")
		flux, _ := Lookup(rec, "diaSource.psfFlux")
		if snr.(float64) > 5.0 && flux.(float64) > 36310.0 {
			kept++
		}
		if flux.(float64) < 0 {
			negative++
		}
		if tr.Mag < MagBright || tr.Mag > MagDepth {
			t.Fatalf("magnitude %v outside [%v, %v]", tr.Mag, MagBright, MagDepth)
		}
		if tr.NPrv > 0 {
			withHistory++
			totalHistory += tr.NPrv
		}
	}
	frac := float64(kept) / n
	t.Logf("default filter keeps %d of %d (%.2f %%); %d negative fluxes; %d with history (mean %.1f entries)",
		kept, n, 100*frac, negative, withHistory, float64(totalHistory)/float64(withHistory))
	if frac < 0.005 || frac > 0.02 {
		t.Fatalf("default filter keeps %.2f %% of alerts, want 0.5-2 %%", 100*frac)
	}
	if kept <= 20 {
		t.Fatalf("only %d alerts pass: a per-visit cap of 20 would not bind", kept)
	}
	if negative < n/10 || negative > n/2 {
		t.Fatalf("%d negative fluxes of %d, want roughly a quarter", negative, n)
	}
}

func TestGeneratorSizes(t *testing.T) {
	big := NewGenerator(3, DefaultCutoutBytes)
	small := NewGenerator(3, 0)
	lo, hi := math.MaxInt, 0
	sum := 0
	const n = 500
	for i := range n {
		p, _, err := big.Alert(nil, 4000, i)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi, sum = min(lo, len(p)), max(hi, len(p)), sum+len(p)
	}
	t.Logf("80 KB alerts: min %d, mean %d, max %d bytes", lo, sum/n, hi)
	if lo < 75_000 || hi > 85_000 {
		t.Fatalf("encoded alert sizes %d..%d bytes, want 75,000-85,000", lo, hi)
	}
	lo, hi, sum = math.MaxInt, 0, 0
	for i := range n {
		p, _, _ := small.Alert(nil, 4000, i)
		rec, err := Decode(small.Schema(), p)
		if err != nil {
			t.Fatal(err)
		}
		if rec["cutoutScience"] != nil {
			t.Fatal("cutoutBytes 0 gave a non-null cutout")
		}
		lo, hi, sum = min(lo, len(p)), max(hi, len(p)), sum+len(p)
	}
	t.Logf("small alerts: min %d, mean %d, max %d bytes", lo, sum/n, hi)
	if sum/n > 1000 || hi > 2500 {
		t.Fatalf("small alerts mean %d, max %d bytes: want a few hundred", sum/n, hi)
	}
}

// Cutouts are incompressible-looking and differ between alerts.
func TestGeneratorCutouts(t *testing.T) {
	g := NewGenerator(11, 4096)
	p1, _, _ := g.Alert(nil, 1, 1)
	p2, _, _ := g.Alert(nil, 1, 2)
	r1, _ := Decode(g.Schema(), p1)
	r2, _ := Decode(g.Schema(), p2)
	c1 := r1["cutoutDifference"].([]byte)
	if len(c1) != 4096 || bytes.Equal(c1, r2["cutoutDifference"].([]byte)) || bytes.Equal(c1, r1["cutoutScience"].([]byte)) {
		t.Fatal("cutouts are not distinct 4096-byte stamps")
	}
	var hist [256]int
	for _, b := range c1 {
		hist[b]++
	}
	for v, c := range hist {
		if c > 60 { // expected 16 per value
			t.Fatalf("byte 0x%02x occurs %d times in 4096: cutout is not random-looking", v, c)
		}
	}
}
