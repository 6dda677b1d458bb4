package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/hamba/avro/v2"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

func runFilter(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("filter", flag.ContinueOnError)
	var k kafkaFlags
	k.register(fs)
	name := fs.String("name", "Filter001", "filter name (a single filter), or the shared process's name with --filters")
	expr := fs.String("expr", filter.DefaultExpr, "CEL expression over `alert`, the decoded alert")
	output := fs.String("output", "", "output topic (default the filter's name)")
	maxPer := fs.Int("max-per-visit", filter.DefaultMaxPerVisit, "most alerts written per visit (0 = the default; negative = no cap)")
	costLimit := fs.Uint64("cost-limit", 0, "CEL runtime cost limit per alert (0 = the default)")
	timeBudget := fs.Duration("time-budget", 0, fmt.Sprintf("evaluation time the filter may spend on one visit before it is quarantined "+
		"for the rest of it (0 = the default, %v; %v to %v)", filter.DefaultTimeBudget, filter.MinTimeBudget, filter.MaxTimeBudget))
	specsFile := fs.String("filters", "", "YAML file of many filters sharing one read and decode of the stream")
	input := fs.String("input", stream.AlertsTopic, "topic of the full alert stream")
	outBootstrap := fs.String("output-bootstrap", "", "bootstrap servers for filtered streams (default --bootstrap)")
	schemas := fs.String("schemas-topic", stream.SchemasTopic, "topic with the alerts' schemas")
	visitPath := fs.String("visit-path", alert.DefaultVisitPath, "field holding the visit id, for the per-visit cap and for grouping alerts without mb-* headers into visits")
	idPath := fs.String("id-path", alert.DefaultIDPath, "field holding the alert id")
	visitQuiet := fs.Duration("visit-quiet", stream.DefaultVisitQuiet, "alerts without mb-* headers (an upstream stream): close a visit this long after its last alert, "+
		"if no alert of a later visit has closed it first")
	deadLetter := fs.String("dead-letter", "", "topic for undecodable alerts (default NAME-deadletter)")
	group := fs.String("group", "", "consumer group (default minibroker-filter-NAME)")
	fromBeginning := fs.Bool("from-beginning", false, "a new group starts at the oldest alert instead of the newest")
	atLeastOnce := fs.Bool("at-least-once", false, "no transactions: commit offsets every second whatever became of the output (to measure what exactly-once costs)")
	decodeBytes := fs.Bool("decode-bytes", false, "decode bytes fields (cutouts) even when no expression mentions a cutout")
	dryRun := fs.Bool("dry-run", false, "no Kafka: run the filter (--name, --expr, --output, --max-per-visit, --cost-limit), or each filter of --filters FILE.yaml, "+
		"over the Avro container files given as arguments, as deployed: each filter's cost limit and time budget (a filter over it is quarantined for "+
		"the rest of the visit), and its per-visit cap keyed on --visit-path (alerts without that field capped together as one visit). "+
		"Prints, per filter, the --id-path of each alert it selects (admitted by the cap), then how many it selected, matched before the cap "+
		"and evaluated, its evaluation errors by kind and its quarantines; exits 1 if any evaluation failed")
	var schemaFiles stringList
	fs.Var(&schemaFiles, "schema", "Avro schema file (.avsc) of alerts, known without the schemas topic (repeatable)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if !*dryRun && fs.NArg() > 0 {
		return usagef("unexpected arguments %q (Avro files are read only with --dry-run)", fs.Args())
	}
	if *visitQuiet <= 0 {
		return usagef("--visit-quiet must be positive, got %s", *visitQuiet)
	}
	specs := []filter.Spec{{Name: *name, Expr: *expr, Output: *output, MaxPerVisit: *maxPer, CostLimit: *costLimit, TimeBudget: *timeBudget}}
	procName := ""
	if *specsFile != "" {
		// Each filter of the file has its own; a flag for one filter would
		// be silently ignored.
		for _, single := range []string{"expr", "output", "max-per-visit", "cost-limit", "time-budget"} {
			if flagSet(fs, single) {
				return usagef("--%s is for a single filter: with --filters, set it on each filter in %s", single, *specsFile)
			}
		}
		var err error
		if specs, err = filter.LoadSpecsFile(*specsFile); err != nil {
			return err
		}
		if err := filter.CheckDeployable(specs); err != nil {
			return fmt.Errorf("filters file %s: %w", *specsFile, err)
		}
		procName = *name
	} else if _, err := filter.NewSet(specs); err != nil {
		return usageError{err} // a bad --expr or --name is bad usage, as with --dry-run
	} else if err := filter.CheckDeployable(specs); err != nil {
		return usageError{err}
	}
	if *deadLetter != "" {
		if err := checkDeadLetterTopic(*deadLetter, specs); err != nil {
			return usageError{err}
		}
	}
	if *dryRun {
		return dryRunFilter(stdout, log, specs, *idPath, *visitPath, fs.Args())
	}
	if specs[0].Output == "" {
		specs[0].Output = specs[0].Name
	}
	known, err := loadSchemas(schemaFiles)
	if err != nil {
		return err
	}
	over, err := k.overrides()
	if err != nil {
		return err
	}
	return pipeline.RunFilters(ctx, pipeline.FilterConfig{
		Bootstrap: k.bootstrap, Input: *input, Specs: specs, Name: procName, Group: *group,
		VisitPath: *visitPath, VisitQuiet: *visitQuiet, IDPath: *idPath, DeadLetter: *deadLetter, SchemasTopic: *schemas, Schemas: known,
		FromBeginning: *fromBeginning, AtLeastOnce: *atLeastOnce, DecodeBytes: *decodeBytes, OutputBootstrap: *outBootstrap,
		TimingBootstrap: k.timingBootstrap, TimingTopic: k.timingTopic, Kafka: over, Log: log,
	})
}

