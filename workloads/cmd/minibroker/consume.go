package main

import (
	"context"
	"encoding/json"
	"flag"
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
	out := fs.String("out", "", "write one JSON line per received alert to this file (- for stdout)")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	over, err := k.overrides()
	if err != nil {
		return err
	}
	var onAlert func(pipeline.Received)
	if *out != "" {
		w := stdout
		if *out != "-" {
			f, err := os.Create(*out)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		enc := json.NewEncoder(w)
		onAlert = func(r pipeline.Received) {
			_ = enc.Encode(struct {
				Topic   string    `json:"topic"`
				Run     string    `json:"run"`
				Visit   int64     `json:"visit"`
				Rank    int       `json:"rank"`
				ID      string    `json:"id"`
				Arrived time.Time `json:"arrived"`
				Bytes   int       `json:"bytes"`
			}{r.Topic, r.Run, r.Visit, r.Rank, r.ID, r.Arrived, len(r.Value)})
		}
	}
	return pipeline.Consume(ctx, pipeline.ConsumeConfig{
		Bootstrap: k.bootstrap, Topic: *topic, Name: *name, Group: *group, FromBeginning: *fromBeginning,
		TimingBootstrap: k.timingBootstrap, TimingTopic: k.timingTopic, Kafka: over, Log: log, OnAlert: onAlert,
	})
}
