package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// reportFlags select how a report is written.
type reportFlags struct {
	json bool
	html string
}

func (r *reportFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&r.json, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&r.html, "html", "", "also write an HTML page with a plot of the latencies per visit to this file")
}

func (r *reportFlags) write(stdout io.Writer, rep timing.Report) error {
	if r.html != "" {
		f, err := os.Create(r.html)
		if err != nil {
			return fmt.Errorf("report plot: %w", err)
		}
		if err := rep.WriteHTML(f); err != nil {
			f.Close()
			return fmt.Errorf("report plot %s: %w", r.html, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("report plot %s: %w", r.html, err)
		}
	}
	if r.json {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteTable(stdout)
}

func runReport(ctx context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap", "localhost:9092", "bootstrap servers of the hub")
	topic := fs.String("timing-topic", stream.TimingTopic, "topic with the timing events")
	run := fs.String("run", "", "only this producer run (default all)")
	timeout := fs.Duration("timeout", time.Minute, "give up reading after this long")
	var out reportFlags
	out.register(fs)
	var kafkaSettings settingsFlags
	kafkaSettings.register(fs)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	conn, err := kafkaSettings.overrides()
	if err != nil {
		return err
	}
	if !flagSet(fs, "bootstrap") && conn["bootstrap.servers"] != "" {
		*bootstrap = conn["bootstrap.servers"] // minibroker_swarm.report_properties
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	evs, err := pipeline.ReadTiming(ctx, *bootstrap, conn, *topic)
	if err != nil {
		return err
	}
	if *run != "" {
		evs = pipeline.ForRun(evs, *run)
	}
	if len(evs) == 0 {
		return fmt.Errorf("no timing events in %s on %s", *topic, *bootstrap)
	}
	return out.write(stdout, timing.Build(evs))
}

func runLocal(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap", "", "run on these Kafka brokers instead of embedded ones (mirrors become topics)")
	mirrors := fs.Int("mirrors", 2, "mirrors, each with its share of the filters")
	filters := fs.Int("filters", 6, "filters, each with its own consumer")
	shared := fs.Bool("shared", false, "run each mirror's filters in one shared process instead of one each")
	visits := fs.Int("visits", 3, "visits to send")
	interval := fs.Duration("interval", 5*time.Second, "time between visits")
	perVisit := fs.Int("alerts-per-visit", 2000, "alerts in each visit")
	cutout := fs.Int("cutout-bytes", 0, fmt.Sprintf("bytes of each cutout (0 = small alerts; %d gives ~80 KB alerts)", alert.DefaultCutoutBytes))
	parallel := fs.Int("parallel", 1, "concurrent senders splitting each visit")
	seed := fs.Int64("seed", 1, "seed of the synthetic alerts")
	settle := fs.Duration("settle", time.Minute, "after the last visit, wait at most this long for filters and consumers")
	var out reportFlags
	out.register(fs)
	var kafkaSettings settingsFlags
	kafkaSettings.register(fs)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if *mirrors < 1 || *filters < 1 || *visits < 1 || *perVisit < 1 || *cutout < 0 {
		return usagef("--mirrors, --filters, --visits and --alerts-per-visit must be at least 1, --cutout-bytes 0 or more")
	}
	evs, err := pipeline.Local(ctx, pipeline.LocalConfig{
		Bootstrap: *bootstrap, Mirrors: *mirrors, Filters: *filters, Shared: *shared, Visits: *visits, Interval: *interval,
		AlertsPerVisit: *perVisit, CutoutBytes: *cutout, Seed: *seed, Parallel: *parallel, Log: log, Settle: *settle,
	})
	if len(evs) == 0 {
		return errors.Join(err, errors.New("no timing events recorded"))
	}
	if werr := out.write(stdout, timing.Build(evs)); werr != nil {
		return werr
	}
	return err
}
