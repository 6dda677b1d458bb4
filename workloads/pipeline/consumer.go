package pipeline

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// subscribeReady subscribes c to topic and arranges for ready, if set, to be
// called once, from within Poll, when the first partitions are assigned.
// Unless fromBeginning, a partition the group has no offset for starts at
// its end, committed at once (see startAtEnd); if that fails, it is
// logged and the partitions are assigned as Kafka's reset policy says.
func subscribeReady(c *kafka.Consumer, topic string, ready func(), fromBeginning bool, log *slog.Logger) error {
	once := readyCallback(ready)
	err := c.Subscribe(topic, func(c *kafka.Consumer, ev kafka.Event) error {
		if a, ok := ev.(kafka.AssignedPartitions); ok && !fromBeginning {
			if err := startAtEnd(c, a.Partitions); err != nil {
				log.Warn("could not start new partitions at a committed end: a restart before the first alert "+
					"would start at the end again", "topic", topic, "err", err)
			}
		}
		return once(c, ev)
	})
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	return nil
}

// startAtEndTimeout bounds each call of startAtEnd to the group
// coordinator and the partition leaders.
const startAtEndTimeout = 30 * time.Second

// startAtEnd assigns parts, starting each partition the group has no
// committed offset for explicitly at its end, and commits those starts at
// once. Otherwise a new group stopped before its first record would start
// at the end again on restart, skipping whatever arrived in between. Call
// it from the rebalance callback, on AssignedPartitions.
func startAtEnd(c *kafka.Consumer, parts []kafka.TopicPartition) error {
	if len(parts) == 0 {
		return nil
	}
	ms := int(startAtEndTimeout.Milliseconds())
	committed, err := c.Committed(parts, ms)
	if err != nil {
		return fmt.Errorf("committed offsets: %w", err)
	}
	var starts []kafka.TopicPartition
	for i, tp := range committed {
		if tp.Offset >= 0 {
			continue
		}
		_, end, err := c.QueryWatermarkOffsets(*tp.Topic, tp.Partition, ms)
		if err != nil {
			return fmt.Errorf("end offset of %s-%d: %w", *tp.Topic, tp.Partition, err)
		}
		parts[i].Offset = kafka.Offset(end)
		starts = append(starts, parts[i])
	}
	if err := c.Assign(parts); err != nil {
		return fmt.Errorf("assign: %w", err)
	}
	if len(starts) > 0 {
		if _, err := c.CommitOffsets(starts); err != nil {
			return fmt.Errorf("commit where new partitions start: %w", err)
		}
	}
	return nil
}

// readyCallback returns a rebalance callback that calls ready, if set, once
// the first partitions are assigned.
func readyCallback(ready func()) kafka.RebalanceCb {
	var once sync.Once
	return func(_ *kafka.Consumer, ev kafka.Event) error {
		if a, ok := ev.(kafka.AssignedPartitions); ok && len(a.Partitions) > 0 && ready != nil {
			once.Do(ready)
		}
		return nil
	}
}
