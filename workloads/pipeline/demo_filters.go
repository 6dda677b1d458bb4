package pipeline

import (
	"fmt"

	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
)

// demoExprs are the filters `minibroker local` cycles through: the
// original's filter first, then a few other things astronomers ask for.
var demoExprs = [...]string{
	filter.DefaultExpr,
	`alert.diaSource.snr > 10.0 && alert.diaSource.band == "r"`,
	`alert.diaSource.psfFlux < -20000.0`,
	`alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0 && alert.diaSource.dec < 0.0`,
	`alert.prvDiaSources != null && size(alert.prvDiaSources) >= 10 && alert.diaSource.snr > 20.0`,
	`alert.diaSource.ra > 180.0 && alert.diaSource.snr > 8.0`,
}

// DemoSpecs returns n filters named Filter001, Filter002, ... with varied
// expressions and the default per-visit cap.
func DemoSpecs(n int) []filter.Spec {
	specs := make([]filter.Spec, n)
	for i := range specs {
		name := fmt.Sprintf("Filter%03d", i+1)
		specs[i] = filter.Spec{Name: name, Output: name, Expr: demoExprs[i%len(demoExprs)], MaxPerVisit: filter.DefaultMaxPerVisit}
	}
	return specs
}
