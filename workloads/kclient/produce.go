package kclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ProduceWaiting queues msg on p (its delivery report to reports; nil:
// p's Events channel), waiting while librdkafka's local queue is full by
// serving p's delivery reports (Flush) until there is room or ctx ends.
func ProduceWaiting(ctx context.Context, p *kafka.Producer, msg *kafka.Message, reports chan kafka.Event) error {
	for {
		err := p.Produce(msg, reports)
		var kerr kafka.Error
		if errors.As(err, &kerr) && kerr.Code() == kafka.ErrQueueFull {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.Flush(10)
			continue
		}
		if err != nil {
			return fmt.Errorf("queue message: %w", err)
		}
		return nil
	}
}
