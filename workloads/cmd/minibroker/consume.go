package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

func runConsume(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("consume", flag.ContinueOnError)
	var k kafkaFlags
	k.register(fs)
	topic := fs.String("topic", "Filter001", "filtered topic to read")
	name := fs.String("name", "", "consumer name in timing events (default consumer-TOPIC)")
	group := fs.String("group", "", "consumer group (default minibroker-consumer-NAME)")
	fromBeginning := fs.Bool("from-beginning", false, "a new group starts at the oldest alert instead of the newest")
	untilEnd := fs.Bool("until-end", false, "stop once the topic has been read to its end, committing what was written")
	out := fs.String("out", "", "append one JSON line per received alert to this file (- for stdout); "+
		"a restarted consumer drops the alerts (by id and rank) the file already has")
	format := fs.String("format", formatReceipts, "what --out writes per alert: "+formatReceipts+" (topic, run, visit, rank, id, arrival, size) or "+
		formatJSON+" (the same and the decoded alert, its schema read from --schemas-topic; NaN and infinities become null, bytes base64)")
	schemasTopic := fs.String("schemas-topic", stream.SchemasTopic, "topic of the alerts' schemas, for --format "+formatJSON)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	over, err := k.overrides()
	if err != nil {
		return err
	}
	// A reader's properties file (minibroker_filter_group.readers) names
	// the bootstrap servers and the group it may use: they apply unless
	// the flags say otherwise.
	if !flagSet(fs, "bootstrap") && over["bootstrap.servers"] != "" {
		k.bootstrap = over["bootstrap.servers"]
	}
	if *group == "" {
		*group = over["group.id"]
	}
	delete(over, "bootstrap.servers") // the flags have them now, and win
	delete(over, "group.id")
	// Timing events go to the hub: only when told where it is (the swarm's
	// consumers are); a user's own consumer cannot write there.
	if k.timingBootstrap == "" {
		k.timingTopic = ""
	}
	if *format != formatReceipts && *format != formatJSON {
		return usagef("consume: --format %q: want %s or %s", *format, formatReceipts, formatJSON)
	}
	var decoder *pipeline.AlertDecoder
	if *format == formatJSON {
		decoder = pipeline.NewAlertDecoder(k.bootstrap, over, *schemasTopic)
	}
	var onAlert func(pipeline.Received) error
	var handled []pipeline.AlertRef
	if *out != "" {
		w := stdout
		if *out != "-" {
			if handled, err = readOutLines(*out); err != nil {
				return err
			}
			f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		enc := json.NewEncoder(w)
		onAlert = func(r pipeline.Received) error {
			line := outLine{r.Topic, r.Run, r.Visit, r.Rank, r.ID, r.Arrived, len(r.Value), nil}
			if decoder != nil {
				rec, err := decoder.Decode(ctx, r.Value)
				if err != nil {
					return fmt.Errorf("decode alert %s of visit %d: %w", r.ID, r.Visit, err)
				}
				line.Alert = jsonSafe(rec)
			}
			// One write per line: a killed consumer leaves whole lines, or
			// one torn last line, which readOutLines cuts.
			return enc.Encode(line)
		}
	}
	return pipeline.Consume(ctx, pipeline.ConsumeConfig{
		Bootstrap: k.bootstrap, Topic: *topic, Name: *name, Group: *group, FromBeginning: *fromBeginning,
		TimingBootstrap: k.timingBootstrap, TimingTopic: k.timingTopic, Kafka: over, Log: log,
		OnAlert: onAlert, Handled: handled, UntilEnd: *untilEnd,
	})
}

// Formats of consume --out.
const (
	formatReceipts = "receipts"
	formatJSON     = "json"
)

// outLine is one line of consume --out.
type outLine struct {
	Topic   string    `json:"topic"`
	Run     string    `json:"run"`
	Visit   int64     `json:"visit"`
	Rank    int       `json:"rank"`
	ID      string    `json:"id"`
	Arrived time.Time `json:"arrived"`
	Bytes   int       `json:"bytes"`
	Alert   any       `json:"alert,omitempty"` // --format json: the decoded alert
}

// jsonSafe returns a decoded record that encoding/json can write: NaN and
// infinite floats (which JSON has no words for; Rubin's alerts use NaN for
// missing measurements) become null.
func jsonSafe(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonSafe(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonSafe(e)
		}
		return out
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
	case float32:
		if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
	}
	return v
}

// readOutLines returns the alerts an earlier run wrote to path (none if it
// does not exist). A torn last line (a run killed mid-write) is cut off:
// that alert was not handled, and comes again.
func readOutLines(path string) ([]pipeline.AlertRef, error) {
	if err := cutTornLine(path); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var refs []pipeline.AlertRef
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l outLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.ID != "" {
			refs = append(refs, pipeline.AlertRef{Run: l.Run, ID: l.ID, Visit: l.Visit, Rank: l.Rank})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return refs, nil
}

// cutTornLine truncates the file at path after its last newline.
func cutTornLine(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) || len(data) == 0 || data[len(data)-1] == '\n' {
		return nil
	}
	if err != nil {
		return err
	}
	keep := bytes.LastIndexByte(data, '\n') + 1
	if err := os.Truncate(path, int64(keep)); err != nil {
		return fmt.Errorf("cut the torn last line of %s: %w", path, err)
	}
	return nil
}
