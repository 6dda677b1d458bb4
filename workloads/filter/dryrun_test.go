package filter

import (
	"bytes"
	"strings"
	"testing"
)

func TestDryRun(t *testing.T) {
	p, err := Compile(DefaultExpr)
	if err != nil {
		t.Fatal(err)
	}
	recs := []map[string]any{
		testAlert(101, 1, 10, 50000, 0),
		testAlert(102, 1, 10, 10, 0), // faint
		testAlert(103, 1, 10, 40000, 2),
		{"diaSource": map[string]any{"snr": 9.0, "psfFlux": 1e5}}, // no id
	}
	var out bytes.Buffer
	sel, total, err := DryRun(&out, p, recs, "")
	if err != nil || sel != 3 || total != 4 {
		t.Fatalf("got %d of %d, %v", sel, total, err)
	}
	want := "101\n103\n<missing>\nselected 3 of 4 alerts\n"
	if out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}

	out.Reset()
	sel, total, err = DryRun(&out, p, recs, "diaSource.band")
	if err != nil || out.String() != "r\nr\n<missing>\nselected 3 of 4 alerts\n" {
		t.Fatalf("idPath: %q %v", out.String(), err)
	}

	// Evaluation errors: not selected, counted, summary still written.
	out.Reset()
	recs = append(recs, map[string]any{"diaSourceId": int64(5)})
	sel, total, err = DryRun(&out, p, recs, "")
	if sel != 3 || total != 5 || err == nil || !strings.Contains(err.Error(), "1 of 5 alerts could not be evaluated") || !strings.Contains(err.Error(), "alert #5") {
		t.Fatalf("got %d of %d, %v", sel, total, err)
	}
	if !strings.HasSuffix(out.String(), "\nselected 3 of 5 alerts\n") {
		t.Fatalf("output %q", out.String())
	}

	out.Reset()
	if sel, total, err := DryRun(&out, p, nil, ""); sel != 0 || total != 0 || err != nil || out.String() != "selected 0 of 0 alerts\n" {
		t.Fatalf("empty: %q %v", out.String(), err)
	}
	if _, _, err := DryRun(&out, nil, nil, ""); err == nil {
		t.Fatal("nil program accepted")
	}
}
