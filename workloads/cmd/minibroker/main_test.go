package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2/ocf"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
)

// rubinAlert is the real Rubin alert shared by the project next to the
// repository checkout: /work/shared next to /work/main, four levels up from
// this package's directory workloads/cmd/minibroker.
const rubinAlert = "../../../../shared/data/rubin-alert-v11/fakeAlert.avro"

// fakeAlertFile returns the real alert's path and fails, never skips, when
// the file is missing.
func fakeAlertFile(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(rubinAlert); err != nil {
		abs, _ := filepath.Abs(rubinAlert)
		t.Fatalf("real Rubin test data missing: %v\nthis test needs the shared data set rubin-alert-v11 at %s "+
			"(shared/data/rubin-alert-v11 next to the repository checkout)", err, abs)
	}
	return rubinAlert
}

// result is what one call of run gave.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout:\n%s--- stderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCLI calls run with buffers, bounded by timeout.
func runCLI(t *testing.T, timeout time.Duration, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// noKafka returns the address of a listener that stands in for a broker and
// a function reporting how many connections it accepted, to prove that a
// command failed before dialling Kafka.
func noKafka(t *testing.T) (addr string, dials func() int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), func() int64 {
		time.Sleep(200 * time.Millisecond) // let a background client thread dial, if one was started
		return n.Load()
	}
}

// dryRunOut is what `filter --dry-run` prints for one filter (at most
// capN per visit, the default cost limit) selecting ids of total alerts
// after matching matched, followed by the visits line.
func dryRunOut(name string, capN int, ids []string, total, matched, visits int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "filter %s: output %s, at most %d alerts per visit, cost limit %d\n", name, name, capN, filter.DefaultCostLimit)
	if capN < 0 {
		b.Reset()
		fmt.Fprintf(&b, "filter %s: output %s, no cap per visit, cost limit %d\n", name, name, filter.DefaultCostLimit)
	}
	for _, id := range ids {
		fmt.Fprintln(&b, id)
	}
	fmt.Fprintf(&b, "%s: selected %d of %d alerts (matched %d, evaluated %d, errors 0)\n", name, len(ids), total, matched, total)
	fmt.Fprintf(&b, "read %d alerts of %d visits by diaSource.visit\n", total, visits)
	return b.String()
}

func TestDryRunRealRubinAlert(t *testing.T) {
	path := fakeAlertFile(t)
	// The alert's values (diaSourceId 1231321321, diaSource.visit 1,
	// diaSource.snr 41.1, psfFlux 1241 nJy, band r, ra 351.57, dec 0.126)
	// decide what each expression selects.
	const id = "1231321321"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default expression: psfFlux 1241 nJy is fainter than 20th magnitude", nil, dryRunOut("Filter001", 20, nil, 1, 0, 1)},
		{"snr > 0", []string{"--expr", "alert.diaSource.snr > 0.0"}, dryRunOut("Filter001", 20, []string{id}, 1, 1, 1)},
		{"snr and band", []string{"--expr", `alert.diaSource.snr > 40.0 && alert.diaSource.band == "r" && alert.diaSource.dec > 0.0`},
			dryRunOut("Filter001", 20, []string{id}, 1, 1, 1)},
		{"snr too high", []string{"--expr", "alert.diaSource.snr > 41.5"}, dryRunOut("Filter001", 20, nil, 1, 0, 1)},
		{"id path", []string{"--expr", "alert.diaSource.snr > 0.0", "--id-path", "diaSource.visit"}, dryRunOut("Filter001", 20, []string{"1"}, 1, 1, 1)},
		{"file given twice", []string{"--expr", "alert.diaSource.psfFlux > 1000.0", path}, dryRunOut("Filter001", 20, []string{id, id}, 2, 2, 1)},
		// Both copies are of visit 1: the cap admits one.
		{"file given twice, capped", []string{"--expr", "alert.diaSource.psfFlux > 1000.0", "--max-per-visit", "1", path},
			dryRunOut("Filter001", 1, []string{id}, 2, 2, 1)},
		{"a name", []string{"--name", "mine", "--expr", "alert.diaSource.snr > 0.0"}, dryRunOut("mine", 20, []string{id}, 1, 1, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{"filter", "--dry-run"}, tc.args...), path)
			r := runCLI(t, 30*time.Second, args...)
			if r.code != 0 {
				t.Fatalf("want exit 0, got %s", r)
			}
			if r.stdout != tc.want {
				t.Fatalf("stdout = %q, want %q\n%s", r.stdout, tc.want, r)
			}
		})
	}
}

// writeSyntheticOCF writes visits × perVisit synthetic alerts to an Avro
// Object Container File and returns the Truth of each, in file order.
func writeSyntheticOCF(t *testing.T, path string, seed int64, visits, perVisit int) []alert.Truth {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc, err := ocf.NewEncoderWithSchema(alert.SyntheticSchema(), f)
	if err != nil {
		t.Fatal(err)
	}
	gen := alert.NewGenerator(seed, 0)
	var truths []alert.Truth
	for v := 1; v <= visits; v++ {
		for i := range perVisit {
			payload, tr, err := gen.Alert(nil, int64(v), i)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := enc.Write(payload); err != nil {
				t.Fatal(err)
			}
			truths = append(truths, tr)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return truths
}

func TestDryRunSyntheticMatchesPlainGo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "synthetic.avro")
	truths := writeSyntheticOCF(t, path, 42, 2, 1000)

	cappedSome := false
	defer func() {
		if !cappedSome {
			t.Error("no test expression selects enough alerts for the cap to matter")
		}
	}()
	for _, tc := range []struct {
		expr  string
		match func(alert.Truth) bool
	}{
		{filter.DefaultExpr, func(a alert.Truth) bool { return a.Snr > 5 && a.PsfFlux > 36310 }},
		{`alert.diaSource.psfFlux < -5000.0 || alert.diaSource.snr > 100.0`, func(a alert.Truth) bool { return a.PsfFlux < -5000 || a.Snr > 100 }},
		{`alert.diaSource.dec < 0.0 && alert.diaSource.snr > 8.0`, func(a alert.Truth) bool { return a.Dec < 0 && a.Snr > 8 }},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			// Without a cap, every match; with the default cap, the
			// first 20 of each visit, in file order.
			var all, capped []string
			perVisit := map[int64]int{}
			for _, a := range truths {
				if !tc.match(a) {
					continue
				}
				all = append(all, fmt.Sprint(a.DiaSourceID))
				if perVisit[a.Visit]++; perVisit[a.Visit] <= filter.DefaultMaxPerVisit {
					capped = append(capped, fmt.Sprint(a.DiaSourceID))
				}
			}
			if len(all) == 0 || len(all) == len(truths) {
				t.Fatalf("test expression selects %d of %d alerts: pick one that discriminates", len(all), len(truths))
			}
			if len(capped) < len(all) {
				cappedSome = true
			}
			for _, run := range []struct {
				args []string
				want string
			}{
				{nil, dryRunOut("Filter001", filter.DefaultMaxPerVisit, capped, len(truths), len(all), 2)},
				{[]string{"--max-per-visit", "-1"}, dryRunOut("Filter001", -1, all, len(truths), len(all), 2)},
			} {
				args := append([]string{"filter", "--dry-run"}, run.args...)
				if tc.expr != filter.DefaultExpr {
					args = append(args, "--expr", tc.expr)
				}
				r := runCLI(t, 30*time.Second, append(args, path)...)
				if r.code != 0 {
					t.Fatalf("want exit 0, got %s", r)
				}
				if r.stdout != run.want {
					t.Fatalf("%v: dry run disagrees with the plain-Go count over the generator's Truth\ngot:\n%s\nwant:\n%s", run.args, r.stdout, run.want)
				}
			}
		})
	}
}

