// Package filter implements the mini-broker's user filters.
//
// A user filter is a CEL (Common Expression Language) expression over one
// decoded alert, bound to the variable "alert". Alerts arrive as normalised
// generic records (map[string]any; nested records are map[string]any, arrays
// []any, union values plain with nil for null, integers int64, floats
// float64, bytes []byte, strings string), so an expression reads fields with
// dotted selection:
//
//	alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0
//
// which is DefaultExpr, the 2018 prototype's filter: signal-to-noise above 5
// and brighter than magnitude 20 (36310 nJy). The expression must have the
// static type bool. Besides the CEL standard library the environment offers
// the optional-types library (alert.?diaSource.?snr.orValue(0.0)) and
// comparisons across int and double. has(alert.x.y) tests for a field
// without failing when it is absent; WithEnvOptions adds more libraries.
//
// A filter writes at most MaxPerVisit selected alerts (default
// DefaultMaxPerVisit, 20) per visit to its output topic; Cap enforces that
// limit. Each evaluation runs under a CEL runtime cost limit
// (DefaultCostLimit unless the filter sets its own) so that no filter can
// starve others sharing a process.
//
// # Shared mode: the filters file
//
// In shared mode one process decodes every alert once and evaluates many
// filters (a Set). The filters are described by a YAML file read with
// LoadSpecs or LoadSpecsFile:
//
//	filters:                  # required, a non-empty list
//	  - name: Filter001       # required, [A-Za-z0-9._-]{1,200}, unique
//	    expr: alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0
//	                          # required, a boolean CEL expression over `alert`
//	    max_per_visit: 20     # optional; 0 or absent = 20, negative = unlimited
//	    output: Filter001     # optional output topic; absent = name; unique
//	    cost_limit: 100000    # optional CEL runtime cost limit per alert;
//	                          # 0 or absent = DefaultCostLimit
//
// Unknown keys are errors, as are duplicate names or outputs and an empty
// list. Every expression is compiled when the file is loaded, and all the
// faulty filters are reported together, each with its name, the YAML line
// of its entry and the position inside the expression.
package filter
