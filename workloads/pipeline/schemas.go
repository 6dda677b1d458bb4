package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
)

// schemaRefreshEvery bounds how often an unknown schema id makes a filter
// re-read the schemas topic; schemaUnknownFor is how long an id still
// unknown after a re-read is dead-lettered without waiting for another.
const (
	schemaRefreshEvery = time.Second
	schemaUnknownFor   = 10 * time.Second
)

// schemaBook keeps a filter's registry in step with the schemas topic that
// the producer writes and MirrorMaker copies.
type schemaBook struct {
	reg       *alert.Registry
	bootstrap string
	conn      map[string]string // connection settings (kclient.ConnSettings)
	topic     string
	last      time.Time
	unknown   map[uint32]time.Time // ids still unknown after a re-read, and when
	skipped   int                  // records of the topic that could not be used
	log       *slog.Logger         // nil: skipped records are only counted
}

// maxUnknown bounds the ids remembered as unknown: a flood of random ids
// must not grow the map without end.
const maxUnknown = 10000

// lookup is the non-blocking learn of a filter: known says whether id is
// known now (the topic re-read if one is due); wait, that it may still come
// with the next re-read, which is not due yet (the alert is parked until
// then). An id unknown after a recent re-read is neither.
func (b *schemaBook) lookup(ctx context.Context, id uint32) (known, wait bool, err error) {
	if b.topic == "" {
		return false, false, nil
	}
	if at, ok := b.unknown[id]; ok && time.Since(at) < schemaUnknownFor {
		return false, false, nil
	}
	if !b.refreshDue() {
		return false, true, nil
	}
	if err := b.refresh(ctx); err != nil {
		return false, false, err
	}
	if _, ok := b.reg.Lookup(id); ok {
		delete(b.unknown, id)
		return true, false, nil
	}
	b.markUnknown(id)
	return false, false, nil
}

// refreshDue reports whether the rate limit allows a re-read now.
func (b *schemaBook) refreshDue() bool { return time.Since(b.last) >= schemaRefreshEvery }

// markUnknown records that id was still unknown after a re-read.
func (b *schemaBook) markUnknown(id uint32) {
	if b.unknown == nil {
		b.unknown = map[uint32]time.Time{}
	}
	if len(b.unknown) >= maxUnknown {
		for k, at := range b.unknown {
			if time.Since(at) >= schemaUnknownFor {
				delete(b.unknown, k)
			}
		}
		if len(b.unknown) >= maxUnknown {
			clear(b.unknown) // all recent: forget them, and re-read once more for each
		}
	}
	b.unknown[id] = time.Now()
}

// learn is called for an id the registry lacks. Unless the id was already
// looked for recently, it waits for the rate limit and re-reads the schemas
// topic: the producer publishes a schema before its alerts, but MirrorMaker
// copies the two topics independently. It reports whether the id is known now.
func (b *schemaBook) learn(ctx context.Context, id uint32) (bool, error) {
	if b.topic == "" {
		return false, nil
	}
	if at, ok := b.unknown[id]; ok && time.Since(at) < schemaUnknownFor {
		return false, nil
	}
	if err := sleepUntil(ctx, b.last.Add(schemaRefreshEvery)); err != nil {
		return false, err
	}
	if err := b.refresh(ctx); err != nil {
		return false, err
	}
	if _, ok := b.reg.Lookup(id); ok {
		delete(b.unknown, id)
		return true, nil
	}
	b.markUnknown(id)
	return false, nil
}

// refresh reads the schemas topic (the schema registry's records, package
// registry) into the registry. A record that cannot be used (not a
// registry record, a schema that does not parse, an id held by another
// schema) is skipped, counted and logged: the schemas after it are still
// learned.
func (b *schemaBook) refresh(ctx context.Context) error {
	if b.topic == "" {
		return nil
	}
	b.last = time.Now()
	return kclient.ReadAll(ctx, b.bootstrap, b.conn, b.topic, func(m *kafka.Message) error {
		rec, err := registry.DecodeRecord(m.Key, m.Value)
		if err == nil && rec.Schema != nil {
			if _, known := b.reg.Lookup(uint32(rec.Schema.ID)); known {
				return nil // an id keeps its first schema: nothing to parse
			}
			err = b.reg.AddJSONAs(uint32(rec.Schema.ID), rec.Schema.Schema)
		}
		if err != nil {
			b.skipped++
			if b.log != nil {
				b.log.Warn("skipped a record of the schemas topic", "at", m.TopicPartition.String(), "skipped", b.skipped, "err", err)
			}
		}
		return nil
	})
}
