package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

func runProduce(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	var k kafkaFlags
	k.register(fs)
	topic := fs.String("topic", stream.AlertsTopic, "topic of the full alert stream")
	partitions := fs.Int("partitions", stream.DefaultPartitions, "partitions of the alert topic, when it is created")
	schemas := fs.String("schemas-topic", stream.SchemasTopic, "compacted topic of the schema registry, where the alerts' schemas are registered")
	registryFile := fs.String("registry", "", "register the schemas through this schema registry instead of writing its topic: a properties file with "+
		registry.SettingURL+", "+registry.SettingUserInfo+" and "+registry.SettingCA+" (Confluent's client settings)")
	perVisit := fs.Int("alerts-per-visit", stream.DefaultAlertsPerVisit, "alerts in each visit")
	interval := fs.Duration("interval", stream.DefaultInterval, "time between visits")
	visits := fs.Int("visits", 0, "visits to send (0 = forever)")
	align := fs.Bool("align", true, "start each visit at the next multiple of --interval, like the original sender")
	parallel := fs.Int("parallel", stream.DefaultParallel, "concurrent senders splitting each visit (one per CCD)")
	seed := fs.Int64("seed", stream.DefaultSeed, "seed of the synthetic alerts")
	cutout := fs.Int("cutout-bytes", alert.DefaultCutoutBytes, "bytes of each of the 3 cutouts of a synthetic alert (0 = small alerts)")
	visitPath := fs.String("visit-path", alert.DefaultVisitPath, "field set to the visit id in replayed alerts")
	name := fs.String("name", "producer", "producer name in timing events")
	var replay stringList
	fs.Var(&replay, "replay", "Avro container file of real alerts to cycle through instead of synthetic ones (repeatable)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if *cutout < 0 {
		return usagef("--cutout-bytes must be 0 or more, got %d", *cutout)
	}
	over, err := k.overrides()
	if err != nil {
		return err
	}
	var reg *registry.Client
	if *registryFile != "" {
		if reg, err = registryClient(*registryFile); err != nil {
			return err
		}
	}
	var src pipeline.Source = pipeline.NewSynthetic(*seed, *cutout)
	var nameRecord func(int) string
	if len(replay) > 0 {
		nameRecord = replayRecordNames(replay)
		rs, skipped, err := pipeline.NewReplay(*visitPath, replay...)
		if err != nil {
			return err
		}
		for _, w := range rs.Warnings() {
			warnIgnoredDefault(log, w)
		}
		for _, s := range skipped {
			warnSkippedBlock(log, s)
		}
		src = rs
	}
	return pipeline.Produce(ctx, pipeline.ProduceConfig{
		Bootstrap: k.bootstrap, Topic: *topic, Partitions: *partitions, SchemasTopic: *schemas, Registry: reg, Source: src,
		AlertsPerVisit: *perVisit, Interval: *interval, Visits: *visits, Align: *align, Parallel: *parallel, Name: *name,
		TimingBootstrap: k.timingBootstrap, TimingTopic: k.timingTopic, Kafka: over, Log: log, NameRecord: nameRecord,
	})
}

// replayRecordNames returns what names record r of the replayed files
// (their records one after the other, as pipeline.NewReplay loads them):
// "FILE, alert N of M", N and M counting the records read, which leave
// out those of the bad blocks skipped (the name says so when the file
// had any). It counts each file's records the first time it is asked,
// reading them again with the same reader: only an alert too large to
// send is named.
func replayRecordNames(files []string) func(record int) string {
	var (
		once   sync.Once
		counts []int
		lossy  []bool // the file had bad blocks skipped
	)
	return func(record int) string {
		once.Do(func() {
			for _, f := range files {
				_, recs, _, skipped, err := alert.ReadOCFRecords(f)
				if err != nil {
					counts = nil
					return
				}
				counts = append(counts, len(recs))
				lossy = append(lossy, len(skipped) > 0)
			}
		})
		r := record
		for i, n := range counts {
			if r < n {
				if lossy[i] {
					return fmt.Sprintf("%s, alert %d of the %d read past its bad blocks", files[i], r+1, n)
				}
				return fmt.Sprintf("%s, alert %d of %d", files[i], r+1, n)
			}
			r -= n
		}
		return fmt.Sprintf("replay record %d", record)
	}
}
