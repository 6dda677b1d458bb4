package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func produceEv(run string, visit int64) timing.Event {
	return timing.Event{Kind: timing.KindProduce, Run: run, Visit: visit, Name: "producer", Start: t0, End: t0.Add(time.Second), Alerts: 100}
}

func filterEv(run string, visit int64, name string, selected int) timing.Event {
	return timing.Event{Kind: timing.KindFilter, Run: run, Visit: visit, Name: name, Source: name, End: t0.Add(2 * time.Second),
		Alerts: 100, Matched: selected, Selected: selected}
}

func consumeEv(run string, visit int64, source string, rank int) timing.Event {
	return timing.Event{Kind: timing.KindConsume, Run: run, Visit: visit, Name: "consumer-" + source, Source: source,
		End: t0.Add(3 * time.Second), Rank: rank}
}

// complete returns the events of a finished run: visits 1..visits, each
// finished by Filter001..filters, Filter00k selecting k alerts, all received.
func complete(run string, filters, visits int) []timing.Event {
	var evs []timing.Event
	for v := int64(1); v <= int64(visits); v++ {
		evs = append(evs, produceEv(run, v))
		for f := 1; f <= filters; f++ {
			name := fmt.Sprintf("Filter%03d", f)
			evs = append(evs, filterEv(run, v, name, f))
			for r := 1; r <= f; r++ {
				evs = append(evs, consumeEv(run, v, name, r))
			}
		}
	}
	return evs
}

func TestMissingEvents(t *testing.T) {
	full := complete("r", 3, 2)
	if m := missingEvents(full, 3, 2); m != "" {
		t.Fatalf("complete run: missingEvents = %q, want \"\"", m)
	}
	// Event order does not matter.
	rev := slices.Clone(full)
	slices.Reverse(rev)
	if m := missingEvents(rev, 3, 2); m != "" {
		t.Fatalf("complete run in reverse order: missingEvents = %q", m)
	}

	without := func(drop func(timing.Event) bool) []timing.Event {
		return slices.DeleteFunc(slices.Clone(full), drop)
	}
	firstConsume := func() func(timing.Event) bool {
		done := false
		return func(e timing.Event) bool {
			if !done && e.Kind == timing.KindConsume && e.Source == "Filter003" && e.Visit == 2 {
				done = true
				return true
			}
			return false
		}
	}
	for _, tc := range []struct {
		name string
		evs  []timing.Event
		want string
	}{
		{"nothing yet", nil, "0 of 2 visits produced"},
		{"one visit produced", without(func(e timing.Event) bool { return e.Visit == 2 }), "1 of 2 visits produced"},
		{"a filter has not finished a visit", without(func(e timing.Event) bool {
			return e.Kind == timing.KindFilter && e.Name == "Filter002" && e.Visit == 2
		}), "visit 2 finished by 2 of 3 filters"},
		{"a consumer lacks an alert", without(firstConsume()), "consumer of Filter003 has 2 of 3 alerts of visit 2"},
		{"no consumer events at all", without(func(e timing.Event) bool { return e.Kind == timing.KindConsume }), "consumer of Filter"},
		{"produced, nothing filtered", without(func(e timing.Event) bool { return e.Kind != timing.KindProduce }), "finished by 0 of 3 filters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := missingEvents(tc.evs, 3, 2)
			if !strings.Contains(got, tc.want) || (tc.want != "" && got == "") {
				t.Fatalf("missingEvents = %q, want it to say %q", got, tc.want)
			}
		})
	}

	// A filter event twice (a restarted filter) counts once; a filter that
	// selected nothing needs no consumer event; more produced visits than
	// asked for are fine as long as each is finished.
	evs := append(complete("r", 2, 1), filterEv("r", 1, "Filter001", 1), filterEv("r", 1, "Filter003", 0))
	if m := missingEvents(evs, 3, 1); m != "" {
		t.Errorf("duplicate filter event / filter selecting nothing: missingEvents = %q", m)
	}
	if m := missingEvents(append(complete("r", 2, 1), filterEv("r", 1, "Filter001", 1)), 3, 1); !strings.Contains(m, "finished by 2 of 3 filters") {
		t.Errorf("a duplicate filter event must not stand for another filter: missingEvents = %q", m)
	}
	if m := missingEvents(complete("r", 1, 3), 1, 2); m != "" {
		t.Errorf("three complete visits where two are awaited: missingEvents = %q", m)
	}
	// A filter event for a visit that was not produced does not count.
	if m := missingEvents([]timing.Event{filterEv("r", 9, "Filter001", 0)}, 1, 1); m != "0 of 1 visits produced" {
		t.Errorf("filter event without produce event: missingEvents = %q", m)
	}
}

