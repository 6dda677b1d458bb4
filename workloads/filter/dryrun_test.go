package filter

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestDryRun(t *testing.T) {
	set, err := NewSet([]Spec{{Name: "Filter001", Expr: DefaultExpr}})
	if err != nil {
		t.Fatal(err)
	}
	recs := []map[string]any{
		testAlert(101, 1, 10, 50000, 0),
		testAlert(102, 1, 10, 10, 0), // faint
		testAlert(103, 1, 10, 40000, 2),
		{"diaSource": map[string]any{"snr": 9.0, "psfFlux": 1e5}}, // no id, no visit
	}
	var out bytes.Buffer
	res, err := DryRun(&out, set, recs, DryRunConfig{})
	if err != nil || res.Alerts != 4 || res.Visits != 2 || res.NoVisit != 1 {
		t.Fatalf("got %+v, %v", res, err)
	}
	want := "filter Filter001: output Filter001, at most 20 alerts per visit, cost limit 100000\n" +
		"101\n103\n<missing>\n" +
		"Filter001: selected 3 of 4 alerts (matched 3, evaluated 4, errors 0)\n" +
		"read 4 alerts of 2 visits by diaSource.visit (1 alerts without it, capped together as one visit)\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}

	// The id path, on a fresh set (a set's caps remember what they admitted).
	set, _ = NewSet([]Spec{{Name: "Filter001", Expr: DefaultExpr}})
	out.Reset()
	if _, err := DryRun(&out, set, recs, DryRunConfig{IDPath: "diaSource.band"}); err != nil || !strings.Contains(out.String(), "\nr\nr\n<missing>\nFilter001: selected 3") {
		t.Fatalf("idPath: %q %v", out.String(), err)
	}

	// Evaluation errors: not selected, counted, the output still complete.
	set, _ = NewSet([]Spec{{Name: "Filter001", Expr: DefaultExpr}})
	out.Reset()
	recs = append(recs, map[string]any{"diaSourceId": int64(5)})
	res, err = DryRun(&out, set, recs, DryRunConfig{})
	if res.Stats[0].Admitted != 3 || res.Alerts != 5 || err == nil ||
		!strings.Contains(err.Error(), `filter "Filter001": 1 of 5 alerts could not be evaluated`) || !strings.Contains(err.Error(), "alert #5") {
		t.Fatalf("got %+v, %v", res, err)
	}
	if !strings.Contains(out.String(), "Filter001: selected 3 of 5 alerts (matched 3, evaluated 5, errors 1: no_such_key 1)\n") {
		t.Fatalf("output %q", out.String())
	}

	out.Reset()
	set, _ = NewSet([]Spec{{Name: "f", Expr: "true"}})
	if res, err := DryRun(&out, set, nil, DryRunConfig{}); res.Alerts != 0 || err != nil ||
		out.String() != "filter f: output f, at most 20 alerts per visit, cost limit 100000\nf: selected 0 of 0 alerts (matched 0, evaluated 0, errors 0)\nread 0 alerts of 0 visits by diaSource.visit\n" {
		t.Fatalf("empty: %q %v", out.String(), err)
	}
	if _, err := DryRun(&out, nil, nil, DryRunConfig{}); err == nil {
		t.Fatal("nil set accepted")
	}
}

// TestDryRunAsDeployed: many filters, each with its own cap (per visit, by
// the visit path) and cost limit, and errors split by kind.
func TestDryRunAsDeployed(t *testing.T) {
	set, err := NewSet([]Spec{
		{Name: "capped", Expr: "alert.diaSource.snr > 5.0", MaxPerVisit: 2},
		{Name: "all", Expr: "true", MaxPerVisit: -1, Output: "everything"},
		{Name: "costly", Expr: DefaultExpr, CostLimit: 1},
		{Name: "broken", Expr: "alert.diaSource.nosuch > 1.0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for i := range 6 {
		recs = append(recs, testAlert(int64(200+i), int64(1+i/3), 10, 50000, 0)) // visits 1,1,1,2,2,2
	}
	var out bytes.Buffer
	res, err := DryRun(&out, set, recs, DryRunConfig{})
	if res.Visits != 2 || res.NoVisit != 0 {
		t.Fatalf("visits: %+v", res)
	}
	want := "filter capped: output capped, at most 2 alerts per visit, cost limit 100000\n" +
		"200\n201\n203\n204\n" +
		"capped: selected 4 of 6 alerts (matched 6, evaluated 6, errors 0)\n" +
		"filter all: output everything, no cap per visit, cost limit 100000\n" +
		"200\n201\n202\n203\n204\n205\n" +
		"all: selected 6 of 6 alerts (matched 6, evaluated 6, errors 0)\n" +
		"filter costly: output costly, at most 20 alerts per visit, cost limit 1\n" +
		"costly: selected 0 of 6 alerts (matched 0, evaluated 6, errors 6: cost_limit 6)\n" +
		"filter broken: output broken, at most 20 alerts per visit, cost limit 100000\n" +
		"broken: selected 0 of 6 alerts (matched 0, evaluated 6, errors 6: no_such_key 6)\n" +
		"read 6 alerts of 2 visits by diaSource.visit\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	for _, s := range []string{`filter "costly": 6 of 6 alerts could not be evaluated`, "alert #1", "cost limit",
		`filter "broken": 6 of 6`, "no such key"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}

	// Keyed on another path: one visit (all alerts share detector 42),
	// so the cap of 2 holds over all six.
	set, _ = NewSet([]Spec{{Name: "capped", Expr: "true", MaxPerVisit: 2}})
	out.Reset()
	if res, err := DryRun(&out, set, recs, DryRunConfig{VisitPath: "diaSource.detector"}); err != nil || res.Visits != 1 ||
		!strings.Contains(out.String(), "\n200\n201\ncapped: selected 2 of 6 alerts (matched 6,") ||
		!strings.HasSuffix(out.String(), "read 6 alerts of 1 visits by diaSource.detector\n") {
		t.Fatalf("visit path: %q %v", out.String(), err)
	}
}

// TestDryRunQuarantine: a filter over its time budget is quarantined for
// the rest of the visit, as deployed, and the dry run says so; the other
// filters are evaluated on every alert.
func TestDryRunQuarantine(t *testing.T) {
	expensive := "alert.prvDiaSources.all(x, alert.prvDiaSources.all(y, alert.prvDiaSources.all(z, x.psfFlux + y.psfFlux + z.psfFlux > 0.0)))"
	set, err := NewSet([]Spec{
		{Name: "cheap", Expr: "true", MaxPerVisit: -1},
		{Name: "runaway", Expr: expensive, TimeBudget: MinTimeBudget},
	})
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	for i := range 200 {
		recs = append(recs, testAlert(int64(i), 1, 10, 50000, 30))
	}
	var out bytes.Buffer
	res, err := DryRun(&out, set, recs, DryRunConfig{})
	if err == nil || !strings.Contains(err.Error(), `filter "runaway"`) {
		t.Fatalf("want the runaway filter's cost errors reported, got %v", err)
	}
	cheap, runaway := res.Stats[0], res.Stats[1]
	if cheap.Evaluated != 200 || cheap.Admitted != 200 || runaway.Skipped == 0 || runaway.Evaluated+runaway.Skipped != 200 {
		t.Fatalf("stats %+v", res.Stats)
	}
	for _, s := range []string{"runaway: quarantined: spent ", "over its time budget of 10ms",
		fmt.Sprintf("errors %d: cost_limit %d, skipped %d while quarantined)", runaway.Errors, runaway.Errors, runaway.Skipped)} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q:\n%s", s, out.String())
		}
	}
}
