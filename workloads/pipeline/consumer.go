package pipeline

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// groupMember subscribes consumers of one group member to a topic, and
// watches that the member stays in its group.
type groupMember struct {
	topic         string
	fromBeginning bool
	log           *slog.Logger
	ready         kafka.RebalanceCb // calls the caller's ready once, across consumers

	limit time.Duration // see stuck

	// current is the consumer the state below is about. An abandoned
	// consumer's Close runs the rebalance callback on another goroutine:
	// its events are not the member's any more.
	current atomic.Pointer[kafka.Consumer]
	joined  bool      // the current consumer has an assignment (maybe empty)
	since   time.Time // when it subscribed or last lost its assignment
	revoked bool      // the current consumer has lost partitions
	// startErr is why startAtEnd last failed for the current consumer.
	startErr error
}

// newGroupMember watches a member of a group reading topic; limit is how
// long it may stay out of the group (default DefaultOutOfGroupLimit).
func newGroupMember(topic string, ready func(), fromBeginning bool, limit time.Duration, log *slog.Logger) *groupMember {
	if limit <= 0 {
		limit = DefaultOutOfGroupLimit
	}
	return &groupMember{topic: topic, fromBeginning: fromBeginning, log: log, ready: readyCallback(ready), limit: limit}
}

// subscribe subscribes c to the topic. The ready function is called once,
// from within Poll, when the first partitions are assigned. Unless
// fromBeginning, a partition the group has no offset for starts at its end,
// committed at once (see startAtEnd); if that fails, it is logged and the
// partitions are assigned as Kafka's reset policy says.
func (g *groupMember) subscribe(c *kafka.Consumer) error {
	g.joined, g.since, g.revoked, g.startErr = false, time.Now(), false, nil
	g.current.Store(c)
	err := c.Subscribe(g.topic, func(c *kafka.Consumer, ev kafka.Event) error {
		if g.current.Load() != c {
			return nil // an abandoned consumer closing: the library unassigns it
		}
		switch e := ev.(type) {
		case kafka.AssignedPartitions:
			g.joined = true
			if !g.fromBeginning {
				if err := startAtEnd(c, e.Partitions); err != nil {
					g.startErr = err
					g.log.Warn("could not start new partitions at a committed end: a restart before the first alert "+
						"would start at the end again", "topic", g.topic, "err", err)
				}
			}
		case kafka.RevokedPartitions:
			g.joined, g.since, g.revoked = false, time.Now(), true
		}
		return g.ready(c, ev)
	})
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", g.topic, err)
	}
	return nil
}

// open creates a consumer with cm and subscribes it.
func (g *groupMember) open(cm *kafka.ConfigMap) (*kafka.Consumer, error) {
	c, err := kafka.NewConsumer(cm)
	if err != nil {
		return nil, fmt.Errorf("consumer for %v: %w", (*cm)["bootstrap.servers"], err)
	}
	if err := g.subscribe(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// DefaultOutOfGroupLimit is how long a consumer may stay out of its group
// before it is replaced by a new one. librdkafka 2.11 was seen to keep a consumer
// out for good after its session timed out while its broker restarted and
// the broker's Swarm name did not resolve: its requests waited for a group
// coordinator it never found again, while a new consumer joined at once.
// Well above a broker restart (tens of seconds) and the 10 s session.
const DefaultOutOfGroupLimit = 90 * time.Second

// abandon closes a consumer found stuck without waiting for it: its Close
// waits for the group coordinator it could not find (over three minutes
// in the lab), while the member needs a new client now. It has nothing to
// commit that its group would still accept.
func (g *groupMember) abandon(c *kafka.Consumer) {
	g.current.CompareAndSwap(c, nil)
	go func() {
		began := time.Now()
		err := c.Close()
		g.log.Info("the consumer replaced for being out of its group has closed", "took", time.Since(began).Round(time.Second), "err", err)
	}()
}

// stuck tells whether the current consumer has been out of its group for
// longer than its limit.
func (g *groupMember) stuck() bool {
	return !g.joined && time.Since(g.since) > g.limit
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
