package filter

import (
	"errors"
	"fmt"
	"testing"
)

// BenchmarkMatch measures one evaluation of DefaultExpr on a realistic
// alert (30 previous sources, 4 kB cutouts).
func BenchmarkMatch(b *testing.B) {
	p, err := Compile(DefaultExpr)
	if err != nil {
		b.Fatal(err)
	}
	rec := testAlert(1, 10, 20, 50000, 30)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := p.Match(rec); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkMatchHistory evaluates a filter iterating over the previous
// sources.
func BenchmarkMatchHistory(b *testing.B) {
	p, err := Compile("alert.diaSource.snr > 5.0 && alert.prvDiaSources != null && alert.prvDiaSources.exists(s, s.psfFlux > 48000.0)")
	if err != nil {
		b.Fatal(err)
	}
	rec := testAlert(1, 10, 20, 50000, 30)
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := p.Match(rec); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkSet100 evaluates 100 filters (DefaultExpr-like thresholds,
// various fields) on one alert; ns/op is the cost of one alert.
func BenchmarkSet100(b *testing.B) {
	specs := make([]Spec, 100)
	for i := range specs {
		var expr string
		switch i % 4 {
		case 0:
			expr = fmt.Sprintf("alert.diaSource.snr > %d.0 && alert.diaSource.psfFlux > 36310.0", 5+i%7)
		case 1:
			expr = fmt.Sprintf("alert.diaSource.band == 'r' && alert.diaSource.psfFlux > %d.0", 30000+i*100)
		case 2:
			expr = fmt.Sprintf("alert.diaSource.reliability > 0.9 && alert.diaObject.nDiaSources >= %d", i%10)
		case 3:
			expr = fmt.Sprintf("alert.diaSource.snr > 5.0 && alert.diaSource.dec < %d.0", -20-i%10)
		}
		specs[i] = Spec{Name: fmt.Sprintf("Filter%03d", i), Expr: expr, MaxPerVisit: -1}
	}
	s, err := NewSet(specs)
	if err != nil {
		b.Fatal(err)
	}
	rec := testAlert(1, 10, 20, 50000, 30)
	var admitted int
	b.ReportAllocs()
	for b.Loop() {
		s.Evaluate(rec, 10, func(_, _ int, ok bool) {
			if ok {
				admitted++
			}
		})
	}
	if admitted == 0 {
		b.Fatal("nothing admitted")
	}
}

// BenchmarkRunaway evaluates an expression that runs until the default
// cost limit stops it: ns/op is the longest one evaluation can take, and
// ns/op / DefaultCostLimit the time per cost unit.
func BenchmarkRunaway(b *testing.B) {
	p, err := Compile("alert.prvDiaSources.all(x, alert.prvDiaSources.all(y, alert.prvDiaSources.all(z, x.psfFlux + y.psfFlux + z.psfFlux > 0.0)))")
	if err != nil {
		b.Fatal(err)
	}
	rec := testAlert(1, 10, 20, 50000, 30)
	for b.Loop() {
		if _, err := p.Match(rec); !errors.Is(err, ErrCostLimit) {
			b.Fatalf("want the cost limit to stop it, got %v", err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(DefaultCostLimit), "ns/unit")
}
