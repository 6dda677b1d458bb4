package main

import (
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"strings"
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

// A librdkafka properties file, as a user is handed one (SASL/TLS
// settings, comments, a JAAS value with '=' in it), reaches every client;
// --kafka wins over it; a malformed line is a usage error naming it.
func TestConfigFileAndKafkaFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "client.properties")
	if err := os.WriteFile(path, []byte(`# from terraform output
security.protocol=SASL_SSL
sasl.mechanisms = SCRAM-SHA-512
sasl.username=bright-reader
! another comment style
sasl.password=p=ss=word
ssl.ca.location=/tmp/ca.pem

`), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var k kafkaFlags
	k.register(fs)
	if err := fs.Parse([]string{"--config", path, "--kafka", "sasl.username=override"}); err != nil {
		t.Fatal(err)
	}
	got, err := k.overrides()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
		"sasl.username": "override", "sasl.password": "p=ss=word", "ssl.ca.location": "/tmp/ca.pem"}
	if !maps.Equal(got, want) {
		t.Errorf("settings %v, want %v", got, want)
	}

	if err := os.WriteFile(path, []byte("security.protocol SASL_SSL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ue usageError
	if _, err := k.overrides(); !errors.As(err, &ue) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("malformed file: %v, want a usage error naming line 1", err)
	}
}
