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
	"os"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
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
	// Timing events go to the hub: only when told where it is (the swarm's
	// consumers are); a user's own consumer cannot write there.
	if k.timingBootstrap == "" {
		k.timingTopic = ""
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
			// One write per line: a killed consumer leaves whole lines, or
			// one torn last line, which readOutLines cuts.
			return enc.Encode(outLine{r.Topic, r.Run, r.Visit, r.Rank, r.ID, r.Arrived, len(r.Value)})
		}
	}
	return pipeline.Consume(ctx, pipeline.ConsumeConfig{
		Bootstrap: k.bootstrap, Topic: *topic, Name: *name, Group: *group, FromBeginning: *fromBeginning,
		TimingBootstrap: k.timingBootstrap, TimingTopic: k.timingTopic, Kafka: over, Log: log,
		OnAlert: onAlert, Handled: handled, UntilEnd: *untilEnd,
	})
}

// outLine is one line of consume --out.
type outLine struct {
	Topic   string    `json:"topic"`
	Run     string    `json:"run"`
	Visit   int64     `json:"visit"`
	Rank    int       `json:"rank"`
	ID      string    `json:"id"`
	Arrived time.Time `json:"arrived"`
	Bytes   int       `json:"bytes"`
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
