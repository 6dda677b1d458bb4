package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

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
	dryRun := fs.Bool("dry-run", false, "no Kafka: evaluate --expr over the Avro files given as arguments")
	var schemaFiles stringList
	fs.Var(&schemaFiles, "schema", "Avro schema file (.avsc) of alerts, known without the schemas topic (repeatable)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if *dryRun {
		return dryRunFilter(stdout, log, *expr, *idPath, fs.Args())
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q (Avro files are read only with --dry-run)", fs.Args())
	}
	if *visitQuiet <= 0 {
		return usagef("--visit-quiet must be positive, got %s", *visitQuiet)
	}
	specs := []filter.Spec{{Name: *name, Expr: *expr, Output: *output, MaxPerVisit: *maxPer, CostLimit: *costLimit}}
	procName := ""
	if *specsFile != "" {
		var err error
		if specs, err = filter.LoadSpecsFile(*specsFile); err != nil {
			return err
		}
		procName = *name
	} else if _, err := filter.NewSet(specs); err != nil {
		return usageError{err} // a bad --expr or --name is bad usage, as with --dry-run
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

// dryRunFilter evaluates expr over the alerts of Avro container files,
// logging once per file the invalid schema defaults that reading ignored.
func dryRunFilter(stdout io.Writer, log *slog.Logger, expr, idPath string, files []string) error {
	if len(files) == 0 {
		return usagef("--dry-run needs one or more Avro files")
	}
	prog, err := filter.Compile(expr)
	if err != nil {
		return usageError{err}
	}
	var records []map[string]any
	warned := map[string]bool{}
	for _, f := range files {
		_, recs, warnings, err := alert.ReadOCFRecords(f)
		if err != nil {
			return err
		}
		if !warned[f] {
			warned[f] = true
			for _, w := range warnings {
				warnIgnoredDefault(log, alert.FileWarning{File: f, SchemaWarning: w})
			}
		}
		records = append(records, recs...)
	}
	_, _, err = filter.DryRun(stdout, prog, records, idPath)
	return err
}

// warnIgnoredDefault logs an invalid default of an alert file's schema
// that reading the file ignored.
func warnIgnoredDefault(log *slog.Logger, w alert.FileWarning) {
	log.Warn("alert file: ignoring an invalid default in its schema (defaults play no part in reading a file)",
		"file", w.File, "field", w.Field, "problem", w.Problem)
}

func loadSchemas(files []string) ([]avro.Schema, error) {
	var out []avro.Schema
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("schema file: %w", err)
		}
		s, err := avro.Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("schema file %s: %w", f, err)
		}
		out = append(out, s)
	}
	return out, nil
}
