package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// ConsumeConfig configures an end consumer of one filtered stream.
type ConsumeConfig struct {
	Bootstrap     string
	Topic         string // a filter's output topic
	Name          string // default "consumer-" + Topic
	Group         string // default "minibroker-consumer-" + Name
	FromBeginning bool

	TimingBootstrap string // the hub; default Bootstrap
	TimingTopic     string

	Kafka map[string]string
	Log   *slog.Logger

	Ready   func()         // called once the consumer has its partitions
	OnAlert func(Received) // called for every alert, in arrival order
}

// Received is one filtered alert as a consumer got it.
type Received struct {
	Topic   string
	Run     string
	Visit   int64
	Rank    int
	ID      string
	Arrived time.Time
	Value   []byte
}

// Consume reads a filtered stream until ctx ends, recording when each alert
// arrives as a timing event.
func Consume(ctx context.Context, cfg ConsumeConfig) error {
	if cfg.Bootstrap == "" || cfg.Topic == "" {
		return errors.New("consume: bootstrap servers and a topic are required")
	}
	cfg.Name = orDefault(cfg.Name, "consumer-"+cfg.Topic)
	cfg.Group = orDefault(cfg.Group, stream.ConsumerGroup(cfg.Name))
	cfg.TimingBootstrap = orDefault(cfg.TimingBootstrap, cfg.Bootstrap)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	log := cfg.Log.With("consumer", cfg.Name)

	sink, err := newTimingSink(cfg.TimingBootstrap, cfg.TimingTopic, log)
	if err != nil {
		return err
	}
	defer sink.Close(ctx)
	if _, err := kclient.WaitTopic(ctx, cfg.Bootstrap, cfg.Topic); err != nil {
		return err
	}
	c, err := kafka.NewConsumer(kclient.ConsumerConfig(cfg.Bootstrap, cfg.Group, cfg.FromBeginning, cfg.Kafka))
	if err != nil {
		return fmt.Errorf("consumer for %s: %w", cfg.Bootstrap, err)
	}
	defer c.Close()
	if err := subscribeReady(c, cfg.Topic, cfg.Ready); err != nil {
		return err
	}
	log.Info("consuming", "bootstrap", cfg.Bootstrap, "topic", cfg.Topic)

	var n int
	for ctx.Err() == nil {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			r := Received{Topic: cfg.Topic, Run: headerString(e.Headers, stream.HeaderRun), ID: headerString(e.Headers, stream.HeaderID),
				Arrived: time.Now(), Value: e.Value}
			r.Visit, _ = headerInt(e.Headers, stream.HeaderVisit)
			rank, _ := headerInt(e.Headers, stream.HeaderRank)
			r.Rank = int(rank)
			sink.Emit(timing.Event{Kind: timing.KindConsume, Run: r.Run, Visit: r.Visit, Name: cfg.Name,
				Source: cfg.Topic, End: r.Arrived, Rank: r.Rank, Bytes: int64(len(e.Value))})
			if cfg.OnAlert != nil {
				cfg.OnAlert(r)
			}
			if n++; n == 1 || n%1000 == 0 {
				log.Info("alerts received", "total", n, "visit", r.Visit, "rank", r.Rank)
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("consumer %s reading %s: %w", cfg.Name, cfg.Topic, e)
			}
			log.Warn("kafka", "err", e)
		}
	}
	return nil
}
