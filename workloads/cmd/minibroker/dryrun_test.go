package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
)

// TestDryRunFiltersFile: --dry-run runs each filter of --filters FILE.yaml
// as a shared process would, over a file of the project's writer and the
// real Rubin alert: each filter's cap per visit (diaSource.visit, which
// the Rubin alert shares with the synthetic visit 1), its own cost limit,
// and its errors by kind; it exits 1 naming the filters whose evaluations
// failed, with the output complete.
func TestDryRunFiltersFile(t *testing.T) {
	rubin := fakeAlertFile(t)
	dir := t.TempDir()
	synth := filepath.Join(dir, "synthetic.avro")
	truths := writeSyntheticOCF(t, synth, 7, 2, 50)
	yaml := filepath.Join(dir, "filters.yaml")
	const doc = `filters:
  - name: snr8
    expr: alert.diaSource.snr > 8.0
    max_per_visit: 3
  - name: all
    expr: "true"
    max_per_visit: -1
    output: everything
  - name: costly
    expr: alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0
    cost_limit: 1
  - name: broken
    expr: alert.diaSource.nosuch > 1.0
`
	if err := os.WriteFile(yaml, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}

	// What each filter should print, from the generator's Truth and the
	// Rubin alert's known values (diaSourceId 1231321321, visit 1, snr 41.1).
	const rubinID = "1231321321"
	total := len(truths) + 1
	var snrIDs, allIDs []string
	snrMatched := 0
	perVisit := map[int64]int{}
	admit := func(visit int64, id string) {
		snrMatched++
		if perVisit[visit]++; perVisit[visit] <= 3 {
			snrIDs = append(snrIDs, id)
		}
	}
	for _, a := range truths {
		allIDs = append(allIDs, fmt.Sprint(a.DiaSourceID))
		if a.Snr > 8 {
			admit(a.Visit, fmt.Sprint(a.DiaSourceID))
		}
	}
	admit(1, rubinID)
	allIDs = append(allIDs, rubinID)
	if perVisit[1] <= 3 {
		t.Fatalf("visit 1 has %d alerts with snr > 8: too few for the cap to hold the Rubin alert back", perVisit[1])
	}
	def := filter.DefaultCostLimit
	want := fmt.Sprintf("filter snr8: output snr8, at most 3 alerts per visit, cost limit %d\n%s\n", def, strings.Join(snrIDs, "\n")) +
		fmt.Sprintf("snr8: selected %d of %d alerts (matched %d, evaluated %d, errors 0)\n", len(snrIDs), total, snrMatched, total) +
		fmt.Sprintf("filter all: output everything, no cap per visit, cost limit %d\n%s\n", def, strings.Join(allIDs, "\n")) +
		fmt.Sprintf("all: selected %d of %d alerts (matched %d, evaluated %d, errors 0)\n", total, total, total, total) +
		"filter costly: output costly, at most 20 alerts per visit, cost limit 1\n" +
		fmt.Sprintf("costly: selected 0 of %d alerts (matched 0, evaluated %d, errors %d: cost_limit %d)\n", total, total, total, total) +
		fmt.Sprintf("filter broken: output broken, at most 20 alerts per visit, cost limit %d\n", def) +
		fmt.Sprintf("broken: selected 0 of %d alerts (matched 0, evaluated %d, errors %d: no_such_key %d)\n", total, total, total, total) +
		fmt.Sprintf("read %d alerts of 2 visits by diaSource.visit\n", total)

	r := runCLI(t, time.Minute, "filter", "--dry-run", "--filters", yaml, synth, rubin)
	if r.code != 1 {
		t.Fatalf("want exit 1 (evaluations failed), got %s", r)
	}
	if r.stdout != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	for _, s := range []string{
		fmt.Sprintf(`filter "costly": %d of %d alerts could not be evaluated`, total, total), "runtime cost limit exceeded (limit 1)",
		fmt.Sprintf(`filter "broken": %d of %d alerts could not be evaluated`, total, total), "no such key", "alert #1:",
	} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	if strings.Contains(r.stderr, `"snr8"`) || strings.Contains(r.stderr, `"all"`) {
		t.Errorf("stderr blames a filter without errors")
	}
	if t.Failed() {
		t.Log(r)
	}

	// The visit path keys the cap: by a string field, which no alert has
	// as an integer, the cap holds over all of them as one visit.
	r = runCLI(t, time.Minute, "filter", "--dry-run", "--filters", yaml, "--visit-path", "diaSource.band", synth, rubin)
	if r.code != 1 || !strings.Contains(r.stdout, fmt.Sprintf("snr8: selected 3 of %d alerts (matched %d,", total, snrMatched)) ||
		!strings.Contains(r.stdout, fmt.Sprintf("read %d alerts of 1 visits by diaSource.band (%d alerts without it, capped together as one visit)\n", total, total)) {
		t.Fatalf("--visit-path: %s", r)
	}
}

// TestDryRunCostLimit: --cost-limit applies to the single filter, as
// deployed; beyond filter.MaxCostLimit it is refused.
func TestDryRunCostLimit(t *testing.T) {
	path := fakeAlertFile(t)
	r := runCLI(t, 30*time.Second, "filter", "--dry-run", "--cost-limit", "1", "--expr", "alert.diaSource.snr > 0.0", path)
	if r.code != 1 || !strings.Contains(r.stdout, "filter Filter001: output Filter001, at most 20 alerts per visit, cost limit 1\n") ||
		!strings.Contains(r.stdout, "Filter001: selected 0 of 1 alerts (matched 0, evaluated 1, errors 1: cost_limit 1)\n") ||
		!strings.Contains(r.stderr, "runtime cost limit exceeded (limit 1)") {
		t.Fatalf("want the cost limit applied and exit 1, got %s", r)
	}
	r = runCLI(t, 30*time.Second, "filter", "--dry-run", "--cost-limit", "50", "--expr", "alert.diaSource.snr > 0.0", path)
	if r.code != 0 || !strings.Contains(r.stdout, "cost limit 50\n1231321321\n") {
		t.Fatalf("a sufficient cost limit: %s", r)
	}
	r = runCLI(t, 30*time.Second, "filter", "--dry-run", "--cost-limit", fmt.Sprint(filter.MaxCostLimit+1), path)
	if r.code != 2 || !strings.Contains(r.stderr, "above the most a filter may set") {
		t.Fatalf("want a cost limit above the most refused, got %s", r)
	}
}

// TestFilterRefusesWhatDeployingWould: a dry run refuses what a deployed
// filter would refuse, and a live filter refuses it before dialling.
func TestFilterRefusesWhatDeployingWould(t *testing.T) {
	bootstrap, dials := noKafka(t)
	path := fakeAlertFile(t)
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "filters:\n  - name: a\n    expr: \"true\"\n")
	reserved := write("reserved.yaml", "filters:\n  - name: a\n    expr: \"true\"\n    output: minibroker-timing\n"+
		"  - name: b.x\n    expr: \"true\"\n  - name: b_x\n    expr: \"true\"\n  - name: c\n    expr: \"true\"\n    cost_limit: 2000000\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"--expr with --filters", []string{"--filters", good, "--expr", "true"}, 2, []string{"--expr is for a single filter", good}},
		{"--cost-limit with --filters", []string{"--filters", good, "--cost-limit", "5"}, 2, []string{"--cost-limit is for a single filter"}},
		{"--max-per-visit with --filters", []string{"--filters", good, "--max-per-visit", "5"}, 2, []string{"--max-per-visit is for a single filter"}},
		{"reserved name", []string{"--name", "alerts"}, 2, []string{`filter "alerts": output topic "alerts" is reserved: the full alert stream`}},
		{"reserved output", []string{"--output", "minibroker-schemas"}, 2, []string{`output topic "minibroker-schemas" is reserved`}},
		{"another's state", []string{"--output", "shared-state"}, 2, []string{`"shared-state" is reserved: a filter process's state`}},
		{"reserved dead letters", []string{"--dead-letter", "alerts"}, 2, []string{`--dead-letter "alerts" is reserved`}},
		{"dead letters into the output", []string{"--dead-letter", "Filter001"}, 2, []string{`--dead-letter "Filter001" is filter "Filter001"'s output topic`}},
		{"filters file", []string{"--filters", reserved}, 1, []string{reserved, `filter "a": output topic "minibroker-timing" is reserved: the timing events`,
			`filter "b_x": output topic "b_x" collides with "b.x" of filter "b.x"`, `filter "c": cost limit 2000000 is above the most`}},
	} {
		for _, mode := range []string{"dry run", "live"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				args := append([]string{"filter", "--dry-run"}, append(tc.args, path)...)
				if mode == "live" {
					args = append([]string{"filter", "--bootstrap", bootstrap}, tc.args...)
				}
				r := runCLI(t, 10*time.Second, args...)
				if r.code != tc.code || r.stdout != "" {
					t.Fatalf("want exit %d and nothing on stdout, got %s", tc.code, r)
				}
				for _, s := range tc.stderr {
					if !strings.Contains(r.stderr, s) {
						t.Errorf("stderr lacks %q\n%s", s, r)
					}
				}
			})
		}
	}
	if n := dials(); n != 0 {
		t.Fatalf("refused filters dialled the broker %d times", n)
	}
}
