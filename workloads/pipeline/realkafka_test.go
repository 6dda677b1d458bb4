package pipeline_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// plainAlert is the test's own view of the synthetic alert, decoded by hamba
// into a struct: independent of the package's decoder and of CEL.
type plainAlert struct {
	DiaSourceID   int64             `avro:"diaSourceId"`
	DiaSource     plainDiaSource    `avro:"diaSource"`
	PrvDiaSources *[]plainDiaSource `avro:"prvDiaSources"`
}

type plainDiaSource struct {
	Visit   int64   `avro:"visit"`
	Dec     float64 `avro:"dec"`
	PsfFlux float32 `avro:"psfFlux"`
	Snr     float32 `avro:"snr"`
	Band    string  `avro:"band"`
}

// testFilter is a filter of the test with its plain-Go twin.
type testFilter struct {
	spec  filter.Spec
	match func(plainAlert) bool
}

func defaultMatch(a plainAlert) bool {
	return float64(a.DiaSource.Snr) > 5.0 && float64(a.DiaSource.PsfFlux) > 36310.0
}

var (
	isolated = []testFilter{
		{filter.Spec{Name: "Filter001", Expr: filter.DefaultExpr, MaxPerVisit: 20}, defaultMatch},
		{filter.Spec{Name: "Filter002", Expr: `alert.diaSource.psfFlux < -20000.0`, MaxPerVisit: 20},
			func(a plainAlert) bool { return float64(a.DiaSource.PsfFlux) < -20000.0 }},
	}
	shared = []testFilter{
		{filter.Spec{Name: "Filter003", Expr: filter.DefaultExpr, MaxPerVisit: 5}, defaultMatch},
		{filter.Spec{Name: "Filter004", Expr: `alert.prvDiaSources != null && size(alert.prvDiaSources) >= 10 && alert.diaSource.snr > 20.0`, MaxPerVisit: 20},
			func(a plainAlert) bool {
				return a.PrvDiaSources != nil && len(*a.PrvDiaSources) >= 10 && float64(a.DiaSource.Snr) > 20.0
			}},
		{filter.Spec{Name: "Filter005", Expr: `alert.diaSource.snr > 5.0`, MaxPerVisit: 400},
			func(a plainAlert) bool { return float64(a.DiaSource.Snr) > 5.0 }},
	}
)

// TestPipelineOnRealKafka runs producer, hub, MirrorMaker 2, mirror, an
// isolated and a shared filter process and their consumers on real Kafka,
// and checks that each consumer got exactly what its filter selects.
func TestPipelineOnRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	runPipeline(ctx, t, newPlainBed(ctx, t))
}

// pipelineBed is the hub, the mirror and MirrorMaker 2 between them, and
// the Kafka settings each component of the pipeline connects with.
type pipelineBed struct {
	hub, mirror *kafkabed.Broker
	// settings returns the librdkafka settings of component (a principal
	// on a secured bed; nil on a plain one).
	settings func(component string) map[string]string
}

func newPlainBed(ctx context.Context, t *testing.T) pipelineBed {
	hub := kafkabed.StartBrokerT(t)
	mirror := kafkabed.StartBrokerT(t)
	for _, tp := range pipelineTopics {
		if err := kclient.EnsureTopics(ctx, hub.Bootstrap(), nil, tp); err != nil {
			t.Fatal(err)
		}
	}
	mm := kafkabed.StartMirrorMakerT(t, hub, mirror, kafkabed.WithMirrorTopics("alerts|minibroker-schemas"))
	if err := mm.WaitTopic(ctx, stream.AlertsTopic); err != nil {
		t.Fatal(err)
	}
	return pipelineBed{hub: hub, mirror: mirror, settings: func(string) map[string]string { return nil }}
}

var pipelineTopics = []kclient.Topic{
	{Name: stream.AlertsTopic, Partitions: 1}, // one partition: a total order to check the caps against
	{Name: stream.SchemasTopic, Partitions: 1, Compacted: true},
	{Name: stream.TimingTopic, Partitions: 1},
}

// The components of runPipeline, by the name bed.settings knows them.
const (
	compProducer = "producer"
	compRegistry = "registry"
	compTest     = "test" // the test's own reads and its bad alerts
)

