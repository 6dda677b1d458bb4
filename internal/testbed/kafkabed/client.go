package kafkabed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// pollInterval paces every readiness loop in this package.
const pollInterval = 100 * time.Millisecond

// newAdmin returns a confluent-kafka-go admin client for bootstrap.
func newAdmin(bootstrap string) (*kafka.AdminClient, error) {
	a, err := kafka.NewAdminClient(&kafka.ConfigMap{
		"bootstrap.servers":    bootstrap,
		"log.connection.close": false,
	})
	if err != nil {
		return nil, fmt.Errorf("kafkabed: admin client for %s: %w", bootstrap, err)
	}
	return a, nil
}

// topicConfig returns the non-default configs of topic at bootstrap.
func topicConfig(ctx context.Context, bootstrap, topic string) (map[string]string, error) {
	a, err := newAdmin(bootstrap)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	res, err := a.DescribeConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic}})
	if err == nil && len(res) == 1 && res[0].Error.Code() != kafka.ErrNoError {
		err = res[0].Error
	}
	if err != nil {
		return nil, fmt.Errorf("kafkabed: describe configs of %q on %s: %w", topic, bootstrap, err)
	}
	out := map[string]string{}
	for name, e := range res[0].Config {
		if e.Source != kafka.ConfigSourceDefault {
			out[name] = e.Value
		}
	}
	return out, nil
}

// sleepCtx waits for d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// waitTCP waits until addr accepts a TCP connection.
func waitTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// waitCluster waits until the cluster at bootstrap describes itself with
// clusterID and at least one broker. In KRaft that means the broker is
// registered, unfenced and serving requests; checking the id also rules out a
// foreign process that happens to listen on the same port.
func waitCluster(ctx context.Context, bootstrap, clusterID string) error {
	a, err := newAdmin(bootstrap)
	if err != nil {
		return err
	}
	defer a.Close()
	var last error
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		res, err := a.DescribeCluster(callCtx)
		cancel()
		switch {
		case err != nil:
			last = err
		case res.ClusterID == nil || *res.ClusterID != clusterID:
			last = fmt.Errorf("%s answers for cluster %v, not %s", bootstrap, res.ClusterID, clusterID)
		case len(res.Nodes) > 0:
			return nil
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return errors.Join(err, last)
		}
	}
}

// describeTopic returns topic's partition count at bootstrap, or 0 if the
// topic does not exist or a partition has no leader yet. It uses
// DescribeTopics, never a Metadata request naming the topic: librdkafka's
// admin client is a producer handle, and its metadata requests make the
// broker auto-create the topic (auto.create.topics.enable defaults to true),
// which would pre-empt MirrorMaker creating it with the source's configs.
func describeTopic(ctx context.Context, a *kafka.AdminClient, topic string) (int, error) {
	callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := a.DescribeTopics(callCtx, kafka.NewTopicCollectionOfTopicNames([]string{topic}))
	if err != nil {
		return 0, err
	}
	if len(res.TopicDescriptions) != 1 {
		return 0, fmt.Errorf("describe %q: %d results", topic, len(res.TopicDescriptions))
	}
	td := res.TopicDescriptions[0]
	if td.Error.Code() == kafka.ErrUnknownTopicOrPart {
		return 0, nil
	}
	if td.Error.Code() != kafka.ErrNoError {
		return 0, td.Error
	}
	for _, p := range td.Partitions {
		if p.Leader == nil {
			return 0, nil
		}
	}
	return len(td.Partitions), nil
}

// waitTopic waits until topic exists at bootstrap with all partitions led,
// and returns its partition count.
func waitTopic(ctx context.Context, bootstrap, topic string) (int, error) {
	a, err := newAdmin(bootstrap)
	if err != nil {
		return 0, err
	}
	defer a.Close()
	var last error
	for {
		n, err := describeTopic(ctx, a, topic)
		if err == nil && n > 0 {
			return n, nil
		}
		if err != nil {
			last = err
		}
		if err := sleepCtx(ctx, pollInterval); err != nil {
			return 0, errors.Join(err, last)
		}
	}
}

