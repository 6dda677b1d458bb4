package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2/ocf"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// TestProduceReplaySkipsOversizedAlert: produce --replay with an alert
// of the project's writer with three 20 KB cutouts between smaller ones
// (files of the same writer, and the real Rubin alert) under a hub limit
// of 20,000 bytes: the producer names the big alert (file, place,
// diaSourceId, size and limit) each visit, sends the others, a stand-in
// in its place, and counts it in the produce event's dead letters; it
// exits 0 after its visits.
func TestProduceReplaySkipsOversizedAlert(t *testing.T) {
	rubin := fakeAlertFile(t)
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small.avro"), filepath.Join(dir, "big.avro")
	writeSyntheticOCF(t, small, 5, 1, 4)
	bigID := writeCutoutOCF(t, big, 20_000)
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bootstrap := c.ListenAddrs()[0]
	const perVisit = 10 // 4 small, the big one, the Rubin alert, 4 small
	r := runCLI(t, time.Minute, "produce", "--bootstrap", bootstrap, "--replay", small, "--replay", big, "--replay", rubin, "--replay", small,
		"--visits", "2", "--align=false", "--interval", "200ms", "--alerts-per-visit", fmt.Sprint(perVisit), "--partitions", "1",
		"--kafka", "message.max.bytes=20000")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	for _, s := range []string{"alert too large for the hub", fmt.Sprintf(`alert="%s, alert 1 of 1"`, big), fmt.Sprintf("diaSourceId=%d", bigID),
		"limit_bytes=20000 why=", "index=4", "over the hub client's limit of 20000 bytes", "skipped=1 sent=9"} {
		if n := strings.Count(r.stderr, s); n != 2 {
			t.Errorf("stderr says %q %d times, want once per visit", s, n)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var alerts, standIns int
	if err := kclient.ReadAll(ctx, bootstrap, nil, stream.AlertsTopic, func(m *kafka.Message) error {
		alerts++
		if m.Value == nil {
			standIns++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if alerts != 2*perVisit || standIns != 2 {
		t.Errorf("the hub holds %d records, %d of them stand-ins; want %d and 2", alerts, standIns, 2*perVisit)
	}
	var produced int
	if err := kclient.ReadAll(ctx, bootstrap, nil, stream.TimingTopic, func(m *kafka.Message) error {
		var e timing.Event
		if err := json.Unmarshal(m.Value, &e); err != nil {
			return err
		}
		if e.Kind == timing.KindProduce {
			produced++
			if e.Alerts != perVisit-1 || e.DeadLetters != 1 {
				t.Errorf("produce event: %d alerts, %d dead letters; want %d and 1", e.Alerts, e.DeadLetters, perVisit-1)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if produced != 2 {
		t.Errorf("%d produce events, want 2", produced)
	}
	if t.Failed() {
		t.Log(r)
	}
}

// writeCutoutOCF writes one synthetic alert with three cutouts of
// cutoutBytes each to an Avro container file and returns its diaSourceId.
func writeCutoutOCF(t *testing.T, path string, cutoutBytes int) int64 {
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
	payload, tr, err := alert.NewGenerator(9, cutoutBytes).Alert(nil, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := enc.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return tr.DiaSourceID
}
