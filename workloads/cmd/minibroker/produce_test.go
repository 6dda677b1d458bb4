package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// TestProduceReplayReadsPastABadBlock: produce --replay of a file of three
// blocks of two synthetic alerts whose middle block's data is garbage,
// given twice: the producer warns once that it skipped the block (file,
// block, byte, reason, records lost, where reading resumed) and sends the
// alerts of the other two blocks, each in its place of the cycle; an
// alert of the file is named among the records read.
func TestProduceReplayReadsPastABadBlock(t *testing.T) {
	var buf bytes.Buffer
	enc, err := ocf.NewEncoderWithSchema(alert.SyntheticSchema(), &buf, ocf.WithBlockLength(2))
	if err != nil {
		t.Fatal(err)
	}
	gen := alert.NewGenerator(11, 0)
	var ids []int64
	var at []int // each block's offset, and the file's end
	for i := range 6 {
		if i%2 == 0 {
			if err := enc.Flush(); err != nil {
				t.Fatal(err)
			}
			at = append(at, buf.Len())
		}
		payload, tr, err := gen.Alert(nil, 1, i)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := enc.Write(payload); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tr.DiaSourceID)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	at = append(at, len(data))
	// Block 1: its count, its size, its data (garbage now), its marker.
	count, n1 := binary.Varint(data[at[1]:])
	size, n2 := binary.Varint(data[at[1]+n1:])
	start := at[1] + n1 + n2
	if count != 2 || start+int(size)+16 != at[2] {
		t.Fatalf("block 1 at byte %d: %d records, %d bytes; want 2 records before the marker ending at byte %d", at[1], count, size, at[2])
	}
	for i := start; i < start+int(size); i++ {
		data[i] = 0xff
	}
	path := filepath.Join(t.TempDir(), "badblock.avro")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	bootstrap := c.ListenAddrs()[0]
	const perVisit = 8 // the four alerts read, twice
	r := runCLI(t, time.Minute, "produce", "--bootstrap", bootstrap, "--replay", path, "--replay", path,
		"--visits", "1", "--align=false", "--interval", "1s", "--alerts-per-visit", fmt.Sprint(perVisit), "--partitions", "1", "--parallel", "1",
		"--timing-topic", "")
	if r.code != 0 {
		t.Fatalf("want exit 0, got %s", r)
	}
	for _, w := range []string{"skipped a bad block with its records", "file=" + path + " ", fmt.Sprintf("block=1 byte=%d ", at[1]),
		"reason=", "record 0 of the block (record 2 of the file)", "records_lost=2 ", fmt.Sprintf("resumed_at_byte=%d", at[2])} {
		if n := strings.Count(r.stderr, w); n != 1 {
			t.Errorf("stderr says %q %d times, want once", w, n)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var sent []int64
	if err := kclient.ReadAll(ctx, bootstrap, nil, stream.AlertsTopic, func(m *kafka.Message) error {
		_, payload, err := alert.ParseWire(m.Value)
		if err != nil {
			return err
		}
		rec, err := alert.Decode(alert.SyntheticSchema(), payload)
		if err != nil {
			return err
		}
		id, err := alert.LookupInt(rec, alert.DefaultIDPath)
		sent = append(sent, id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	read := []int64{ids[0], ids[1], ids[4], ids[5]}
	if want := append(slices.Clone(read), read...); !slices.Equal(sent, want) {
		t.Errorf("the hub holds diaSourceIds %v, want %v (those of blocks 0 and 2, twice)", sent, want)
	}
	if got, want := replayRecordNames([]string{path, path})(6), path+", alert 3 of the 4 read past its bad blocks"; got != want {
		t.Errorf("record 6 is named %q, want %q", got, want)
	}
	if t.Failed() {
		t.Log(r)
	}
}