// dryRunFilter runs the filters of specs, as a deployed process would
// (filter.DryRun), over the alerts of Avro container files, logging once
// per file the invalid schema defaults that reading ignored and the bad
// blocks it skipped (see alert.ReadOCFRecords).
func dryRunFilter(stdout io.Writer, log *slog.Logger, specs []filter.Spec, idPath, visitPath string, files []string) error {
	if len(files) == 0 {
		return usagef("--dry-run needs one or more Avro files")
	}
	set, err := filter.NewSet(specs)
	if err != nil {
		return usageError{err}
	}
	var records []map[string]any
	warned := map[string]bool{}
	for _, f := range files {
		_, recs, warnings, skipped, err := alert.ReadOCFRecords(f)
		if err != nil {
			return err
		}
		if !warned[f] {
			warned[f] = true
			for _, w := range warnings {
				warnIgnoredDefault(log, alert.FileWarning{File: f, SchemaWarning: w})
			}
			for _, s := range skipped {
				warnSkippedBlock(log, s)
			}
		}
		records = append(records, recs...)
	}
	_, err = filter.DryRun(stdout, set, records, filter.DryRunConfig{IDPath: idPath, VisitPath: visitPath})
	return err
}

// checkDeadLetterTopic refuses a --dead-letter topic that the mini-broker
// keeps for something else (stream.Reserved; another process's dead
// letters are fine to share) or that a filter writes.
func checkDeadLetterTopic(topic string, specs []filter.Spec) error {
	if !filter.ValidName(topic) {
		return fmt.Errorf("--dead-letter %q: not a topic name: use 1 to 200 of A-Z a-z 0-9 . _ -", topic)
	}
	if why, reserved := stream.Reserved(topic); reserved && !strings.HasSuffix(topic, stream.DeadLetterTopic("")) {
		return fmt.Errorf("--dead-letter %q is reserved: %s", topic, why)
	}
	for _, s := range specs {
		if s.WithDefaults().Output == topic {
			return fmt.Errorf("--dead-letter %q is filter %q's output topic", topic, s.Name)
		}
	}
	return nil
}

// warnIgnoredDefault logs an invalid default of an alert file's schema
// that reading the file ignored.
func warnIgnoredDefault(log *slog.Logger, w alert.FileWarning) {
	log.Warn("alert file: ignoring an invalid default in its schema (defaults play no part in reading a file)",
		"file", w.File, "field", w.Field, "problem", w.Problem)
}

// warnSkippedBlock logs a bad block of an alert file that reading skipped,
// with its records.
func warnSkippedBlock(log *slog.Logger, s alert.SkippedBlock) {
	lost := any(s.Records) // as its header claims
	if s.Records < 0 {
		lost = "unknown"
	}
	log.Warn("alert file: skipped a bad block with its records, read on after it", "file", s.File, "block", s.Block,
		"byte", s.Offset, "reason", s.Reason, "records_lost", lost, "resumed_at_byte", s.Resume)
}

func loadSchemas(files []string) ([]avro.Schema, error) {
	var out []avro.Schema
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("schema file: %w", err)
		}
		s, err := alert.ParseSchema(string(b))
		if err != nil {
			return nil, fmt.Errorf("schema file %s: %w", f, err)
		}
		out = append(out, s)
	}
	return out, nil
}
