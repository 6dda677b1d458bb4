package pipeline_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/childproc"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/minibin"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/pyclients"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/upstream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// TestUpstreamIngest feeds the mini-broker from an upstream stream as a
// community broker is fed: a second real Kafka broker with SCRAM over TLS
// and a schema registry of its own holding Rubin's v11 schema at id 1100,
// written by Python's confluent-kafka and AvroSerializer with Rubin-format
// alerts derived from Rubin's sample (no mb-* headers), in three visits.
// `minibroker ingest` (the real binary) relays it into a secured hub as a
// user with exactly access.IngestGrants, and is killed (SIGKILL) in the
// middle of the second visit and started again. Then:
//   - the hub holds every upstream alert exactly once, under id 1100;
//   - our registry holds id 1100, imported from the upstream's;
//   - through MirrorMaker 2 and a mirror, filters group the header-less
//     alerts into visits by diaSource.visit (two closed by the next visit,
//     the last by the quiet time), with their completion events timed by
//     the record timestamps and a report that counts them;
//   - an outside Python AvroDeserializer pointed at our registry decodes
//     every filtered alert, with id 1100, and what it decodes equals an
//     independent selection over what the upstream wrote.
func TestUpstreamIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java, the Kafka jars and the Python clients (make kafka pyclients); run without -short")
	}
	python, err := pyclients.Python("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := minibin.Build(t, dir)
	began := time.Now()
	up := upstream.ForTest(t, "")

	// Our side: a secured hub, a mirror, MirrorMaker 2, our registry.
	ca, err := kafkabed.NewCA()
	kafkabed.Must(t, err)
	hub := kafkabed.StartBrokerT(t, kafkabed.WithSecurity(ca, true, ""))
	mirror := kafkabed.StartBrokerT(t)
	pw := map[string]string{"ingest": password(t), "mm2": password(t), "registry": password(t), "reader": password(t)}
	hubPlan := access.Plan{Owner: "swarm.", Clusters: []access.ClusterPlan{{Bootstrap: hub.Bootstrap(), Users: []access.User{
		{Name: "swarm.ingest", Password: pw["ingest"], Grants: access.IngestGrants(stream.AlertsTopic, stream.IngestStateTopic, stream.TimingTopic, stream.IngestTransactionalID)},
		{Name: "swarm.mm2", Password: pw["mm2"], Grants: access.MirrorMakerSourceGrants()},
		{Name: "swarm.registry", Password: pw["registry"], Grants: access.RegistryGrants(stream.SchemasTopic)},
	}}}}
	if _, err := kclient.ApplyAccess(ctx, hubPlan, hub.AdminSettings()); err != nil {
		t.Fatal(err)
	}
	store, err := service.Open(ctx, hub.Bootstrap(), hub.ClientSettings("swarm.registry", pw["registry"]), stream.SchemasTopic, quiet())
	kafkabed.Must(t, err)
	t.Cleanup(store.Close)
	url, caFile := upstream.Serve(t, store, ca, "127.0.0.1", []registry.User{
		{Name: "ingest", Password: pw["ingest"], Role: registry.RoleWrite},
		{Name: "reader", Password: pw["reader"], Role: registry.RoleRead},
	})

	files := map[string]kafkaconf.Properties{
		"upstream.properties":          up.ClientSettings(),
		"upstream-registry.properties": up.RegistrySettings(),
		"registry.properties":          {registry.SettingURL: url, registry.SettingUserInfo: "ingest:" + pw["ingest"], registry.SettingCA: caFile},
		"reader-registry.properties":   {registry.SettingURL: url, registry.SettingUserInfo: "reader:" + pw["reader"], registry.SettingCA: caFile},
		"hub.properties":               hub.ClientSettings("swarm.ingest", pw["ingest"]),
	}
	for name, p := range files {
		kafkabed.Must(t, os.WriteFile(filepath.Join(dir, name), []byte(p.Render("")), 0o600))
	}

	// The relay, as the swarm runs it.
	ingestLog := filepath.Join(dir, "ingest.log")
	startIngest := func() *exec.Cmd {
		logf, err := os.OpenFile(ingestLog, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		kafkabed.Must(t, err)
		defer logf.Close()
		cmd := exec.Command(bin, "ingest", "--bootstrap", hub.Bootstrap(), "--config", filepath.Join(dir, "hub.properties"),
			"--upstream", up.Broker.Bootstrap(), "--upstream-topic", upstream.Topic,
			"--upstream-config", filepath.Join(dir, "upstream.properties"),
			"--upstream-registry", filepath.Join(dir, "upstream-registry.properties"),
			"--registry", filepath.Join(dir, "registry.properties"), "--from-beginning")
		cmd.Stdout, cmd.Stderr = logf, logf
		kafkabed.Must(t, childproc.Start(cmd))
		return cmd
	}
	relay := startIngest()
	t.Cleanup(func() {
		_ = relay.Process.Kill()
		_ = relay.Wait()
		if t.Failed() {
			t.Logf("ingest log:\n%s", childproc.TailFile(ingestLog, 40))
		}
	})
	waitFor(t, ctx, "the relay to create the hub's alert topic", func() bool {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := kclient.WaitTopic(c, hub.Bootstrap(), hub.AdminSettings(), stream.AlertsTopic)
		return err == nil
	})
	mm := kafkabed.StartMirrorMakerT(t, hub, mirror, kafkabed.WithMirrorTopics("alerts|minibroker-schemas"),
		kafkabed.WithMirrorAuth(hub.ClientAuth("swarm.mm2", pw["mm2"]), nil))
	kafkabed.Must(t, mm.WaitTopic(ctx, stream.AlertsTopic))
	// The filters send their timing events to the mirror here (the hub's
	// timing topic, which the relay created, is for the swarm's users).
	kafkabed.Must(t, kclient.EnsureTopics(ctx, mirror.Bootstrap(), nil, kclient.Topic{Name: stream.TimingTopic, Partitions: 1}))

	// The filters on the mirror: all bright alerts, and the 5 first
	// moderately bright ones of each visit.
	bright := filter.Spec{Name: "Bright", Expr: "alert.diaSource.snr > 60.0", MaxPerVisit: -1}
	top5 := filter.Spec{Name: "Top5", Expr: "alert.diaSource.snr > 30.0", MaxPerVisit: 5}
	// Longer than the relay's restart below, so that it does not split the
	// second visit.
	const quietTime = 10 * time.Second
	filterLog, err := os.Create(filepath.Join(dir, "filters.log"))
	kafkabed.Must(t, err)
	t.Cleanup(func() {
		filterLog.Close()
		if t.Failed() {
			t.Logf("filters' log:\n%s", childproc.TailFile(filterLog.Name(), 40))
		}
	})
	stopFilters := runReady(ctx, t, func(ctx context.Context, ready func()) error {
		return pipeline.RunFilters(ctx, pipeline.FilterConfig{Bootstrap: mirror.Bootstrap(), Specs: []filter.Spec{bright, top5},
			Name: "upstream", SchemasTopic: stream.SchemasTopic, FromBeginning: true, VisitQuiet: quietTime, TimingBootstrap: mirror.Bootstrap(),
			TimingTopic: stream.TimingTopic, Log: slog.New(slog.NewTextHandler(filterLog, nil)), Ready: ready})
	})
	defer func() {
		for _, err := range stopFilters() {
			t.Errorf("filters: %v", err)
		}
	}()

	// The upstream writes three visits; the relay is killed in the middle
	// of the second and started again.
	visits := []upstream.Visit{{ID: 1001, Count: 300}, {ID: 1002, Count: 1500}, {ID: 1003, Count: 300}}
	var wrote []upstream.Alert
	wrote = append(wrote, up.Write(ctx, t, visits[0])...)
	waitFor(t, ctx, "the first visit on the hub", func() bool { return hubEnd(t, hub) >= int64(visits[0].Count) })
	second := make(chan []upstream.Alert, 1)
	go func() { second <- up.Write(ctx, t, visits[1]) }()
	killAt := int64(visits[0].Count + visits[1].Count/3)
	waitFor(t, ctx, "the relay in the middle of the second visit", func() bool { return hubEnd(t, hub) >= killAt })
	kafkabed.Must(t, relay.Process.Signal(syscall.SIGKILL))
	_ = relay.Wait()
	killedAt := hubEnd(t, hub)
	relay = startIngest()
	wrote = append(wrote, <-second...)
	t.Logf("relay killed with %d of %d alerts on the hub (uncommitted included), started again", killedAt, visits[0].Count+visits[1].Count)
	time.Sleep(quietTime + time.Second) // the second visit is over
	wrote = append(wrote, up.Write(ctx, t, visits[2])...)

	// Every upstream alert is on the hub once, framed with id 1100, as the
	// upstream wrote it: no header added.
	want := map[int64]upstream.Alert{}
	for _, a := range wrote {
		want[a.DiaSourceID] = a
	}
	var onHub map[int64]int
	waitFor(t, ctx, "every upstream alert on the hub", func() bool {
		onHub = hubAlerts(ctx, t, hub)
		return len(onHub) >= len(want)
	})
	for id, n := range onHub {
		if _, ok := want[id]; !ok || n != 1 {
			t.Errorf("hub: alert %d copied %d times (upstream wrote it: %v)", id, n, ok)
		}
	}
	if len(onHub) != len(want) {
		t.Errorf("hub holds %d distinct alerts, the upstream wrote %d", len(onHub), len(want))
	}
	if got, err := registryClient(t, files["reader-registry.properties"]).Schema(ctx, upstream.RubinV11ID); err != nil || !sameSchema(got, up.V11) {
		t.Errorf("our registry's schema %d: %v (%.80s...)", upstream.RubinV11ID, err, got)
	}

	// The filters close each visit once and time it by its alerts' record
	// timestamps.
	var events []timing.Event
	waitFor(t, ctx, "the filters' completion events of the three visits", func() bool {
		evs, err := pipeline.ReadTiming(ctx, mirror.Bootstrap(), nil, stream.TimingTopic)
		kafkabed.Must(t, err)
		events = evs
		return len(evs) >= 2*len(visits)
	})
	time.Sleep(quietTime) // nothing more may come
	events, err = pipeline.ReadTiming(ctx, mirror.Bootstrap(), nil, stream.TimingTopic)
	kafkabed.Must(t, err)
	if len(events) != 2*len(visits) {
		t.Errorf("%d completion events, want one per visit and filter (%d): %+v", len(events), 2*len(visits), events)
	}
	expect := func(spec filter.Spec, visit int64) []string { return upstream.Select(wrote, visit, threshold(spec)) }
	for _, e := range events {
		v := slices.IndexFunc(visits, func(u upstream.Visit) bool { return u.ID == e.Visit })
		if v < 0 {
			t.Errorf("event of unknown visit %d", e.Visit)
			continue
		}
		spec := bright
		if e.Name == top5.Name {
			spec = top5
		}
		matched := len(expect(spec, e.Visit))
		selected := matched
		if spec.MaxPerVisit > 0 {
			selected = min(matched, spec.MaxPerVisit)
		}
		// Record timestamps: the upstream's producer wrote the visit
		// during the test, before the filter finished it.
		stamped := e.Start.After(began) && !e.Sent.Before(e.Start) && e.Sent.Before(e.End.Add(time.Second))
		if e.Alerts != visits[v].Count || e.Matched != matched || e.Selected != selected || !stamped {
			t.Errorf("visit %d, %s: %d alerts, %d matched, %d selected, records %v..%v; want %d, %d, %d and record timestamps",
				e.Visit, e.Name, e.Alerts, e.Matched, e.Selected, e.Start, e.Sent, visits[v].Count, matched, selected)
		}
	}
	report := timing.Build(events)
	if report.Totals.Upstream != len(visits) || report.Totals.Complete != len(visits) {
		t.Errorf("report: %d visits timed from upstream, %d complete; want %d", report.Totals.Upstream, report.Totals.Complete, len(visits))
	}
	t.Logf("report: filter lag p50 %v (from the upstream's last record of a visit to its filter's last alert)", report.FilterLag.P50)

	// An outside reader decodes the filtered streams through our registry.
	for _, spec := range []filter.Spec{bright, top5} {
		lines := readOutside(ctx, t, python, mirror.Bootstrap(), spec.Name, filepath.Join(dir, "reader-registry.properties"))
		got := map[int64][]string{}
		for _, l := range lines {
			if l.SchemaID != upstream.RubinV11ID || l.Decoded != l.ID {
				t.Errorf("%s: outside reader got id %s decoded as %s with schema id %d; want the same id and %d", spec.Name, l.ID, l.Decoded, l.SchemaID, upstream.RubinV11ID)
			}
			got[l.Visit] = append(got[l.Visit], l.Decoded)
		}
		for _, v := range visits {
			wantIDs := expect(spec, v.ID)
			if spec.MaxPerVisit < 0 {
				if !slices.Equal(sorted(got[v.ID]), sorted(wantIDs)) {
					t.Errorf("%s visit %d: decoded %d alerts %v, want the %d selected independently %v", spec.Name, v.ID, len(got[v.ID]), got[v.ID], len(wantIDs), wantIDs)
				}
				continue
			}
			if len(got[v.ID]) != spec.MaxPerVisit || len(slices.Compact(sorted(got[v.ID]))) != spec.MaxPerVisit {
				t.Errorf("%s visit %d: decoded %v, want %d distinct alerts", spec.Name, v.ID, got[v.ID], spec.MaxPerVisit)
			}
			for _, id := range got[v.ID] {
				if !slices.Contains(wantIDs, id) {
					t.Errorf("%s visit %d: alert %s does not match", spec.Name, v.ID, id)
				}
			}
		}
		t.Logf("%s: the outside reader decoded %d alerts through our registry", spec.Name, len(lines))
	}
	log, _ := os.ReadFile(ingestLog)
	if n := strings.Count(string(log), `"imported schema"`) + strings.Count(string(log), "msg=\"imported schema\""); n < 1 {
		t.Errorf("the relay's log never says it imported a schema:\n%s", childproc.TailFile(ingestLog, 20))
	}
}

// threshold is the snr bound of the test's expressions.
func threshold(spec filter.Spec) float64 {
	f, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(spec.Expr, "alert.diaSource.snr > "), ".0"), 64)
	return f
}

