package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A consumer killed mid-write leaves a torn last line: a restart cuts it
// (that alert comes again) and drops the alerts of the whole lines.
func TestReadOutLinesCutsATornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	whole := `{"topic":"F","run":"r","visit":1,"rank":1,"id":"a","arrived":"2026-12-06T00:00:00Z","bytes":5}` + "\n" +
		`{"topic":"F","run":"r","visit":1,"rank":2,"id":"b","arrived":"2026-12-06T00:00:00Z","bytes":5}` + "\n"
	if err := os.WriteFile(path, []byte(whole+`{"topic":"F","run":"r","vis`), 0o644); err != nil {
		t.Fatal(err)
	}
	refs, err := readOutLines(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[1].ID != "b" || refs[1].Rank != 2 || refs[1].Visit != 1 || refs[1].Run != "r" {
		t.Fatalf("refs %+v", refs)
	}
	data, _ := os.ReadFile(path)
	if string(data) != whole {
		t.Errorf("file after the cut:\n%s", data)
	}
	if refs, err := readOutLines(filepath.Join(t.TempDir(), "absent")); err != nil || refs != nil {
		t.Errorf("absent file: %v, %v", refs, err)
	}
}
