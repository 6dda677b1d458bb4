//go:build unix

package filter

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// What the time budgets cost per alert: Set.Evaluate (the budget's
// bookkeeping and a time.Now/time.Since pair around each filter's
// evaluation) beside the same loop without them (budgetBenchBare), on one
// filter (DefaultExpr) and on 20. Visits change every alertsPerBenchVisit
// alerts, as a stream's do, so that no filter runs over its budget and
// the per-visit paths (a fresh VisitUse, the cap's new visit) are taken
// at their real rate. Compare ns/op (one alert through the whole set) of
// "with" and "without"; ns/filter is the same per filter. cpu-ns/op is the
// process's CPU time per alert: on cores other processes share, wall time
// per op grows with their load, CPU time much less.
//
//	go test -run '^$' -bench Budget -count 6 ./workloads/filter/
func BenchmarkBudgetAccounting(b *testing.B) {
	for _, n := range []int{1, 20} {
		s, err := NewSet(budgetBenchSpecs(n))
		if err != nil {
			b.Fatal(err)
		}
		rec := testAlert(1, 10, 20, 50000, 30)
		for _, mode := range []struct {
			name string
			eval func(s *Set, rec map[string]any, visit int64, fn func(i, rank int, admitted bool))
		}{
			{"with", (*Set).Evaluate},
			{"without", budgetBenchBare},
		} {
			b.Run(fmt.Sprintf("filters=%d/%s", n, mode.name), func(b *testing.B) {
				var matched int
				fn := func(_, _ int, _ bool) { matched++ }
				b.ReportAllocs()
				i, cpu0 := 0, budgetBenchCPU()
				for b.Loop() {
					mode.eval(s, rec, int64(1_000_000+i/alertsPerBenchVisit), fn)
					i++
				}
				cpu := budgetBenchCPU() - cpu0
				if matched == 0 {
					b.Fatal("nothing matched")
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/filter")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(i), "cpu-ns/op")
			})
		}
	}
}

// BenchmarkBudgetClock measures the clock reads alone, a time.Now and a
// time.Since as Set.Evaluate makes around each evaluation, beside one
// evaluation of DefaultExpr on a decoded alert (as BenchmarkMatch, without
// Match's wrapping).
func BenchmarkBudgetClock(b *testing.B) {
	b.Run("now-since", func(b *testing.B) {
		var spent time.Duration
		i, cpu0 := 0, budgetBenchCPU()
		for b.Loop() {
			began := time.Now()
			spent += time.Since(began)
			i++
		}
		b.ReportMetric(float64((budgetBenchCPU()-cpu0).Nanoseconds())/float64(i), "cpu-ns/op")
		if spent < 0 {
			b.Fatal(spent)
		}
	})
	b.Run("default-eval", func(b *testing.B) {
		p, err := Compile(DefaultExpr)
		if err != nil {
			b.Fatal(err)
		}
		act := recordActivation{testAlert(1, 10, 20, 50000, 30)}
		b.ReportAllocs()
		i, cpu0 := 0, budgetBenchCPU()
		for b.Loop() {
			if ok, err := p.eval(act); !ok || err != nil {
				b.Fatal(ok, err)
			}
			i++
		}
		b.ReportMetric(float64((budgetBenchCPU()-cpu0).Nanoseconds())/float64(i), "cpu-ns/op")
	})
}

// budgetBenchCPU is the process's user and system CPU time so far.
func budgetBenchCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// alertsPerBenchVisit is a visit's alerts in these benchmarks.
const alertsPerBenchVisit = 10_000

// budgetBenchSpecs are n filters, all matching testAlert(1, 10, 20, 50000,
// 30): DefaultExpr first, then thresholds on various fields.
func budgetBenchSpecs(n int) []Spec {
	specs := make([]Spec, n)
	for i := range specs {
		expr := DefaultExpr
		switch i % 4 {
		case 1:
			expr = fmt.Sprintf("alert.diaSource.snr > %d.0 && alert.diaSource.psfFlux > 36310.0", 5+i%7)
		case 2:
			expr = fmt.Sprintf("alert.diaSource.reliability > 0.5 && alert.diaObject.nDiaSources >= %d", i%3)
		case 3:
			expr = fmt.Sprintf("alert.diaSource.snr > 5.0 && alert.diaSource.dec < %d.0", -20-i%10)
		}
		specs[i] = Spec{Name: fmt.Sprintf("Budget%03d", i), Expr: expr, MaxPerVisit: -1}
	}
	return specs
}

// budgetBenchBare is Set.Evaluate without the time budget: the same
// evaluations, counters and caps, but no VisitUse bookkeeping, no clock
// reads and no quarantine.
func budgetBenchBare(s *Set, rec map[string]any, visit int64, fn func(i, rank int, admitted bool)) {
	act := recordActivation{rec}
	for i := range s.filters {
		f := &s.filters[i]
		f.evaluated.Add(1)
		ok, err := f.prog.eval(act)
		if err != nil {
			f.fail(err)
			continue
		}
		if ok {
			f.match(i, visit, fn)
		}
	}
}
