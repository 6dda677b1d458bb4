package pipeline

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// TestFilterHeaderlessVisits: alerts without mb-* headers (an upstream
// stream) are grouped into visits by their diaSource.visit field. A visit
// closes when the next one's alerts arrive, the last one after the quiet
// time; each completion event carries the visit's record timestamps, the
// cap holds per visit, and a straggler of a closed visit is filtered under
// the same cap without reopening it.
func TestFilterHeaderlessVisits(t *testing.T) {
	_, addr := fakeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kclient.EnsureTopics(ctx, addr, nil,
		kclient.Topic{Name: stream.AlertsTopic, Partitions: 1},
		kclient.Topic{Name: stream.SchemasTopic, Partitions: 1, Compacted: true},
		kclient.Topic{Name: stream.TimingTopic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := PublishSchemas(ctx, addr, nil, stream.SchemasTopic, stream.AlertsTopic, NewSynthetic(5, 0).Schemas()); err != nil {
		t.Fatal(err)
	}

	const perVisit, capN = 200, 7
	visits := []int64{900, 901, 902}
	gen := alert.NewGenerator(5, 0)
	id := alert.SchemaID(alert.SyntheticSchema())
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	stamp := func(v, i int) time.Time {
		return base.Add(time.Duration(v)*time.Minute + time.Duration(i)*time.Millisecond)
	}
	topic := stream.AlertsTopic
	var msgs []*kafka.Message
	matched := map[int64][]int64{} // visit -> ids of the matching alerts, in order
	add := func(v, i int) {
		b, tr, err := gen.Alert(alert.AppendWire(nil, id, nil), visits[v], i)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Snr > 5 {
			matched[visits[v]] = append(matched[visits[v]], tr.DiaSourceID)
		}
		msgs = append(msgs, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0},
			Key: []byte(strconv.Itoa(i)), Value: b, Timestamp: stamp(v, i), TimestampType: kafka.TimestampCreateTime})
	}
	for v := range visits {
		for i := range perVisit {
			add(v, i)
		}
	}
	// A straggler of the first visit after the second has begun: it matches.
	straggler := -1
	for i := perVisit; straggler < 0; i++ {
		if _, tr, _ := gen.Alert(nil, visits[0], i); tr.Snr > 5 {
			straggler = i
		}
	}
	add(0, straggler)
	msgs = slices.Insert(msgs[:len(msgs)-1], perVisit+10, msgs[len(msgs)-1])
	for _, v := range visits {
		if len(matched[v]) < capN+1 {
			t.Fatalf("test setup: visit %d has %d matching alerts, want more than the cap %d", v, len(matched[v]), capN)
		}
	}
	produceAll(t, addr, msgs)

	spec := filter.Spec{Name: "Upstream", Expr: "alert.diaSource.snr > 5.0", MaxPerVisit: capN}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	started := time.Now()
	go func() {
		done <- RunFilters(runCtx, FilterConfig{Bootstrap: addr, Specs: []filter.Spec{spec}, SchemasTopic: stream.SchemasTopic,
			FromBeginning: true, TimingTopic: stream.TimingTopic, VisitQuiet: time.Second, Log: quietLog()})
	}()

	var events []timing.Event
	for len(events) < len(visits) {
		select {
		case err := <-done:
			t.Fatalf("filter stopped early: %v", err)
		case <-ctx.Done():
			t.Fatalf("%d filter events within the deadline, want %d: %+v", len(events), len(visits), events)
		case <-time.After(200 * time.Millisecond):
		}
		evs, err := ReadTiming(ctx, addr, nil, stream.TimingTopic)
		if err != nil {
			t.Fatal(err)
		}
		events = events[:0]
		for _, e := range evs {
			if e.Kind == timing.KindFilter {
				events = append(events, e)
			}
		}
	}
	closedLast := time.Since(started)
	slices.SortFunc(events, func(a, b timing.Event) int { return int(a.Visit - b.Visit) })
	for n, e := range events {
		v := visits[n]
		wantAlerts := perVisit
		if e.Visit != v || e.Alerts != wantAlerts || e.Matched != len(matched[v])-boolInt(n == 0) || e.Selected != capN {
			t.Errorf("event %d: visit %d, %d alerts, %d matched, %d selected; want visit %d, %d alerts, %d matched, %d selected",
				n, e.Visit, e.Alerts, e.Matched, e.Selected, v, wantAlerts, len(matched[v])-boolInt(n == 0), capN)
		}
		if !e.Start.Equal(stamp(n, 0)) || !e.Sent.Equal(stamp(n, perVisit-1)) {
			t.Errorf("visit %d: record timestamps %v .. %v, want %v .. %v", v, e.Start, e.Sent, stamp(n, 0), stamp(n, perVisit-1))
		}
		if e.End.Before(started) {
			t.Errorf("visit %d: end %v before the filter started", v, e.End)
		}
	}
	if closedLast < time.Second {
		t.Errorf("the last visit closed %v after the start, before its quiet time of 1s", closedLast)
	}

	// Each visit's output: its first capN matching alerts, ranks 1..capN;
	// the straggler was filtered under its visit's full cap, so not written.
	out := readTopic(t, ctx, addr, spec.Name)
	stop()
	if err := <-done; err != nil {
		t.Errorf("RunFilters returned %v after its context ended, want nil", err)
	}
	var want, got []string
	for _, v := range visits {
		for r, id := range matched[v][:capN] {
			want = append(want, strconv.FormatInt(v, 10)+"/"+strconv.Itoa(r+1)+"/"+strconv.FormatInt(id, 10))
		}
	}
	for _, m := range out {
		v, _ := headerInt(m.Headers, stream.HeaderVisit)
		r, _ := headerInt(m.Headers, stream.HeaderRank)
		got = append(got, strconv.FormatInt(v, 10)+"/"+strconv.FormatInt(r, 10)+"/"+headerString(m.Headers, stream.HeaderID))
	}
	if !slices.Equal(got, want) {
		t.Errorf("filtered (visit/rank/id):\n got %v\nwant %v", got, want)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestFilterHeaderlessVisitsAcrossPartitions: with several partitions, a
// visit stays open until every partition has delivered a later visit's
// alert: its alerts that arrive on one partition after the next visit
// began on another still count in it.
func TestFilterHeaderlessVisitsAcrossPartitions(t *testing.T) {
	_, addr := fakeCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := kclient.EnsureTopics(ctx, addr, nil,
		kclient.Topic{Name: stream.AlertsTopic, Partitions: 3},
		kclient.Topic{Name: stream.SchemasTopic, Partitions: 1, Compacted: true},
		kclient.Topic{Name: stream.TimingTopic, Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	if err := PublishSchemas(ctx, addr, nil, stream.SchemasTopic, stream.AlertsTopic, NewSynthetic(5, 0).Schemas()); err != nil {
		t.Fatal(err)
	}
	gen := alert.NewGenerator(5, 0)
	id := alert.SchemaID(alert.SyntheticSchema())
	topic := stream.AlertsTopic
	next := 0
	send := func(visit int64, partitions ...int32) {
		var msgs []*kafka.Message
		for _, p := range partitions {
			for range 20 {
				b, _, err := gen.Alert(alert.AppendWire(nil, id, nil), visit, next)
				if err != nil {
					t.Fatal(err)
				}
				next++
				msgs = append(msgs, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: p}, Value: b})
			}
		}
		produceAll(t, addr, msgs)
		time.Sleep(time.Second) // the filter reads them before the next lot
	}

	ready := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- RunFilters(runCtx, FilterConfig{Bootstrap: addr, Specs: []filter.Spec{{Name: "all", Expr: "true", MaxPerVisit: -1}},
			SchemasTopic: stream.SchemasTopic, FromBeginning: true, TimingTopic: stream.TimingTopic, VisitQuiet: 10 * time.Second,
			Log: quietLog(), Ready: func() { close(ready) }})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("filter stopped early: %v", err)
	}
	send(900, 0, 1, 2)
	send(901, 0)    // visit 901 begins on partition 0 ...
	send(900, 1, 2) // ... while 900 goes on on the others: still 900's
	send(901, 1, 2) // every partition past 900: it closes

	var events []timing.Event
	for len(events) < 2 && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		evs, err := ReadTiming(ctx, addr, nil, stream.TimingTopic)
		if err != nil {
			t.Fatal(err)
		}
		events = events[:0]
		for _, e := range evs {
			if e.Kind == timing.KindFilter {
				events = append(events, e)
			}
		}
	}
	slices.SortFunc(events, func(a, b timing.Event) int { return int(a.Visit - b.Visit) })
	if len(events) != 2 || events[0].Visit != 900 || events[0].Alerts != 100 || events[1].Visit != 901 || events[1].Alerts != 60 {
		t.Errorf("completion events %+v: want visit 900 with its 100 alerts and 901 with 60", events)
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("RunFilters: %v", err)
	}
}
