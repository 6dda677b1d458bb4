package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/outsideavro"
)

// checkDefaultWarnings fails unless stderr warns once about each invalid
// default of the fastavro fixture's bad.avro, naming the file.
func checkDefaultWarnings(t *testing.T, r result, file string) {
	t.Helper()
	for field := range outsideavro.BadDefaults {
		if n := strings.Count(r.stderr, "field="+field+" "); n != 1 {
			t.Errorf("stderr warns %d times about %s, want once\n%s", n, field, r)
		}
	}
	if n := strings.Count(r.stderr, "file="+file+" "); n != len(outsideavro.BadDefaults) {
		t.Errorf("%d warnings name %s, want %d\n%s", n, file, len(outsideavro.BadDefaults), r)
	}
}

// dryRunWant is the dry run's output for filter "alert.diaSource.detector
// > 0" without a cap, over these records of the fastavro fixture.
func dryRunWant(t *testing.T, records []any) string {
	t.Helper()
	var ids []string
	visits := map[json.Number]bool{}
	for _, rec := range records {
		m := rec.(map[string]any)
		det, err := m["diaSource"].(map[string]any)["detector"].(json.Number).Int64()
		if err != nil {
			t.Fatal(err)
		}
		visits[m["diaSource"].(map[string]any)["visit"].(json.Number)] = true
		if det > 0 {
			ids = append(ids, fmt.Sprint(m["diaSourceId"]))
		}
	}
	return dryRunOut("Filter001", -1, ids, len(records), len(ids), len(visits))
}

// An archive written by fastavro whose schema carries invalid defaults:
// --dry-run reads it, warning once per file about each field, and selects
// what the records fastavro reads from it say; a file cut short in its
// last block is read but for that block, which is named with its byte,
// what is wrong and the records lost.
func TestDryRunArchiveWithInvalidDefaults(t *testing.T) {
	fx, err := outsideavro.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := dryRunWant(t, append(slices.Clone(fx.Records), fx.Records...)) // the file is given twice

	r := runCLI(t, 30*time.Second, "filter", "--dry-run", "--max-per-visit", "-1", "--expr", "alert.diaSource.detector > 0", fx.Bad, fx.Bad)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	if r.stdout != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	checkDefaultWarnings(t, r, fx.Bad)
	if strings.Contains(r.stderr, "skipped a bad block") {
		t.Errorf("a bad block in a good file\n%s", r)
	}

	data, err := os.ReadFile(fx.Good)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.avro")
	if err := os.WriteFile(cut, data[:len(data)-30], 0o644); err != nil {
		t.Fatal(err)
	}
	const lost = 2 // the records of the file's last block, block 2
	r = runCLI(t, 30*time.Second, "filter", "--dry-run", "--max-per-visit", "-1", "--expr", "alert.diaSource.detector > 0", cut, cut)
	if r.code != 0 {
		t.Fatalf("a truncated file: want exit 0, got %s", r)
	}
	kept := fx.Records[:len(fx.Records)-lost]
	if want := dryRunWant(t, append(slices.Clone(kept), kept...)); r.stdout != want {
		t.Errorf("a truncated file: stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	for _, w := range []string{"skipped a bad block", "file=" + cut + " ", "block=2 byte=", "truncated", fmt.Sprintf("records_lost=%d ", lost),
		fmt.Sprintf("resumed_at_byte=%d", len(data)-30)} {
		if n := strings.Count(r.stderr, w); n != 1 {
			t.Errorf("a truncated file given twice: stderr says %q %d times, want once\n%s", w, n, r)
		}
	}
}

// produce --replay sends the alerts of such an archive, with the same
// warnings.
func TestProduceReplayArchiveWithInvalidDefaults(t *testing.T) {
	fx, err := outsideavro.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := runCLI(t, time.Minute, "produce", "--bootstrap", c.ListenAddrs()[0], "--replay", fx.Bad, "--replay", fx.Bad,
		"--visits", "1", "--align=false", "--interval", "1s", "--alerts-per-visit", "30", "--partitions", "1", "--timing-topic", "")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	checkDefaultWarnings(t, r, fx.Bad)
}