func TestForRun(t *testing.T) {
	a, b := complete("run-a", 2, 2), complete("run-b", 1, 1)
	var mixed []timing.Event
	for i := range max(len(a), len(b)) { // interleave, as on the timing topic
		if i < len(a) {
			mixed = append(mixed, a[i])
		}
		if i < len(b) {
			mixed = append(mixed, b[i])
		}
	}
	noRun := produceEv("", 5)
	mixed = append(mixed, noRun)

	if got := ForRun(mixed, "run-a"); !reflect.DeepEqual(got, a) {
		t.Errorf("ForRun(run-a) = %d events, want the %d of run-a in order", len(got), len(a))
	}
	if got := ForRun(mixed, "run-b"); !reflect.DeepEqual(got, b) {
		t.Errorf("ForRun(run-b) = %d events, want the %d of run-b in order", len(got), len(b))
	}
	if got := ForRun(mixed, "run-c"); len(got) != 0 {
		t.Errorf("ForRun(run-c) = %v, want none", got)
	}
	if got := ForRun(mixed, ""); !reflect.DeepEqual(got, []timing.Event{noRun}) {
		t.Errorf("ForRun(\"\") = %v, want only the event without a run", got)
	}
	if got := ForRun(nil, "run-a"); got != nil {
		t.Errorf("ForRun(nil) = %v", got)
	}
	// The mixed events are incomplete for run-b's needs only after filtering.
	if m := missingEvents(ForRun(mixed, "run-a"), 2, 2); m != "" {
		t.Errorf("run-a is complete but missingEvents says %q", m)
	}
	if m := missingEvents(mixed, 2, 3); m == "" {
		t.Error("without ForRun the other run's visit must not complete this one")
	}
}

func TestDemoSpecs(t *testing.T) {
	if got := DemoSpecs(0); len(got) != 0 {
		t.Fatalf("DemoSpecs(0) = %v", got)
	}
	specs := DemoSpecs(14)
	if len(specs) != 14 {
		t.Fatalf("%d specs, want 14", len(specs))
	}
	for i, s := range specs {
		want := fmt.Sprintf("Filter%03d", i+1)
		if s.Name != want || s.Output != want {
			t.Errorf("spec %d: name %q output %q, want %q", i, s.Name, s.Output, want)
		}
		if s.MaxPerVisit != filter.DefaultMaxPerVisit {
			t.Errorf("%s: cap %d, want %d", s.Name, s.MaxPerVisit, filter.DefaultMaxPerVisit)
		}
		if _, err := filter.Compile(s.Expr); err != nil {
			t.Errorf("%s: %q does not compile: %v", s.Name, s.Expr, err)
		}
		if _, err := s.Compile(); err != nil {
			t.Errorf("%s: spec does not compile: %v", s.Name, err)
		}
		if s.Expr != demoExprs[i%len(demoExprs)] {
			t.Errorf("%s: expression %q does not cycle through demoExprs", s.Name, s.Expr)
		}
	}
	if specs[0].Expr != filter.DefaultExpr {
		t.Errorf("Filter001 is %q, want the original's filter %q", specs[0].Expr, filter.DefaultExpr)
	}
	if _, err := filter.NewSet(specs); err != nil {
		t.Errorf("the demo specs do not make one shared set: %v", err)
	}
	// Each demo filter selects something from synthetic alerts, or the local
	// demo would show consumers with nothing to time. A visit has one band,
	// so the alerts span many visits.
	gen := alert.NewGenerator(1, 0)
	set, err := filter.NewSet(DemoSpecs(len(demoExprs)))
	if err != nil {
		t.Fatal(err)
	}
	reg := alert.NewRegistry(alert.SyntheticSchema())
	dec := alert.NewDecoder(reg)
	id := alert.SchemaID(alert.SyntheticSchema())
	for i := range 3000 {
		b, _, err := gen.Alert(alert.AppendWire(nil, id, nil), int64(1+i/100), i%100)
		if err != nil {
			t.Fatal(err)
		}
		rec, _, err := dec.DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		set.Evaluate(rec, int64(1+i/100), nil)
	}
	for _, st := range set.Stats() {
		if st.Matched == 0 || st.Errors != 0 {
			t.Errorf("demo filter %s: %d matched, %d errors (%s) over 3000 synthetic alerts of 30 visits", st.Name, st.Matched, st.Errors, st.LastError)
		}
	}
}

