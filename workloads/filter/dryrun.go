package filter

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
)

// DryRunConfig says how a dry run keys the per-visit cap and names alerts.
type DryRunConfig struct {
	// IDPath is the dotted path of the alert id printed for each selected
	// alert; alert.DefaultIDPath when empty.
	IDPath string
	// VisitPath is the dotted path of the visit id the per-visit cap keys
	// on, as a deployed filter's --visit-path; alert.DefaultVisitPath when
	// empty. Alerts without it (or with a null or non-integer value) are
	// capped together as one visit, as a deployed filter caps alerts that
	// carry neither the field nor the producer's mb-visit header.
	VisitPath string
}

// DryRunResult is what a dry run counted.
type DryRunResult struct {
	Alerts  int     // records evaluated by the set
	Visits  int     // distinct visits, by VisitPath (those without it count as one)
	NoVisit int     // records without an integer at VisitPath
	Stats   []Stats // each filter's counters, in the set's order
}

// DryRun runs set on records exactly as a deployed filter process runs it
// on a stream (filter.Set.Evaluate: each filter's own cost limit, time
// budget and per-visit cap, keyed as cfg says), and writes, for each filter in
// order, a block:
//
//	filter NAME: output TOPIC, at most N alerts per visit, cost limit L
//	ID                        (one line per selected alert: admitted by the cap)
//	NAME: selected S of A alerts (matched M, evaluated E, errors X)
//
// where ID is the value at cfg.IDPath ("<missing>" when absent), matched
// counts the alerts the expression accepted before the cap, and errors
// (evaluations that failed, never selected) are split by kind (ErrKind*)
// when there are any: "errors 3: cost_limit 1, no_such_key 2". A filter
// that exceeds its time budget in a visit is quarantined as deployed: a
// line "NAME: quarantined: REASON" says so, and the summary counts the
// alerts it skipped. A last line says how many alerts and visits were
// read. err reports, per filter whose evaluations failed, how many did
// and the first failure with its alert's position; the output is complete
// all the same.
func DryRun(w io.Writer, set *Set, records []map[string]any, cfg DryRunConfig) (DryRunResult, error) {
	var res DryRunResult
	if set == nil || set.Len() == 0 {
		return res, errors.New("dry run: no filters")
	}
	if cfg.IDPath == "" {
		cfg.IDPath = alert.DefaultIDPath
	}
	if cfg.VisitPath == "" {
		cfg.VisitPath = alert.DefaultVisitPath
	}
	n := set.Len()
	ids := make([][]string, n)
	firstErr := make([]error, n)
	kinds := make([]map[string]uint64, n)
	quarantines := make([][]string, n)
	index := map[string]int{}
	for i := range n {
		kinds[i] = map[string]uint64{}
		index[set.Spec(i).Name] = i
	}
	set.OnQuarantine(func(q Quarantine) {
		if i, ok := index[q.Filter]; ok {
			quarantines[i] = append(quarantines[i], q.Reason)
		}
	})
	defer set.OnQuarantine(nil)
	before := set.Stats() // a set used before: count only this run's
	last := set.Stats()
	visits := map[int64]bool{}
	for k, rec := range records {
		visit, verr := alert.LookupInt(rec, cfg.VisitPath)
		if verr != nil {
			visit = 0
			res.NoVisit++
		}
		visits[visit] = true
		res.Alerts++
		var id string
		idDone := false
		set.Evaluate(rec, visit, func(i, _ int, admitted bool) {
			if !admitted {
				return
			}
			if !idDone {
				id, idDone = alertID(rec, cfg.IDPath), true
			}
			ids[i] = append(ids[i], id)
		})
		now := set.Stats()
		for i, st := range now {
			if st.Errors == last[i].Errors {
				continue
			}
			// This alert's error: the latest, LastError (which names the
			// filter, as the error around it will).
			msg := strings.TrimPrefix(st.LastError, fmt.Sprintf("filter %q: ", st.Name))
			kind := ErrKindCostLimit
			if st.CostExceeded == last[i].CostExceeded {
				kind = ErrorKind(errors.New(msg))
			}
			kinds[i][kind]++
			if firstErr[i] == nil {
				firstErr[i] = fmt.Errorf("alert #%d: %s", k+1, msg)
			}
		}
		last = now
	}
	res.Visits = len(visits)
	stats := set.Stats()
	for i := range stats {
		b := before[i]
		stats[i].Evaluated -= b.Evaluated
		stats[i].Matched -= b.Matched
		stats[i].Admitted -= b.Admitted
		stats[i].Errors -= b.Errors
		stats[i].CostExceeded -= b.CostExceeded
		stats[i].Skipped -= b.Skipped
	}
	res.Stats = stats

	bw := bufio.NewWriter(w)
	var errs []error
	for i, st := range stats {
		spec := set.Spec(i)
		capText := fmt.Sprintf("at most %d alerts per visit", spec.MaxPerVisit)
		if spec.MaxPerVisit <= 0 {
			capText = "no cap per visit"
		}
		fmt.Fprintf(bw, "filter %s: output %s, %s, cost limit %d\n", spec.Name, spec.Output, capText, set.Program(i).CostLimit())
		for _, id := range ids[i] {
			fmt.Fprintln(bw, id)
		}
		for _, q := range quarantines[i] {
			fmt.Fprintf(bw, "%s: quarantined: %s\n", spec.Name, q)
		}
		skipped := ""
		if st.Skipped > 0 {
			skipped = fmt.Sprintf(", skipped %d while quarantined", st.Skipped)
		}
		fmt.Fprintf(bw, "%s: selected %d of %d alerts (matched %d, evaluated %d, errors %s%s)\n",
			spec.Name, len(ids[i]), res.Alerts, st.Matched, st.Evaluated, errorKinds(st.Errors, kinds[i]), skipped)
		if st.Errors > 0 {
			errs = append(errs, fmt.Errorf("filter %q: %d of %d alerts could not be evaluated (not selected); first: %w",
				spec.Name, st.Errors, st.Evaluated, firstErr[i]))
		}
	}
	fmt.Fprintf(bw, "read %d alerts of %d visits by %s", res.Alerts, res.Visits, cfg.VisitPath)
	if res.NoVisit > 0 {
		fmt.Fprintf(bw, " (%d alerts without it, capped together as one visit)", res.NoVisit)
	}
	fmt.Fprintln(bw)
	if werr := bw.Flush(); werr != nil {
		return res, fmt.Errorf("dry run: writing output: %w", werr)
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("dry run: %w", errors.Join(errs...))
	}
	return res, nil
}

// errorKinds renders a filter's error count, split by kind (ErrKind*, in
// their order) when there are any: "3: cost_limit 1, no_such_key 2".
func errorKinds(total uint64, kinds map[string]uint64) string {
	if total == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	return fmt.Sprintf("%d: %s", total, strings.Join(parts, ", "))
}

func alertID(rec map[string]any, idPath string) string {
	if id, found := alert.Lookup(rec, idPath); found && id != nil {
		return formatID(id)
	}
	return "<missing>"
}

func formatID(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return fmt.Sprintf("%x", x)
	default:
		return fmt.Sprint(x)
	}
}