func sameSchema(a, b string) bool {
	x, err1 := registry.Parse(a)
	y, err2 := registry.Parse(b)
	return err1 == nil && err2 == nil && alert.CanonicalForm(x) == alert.CanonicalForm(y)
}

func registryClient(t *testing.T, settings map[string]string) *registry.Client {
	t.Helper()
	c, err := registry.NewClient(settings)
	kafkabed.Must(t, err)
	return c
}

// hubEnd is the sum of the end offsets of the hub's alert partitions
// (transaction markers and uncommitted records included).
func hubEnd(t *testing.T, hub *kafkabed.Broker) int64 {
	c, err := kafka.NewConsumer(kclient.ReaderConfig(hub.Bootstrap(), hub.AdminSettings()))
	kafkabed.Must(t, err)
	defer c.Close()
	var sum int64
	for p := range stream.DefaultPartitions {
		_, hi, err := c.QueryWatermarkOffsets(stream.AlertsTopic, int32(p), 5000)
		if err != nil {
			return 0
		}
		sum += hi
	}
	return sum
}

// hubAlerts counts the committed alerts on the hub by diaSourceId; each
// must be in the wire format with Rubin's id, without headers.
func hubAlerts(ctx context.Context, t *testing.T, hub *kafkabed.Broker) map[int64]int {
	dec := pipeline.NewAlertDecoder(hub.Bootstrap(), hub.AdminSettings(), stream.SchemasTopic)
	n := map[int64]int{}
	err := kclient.ReadAll(ctx, hub.Bootstrap(), hub.AdminSettings(), stream.AlertsTopic, func(m *kafka.Message) error {
		if id, _, err := alert.ParseWire(m.Value); err != nil || id != upstream.RubinV11ID {
			t.Errorf("hub alert at %v: schema id %d (%v), want %d", m.TopicPartition, id, err, upstream.RubinV11ID)
		}
		if len(m.Headers) > 0 {
			t.Errorf("hub alert at %v has headers %v; the upstream wrote none", m.TopicPartition, m.Headers)
		}
		rec, err := dec.Decode(ctx, m.Value)
		if err != nil {
			return err
		}
		id, err := alert.LookupInt(rec, "diaSourceId")
		if err != nil {
			return err
		}
		n[id]++
		return nil
	})
	kafkabed.Must(t, err)
	return n
}

// outsideLine is one line of pyclients.OutsideReader.
type outsideLine struct {
	Visit    int64  `json:"visit"`
	ID       string `json:"id"`
	Decoded  string `json:"decoded"`
	SchemaID int    `json:"schema_id"`
}

// readOutside reads a filtered topic with Python's confluent-kafka and
// AvroDeserializer, the schemas from our registry.
func readOutside(ctx context.Context, t *testing.T, python, bootstrap, topic, registryProps string) []outsideLine {
	t.Helper()
	props := filepath.Join(t.TempDir(), "reader.properties")
	kafkabed.Must(t, os.WriteFile(props, []byte(kafkaconf.Properties{"bootstrap.servers": bootstrap, "group.id": "outside-" + topic}.Render("")), 0o600))
	cmd := exec.CommandContext(ctx, python, filepath.Join("../..", pyclients.OutsideReader), props, topic, "--registry", registryProps)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("outside reader of %s: %v\n%s", topic, err, stderr.String())
	}
	var lines []outsideLine
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l outsideLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("outside reader output %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }
