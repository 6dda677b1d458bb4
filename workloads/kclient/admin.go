package kclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Topic describes a topic the workloads create when it is missing.
type Topic struct {
	Name       string
	Partitions int
	Compacted  bool
	Config     map[string]string // more topic configs, over TopicConfig's
}

// TopicConfig is the per-topic configuration every workload topic gets: it
// lets a broker with default settings accept the large batches configured in
// ProducerConfig.
func TopicConfig(compacted bool) map[string]string {
	cfg := map[string]string{"max.message.bytes": strconv.Itoa(MaxMessageBytes)}
	if compacted {
		cfg["cleanup.policy"] = "compact"
	}
	return cfg
}

// EnsureTopics creates the topics that do not exist yet. Existing topics are
// left as they are (their partition count is not changed).
func EnsureTopics(ctx context.Context, bootstrap string, conn map[string]string, topics ...Topic) error {
	ad, err := kafka.NewAdminClient(AdminConfig(bootstrap, conn))
	if err != nil {
		return fmt.Errorf("admin client for %s: %w", bootstrap, err)
	}
	defer ad.Close()

	specs := make([]kafka.TopicSpecification, 0, len(topics))
	for _, t := range topics {
		p := t.Partitions
		if p <= 0 {
			p = 1
		}
		specs = append(specs, kafka.TopicSpecification{
			Topic: t.Name, NumPartitions: p, ReplicationFactor: -1, Config: mergeConfig(TopicConfig(t.Compacted), t.Config),
		})
	}
	res, err := ad.CreateTopics(ctx, specs, kafka.SetAdminOperationTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("create topics on %s: %w", bootstrap, err)
	}
	var errs []error
	for _, r := range res {
		switch r.Error.Code() {
		case kafka.ErrNoError, kafka.ErrTopicAlreadyExists:
		default:
			errs = append(errs, fmt.Errorf("create topic %q on %s: %w", r.Topic, bootstrap, r.Error))
		}
	}
	return errors.Join(errs...)
}

// ErrNoTopic is Partitions' error for a topic the cluster does not have.
var ErrNoTopic = errors.New("topic does not exist")

// Partitions returns the partition ids of topic as the broker reports them,
// or an error naming the topic if it does not exist.
func Partitions(ctx context.Context, client metadataClient, topic string) ([]int32, error) {
	timeout := 5000
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(1, min(timeout, int(time.Until(dl).Milliseconds())))
	}
	// All topics, not just this one: a request naming a topic makes a broker
	// with auto.create.topics.enable create it, with default settings.
	md, err := client.GetMetadata(nil, true, timeout)
	if err != nil {
		return nil, fmt.Errorf("metadata for topic %q: %w", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError || len(tm.Partitions) == 0 {
		if ok && tm.Error.Code() != kafka.ErrNoError {
			return nil, fmt.Errorf("topic %q: %w", topic, tm.Error)
		}
		return nil, fmt.Errorf("topic %q: %w", topic, ErrNoTopic)
	}
	ids := make([]int32, len(tm.Partitions))
	for i, p := range tm.Partitions {
		ids[i] = p.ID
	}
	return ids, nil
}

// metadataClient is what producers, consumers and admin clients share.
type metadataClient interface {
	GetMetadata(topic *string, allTopics bool, timeoutMs int) (*kafka.Metadata, error)
}

// WaitTopic waits until topic exists on the cluster, for example until
// MirrorMaker has created it on a mirror. It returns the partition ids.
func WaitTopic(ctx context.Context, bootstrap string, conn map[string]string, topic string) ([]int32, error) {
	ad, err := kafka.NewAdminClient(AdminConfig(bootstrap, conn))
	if err != nil {
		return nil, fmt.Errorf("admin client for %s: %w", bootstrap, err)
	}
	defer ad.Close()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ids, err := Partitions(ctx, ad, topic)
		if err == nil {
			return ids, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for topic %q on %s: %w (last: %v)", topic, bootstrap, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func mergeConfig(base, over map[string]string) map[string]string {
	for k, v := range over {
		base[k] = v
	}
	return base
}