// createTopic creates topic at bootstrap with replication factor 1; an
// existing topic is not an error.
func createTopic(ctx context.Context, bootstrap, topic string, partitions int, configs map[string]string) error {
	a, err := newAdmin(bootstrap)
	if err != nil {
		return err
	}
	defer a.Close()
	res, err := a.CreateTopics(ctx, []kafka.TopicSpecification{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1, Config: configs,
	}})
	if err != nil {
		return fmt.Errorf("kafkabed: create topic %q on %s: %w", topic, bootstrap, err)
	}
	for _, r := range res {
		if c := r.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrTopicAlreadyExists {
			return fmt.Errorf("kafkabed: create topic %q on %s: %w", topic, bootstrap, r.Error)
		}
	}
	return nil
}

// produceOne writes one record to topic, keyed by its value (so compacted
// topics accept it), and waits for its acknowledgement.
func produceOne(ctx context.Context, bootstrap, topic string, value []byte) error {
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers":    bootstrap,
		"acks":                 "all",
		"log.connection.close": false,
	})
	if err != nil {
		return fmt.Errorf("kafkabed: producer for %s: %w", bootstrap, err)
	}
	defer p.Close()
	events := make(chan kafka.Event, 1)
	msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Key: value, Value: value}
	if err := p.Produce(msg, events); err != nil {
		return fmt.Errorf("kafkabed: produce to %q on %s: %w", topic, bootstrap, err)
	}
	select {
	case ev := <-events:
		if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
			return fmt.Errorf("kafkabed: produce to %q on %s: %w", topic, bootstrap, m.TopicPartition.Error)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafkabed: produce to %q on %s: %w", topic, bootstrap, ctx.Err())
	}
}

// topicReader reads every partition of one topic with a group-less
// consumer (manual assignment, no commits).
type topicReader struct {
	c         *kafka.Consumer
	bootstrap string
	topic     string
}

// newTopicReader assigns all partitions of topic at bootstrap, starting at
// their current end (fromEnd) or at their beginning.
func newTopicReader(bootstrap, topic string, partitions int, fromEnd bool) (*topicReader, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":    bootstrap,
		"group.id":             "kafkabed-reader",
		"enable.auto.commit":   false,
		"fetch.wait.max.ms":    10,
		"log.connection.close": false,
	})
	if err != nil {
		return nil, fmt.Errorf("kafkabed: consumer for %s: %w", bootstrap, err)
	}
	tps := make([]kafka.TopicPartition, partitions)
	for i := range tps {
		tps[i] = kafka.TopicPartition{Topic: &topic, Partition: int32(i), Offset: kafka.OffsetBeginning}
		if fromEnd {
			// An explicit offset, not OffsetEnd: that one is resolved lazily
			// and could skip a record produced right after Assign.
			_, high, err := c.QueryWatermarkOffsets(topic, int32(i), 5000)
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("kafkabed: end offset of %s/%d on %s: %w", topic, i, bootstrap, err)
			}
			tps[i].Offset = kafka.Offset(high)
		}
	}
	if err := c.Assign(tps); err != nil {
		c.Close()
		return nil, fmt.Errorf("kafkabed: assign %q on %s: %w", topic, bootstrap, err)
	}
	return &topicReader{c: c, bootstrap: bootstrap, topic: topic}, nil
}

// await polls until a record whose value equals want arrives.
func (r *topicReader) await(ctx context.Context, want []byte) error {
	for ctx.Err() == nil {
		m, err := r.c.ReadMessage(100 * time.Millisecond)
		var kerr kafka.Error
		switch {
		case err == nil:
			if string(m.Value) == string(want) {
				return nil
			}
		case errors.As(err, &kerr) && (kerr.IsTimeout() || !kerr.IsFatal()):
			// keep polling
		default:
			return fmt.Errorf("kafkabed: read %q on %s: %w", r.topic, r.bootstrap, err)
		}
	}
	return ctx.Err()
}

// Close closes the consumer.
func (r *topicReader) Close() { _ = r.c.Close() }
