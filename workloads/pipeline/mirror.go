package pipeline

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// MirrorConfig configures the in-process mirror that `minibroker local`
// uses in place of MirrorMaker 2: it copies topics from the hub to a mirror,
// keeping names, partitions, keys and headers. Deployments and the tests on
// real Kafka use MirrorMaker 2 itself.
type MirrorConfig struct {
	Source, Target string   // bootstrap servers
	Topics         []string // copied under the same names
	Suffix         string   // appended to target topic names (mirrors sharing one cluster)
	Name           string
	Log            *slog.Logger
	Ready          func()
}

// Mirror copies the topics until ctx ends. Target topics are created with
// the source's partition counts.
func Mirror(ctx context.Context, cfg MirrorConfig) error {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	log := cfg.Log.With("mirror", cfg.Name)
	var topics []kclient.Topic
	for _, t := range cfg.Topics {
		parts, err := kclient.WaitTopic(ctx, cfg.Source, nil, t)
		if err != nil {
			return err
		}
		topics = append(topics, kclient.Topic{Name: t + cfg.Suffix, Partitions: len(parts), Compacted: t == stream.SchemasTopic})
	}
	if err := kclient.EnsureTopics(ctx, cfg.Target, nil, topics...); err != nil {
		return err
	}
	p, err := kafka.NewProducer(kclient.ProducerConfig(cfg.Target, map[string]string{"linger.ms": "1"}))
	if err != nil {
		return fmt.Errorf("mirror producer for %s: %w", cfg.Target, err)
	}
	go drainEvents(p, log)
	defer func() { flush(ctx, p); p.Close() }()
	c, err := kafka.NewConsumer(kclient.ConsumerConfig(cfg.Source, stream.MirrorGroup(cfg.Name), true, nil))
	if err != nil {
		return fmt.Errorf("mirror consumer for %s: %w", cfg.Source, err)
	}
	defer c.Close()
	if err := c.SubscribeTopics(cfg.Topics, readyCallback(cfg.Ready)); err != nil {
		return fmt.Errorf("mirror %s: subscribe: %w", cfg.Name, err)
	}
	log.Info("mirroring", "from", cfg.Source, "to", cfg.Target, "topics", cfg.Topics)
	for ctx.Err() == nil {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			topic := *e.TopicPartition.Topic + cfg.Suffix
			err := kclient.ProduceWaiting(ctx, p, &kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: e.TopicPartition.Partition},
				Key:            e.Key, Value: e.Value, Headers: e.Headers,
			}, nil)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("mirror %s: %w", cfg.Name, err)
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("mirror %s: %w", cfg.Name, e)
			}
		}
	}
	return nil
}
