package pipeline

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// A filter is not deferred while parked alerts are being filtered (found
// by review): deferred at the first of them, it would be recorded as up
// to date past the later ones, which would then be queued for it below
// alerts it had evaluated inline, and a restart would hand it those again.
// Deferred at the next alert instead, it owes nothing below mainNext.
func TestLaneNoDeferWhileResolvingParked(t *testing.T) {
	specs := []filter.Spec{{Name: "cheap", Expr: "false"}, {Name: "slow", Expr: "false", TimeBudget: time.Minute}}
	set, err := filter.NewSet(specs)
	if err != nil {
		t.Fatal(err)
	}
	reg := alert.NewRegistry()
	known := reg.Add(alert.SyntheticSchema())
	const unknown = 4242
	f := &filterRun{cfg: FilterConfig{Specs: specs, VisitPath: alert.DefaultVisitPath, IDPath: alert.DefaultIDPath, Name: "x"},
		set: set, log: slog.New(slog.DiscardHandler), dec: alert.NewDecoder(reg),
		book: &schemaBook{reg: reg, topic: "schemas", last: time.Now()}, inFlight: map[pendingID]bool{}}
	if f.visits, err = restoreBook(nil, set); err != nil {
		t.Fatal(err)
	}
	topic := stream.AlertsTopic
	gen := alert.NewGenerator(1, 0)
	const visit, count = 5, 10
	ctx := context.Background()
	for o := int64(0); o < count; o++ {
		payload, _, err := gen.Alert(nil, visit, int(o))
		if err != nil {
			t.Fatal(err)
		}
		id := known
		if o == 3 || o == 7 {
			id = unknown // parked until the schemas are read again
		}
		f.handle(ctx, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0, Offset: kafka.Offset(o)},
			Value: alert.AppendWire(nil, id, payload),
			Headers: []kafka.Header{{Key: stream.HeaderRun, Value: []byte("r")}, intHeader(stream.HeaderVisit, visit),
				intHeader(stream.HeaderIndex, o), intHeader(stream.HeaderCount, count)}})
	}
	if len(f.parked) != 2 {
		t.Fatalf("%d alerts parked, want 2", len(f.parked))
	}
	// "slow" has turned slow in this visit, as its evaluations would make it.
	v := set.Budget(1).Visits[0].Visit
	set.RestoreBudget(1, filter.BudgetState{Visits: []filter.VisitUse{{Visit: v, Spent: 20 * time.Millisecond, Evaluated: 3, Longest: time.Millisecond}}})
	if err := reg.AddJSONAs(unknown, alert.SyntheticSchemaJSON()); err != nil {
		t.Fatal(err)
	}
	f.book.topic, f.book.last = "", time.Time{} // the re-read finds the schema registered above
	f.resolveParked(ctx, false)
	if len(f.parked) != 0 {
		t.Fatalf("%d alerts still parked", len(f.parked))
	}
	if set.Deferred(1) {
		t.Fatal("the slow filter was deferred while the parked alerts were filtered")
	}
	f.deferSlow(v) // as the next alert's evaluation does
	if !set.Deferred(1) {
		t.Fatal("the slow filter not deferred once the parked alerts were filtered")
	}
	if b := f.visits.lane.behind(); len(b) != 0 {
		t.Errorf("the slow filter is owed %v right after it was deferred, want nothing: it evaluated every alert inline", b)
	}
}

// A process of one filter, or whose other filters are deferred already,
// defers nothing: no neighbour would gain, and the slow filter's output
// would wait for the quiet after the visit.
func TestLaneKeepsTheLastInlineFilter(t *testing.T) {
	for _, n := range []int{1, 3} {
		var specs []filter.Spec
		for i := range n {
			specs = append(specs, filter.Spec{Name: string(rune('a' + i)), Expr: "true", TimeBudget: time.Minute})
		}
		set, err := filter.NewSet(specs)
		if err != nil {
			t.Fatal(err)
		}
		f := &filterRun{cfg: FilterConfig{Specs: specs}, set: set, log: slog.New(slog.DiscardHandler)}
		if f.visits, err = restoreBook(nil, set); err != nil {
			t.Fatal(err)
		}
		for i := range n { // every filter slow in visit 9
			set.RestoreBudget(i, filter.BudgetState{Visits: []filter.VisitUse{{Visit: 9, Spent: time.Second, Evaluated: 10, Longest: time.Millisecond}}})
		}
		f.deferSlow(9)
		deferred := 0
		for i := range n {
			if set.Deferred(i) {
				deferred++
			}
		}
		if deferred != n-1 {
			t.Errorf("%d slow filters: %d deferred, want %d (one stays inline)", n, deferred, n-1)
		}
	}
}
