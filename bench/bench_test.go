package bench

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/report"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

const alertsPerVisit = 10000

// alertKind is one of the two alert sizes measured.
type alertKind struct {
	name        string
	cutoutBytes int
}

var kinds = []alertKind{{"80KB", alert.DefaultCutoutBytes}, {"small", 0}}

// BenchmarkMiniBroker runs the whole measurement once (use -benchtime 1x).
func BenchmarkMiniBroker(b *testing.B) {
	for range b.N {
		runAll(b)
	}
}

func runAll(b *testing.B) {
	// Every filter of every scenario lives in this one process, where a
	// deployment gives each its own container: with 100 isolated filters of
	// 80 KB alerts the client's copy of each alert into Go allocates GB/s, and
	// on 2 busy cores the collector falls behind. A soft limit makes it keep
	// the heap within bounds (at some CPU cost, which the figures include).
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(10 << 30))
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Minute)
	defer cancel()
	visits := envInt("MINIBROKER_BENCH_VISITS", 2)
	interval := envDuration("MINIBROKER_BENCH_INTERVAL", stream.DefaultInterval)
	only := os.Getenv("MINIBROKER_BENCH_ONLY")

	hub := kafkabed.StartBrokerT(b, kafkabed.WithHeapMB(1536))
	mirror := kafkabed.StartBrokerT(b, kafkabed.WithHeapMB(1536))
	must(b, kclient.EnsureTopics(ctx, hub.Bootstrap(),
		kclient.Topic{Name: stream.SchemasTopic, Partitions: 1, Compacted: true},
		kclient.Topic{Name: stream.TimingTopic, Partitions: 1}))
	mm := kafkabed.StartMirrorMakerT(b, hub, mirror, kafkabed.WithMirrorTopics("alerts-.*|minibroker-schemas"),
		kafkabed.WithMirrorHeapMB(1024))

	out := &kafkaReport{}
	out.machine()
	out.settings(visits, interval)

	// The ceiling: Kafka's own perf tools on the hub, same record sizes and
	// producer settings as ours.
	sizes := map[string]int{}
	for _, k := range kinds {
		sizes[k.name] = alertSize(b, k.cutoutBytes)
	}
	ceil := map[string]ceiling{}
	for _, k := range kinds {
		if only != "" && !strings.Contains("ceiling producer "+k.name, only) {
			continue
		}
		ceil[k.name] = measureCeiling(b, ctx, hub, k.name, sizes[k.name])
	}
	out.ceilings(kinds, sizes, ceil)

	// The producer alone: one visit after another, 1, 2 and 4 senders.
	var prods []producerResult
	for _, k := range kinds {
		for _, par := range []int{1, 2, 4} {
			name := fmt.Sprintf("producer %s parallel %d", k.name, par)
			if only != "" && !strings.Contains(name, only) {
				continue
			}
			prods = append(prods, measureProducer(b, ctx, hub, k, par))
		}
	}
	out.producers(prods, ceil)

	// The pipeline: producer → hub → MirrorMaker 2 → mirror → filters → consumers.
	var scens []scenarioResult
	for _, sc := range scenarios(visits, interval) {
		if only != "" && !strings.Contains(sc.name(), only) {
			continue
		}
		r := runScenario(b, ctx, hub, mirror, mm, sc)
		scens = append(scens, r)
		b.Logf("%s: %s", sc.name(), r.summary())
	}
	out.pipeline(scens, prods, ceil)

	text := out.String()
	b.Log("\n" + text)
	if path := os.Getenv(report.EnvOut); path != "" {
		must(b, report.Save(path, text))
		b.Logf("wrote %s", path)
	}
}

// alertSize is the mean encoded size of a synthetic alert of this kind.
func alertSize(b *testing.B, cutoutBytes int) int {
	g := alert.NewGenerator(1, cutoutBytes)
	var total int
	var buf []byte
	for i := range 1000 {
		var err error
		buf, _, err = g.Alert(buf[:0], 1, i)
		must(b, err)
		total += len(buf) + alert.WireHeaderSize
	}
	return total / 1000
}

type ceiling struct {
	producer, consumer kafkabed.PerfResult
}

// perfProducerProps are our producer's settings, as Java producer configs.
var perfProducerProps = map[string]string{
	"acks": "all", "enable.idempotence": "true", "batch.size": strconv.Itoa(4 << 20), "linger.ms": "5",
	"max.request.size": strconv.Itoa(kclient.MaxMessageBytes), "compression.type": "none", "buffer.memory": strconv.Itoa(1 << 30),
}

func measureCeiling(b *testing.B, ctx context.Context, hub *kafkabed.Broker, kind string, size int) ceiling {
	topic := "perf-" + strings.ToLower(kind)
	must(b, kclient.EnsureTopics(ctx, hub.Bootstrap(), kclient.Topic{Name: topic, Partitions: stream.DefaultPartitions}))
	records := max(3*alertsPerVisit, (256<<20)/size) // long enough for the JVM to warm up
	p, err := kafkabed.ProducerPerf(ctx, hub, topic, records, size, perfProducerProps, kafkabed.WithPerfHeapMB(2048))
	must(b, err)
	c, err := kafkabed.ConsumerPerf(ctx, hub, topic, records)
	must(b, err)
	b.Logf("ceiling %s: producer %.1f MiB/s %.0f rec/s; consumer %.1f MiB/s", kind, p.MBPerSec, p.RecordsPerSec, c.MBPerSec)
	return ceiling{producer: p, consumer: c}
}

type producerResult struct {
	kind     alertKind
	parallel int
	visits   []pipeline.VisitResult
}

// measureProducer sends visits back to back to a topic no one reads.
func measureProducer(b *testing.B, ctx context.Context, hub *kafkabed.Broker, k alertKind, parallel int) producerResult {
	topic := fmt.Sprintf("produce-%s-p%d", strings.ToLower(k.name), parallel)
	res := producerResult{kind: k, parallel: parallel}
	err := pipeline.Produce(ctx, pipeline.ProduceConfig{
		Bootstrap: hub.Bootstrap(), Topic: topic, Partitions: stream.DefaultPartitions, Source: pipeline.NewSynthetic(1, k.cutoutBytes),
		AlertsPerVisit: alertsPerVisit, Interval: time.Millisecond, Visits: 4, Parallel: parallel, Log: quietLog(),
		OnVisit: func(v pipeline.VisitResult) { res.visits = append(res.visits, v) },
	})
	must(b, err)
	res.visits = res.visits[1:] // the first visit warms up connections and topic metadata
	return res
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(key string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(key)); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