func TestDryRunBadExpression(t *testing.T) {
	path := fakeAlertFile(t)
	for _, tc := range []struct {
		expr, pos, msg string
	}{
		{"alert.diaSource.snr >", "1:22", "Syntax error"},
		{"alert.diaSource.snr > nosuch", "1:23", "undeclared reference to 'nosuch'"},
		{"nosuch > 1.0", "1:1", "undeclared reference to 'nosuch'"},
		{"alert.diaSource.snr > 5.0 &&\n  alert.diaSource.band == r", "2:27", "undeclared reference to 'r'"},
		{"alert.diaSource.snr", "1:1", "must be of type bool"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			r := runCLI(t, 30*time.Second, "filter", "--dry-run", "--expr", tc.expr, path)
			if r.code != 2 {
				t.Fatalf("want exit 2 (bad usage), got %s", r)
			}
			if !strings.Contains(r.stderr, "filter expression: "+tc.pos+": ") || !strings.Contains(r.stderr, tc.msg) {
				t.Fatalf("stderr should name position %s and say %q:\n%s", tc.pos, tc.msg, r)
			}
			if r.stdout != "" {
				t.Fatalf("nothing should reach stdout:\n%s", r)
			}
		})
	}
}

func TestUsageAndExitCodes(t *testing.T) {
	bootstrap, dials := noKafka(t)
	path := fakeAlertFile(t)
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     []string // substrings
		stderr     []string // substrings
		emptyOut   bool
		emptyError bool
	}{
		{name: "no arguments", args: nil, code: 2, stdout: []string{"usage: minibroker <command>", "produce", "local"}},
		{name: "help", args: []string{"help"}, code: 0, stdout: []string{"usage: minibroker <command>", "filter", "report"}, emptyError: true},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"usage: minibroker <command>"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2,
			stderr: []string{`unknown command "frobnicate"`, "usage: minibroker <command>", "consume"}, emptyOut: true},
		{name: "subcommand -h", args: []string{"produce", "-h"}, code: 0, stdout: []string{"usage: minibroker produce", "-alerts-per-visit"}, emptyError: true},
		{name: "filter -h", args: []string{"filter", "-h"}, code: 0, stdout: []string{"usage: minibroker filter", "-dry-run"}},
		{name: "bad flag", args: []string{"produce", "--bootstrap", bootstrap, "--no-such-flag"}, code: 2,
			stderr: []string{"minibroker produce:", "flag provided but not defined: -no-such-flag"}},
		{name: "bad flag value", args: []string{"produce", "--bootstrap", bootstrap, "--visits", "many"}, code: 2, stderr: []string{"-visits"}},
		{name: "negative cutout", args: []string{"produce", "--bootstrap", bootstrap, "--cutout-bytes", "-1"}, code: 2,
			stderr: []string{"--cutout-bytes must be 0 or more, got -1"}},
		{name: "produce extra argument", args: []string{"produce", "--bootstrap", bootstrap, "stray"}, code: 2, stderr: []string{"unexpected arguments"}},
		{name: "malformed --kafka", args: []string{"produce", "--bootstrap", bootstrap, "--kafka", "linger.ms"}, code: 2,
			stderr: []string{`kafka setting "linger.ms": want key=value`}},
		{name: "consume malformed --kafka", args: []string{"consume", "--bootstrap", bootstrap, "--kafka", "=1"}, code: 2, stderr: []string{"want key=value"}},
		{name: "dry run without files", args: []string{"filter", "--dry-run"}, code: 2, stderr: []string{"--dry-run needs one or more Avro files"}},
		{name: "dry run missing file", args: []string{"filter", "--dry-run", filepath.Join(t.TempDir(), "nope.avro")}, code: 1, stderr: []string{"nope.avro"}},
		{name: "files without dry run", args: []string{"filter", "--bootstrap", bootstrap, path}, code: 2, stderr: []string{"only with --dry-run"}},
		{name: "live filter with bad expression", args: []string{"filter", "--bootstrap", bootstrap, "--expr", "alert.diaSource.snr > nosuch"}, code: 2,
			stderr: []string{"Filter001", "1:23", "undeclared reference to 'nosuch'"}},
		{name: "live filter with bad name", args: []string{"filter", "--bootstrap", bootstrap, "--name", "no spaces"}, code: 2,
			stderr: []string{`"no spaces"`, "invalid name"}},
		{name: "local with zero filters", args: []string{"local", "--filters", "0"}, code: 2, stderr: []string{"must be at least 1"}},
		{name: "local with negative cutout", args: []string{"local", "--cutout-bytes", "-5"}, code: 2, stderr: []string{"--cutout-bytes 0 or more"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, 10*time.Second, tc.args...)
			if r.code != tc.code {
				t.Fatalf("want exit %d, got %s", tc.code, r)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q", s)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q", s)
				}
			}
			if tc.emptyOut && r.stdout != "" {
				t.Errorf("stdout should be empty")
			}
			if tc.emptyError && r.stderr != "" {
				t.Errorf("stderr should be empty")
			}
			if t.Failed() {
				t.Log(r)
			}
		})
	}
	if n := dials(); n != 0 {
		t.Fatalf("commands that fail on their command line dialled the broker %d times", n)
	}
}

