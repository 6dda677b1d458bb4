package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
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

// `consume --format json` writes the alert itself, decoded, as a user
// reading their stream wants it: here Rubin's real sample alert, replayed
// by `produce`, selected by a `filter`, read back with its diaSourceId and
// fields, each line still a receipt that a restarted consumer recognises.
func TestConsumeFormatJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	b := kafkabed.StartBrokerT(t)
	path := fakeAlertFile(t)
	bootstrap := b.Bootstrap()
	if r := runCLI(t, 2*time.Minute, "produce", "--bootstrap", bootstrap, "--replay", path, "--alerts-per-visit", "3",
		"--visits", "1", "--interval", "1s", "--timing-topic", ""); r.code != 0 {
		t.Fatalf("produce: %s", r)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	filtered := make(chan result, 1)
	go func() {
		var stdout, stderr bytes.Buffer
		code := run(ctx, []string{"filter", "--bootstrap", bootstrap, "--name", "Bright", "--output", "Bright",
			"--expr", "alert.diaSource.snr > 0.0", "--from-beginning", "--timing-topic", ""}, &stdout, &stderr)
		filtered <- result{code, stdout.String(), stderr.String()}
	}()

	out := filepath.Join(t.TempDir(), "bright.jsonl")
	deadline := time.Now().Add(90 * time.Second)
	var lines []string
	for len(lines) < 3 && time.Now().Before(deadline) {
		r := runCLI(t, time.Minute, "consume", "--bootstrap", bootstrap, "--topic", "Bright", "--group", "reader",
			"--from-beginning", "--until-end", "--format", "json", "--out", out)
		if r.code != 0 {
			t.Fatalf("consume: %s", r)
		}
		data, _ := os.ReadFile(out)
		lines = strings.Fields(strings.TrimSpace(string(data)))
		time.Sleep(time.Second)
	}
	stop()
	if r := <-filtered; r.code != 0 && !strings.Contains(r.stderr, "context canceled") {
		t.Logf("filter: %s", r)
	}
	if len(lines) != 3 {
		t.Fatalf("consume wrote %d lines, want the 3 alerts of the visit", len(lines))
	}
	for i, line := range lines {
		var got struct {
			ID    string         `json:"id"`
			Rank  int            `json:"rank"`
			Alert map[string]any `json:"alert"`
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber() // 64-bit ids, as Python's json reads them
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("line %d is not JSON: %v", i, err)
		}
		src, _ := got.Alert["diaSource"].(map[string]any)
		if got.Rank != i+1 || got.ID == "" || fmt.Sprint(got.Alert["diaSourceId"]) != got.ID || src["band"] != "r" || src["snr"] == nil {
			t.Errorf("line %d: id %s rank %d, alert diaSourceId %v, diaSource %v", i, got.ID, got.Rank, got.Alert["diaSourceId"], src)
		}
	}
	if r := runCLI(t, time.Minute, "consume", "--bootstrap", bootstrap, "--topic", "Bright", "--format", "avro"); r.code != 2 {
		t.Errorf("an unknown format: %s", r)
	}
}