func compFilter(name string) string   { return "filter." + name }
func compConsumer(name string) string { return "consumer." + name }

func runPipeline(ctx context.Context, t *testing.T, bed pipelineBed) {
	hub, mirror := bed.hub, bed.mirror
	run := fmt.Sprintf("it-%d", time.Now().UnixNano())
	injectBadAlerts(t, ctx, hub.Bootstrap(), bed.settings(compTest), run)

	// Filters and consumers on the mirror, timing on the hub.
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	ready := make(chan string, 16)
	start := func(name string, fn func(ready func()) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(func() { ready <- name }); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	filterCfg := func(name string, fs []testFilter) pipeline.FilterConfig {
		cfg := pipeline.FilterConfig{Bootstrap: mirror.Bootstrap(), Name: name, SchemasTopic: stream.SchemasTopic,
			FromBeginning: true, TimingBootstrap: hub.Bootstrap(), TimingTopic: stream.TimingTopic, Kafka: bed.settings(compFilter(name))}
		for _, f := range fs {
			s := f.spec
			s.Output = s.Name
			cfg.Specs = append(cfg.Specs, s)
		}
		return cfg
	}
	for _, f := range isolated {
		cfg := filterCfg(f.spec.Name, []testFilter{f})
		start(f.spec.Name, func(r func()) error { cfg.Ready = r; return pipeline.RunFilters(runCtx, cfg) })
	}
	sharedCfg := filterCfg("shared", shared)
	start("shared", func(r func()) error { sharedCfg.Ready = r; return pipeline.RunFilters(runCtx, sharedCfg) })

	var mu sync.Mutex
	received := map[string][]pipeline.Received{} // topic -> alerts in arrival order
	all := append(append([]testFilter(nil), isolated...), shared...)
	for _, f := range all {
		topic := f.spec.Name
		cfg := pipeline.ConsumeConfig{Bootstrap: mirror.Bootstrap(), Topic: topic, FromBeginning: true,
			TimingBootstrap: hub.Bootstrap(), TimingTopic: stream.TimingTopic, Kafka: bed.settings(compConsumer(topic)),
			OnAlert: func(r pipeline.Received) error {
				mu.Lock()
				received[topic] = append(received[topic], r)
				mu.Unlock()
				return nil
			}}
		start("consumer-"+topic, func(r func()) error { cfg.Ready = r; return pipeline.Consume(runCtx, cfg) })
	}
	for range len(isolated) + 1 + len(all) {
		select {
		case <-ready:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("filters and consumers not ready in time")
		}
	}

	// The producer registers its schemas through a registry on the hub, as
	// in the swarm, where only the registry writes the schemas topic.
	store, err := service.Open(ctx, hub.Bootstrap(), bed.settings(compRegistry), stream.SchemasTopic, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	registrySrv := httptest.NewServer(service.NewServer(store, nil, quiet()))
	defer registrySrv.Close()
	reg, err := registry.NewClient(map[string]string{registry.SettingURL: registrySrv.URL})
	if err != nil {
		t.Fatal(err)
	}

	const visits, perVisit = 3, 2000
	var sent []pipeline.VisitResult
	err = pipeline.Produce(ctx, pipeline.ProduceConfig{
		Bootstrap: hub.Bootstrap(), SchemasTopic: stream.SchemasTopic, Registry: reg, Source: pipeline.NewSynthetic(7, 0),
		AlertsPerVisit: perVisit, Interval: 2 * time.Second, Visits: visits, Parallel: 2, Run: run,
		TimingTopic: stream.TimingTopic, OnVisit: func(v pipeline.VisitResult) { sent = append(sent, v) },
		Kafka: bed.settings(compProducer),
	})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := pipeline.WaitComplete(ctx, hub.Bootstrap(), bed.settings(compTest), stream.TimingTopic, run, len(all), visits, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	stop()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// The independent evaluation, over what the hub holds, in offset order.
	produced := readHubAlerts(t, ctx, hub.Bootstrap(), bed.settings(compTest))
	if len(produced) != visits*perVisit {
		t.Fatalf("hub holds %d valid alerts, want %d", len(produced), visits*perVisit)
	}
	for _, f := range all {
		want := expectedSelection(produced, f)
		got := map[int64][]string{}
		for i, r := range received[f.spec.Name] {
			got[r.Visit] = append(got[r.Visit], r.ID)
			if r.Run != run {
				t.Errorf("%s: alert %d has run %q, want %q", f.spec.Name, i, r.Run, run)
			}
		}
		for _, v := range sent {
			w, g := want[v.Visit], got[v.Visit]
			if len(w) > f.spec.MaxPerVisit {
				t.Fatalf("test bug: expected selection over the cap")
			}
			if !slices.Equal(sorted(w), sorted(g)) {
				t.Errorf("%s visit %d: consumer got %d alerts %v, filter selects %d %v", f.spec.Name, v.Visit, len(g), g, len(w), w)
			}
			t.Logf("%s visit %d: %d selected (cap %d), all received", f.spec.Name, v.Visit, len(w), f.spec.MaxPerVisit)
		}
		checkRanks(t, f.spec.Name, received[f.spec.Name])
	}
	if capped := len(expectedSelection(produced, shared[0])[sent[0].Visit]); capped != shared[0].spec.MaxPerVisit {
		t.Errorf("the cap of %s did not bind (%d selected): the test needs a visit with more matches", shared[0].spec.Name, capped)
	}

	checkDeadLetters(t, ctx, mirror.Bootstrap(), bed.settings(compTest), []string{"Filter001-deadletter", "Filter002-deadletter", "shared-deadletter"})
	checkReport(t, evs, sent, all, produced, received, run)
}

// injectBadAlerts writes two alerts no filter can decode into a visit of
// their own: garbage, and a well-formed header with an unknown schema id.
func injectBadAlerts(t *testing.T, ctx context.Context, bootstrap string, conn map[string]string, run string) {
	t.Helper()
	p, err := kafka.NewProducer(kclient.ProducerConfig(bootstrap, conn))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	topic := stream.AlertsTopic
	reports := make(chan kafka.Event, 2)
	for i, v := range [][]byte{[]byte("this is not an alert"), alert.AppendWire(nil, 12345, []byte{2, 4, 6})} {
		err := p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: v,
			Headers: []kafka.Header{{Key: stream.HeaderRun, Value: []byte(run)}, {Key: stream.HeaderVisit, Value: []byte("1")},
				{Key: stream.HeaderIndex, Value: []byte(strconv.Itoa(i))}, {Key: stream.HeaderCount, Value: []byte("2")}},
		}, reports)
		if err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		select {
		case ev := <-reports:
			if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
				t.Fatalf("bad alert not delivered: %v", m.TopicPartition.Error)
			}
		case <-ctx.Done():
			t.Fatal("bad alerts not delivered in time")
		}
	}
}

