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

	// UntilEnd stops the consumer, committing what it handled, once every
	// partition assigned to it has been read to its end (the last committed
	// transaction): a user's "give me what is there" read.
	UntilEnd bool

	// OutOfGroupLimit is how long the consumer may stay out of its group
	// (after its session timed out, say) before it is replaced by a new
	// client; default DefaultOutOfGroupLimit.
	OutOfGroupLimit time.Duration

	Ready func() // called once the consumer has its partitions
	// OnAlert is called for every alert, in arrival order, once: a copy of
	// an alert already handled (after a restart, the alerts read since the
	// last committed offset come again) is counted, not passed on. An
	// alert's offset is committed only after OnAlert has returned nil; an
	// error stops the consumer (the alert comes again after a restart).
	OnAlert func(Received) error
	// Handled lists the alerts handled before a restart (for example read
	// back from the consumer's output file), so their copies are dropped.
	Handled []AlertRef
}

// AlertRef names one filtered alert: its producer run and visit, its id
// (mb-id) and its rank in the visit (mb-rank). The rank is part of it so
// that a replayed file that repeats an alert within a visit is not taken
// for a copy.
type AlertRef struct {
	Run, ID string
	Visit   int64
	Rank    int
}

// handledAlerts remembers the alerts a consumer handled, for the most
// recent maxDoneVisits visits.
type handledAlerts struct {
	visits map[visitKey]map[rankedID]bool
	order  []visitKey
}

type rankedID struct {
	id   string
	rank int
}

// add records ref and reports whether it is new.
func (h *handledAlerts) add(ref AlertRef) bool {
	k := visitKey{Run: ref.Run, Visit: ref.Visit}
	ids := h.visits[k]
	if ids == nil {
		ids = map[rankedID]bool{}
		h.visits[k] = ids
		h.order = append(h.order, k)
		if len(h.order) > maxDoneVisits {
			delete(h.visits, h.order[0])
			h.order = h.order[1:]
		}
	}
	id := rankedID{ref.ID, ref.Rank}
	if ids[id] {
		return false
	}
	ids[id] = true
	return true
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

	sink, err := newTimingSink(cfg.TimingBootstrap, cfg.Kafka, cfg.TimingTopic, log)
	if err != nil {
		return err
	}
	defer sink.Close(ctx)
	if _, err := kclient.WaitTopic(ctx, cfg.Bootstrap, cfg.Kafka, cfg.Topic); err != nil {
		return err
	}
	// Offsets are stored only once an alert is handled; auto-commit then
	// commits what was stored, and Close the rest.
	member := newGroupMember(cfg.Topic, cfg.Ready, cfg.FromBeginning, cfg.OutOfGroupLimit, log)
	settings := map[string]string{"enable.auto.offset.store": "false"}
	if cfg.UntilEnd {
		settings["enable.partition.eof"] = "true"
	}
	open := func() (*kafka.Consumer, error) {
		return member.open(kclient.ConsumerConfig(cfg.Bootstrap, cfg.Group, cfg.FromBeginning, mergeKafka(settings, cfg.Kafka)))
	}
	atEnd := map[int32]bool{} // with UntilEnd: partitions (of the one topic) read to their end
	c, err := open()
	if err != nil {
		return err
	}
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	handled := &handledAlerts{visits: map[visitKey]map[rankedID]bool{}}
	for _, ref := range cfg.Handled {
		handled.add(ref)
	}
	log.Info("consuming", "bootstrap", cfg.Bootstrap, "topic", cfg.Topic)

	var n, dups int
read:
	for ctx.Err() == nil {
		if member.stuck() {
			// What was handled and not committed comes again, and is
			// dropped as a copy.
			log.Warn("out of the consumer group too long: starting a new consumer", "limit", member.limit)
			member.abandon(c)
			next, err := open()
			if err != nil {
				c = nil // abandoned: closed in the background
				return err
			}
			c = next
		}
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			delete(atEnd, e.TopicPartition.Partition)
			r := Received{Topic: cfg.Topic, Run: headerString(e.Headers, stream.HeaderRun), ID: headerString(e.Headers, stream.HeaderID),
				Arrived: time.Now(), Value: e.Value}
			r.Visit, _ = headerInt(e.Headers, stream.HeaderVisit)
			rank, _ := headerInt(e.Headers, stream.HeaderRank)
			r.Rank = int(rank)
			if r.ID != "" && !handled.add(AlertRef{Run: r.Run, ID: r.ID, Visit: r.Visit, Rank: r.Rank}) {
				if dups++; dups == 1 || dups%100 == 0 {
					log.Info("alert already handled: dropped", "visit", r.Visit, "id", r.ID, "duplicates", dups)
				}
				storeOffset(c, e, log)
				continue
			}
			sink.Emit(timing.Event{Kind: timing.KindConsume, Run: r.Run, Visit: r.Visit, Name: cfg.Name,
				Source: cfg.Topic, End: r.Arrived, Rank: r.Rank, Bytes: int64(len(e.Value))})
			if cfg.OnAlert != nil {
				if err := cfg.OnAlert(r); err != nil {
					return fmt.Errorf("consumer %s handling alert %s of visit %d: %w", cfg.Name, r.ID, r.Visit, err)
				}
			}
			storeOffset(c, e, log)
			if n++; n == 1 || n%1000 == 0 {
				log.Info("alerts received", "total", n, "visit", r.Visit, "rank", r.Rank)
			}
		case kafka.PartitionEOF:
			atEnd[e.Partition] = true
			if cfg.UntilEnd && allAtEnd(c, atEnd) {
				log.Info("read to the end", "topic", cfg.Topic, "alerts", n, "duplicates", dups)
				break read
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("consumer %s reading %s: %w", cfg.Name, cfg.Topic, e)
			}
			log.Warn("kafka", "err", e)
		}
	}
	if _, err := c.Commit(); err != nil && !isNoOffset(err) {
		log.Warn("commit the last offsets", "err", err)
	}
	return nil
}

func storeOffset(c *kafka.Consumer, m *kafka.Message, log *slog.Logger) {
	if _, err := c.StoreMessage(m); err != nil {
		log.Warn("store offset", "at", m.TopicPartition.String(), "err", err)
	}
}

func isNoOffset(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && ke.Code() == kafka.ErrNoOffset
}

// allAtEnd tells whether c has partitions assigned and has read each of
// them to its end (atEnd, by partition).
func allAtEnd(c *kafka.Consumer, atEnd map[int32]bool) bool {
	parts, err := c.Assignment()
	if err != nil || len(parts) == 0 {
		return false
	}
	for _, tp := range parts {
		if !atEnd[tp.Partition] {
			return false
		}
	}
	return true
}