// TestFilterFileWithBadFilters: a filters file with two faulty filters
// fails before any broker is dialled, naming both.
func TestFilterFileWithBadFilters(t *testing.T) {
	bootstrap, dials := noKafka(t)
	yaml := filepath.Join(t.TempDir(), "bad.yaml")
	const doc = `filters:
  - name: BrokenSyntax
    expr: "alert.diaSource.snr >"
  - name: GoodOne
    expr: alert.diaSource.snr > 5.0
  - name: UnknownField
    expr: alert.diaSource.snr > threshold
`
	if err := os.WriteFile(yaml, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := runCLI(t, 30*time.Second, "filter", "--bootstrap", bootstrap, "--name", "shared", "--filters", yaml)
	if r.code == 0 {
		t.Fatalf("want a failure, got %s", r)
	}
	for _, s := range []string{yaml, "BrokenSyntax", "line 2", "UnknownField", "line 6", "undeclared reference to 'threshold'"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	if strings.Contains(r.stderr, "GoodOne") {
		t.Errorf("stderr blames the good filter")
	}
	if t.Failed() {
		t.Log(r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failing on a bad filters file took %s", d)
	}
	if n := dials(); n != 0 {
		t.Fatalf("a bad filters file still dialled the broker %d times", n)
	}
}

// report is the part of `--json` output the tests check (see
// workloads/timing/json.go for the keys).
type report struct {
	Totals struct {
		Visits      int      `json:"visits"`
		Complete    int      `json:"complete_visits"`
		Incomplete  int      `json:"incomplete_visits"`
		Alerts      int      `json:"alerts"`
		Selected    int      `json:"selected"`
		Received    int      `json:"received"`
		Filters     int      `json:"filters"`
		Consumers   int      `json:"consumers"`
		Runs        []string `json:"runs"`
		DeadLetters struct {
			Total int `json:"total"`
		} `json:"dead_letters"`
		InvalidEvents int `json:"invalid_events"`
	} `json:"totals"`
	Filters []struct {
		Name     string `json:"name"`
		Visits   int    `json:"visits"`
		Alerts   int    `json:"alerts"`
		Matched  int    `json:"matched"`
		Selected int    `json:"selected"`
	} `json:"filters"`
	Visits []struct {
		Visit           int64 `json:"visit"`
		Complete        bool  `json:"complete"`
		Alerts          int   `json:"alerts"`
		FiltersFinished int   `json:"filters_finished"`
		Selected        int   `json:"selected"`
		FilterDetails   []struct {
			Name     string `json:"name"`
			Alerts   int    `json:"alerts"`
			Matched  int    `json:"matched"`
			Selected int    `json:"selected"`
		} `json:"filter_details"`
	} `json:"visits"`
}

// checkLocalReport checks a `local --json` report of a complete run.
func checkLocalReport(t *testing.T, out string, filters, visits, perVisit int) report {
	t.Helper()
	var rep report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
	}
	tot := rep.Totals
	if tot.Visits != visits || tot.Complete != visits || tot.Incomplete != 0 {
		t.Errorf("visits %d, complete %d, incomplete %d; want %d complete", tot.Visits, tot.Complete, tot.Incomplete, visits)
	}
	if tot.Alerts != visits*perVisit {
		t.Errorf("alerts %d, want %d", tot.Alerts, visits*perVisit)
	}
	if tot.Filters != filters {
		t.Errorf("filters %d, want %d", tot.Filters, filters)
	}
	if tot.Selected == 0 || tot.Received != tot.Selected {
		t.Errorf("received %d of %d selected alerts", tot.Received, tot.Selected)
	}
	if tot.DeadLetters.Total != 0 || tot.InvalidEvents != 0 {
		t.Errorf("dead letters %d, invalid events %d; want none", tot.DeadLetters.Total, tot.InvalidEvents)
	}
	if len(tot.Runs) != 1 || !strings.HasPrefix(tot.Runs[0], "local-") {
		t.Errorf("runs %q, want one local run", tot.Runs)
	}
	if len(rep.Visits) != visits {
		t.Fatalf("%d visits in the report, want %d", len(rep.Visits), visits)
	}
	for _, v := range rep.Visits {
		if !v.Complete || v.Alerts != perVisit || v.FiltersFinished != filters || len(v.FilterDetails) != filters {
			t.Errorf("visit %d: complete %v, alerts %d, filters finished %d (%d details); want complete, %d, %d",
				v.Visit, v.Complete, v.Alerts, v.FiltersFinished, len(v.FilterDetails), perVisit, filters)
		}
		sum := 0
		for _, f := range v.FilterDetails {
			if f.Alerts != perVisit {
				t.Errorf("visit %d: filter %s read %d alerts, want %d", v.Visit, f.Name, f.Alerts, perVisit)
			}
			if f.Selected > f.Matched || f.Selected > filter.DefaultMaxPerVisit {
				t.Errorf("visit %d: filter %s selected %d of %d matched (cap %d)", v.Visit, f.Name, f.Selected, f.Matched, filter.DefaultMaxPerVisit)
			}
			if f.Selected != min(f.Matched, filter.DefaultMaxPerVisit) {
				t.Errorf("visit %d: filter %s selected %d, want min(matched %d, cap %d)", v.Visit, f.Name, f.Selected, f.Matched, filter.DefaultMaxPerVisit)
			}
			sum += f.Selected
		}
		if sum != v.Selected {
			t.Errorf("visit %d: selected %d, filters add up to %d", v.Visit, v.Selected, sum)
		}
	}
	if len(rep.Filters) != filters {
		t.Errorf("%d filters in the report, want %d", len(rep.Filters), filters)
	}
	for i, f := range rep.Filters {
		if want := fmt.Sprintf("Filter%03d", i+1); f.Name != want {
			t.Errorf("filter %d is %q, want %q", i, f.Name, want)
		}
		if f.Visits != visits || f.Alerts != visits*perVisit {
			t.Errorf("filter %s: %d visits, %d alerts; want %d, %d", f.Name, f.Visits, f.Alerts, visits, visits*perVisit)
		}
	}
	return rep
}

func TestLocalEmbedded(t *testing.T) {
	t.Parallel()
	html := filepath.Join(t.TempDir(), "report.html")
	r := runCLI(t, 2*time.Minute, "local", "--mirrors", "2", "--filters", "4", "--visits", "2", "--interval", "1s",
		"--alerts-per-visit", "1000", "--settle", "30s", "--json", "--html", html)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	checkLocalReport(t, r.stdout, 4, 2, 1000)
	b, err := os.ReadFile(html)
	if err != nil {
		t.Fatalf("HTML report: %v", err)
	}
	if !bytes.Contains(b, []byte("<svg")) {
		t.Fatalf("HTML report %s has no <svg> plot (%d bytes)", html, len(b))
	}
}

func TestLocalEmbeddedShared(t *testing.T) {
	t.Parallel()
	r := runCLI(t, 2*time.Minute, "local", "--shared", "--mirrors", "2", "--filters", "3", "--visits", "2", "--interval", "1s",
		"--alerts-per-visit", "500", "--parallel", "2", "--settle", "30s", "--json")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	checkLocalReport(t, r.stdout, 3, 2, 500)
	if !strings.Contains(r.stderr, "shared-mirror1-1") || !strings.Contains(r.stderr, "shared-mirror2-1") {
		t.Errorf("--shared should run one shared filter process per mirror (shared-mirrorN-1 in the log):\n%s", r.stderr)
	}
}