type hubAlert struct {
	plainAlert
	visit int64 // from the header
}

func readHubAlerts(t *testing.T, ctx context.Context, bootstrap string, conn map[string]string) []hubAlert {
	t.Helper()
	var out []hubAlert
	schema := alert.SyntheticSchema()
	id := alert.SchemaID(schema)
	err := kclient.ReadAll(ctx, bootstrap, conn, stream.AlertsTopic, func(m *kafka.Message) error {
		if len(m.Value) < 5 || m.Value[0] != 0 || uint32(m.Value[1])<<24|uint32(m.Value[2])<<16|uint32(m.Value[3])<<8|uint32(m.Value[4]) != id {
			return nil // the injected bad alerts
		}
		var a hubAlert
		if err := avro.Unmarshal(schema, m.Value[5:], &a.plainAlert); err != nil {
			return fmt.Errorf("hub alert at %s: %w", m.TopicPartition, err)
		}
		for _, h := range m.Headers {
			if h.Key == stream.HeaderVisit {
				a.visit, _ = strconv.ParseInt(string(h.Value), 10, 64)
			}
		}
		if a.visit != a.DiaSource.Visit {
			return fmt.Errorf("alert %d: header visit %d, field visit %d", a.DiaSourceID, a.visit, a.DiaSource.Visit)
		}
		out = append(out, a)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// expectedSelection applies the plain-Go twin of a filter and its cap, in
// the hub's offset order.
func expectedSelection(alerts []hubAlert, f testFilter) map[int64][]string {
	out := map[int64][]string{}
	for _, a := range alerts {
		if f.match(a.plainAlert) && len(out[a.visit]) < f.spec.MaxPerVisit {
			out[a.visit] = append(out[a.visit], strconv.FormatInt(a.DiaSourceID, 10))
		}
	}
	return out
}

// checkRanks asserts that each visit's alerts arrived ranked 1, 2, 3, ...
func checkRanks(t *testing.T, name string, rs []pipeline.Received) {
	t.Helper()
	next := map[int64]int{}
	for _, r := range rs {
		next[r.Visit]++
		if r.Rank != next[r.Visit] {
			t.Errorf("%s visit %d: alert %s has rank %d, want %d", name, r.Visit, r.ID, r.Rank, next[r.Visit])
		}
	}
}

func checkDeadLetters(t *testing.T, ctx context.Context, bootstrap string, conn map[string]string, topics []string) {
	t.Helper()
	for _, topic := range topics {
		var got []*kafka.Message
		if err := kclient.ReadAll(ctx, bootstrap, conn, topic, func(m *kafka.Message) error { got = append(got, m); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Errorf("%s holds %d alerts, want the 2 undecodable ones", topic, len(got))
			continue
		}
		if string(got[0].Value) != "this is not an alert" {
			t.Errorf("%s: first dead letter is %q, want the original bytes", topic, got[0].Value)
		}
		for _, m := range got {
			reason := ""
			for _, h := range m.Headers {
				if h.Key == "mb-error" {
					reason = string(h.Value)
				}
			}
			if reason == "" {
				t.Errorf("%s: dead letter without an mb-error reason", topic)
			}
			t.Logf("%s: dead letter reason %q", topic, reason)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// checkReport checks every figure of the report against what the test
// itself sent, selected and received.
func checkReport(t *testing.T, evs []timing.Event, sent []pipeline.VisitResult, all []testFilter,
	produced []hubAlert, received map[string][]pipeline.Received, run string) {
	t.Helper()
	rep := timing.Build(evs)
	tot := rep.Totals
	var bytes int64
	for _, v := range sent {
		bytes += v.Bytes
	}
	wantSelected, wantReceived, wantConsumerVisits := 0, 0, 0
	for _, f := range all {
		for _, ids := range expectedSelection(produced, f) {
			wantSelected += len(ids)
			wantConsumerVisits++
		}
		wantReceived += len(received[f.spec.Name])
	}
	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("report %s = %v, want %v", what, got, want)
		}
	}
	check("totals.visits", tot.Visits, len(sent)+1)
	check("totals.complete", tot.Complete, len(sent))
	check("totals.incomplete", tot.Incomplete, 1)
	check("totals.incomplete_visits", tot.IncompleteVisits, []int64{1})
	check("totals.alerts", tot.Alerts, len(produced))
	check("totals.bytes", tot.Bytes, bytes)
	check("totals.selected", tot.Selected, wantSelected)
	check("totals.received", tot.Received, wantReceived)
	check("totals.filters", tot.Filters, len(all))
	check("totals.consumers", tot.Consumers, len(all))
	check("totals.dead_letters.filter", tot.DeadLetters.Filter, 2*len(all))
	check("totals.dead_letters.total", tot.DeadLetters.Total, 2*len(all))
	check("totals.negative_lags", tot.NegativeLags, 0)
	check("totals.invalid_events", tot.InvalidEvents, 0)
	check("totals.runs", tot.Runs, []string{run})
	check("producer.n", rep.Producer.N, len(sent))
	check("filter_lag.n", rep.FilterLag.N, len(sent)*len(all))
	check("consumer_latency.n", rep.ConsumerLatency.N, wantConsumerVisits)
	check("visits", len(rep.Visits), len(sent)+1)
	if rep.Producer.Max <= 0 || rep.FilterLag.Max <= 0 || rep.ConsumerLatency.Max <= 0 {
		t.Errorf("report maxima not positive: %+v %+v %+v", rep.Producer, rep.FilterLag, rep.ConsumerLatency)
	}

	bad := rep.Visits[0]
	check("visit 1 complete", bad.Complete, false)
	check("visit 1 filters finished", bad.FiltersFinished, len(all))
	check("visit 1 dead letters", bad.DeadLetters, 2*len(all))

	var maxSend time.Duration
	for i, v := range sent {
		v.Start, v.End = v.Start.Round(0), v.End.Round(0) // wall clock, as in the events
		rv := rep.Visits[i+1]
		maxSend = max(maxSend, v.Duration())
		at := fmt.Sprintf("visit %d ", v.Visit)
		check(at+"id", rv.Visit, v.Visit)
		check(at+"complete", rv.Complete, true)
		check(at+"run", rv.Run, run)
		check(at+"producers", rv.Producers, 1)
		check(at+"start", rv.Start.UnixNano(), v.Start.UnixNano())
		check(at+"end", rv.End.UnixNano(), v.End.UnixNano())
		check(at+"send", rv.Send, v.End.Sub(v.Start))
		check(at+"alerts", rv.Alerts, v.Alerts)
		check(at+"bytes", rv.Bytes, v.Bytes)
		check(at+"MB/s", fmt.Sprintf("%.6f", rv.MBps), fmt.Sprintf("%.6f", float64(v.Bytes)/1e6/v.Duration().Seconds()))
		check(at+"filters finished", rv.FiltersFinished, len(all))
		check(at+"dead letters", rv.DeadLetters, 0)
		check(at+"lag n", rv.Lag.N, len(all))
		selected, consumers := 0, 0
		for _, f := range all {
			name := f.spec.Name
			ids := expectedSelection(produced, f)[v.Visit]
			selected += len(ids)
			matched := 0
			for _, a := range produced {
				if a.visit == v.Visit && f.match(a.plainAlert) {
					matched++
				}
			}
			fv, ok := findFilter(rv.Filters, name)
			if !ok {
				t.Errorf("%sfilter %s missing", at, name)
				continue
			}
			check(at+name+" alerts", fv.Alerts, v.Alerts)
			check(at+name+" matched", fv.Matched, matched)
			check(at+name+" selected", fv.Selected, len(ids))
			check(at+name+" lag", fv.Lag, fv.End.Sub(v.End))
			if fv.Lag <= 0 {
				t.Errorf("%s%s finished %s before the producer", at, name, -fv.Lag)
			}
			if len(ids) == 0 {
				continue
			}
			consumers++
			cv, ok := findConsumer(rv.Consumers, name)
			if !ok {
				t.Errorf("%sconsumer of %s missing", at, name)
				continue
			}
			last := lastOf(received[name], v.Visit)
			check(at+name+" received", cv.Received, len(ids))
			check(at+name+" rank", cv.Rank, len(ids))
			check(at+name+" arrived", cv.Arrived.UnixNano(), last.Arrived.UnixNano())
			check(at+name+" latency", cv.Latency, last.Arrived.Round(0).Sub(v.Start))
		}
		check(at+"selected", rv.Selected, selected)
		check(at+"consumers", rv.ConsumerCount, consumers)
		check(at+"latency n", rv.Latency.N, consumers)
	}
	check("producer.max", rep.Producer.Max, maxSend)
	for _, fs := range rep.Filters {
		check(fs.Name+" visits", fs.Visits, len(sent))
		check(fs.Name+" alerts", fs.Alerts, len(produced))
	}
	t.Logf("report: producer max %s, filter lag mean %s max %s, consumer latency mean %s max %s",
		rep.Producer.Max, rep.FilterLag.Mean, rep.FilterLag.Max, rep.ConsumerLatency.Mean, rep.ConsumerLatency.Max)
}

func findFilter(fs []timing.FilterVisit, name string) (timing.FilterVisit, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f, true
		}
	}
	return timing.FilterVisit{}, false
}

func findConsumer(cs []timing.ConsumerVisit, source string) (timing.ConsumerVisit, bool) {
	for _, c := range cs {
		if c.Source == source {
			return c, true
		}
	}
	return timing.ConsumerVisit{}, false
}

// lastOf returns the received alert of highest rank of a visit.
func lastOf(rs []pipeline.Received, visit int64) pipeline.Received {
	var last pipeline.Received
	for _, r := range rs {
		if r.Visit == visit && r.Rank > last.Rank {
			last = r
		}
	}
	return last
}
