package kclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ReadAll reads every message of topic from the beginning up to the end
// offsets it finds at the call, in partition order, and calls fn for each.
// A missing topic is not an error: there is nothing to read.
func ReadAll(ctx context.Context, bootstrap string, conn map[string]string, topic string, fn func(*kafka.Message) error) error {
	return ReadTail(ctx, bootstrap, conn, topic, -1, fn)
}

// ReadTail is ReadAll for at most the last n offsets of each partition
// (n < 0: all of them). Offsets are not messages: transaction markers
// and compaction leave gaps, so fewer messages may come. A read_committed
// reader's position moves past a transaction's marker (librdkafka 1.4 and
// later), so a partition whose last offset is a marker is read to its end.
func ReadTail(ctx context.Context, bootstrap string, conn map[string]string, topic string, n int64, fn func(*kafka.Message) error) error {
	c, err := kafka.NewConsumer(ReaderConfig(bootstrap, conn))
	if err != nil {
		return fmt.Errorf("reader for %s: %w", bootstrap, err)
	}
	defer c.Close()

	parts, err := Partitions(ctx, c, topic)
	if errors.Is(err, ErrNoTopic) {
		return nil // a topic not yet created holds nothing
	}
	if err != nil {
		return fmt.Errorf("reading %s on %s: %w", topic, bootstrap, err)
	}
	remaining := map[int32]int64{} // partition -> end offset
	var assign []kafka.TopicPartition
	for _, p := range parts {
		lo, hi, err := c.QueryWatermarkOffsets(topic, p, 10000)
		if err != nil {
			return fmt.Errorf("offsets of %s[%d] on %s: %w", topic, p, bootstrap, err)
		}
		if n >= 0 {
			lo = max(lo, hi-n)
		}
		if hi > lo {
			remaining[p] = hi
			assign = append(assign, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(lo)})
		}
	}
	if len(assign) == 0 {
		return nil
	}
	if err := c.Assign(assign); err != nil {
		return fmt.Errorf("assign %s on %s: %w", topic, bootstrap, err)
	}
	for len(remaining) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s on %s: %w", topic, bootstrap, err)
		}
		ev := c.Poll(100)
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return fmt.Errorf("reading %s on %s: %w", topic, bootstrap, e.TopicPartition.Error)
			}
			p, off := e.TopicPartition.Partition, int64(e.TopicPartition.Offset)
			end, ok := remaining[p]
			if !ok || off >= end {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
			if off+1 >= end {
				delete(remaining, p)
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("reading %s on %s: %w", topic, bootstrap, e)
			}
		case nil:
			// Compaction and transaction markers leave gaps: a partition whose
			// position passed its end offset is done even without a message there.
			pos, err := c.Position(assign)
			if err != nil {
				continue
			}
			for _, tp := range pos {
				if end, ok := remaining[tp.Partition]; ok && tp.Offset >= 0 && int64(tp.Offset) >= end {
					delete(remaining, tp.Partition)
				}
			}
		}
	}
	return nil
}
