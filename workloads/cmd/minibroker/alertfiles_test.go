package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// An archive written by fastavro whose schema carries invalid defaults:
// --dry-run reads it, warning once per file about each field, and selects
// what the records fastavro reads from it say; a corrupt file still fails
// with where.
func TestDryRunArchiveWithInvalidDefaults(t *testing.T) {
	fx, err := outsideavro.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	visits := map[json.Number]bool{}
	for range 2 { // the file is given twice
		for _, rec := range fx.Records {
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
	}
	want := dryRunOut("Filter001", -1, ids, 2*len(fx.Records), len(ids), len(visits))

	r := runCLI(t, 30*time.Second, "filter", "--dry-run", "--max-per-visit", "-1", "--expr", "alert.diaSource.detector > 0", fx.Bad, fx.Bad)
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	if r.stdout != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", r.stdout, want)
	}
	checkDefaultWarnings(t, r, fx.Bad)

	data, err := os.ReadFile(fx.Good)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.avro")
	if err := os.WriteFile(cut, data[:len(data)-30], 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCLI(t, 30*time.Second, "filter", "--dry-run", cut)
	if r.code != 1 || !strings.Contains(r.stderr, "read alert file "+cut+": block 2 at byte ") || !strings.Contains(r.stderr, "truncated") {
		t.Fatalf("a truncated file: want exit 1 naming its last block and byte, got %s", r)
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
