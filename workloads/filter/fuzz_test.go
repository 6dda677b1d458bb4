package filter

// A fuzz target for the filters file (issue 13). `go test` replays its
// seeds and the crashers committed under testdata/fuzz/; `make fuzz` runs
// it for a bounded time.

import (
	"bytes"
	"io"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func FuzzLoadSpecs(f *testing.F) {
	for _, s := range []string{
		goodYAML,
		"filters:\n  - name: a\n    expr: alert.diaSource.snr > 5.0\n",
		"filters: [{name: a, expr: 'true', max_per_visit: -1, cost_limit: 18446744073709551615}]\n",
		"filters:\n  - name: x\n    expr: |\n      alert.diaSource.band == 'r' &&\n      alert.diaSource.psfFlux > 1e6\n",
		"filters:\n  - &f {name: a, expr: 'true'}\n  - *f\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nfilters: *c\n",
		"filters:\n  - name: a\n    expr: has(alert.diaObject) ? alert.diaObject.nDiaSources > 2 : size(alert.prvDiaSources) > 1\n",
		"filters:\n  - name: a\n    expr: " + strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300) + "\n",
		"filters: []\n", "", "filters: [", "---\n---\n", "filters:\n  - name: a\n    expr: x\n    bogus: 1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		specs, err := LoadSpecs(strings.NewReader(doc))
		if err != nil {
			if specs != nil {
				t.Fatalf("specs with error %v", err)
			}
			return
		}
		if len(specs) == 0 {
			t.Fatal("no specs and no error")
		}
		names, outputs := map[string]bool{}, map[string]bool{}
		for _, s := range specs {
			if err := s.Validate(); err != nil {
				t.Fatalf("accepted %+v: %v", s, err)
			}
			if !reflect.DeepEqual(s.WithDefaults(), s) {
				t.Fatalf("defaults not filled in: %+v", s)
			}
			if names[s.Name] || outputs[s.Output] {
				t.Fatalf("duplicate name or output: %+v", s)
			}
			names[s.Name], outputs[s.Output] = true, true
		}
		// Written back by File.Marshal, the file reads the same.
		b, err := File{Filters: specs}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := LoadSpecs(strings.NewReader(string(b)))
		if err != nil || !reflect.DeepEqual(again, specs) {
			t.Fatalf("specs %+v written back as\n%s\nread as %+v, %v", specs, b, again, err)
		}
	})
}

// A filters file is read up to MaxFileBytes, not whatever the reader
// holds.
func TestLoadSpecsBoundsTheFile(t *testing.T) {
	big := io.MultiReader(strings.NewReader("filters:\n  - name: a\n    expr: 'true'\n#"),
		&endless{}) // a comment that never ends
	if _, err := LoadSpecs(big); err == nil || !strings.Contains(err.Error(), "filters file over") {
		t.Fatalf("an endless file: %v", err)
	}
}

// endless reads as an unending run of 'x'.
type endless struct{}

func (*endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// yaml.v3 writes a multi-line expression that starts with a space as a
// literal block it cannot read back (found by FuzzLoadSpecs); File.Marshal
// writes what reads back the same, and leaves other expressions in
// literal blocks.
func TestFileMarshalReadsBack(t *testing.T) {
	for _, expr := range []string{" alert.diaSource.snr > 0.0\n", "  alert.diaSource.snr > 0.0\n", " true &&\n true\n", " true\n\n", "\ttrue\n"} {
		f := File{Filters: []Spec{{Name: "a", Expr: expr}}}
		raw, err := yaml.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if f.readsBackFrom(raw) {
			t.Logf("%q: yaml.Marshal alone reads back", expr)
		}
		b, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		specs, err := LoadSpecs(bytes.NewReader(b))
		if err != nil || len(specs) != 1 || specs[0].Expr != expr {
			t.Fatalf("%q written as\n%s\nread as %+v, %v", expr, b, specs, err)
		}
	}
	f := File{Filters: []Spec{{Name: "a", Expr: "true &&\n  true\n"}}}
	b, err := f.Marshal()
	if err != nil || !strings.Contains(string(b), "expr: |") {
		t.Fatalf("a plain multi-line expression not in a literal block:\n%s (%v)", b, err)
	}
}
