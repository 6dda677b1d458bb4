package pipeline

import (
	"fmt"
	"sync"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// subscribeReady subscribes c to topic and arranges for ready, if set, to be
// called once, from within Poll, when the first partitions are assigned.
func subscribeReady(c *kafka.Consumer, topic string, ready func()) error {
	if err := c.Subscribe(topic, readyCallback(ready)); err != nil {
		return fmt.Errorf("subscribe to %s: %w", topic, err)
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
