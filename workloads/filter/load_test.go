package filter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodYAML = `
filters:
  - name: Filter001
    expr: alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0
  - name: bright.r-band_2
    expr: |
      alert.diaSource.band == 'r' &&
      alert.diaSource.psfFlux > 1e6
    max_per_visit: -1
    output: bright-out
    cost_limit: 100000
    time_budget: 500ms
  - name: five
    expr: alert.diaSource.snr > 50.0
    max_per_visit: 5
`

func TestLoadSpecs(t *testing.T) {
	specs, err := LoadSpecs(strings.NewReader(goodYAML))
	if err != nil {
		t.Fatal(err)
	}
	want := []Spec{
		{Name: "Filter001", Expr: DefaultExpr, Output: "Filter001", MaxPerVisit: 20, CostLimit: DefaultCostLimit, TimeBudget: DefaultTimeBudget},
		{Name: "bright.r-band_2", Expr: "alert.diaSource.band == 'r' &&\nalert.diaSource.psfFlux > 1e6\n", Output: "bright-out", MaxPerVisit: -1, CostLimit: 100000,
			TimeBudget: 500 * time.Millisecond},
		{Name: "five", Expr: "alert.diaSource.snr > 50.0", Output: "five", MaxPerVisit: 5, CostLimit: DefaultCostLimit, TimeBudget: DefaultTimeBudget},
	}
	if len(specs) != len(want) {
		t.Fatalf("got %d specs", len(specs))
	}
	for i := range want {
		if specs[i] != want[i] {
			t.Errorf("spec %d:\n got %+v\nwant %+v", i, specs[i], want[i])
		}
	}
}

func TestLoadSpecsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "filters.yaml")
	if err := os.WriteFile(path, []byte(goodYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if specs, err := LoadSpecsFile(path); err != nil || len(specs) != 3 {
		t.Fatalf("got %d, %v", len(specs), err)
	}
	_, err := LoadSpecsFile(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("filters: []\n"), 0o644)
	if _, err := LoadSpecsFile(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad file: %v", err)
	}
}

func TestLoadSpecsAllErrorsTogether(t *testing.T) {
	const doc = `filters:
  - name: ok
    expr: alert.diaSource.snr > 5.0
  - name: Undeclared
    expr: alert.diaSource.snr > foo
  - name: NotBool
    expr: alert.diaSource.snr
  - name: "bad name!"
    expr: alert.diaSource.snr > 1.0
  - name: ok
    expr: alert.diaSource.snr > 2.0
  - name: other
    output: ok
    expr: alert.diaSource.snr > 3.0
  - expr: alert.diaSource.snr > 4.0
  - name: noexpr
`
	_, err := LoadSpecs(strings.NewReader(doc))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`line 4 (filters[1]): filter "Undeclared": filter expression: 1:23: undeclared reference to 'foo'`,
		`line 6 (filters[2]): filter "NotBool": filter expression: 1:1: expression must be of type bool`,
		`line 8 (filters[3]): filter "bad name!": invalid name`,
		`line 10 (filters[4]): filter "ok": duplicate name, already used by filters[0]`,
		`line 12 (filters[5]): filter "other": output topic "ok" already written by filter "ok"`,
		`line 15 (filters[6]): filter without a name`,
		`line 16 (filters[7]): filter "noexpr": empty expr`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "filters[0]):") {
		t.Errorf("good filter reported:\n%s", msg)
	}
	// The individual errors are reachable, with the CEL position.
	var se *SpecError
	if !errors.As(err, &se) || se.Name != "Undeclared" || se.Line != 4 || se.Index != 1 {
		t.Fatalf("SpecError: %+v", se)
	}
	var ce *CompileError
	if !errors.As(se, &ce) || ce.Line != 1 || ce.Column != 23 {
		t.Fatalf("CompileError: %+v", ce)
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 7 {
		t.Errorf("%d errors, want 7", n)
	}
}

func TestLoadSpecsRejects(t *testing.T) {
	cases := map[string]string{
		"":              "empty",
		"filters: []\n": "at least one",
		"filters:\n":    "at least one",
		"other: 1\n":    "field other not found",
		"filters:\n  - name: a\n    expr: alert.a == 1\n    maxPerVisit: 3\n": "field maxPerVisit not found",
		"filters: [": "parsing filters YAML",
		"filters:\n  - name: a\n    expr: alert.a == 1\n    cost_limit: -5\n": "parsing filters YAML",
	}
	for doc, want := range cases {
		_, err := LoadSpecs(strings.NewReader(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", doc, err, want)
		}
	}
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "Filter001", "x.y_z-1", strings.Repeat("a", 200)} {
		if !ValidName(n) {
			t.Errorf("%q invalid", n)
		}
	}
	for _, n := range []string{"", ".", "..", "a b", "a/b", "ü", strings.Repeat("a", 201)} {
		if ValidName(n) {
			t.Errorf("%q valid", n)
		}
	}
}

func TestSpecDefaultsAndCompile(t *testing.T) {
	s := Spec{Name: "f", Expr: DefaultExpr}.WithDefaults()
	if s.Output != "f" || s.MaxPerVisit != DefaultMaxPerVisit || s.CostLimit != DefaultCostLimit {
		t.Fatalf("defaults: %+v", s)
	}
	p, err := Spec{Name: "f", Expr: DefaultExpr, CostLimit: 1234}.Compile()
	if err != nil || p.CostLimit() != 1234 {
		t.Fatalf("compile: %v", err)
	}
	if _, err := (Spec{Name: "f", Expr: "x"}).Compile(); err == nil || !strings.HasPrefix(err.Error(), `filter "f": filter expression: 1:1:`) {
		t.Fatalf("bad expr: %v", err)
	}
	if err := (Spec{Name: "f", Expr: "true", Output: "a b"}).Validate(); err == nil || !strings.Contains(err.Error(), `filter "f": invalid output topic "a b"`) {
		t.Fatalf("bad output: %v", err)
	}
}