func TestHeaders(t *testing.T) {
	for _, v := range []int64{0, 1, -7, 1_772_366_400_000, 1<<63 - 1, -1 << 63} {
		h := intHeader(stream.HeaderVisit, v)
		if h.Key != stream.HeaderVisit || string(h.Value) != strconv.FormatInt(v, 10) {
			t.Errorf("intHeader(%d) = %s=%q", v, h.Key, h.Value)
		}
		got, ok := headerInt([]kafka.Header{{Key: "other", Value: []byte("5")}, h}, stream.HeaderVisit)
		if !ok || got != v {
			t.Errorf("headerInt round trip of %d = %d, %v", v, got, ok)
		}
	}
	hs := []kafka.Header{
		{Key: stream.HeaderRun, Value: []byte("run-1")},
		{Key: stream.HeaderCount, Value: []byte("ten")},
		{Key: stream.HeaderIndex, Value: nil},
		{Key: stream.HeaderRank, Value: []byte("3")},
		{Key: stream.HeaderRank, Value: []byte("4")},
		{Key: stream.HeaderID, Value: []byte(" 12")},
	}
	for _, tc := range []struct {
		key  string
		want int64
		ok   bool
	}{
		{stream.HeaderCount, 0, false}, // not a number
		{stream.HeaderIndex, 0, false}, // empty
		{stream.HeaderVisit, 0, false}, // absent
		{stream.HeaderRank, 3, true},   // the first of repeated headers
		{stream.HeaderID, 0, false},    // no trimming
		{stream.HeaderRun, 0, false},
	} {
		if got, ok := headerInt(hs, tc.key); got != tc.want || ok != tc.ok {
			t.Errorf("headerInt(%s) = %d, %v; want %d, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
	if got := headerString(hs, stream.HeaderRun); got != "run-1" {
		t.Errorf("headerString(run) = %q", got)
	}
	if got := headerString(hs, stream.HeaderRank); got != "3" {
		t.Errorf("headerString of a repeated header = %q, want the first", got)
	}
	if got := headerString(hs, stream.HeaderFrom); got != "" {
		t.Errorf("headerString of an absent header = %q", got)
	}
	if got := headerString(nil, stream.HeaderRun); got != "" {
		t.Errorf("headerString(nil) = %q", got)
	}
	// The header names are distinct: a typo merging two would corrupt the stream.
	names := []string{stream.HeaderRun, stream.HeaderVisit, stream.HeaderIndex, stream.HeaderCount, stream.HeaderRank, stream.HeaderID, stream.HeaderFrom}
	if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
		t.Errorf("header names are not distinct: %v", names)
	}
}

// fakeCluster starts an embedded single broker.
func fakeCluster(t *testing.T) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(kclient.MaxMessageBytes)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()[0]
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func readTopic(t *testing.T, ctx context.Context, addr, topic string) []*kafka.Message {
	t.Helper()
	var out []*kafka.Message
	if err := kclient.ReadAll(ctx, addr, nil, topic, func(m *kafka.Message) error { out = append(out, m); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestProduceParallelOnKfake sends two visits of 1000 alerts with three
// parallel senders and checks what the broker holds, message by message.
func TestProduceParallelOnKfake(t *testing.T) {
	c, addr := fakeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const (
		visits   = 2
		perVisit = 1000
		seed     = 11
		run      = "unit-run"
		interval = 300 * time.Millisecond
	)
	var sent []VisitResult
	err := Produce(ctx, ProduceConfig{
		Bootstrap: addr, Topic: stream.AlertsTopic, Partitions: 3, SchemasTopic: stream.SchemasTopic,
		Source: NewSynthetic(seed, 0), AlertsPerVisit: perVisit, Interval: interval, Visits: visits, Parallel: 3,
		Run: run, TimingTopic: stream.TimingTopic, Log: quietLog(),
		OnVisit: func(v VisitResult) { sent = append(sent, v) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != visits {
		t.Fatalf("OnVisit called %d times, want %d", len(sent), visits)
	}
	if d := sent[1].Visit - sent[0].Visit; d < interval.Milliseconds() {
		t.Errorf("visit ids %d and %d are %d ms apart, want at least the interval %s", sent[0].Visit, sent[1].Visit, d, interval)
	}
	if n := len(c.PartitionInfos(stream.AlertsTopic)); n != 3 {
		t.Errorf("alert topic has %d partitions, want 3", n)
	}

	gen := alert.NewGenerator(seed, 0)
	id := alert.SchemaID(alert.SyntheticSchema())
	seen := map[int64][]int{} // visit -> times each index arrived
	bytesPerVisit := map[int64]int64{}
	for _, v := range sent {
		seen[v.Visit] = make([]int, perVisit)
	}
	msgs := readTopic(t, ctx, addr, stream.AlertsTopic)
	if len(msgs) != visits*perVisit {
		t.Errorf("the topic holds %d alerts, want %d", len(msgs), visits*perVisit)
	}
	perPartition := map[int32]int{}
	for _, m := range msgs {
		perPartition[m.TopicPartition.Partition]++
		if got := headerString(m.Headers, stream.HeaderRun); got != run {
			t.Fatalf("%s: mb-run %q, want %q", m.TopicPartition, got, run)
		}
		visit, okV := headerInt(m.Headers, stream.HeaderVisit)
		index, okI := headerInt(m.Headers, stream.HeaderIndex)
		count, okC := headerInt(m.Headers, stream.HeaderCount)
		if !okV || !okI || !okC {
			t.Fatalf("%s: headers %v lack mb-visit, mb-index or mb-count", m.TopicPartition, m.Headers)
		}
		if count != perVisit {
			t.Fatalf("%s: mb-count %d, want %d", m.TopicPartition, count, perVisit)
		}
		counts, ok := seen[visit]
		if !ok {
			t.Fatalf("%s: mb-visit %d is none of the sent visits", m.TopicPartition, visit)
		}
		if index < 0 || index >= perVisit {
			t.Fatalf("%s: mb-index %d out of range", m.TopicPartition, index)
		}
		counts[index]++
		bytesPerVisit[visit] += int64(len(m.Value))
		// The value is exactly the generator's alert for (visit, index), in
		// the wire format with the synthetic schema's id.
		want, _, err := gen.Alert(alert.AppendWire(nil, id, nil), visit, int(index))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Value, want) {
			t.Fatalf("%s: value of visit %d index %d differs from the generator's alert", m.TopicPartition, visit, index)
		}
	}
	for visit, counts := range seen {
		for i, n := range counts {
			if n != 1 {
				t.Errorf("visit %d alert %d arrived %d times, want exactly once", visit, i, n)
			}
		}
	}
	if len(perPartition) < 2 {
		t.Errorf("alerts went to partitions %v: want them spread", perPartition)
	}

	// The schema is registered, as version 1 of alerts-value under its id,
	// in the registry's compacted topic.
	schemas := readTopic(t, ctx, addr, stream.SchemasTopic)
	if len(schemas) != 1 {
		t.Fatalf("schemas topic holds %d messages, want 1", len(schemas))
	}
	rec, err := registry.DecodeRecord(schemas[0].Key, schemas[0].Value)
	if err != nil || rec.Schema == nil {
		t.Fatalf("schemas topic record is not a registered schema: %+v, %v", rec, err)
	}
	if v := rec.Schema; v.Subject != "alerts-value" || v.Version != 1 || v.ID != int(id) {
		t.Errorf("registered %s version %d id %d, want alerts-value version 1 id %d", v.Subject, v.Version, v.ID, id)
	}
	parsed, err := alert.ParseSchema(rec.Schema.Schema)
	if err != nil {
		t.Fatalf("published schema does not parse: %v", err)
	}
	if got := alert.SchemaID(parsed); got != id {
		t.Errorf("published schema has id %d, want %d", got, id)
	}
	if info := c.TopicInfo(stream.SchemasTopic); info == nil || info.Configs["cleanup.policy"] == nil || *info.Configs["cleanup.policy"] != "compact" {
		t.Errorf("schemas topic is not compacted")
	}

	// One produce timing event per visit, agreeing with what was sent.
	evs, err := ReadTiming(ctx, addr, nil, stream.TimingTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != visits {
		t.Fatalf("%d timing events, want %d", len(evs), visits)
	}
	for i, e := range evs {
		v := sent[i]
		if e.Kind != timing.KindProduce || e.Run != run || e.Visit != v.Visit || e.Alerts != perVisit || e.Name != "producer" {
			t.Errorf("timing event %d = %+v, want produce of visit %d with %d alerts", i, e, v.Visit, perVisit)
		}
		if e.Bytes != v.Bytes || e.Bytes != bytesPerVisit[v.Visit] {
			t.Errorf("visit %d: event says %d bytes, OnVisit %d, the topic holds %d", v.Visit, e.Bytes, v.Bytes, bytesPerVisit[v.Visit])
		}
		if !e.Start.Equal(v.Start) || !e.End.Equal(v.End) || !e.End.After(e.Start) {
			t.Errorf("visit %d: event start/end %s/%s, OnVisit %s/%s", v.Visit, e.Start, e.End, v.Start, v.End)
		}
		if err := e.Validate(); err != nil {
			t.Error(err)
		}
	}
	if m := missingEvents(ForRun(evs, run), 0, visits); m != "" {
		t.Errorf("missingEvents with no filters = %q", m)
	}
}

// TestFilterDeadLettersGarbage feeds a filter undecodable messages between
// valid alerts: each goes to the dead-letter topic with an mb-error header,
// and the valid alerts around them are filtered as usual.
func TestFilterDeadLettersGarbage(t *testing.T) {
	_, addr := fakeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kclient.EnsureTopics(ctx, addr, nil,
		kclient.Topic{Name: stream.AlertsTopic, Partitions: 1},
		kclient.Topic{Name: stream.SchemasTopic, Partitions: 1, Compacted: true},
		kclient.Topic{Name: stream.TimingTopic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := PublishSchemas(ctx, addr, nil, stream.SchemasTopic, stream.AlertsTopic, NewSynthetic(3, 0).Schemas()); err != nil {
		t.Fatal(err)
	}

	const (
		run      = "dl-run"
		visit    = int64(4242)
		perVisit = 300
		seed     = 3
	)
	gen := alert.NewGenerator(seed, 0)
	id := alert.SchemaID(alert.SyntheticSchema())
	valid := func(i int) ([]byte, alert.Truth) {
		b, tr, err := gen.Alert(alert.AppendWire(nil, id, nil), visit, i)
		if err != nil {
			t.Fatal(err)
		}
		return b, tr
	}
	trunc, _ := valid(0)
	garbage := map[int][]byte{ // stream position -> bad message
		0:   []byte("this is not an alert"),                        // not the wire format
		100: alert.AppendWire(nil, 0xdeadbeef, []byte{1, 2, 3, 4}), // an unknown schema id
		201: trunc[:12],                                            // a truncated alert
		302: {},                                                    // empty
	}
	total := perVisit + len(garbage)
	var msgs []*kafka.Message
	var want []alert.Truth // the valid alerts the filter should select, in order
	topic := stream.AlertsTopic
	next := 0
	for pos := range total {
		b, bad := garbage[pos]
		if !bad {
			var tr alert.Truth
			b, tr = valid(next)
			next++
			if tr.Snr > 5 && tr.PsfFlux > 0 {
				want = append(want, tr)
			}
		}
		msgs = append(msgs, &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0},
			Key:            []byte(strconv.Itoa(pos)),
			Value:          b,
			Headers: []kafka.Header{{Key: stream.HeaderRun, Value: []byte(run)}, intHeader(stream.HeaderVisit, visit),
				intHeader(stream.HeaderIndex, int64(pos)), intHeader(stream.HeaderCount, int64(total))},
		})
	}
	if len(want) < 10 || want[len(want)-1].Index < 200 {
		t.Fatalf("test setup: %d alerts to select, the last at index %d: want many, some after the last bad message", len(want), want[len(want)-1].Index)
	}
	produceAll(t, addr, msgs)

	spec := filter.Spec{Name: "DeadLetterTest", Expr: "alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 0.0", MaxPerVisit: -1}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- RunFilters(runCtx, FilterConfig{Bootstrap: addr, Specs: []filter.Spec{spec}, SchemasTopic: stream.SchemasTopic,
			FromBeginning: true, TimingTopic: stream.TimingTopic, Log: quietLog()})
	}()

	// Wait for the filter's timing event for the visit, then for its output.
	var fev timing.Event
	for fev.Kind == "" {
		select {
		case err := <-done:
			t.Fatalf("filter stopped early: %v", err)
		case <-ctx.Done():
			t.Fatal("no filter timing event within the deadline")
		case <-time.After(100 * time.Millisecond):
		}
		evs, err := ReadTiming(ctx, addr, nil, stream.TimingTopic)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ForRun(evs, run) {
			if e.Kind == timing.KindFilter {
				fev = e
			}
		}
	}
	if fev.Visit != visit || fev.Name != spec.Name || fev.Source != spec.Name || fev.Alerts != total ||
		fev.DeadLetters != len(garbage) || fev.Matched != len(want) || fev.Selected != len(want) {
		t.Errorf("filter event %+v: want visit %d, %d alerts, %d dead letters, %d matched and selected",
			fev, visit, total, len(garbage), len(want))
	}

	var out, dead []*kafka.Message
	for deadline := time.Now().Add(10 * time.Second); ; {
		out = readTopic(t, ctx, addr, spec.Name)
		dead = readTopic(t, ctx, addr, spec.Name+"-deadletter")
		if (len(out) >= len(want) && len(dead) >= len(garbage)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("RunFilters returned %v after its context ended, want nil", err)
	}

	if len(dead) != len(garbage) {
		t.Fatalf("dead-letter topic holds %d messages, want %d", len(dead), len(garbage))
	}
	for _, m := range dead {
		pos, _ := strconv.Atoi(string(m.Key))
		bad, ok := garbage[pos]
		if !ok {
			t.Errorf("dead letter keyed %q is a valid alert", m.Key)
			continue
		}
		if !bytes.Equal(m.Value, bad) {
			t.Errorf("dead letter %d: value %q, want the original %q", pos, m.Value, bad)
		}
		if e := headerString(m.Headers, "mb-error"); e == "" {
			t.Errorf("dead letter %d lacks the mb-error header: %v", pos, m.Headers)
		} else {
			t.Logf("dead letter %d: mb-error %q", pos, e)
		}
		if i, _ := headerInt(m.Headers, stream.HeaderIndex); i != int64(pos) || headerString(m.Headers, stream.HeaderRun) != run {
			t.Errorf("dead letter %d lost the original headers: %v", pos, m.Headers)
		}
		if off, ok := headerInt(m.Headers, "mb-source-offset"); !ok || off != int64(pos) {
			t.Errorf("dead letter %d: mb-source-offset %d, want %d (one partition)", pos, off, pos)
		}
	}
	// By stream position: an alert of an unknown schema waits for the next
	// re-read of the schemas topic, so it is dead-lettered after the others.
	byPos := map[string]string{}
	for _, m := range dead {
		byPos[string(m.Key)] = headerString(m.Headers, "mb-error")
	}
	if e := byPos["100"]; !strings.Contains(e, "unknown schema id") || !strings.Contains(e, strconv.FormatUint(0xdeadbeef, 10)) {
		t.Errorf("unknown schema: mb-error %q should name the id", e)
	}
	if e := byPos["0"]; !strings.Contains(e, "magic byte") {
		t.Errorf("not wire format: mb-error %q should say so", e)
	}

	if len(out) != len(want) {
		t.Fatalf("output holds %d alerts, want %d", len(out), len(want))
	}
	for i, m := range out {
		tr := want[i]
		if rank, _ := headerInt(m.Headers, stream.HeaderRank); rank != int64(i+1) {
			t.Errorf("output %d: mb-rank %d, want %d", i, rank, i+1)
		}
		if got := headerString(m.Headers, stream.HeaderID); got != strconv.FormatInt(tr.DiaSourceID, 10) {
			t.Errorf("output %d: mb-id %s, want %d", i, got, tr.DiaSourceID)
		}
		if v, _ := headerInt(m.Headers, stream.HeaderVisit); v != visit || headerString(m.Headers, stream.HeaderFrom) != spec.Name || headerString(m.Headers, stream.HeaderRun) != run {
			t.Errorf("output %d: headers %v", i, m.Headers)
		}
		if b, _ := valid(tr.Index); !bytes.Equal(m.Value, b) {
			t.Errorf("output %d: value is not the original alert %d", i, tr.Index)
		}
	}
}

func produceAll(t *testing.T, addr string, msgs []*kafka.Message) {
	t.Helper()
	p, err := kafka.NewProducer(kclient.ProducerConfig(addr, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	reports := make(chan kafka.Event, len(msgs))
	for _, m := range msgs {
		if err := p.Produce(m, reports); err != nil {
			t.Fatal(err)
		}
	}
	if err := collect(reports, len(msgs)); err != nil {
		t.Fatal(err)
	}
}

// TestRunFiltersRejectsBadSpecsBeforeDialling: RunFilters compiles every
// spec first and reports all the faulty ones without touching Kafka.
func TestRunFiltersRejectsBadSpecsBeforeDialling(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dials atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = RunFilters(ctx, FilterConfig{Bootstrap: ln.Addr().String(), Name: "shared", Log: quietLog(), Specs: []filter.Spec{
		{Name: "Broken", Expr: "alert.diaSource.snr >"},
		{Name: "Fine", Expr: filter.DefaultExpr},
		{Name: "Undeclared", Expr: "alert.diaSource.snr > limit"},
		{Name: "Fine", Expr: filter.DefaultExpr},
	}})
	if err == nil {
		t.Fatal("RunFilters accepted faulty specs")
	}
	for _, s := range []string{"Broken", "Undeclared", "undeclared reference to 'limit'", `"Fine": duplicate name`} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q:\n%v", s, err)
		}
	}
	var ce *filter.CompileError
	if !errors.As(err, &ce) {
		t.Errorf("errors.As finds no *filter.CompileError in %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := dials.Load(); n != 0 {
		t.Fatalf("RunFilters dialled the broker %d times before rejecting its specs", n)
	}
}
