package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
)

// registerAttempts bounds how often Register writes a version that a
// concurrent writer took first before it gives up.
const registerAttempts = 5

// Store is the registry's state kept in step with its Kafka topic (one
// partition, compacted), as Confluent's registry keeps _schemas: it reads
// the topic from the beginning and then follows it, and writes each new
// schema version there. A topic has one writer at a time: the registry
// service, or where none runs (minibroker local, produce without
// --registry) the producer. Registrations through one Store are
// serialised; two Stores registering different schemas under one subject
// at the same moment could take the same version, and the later record
// would replace the earlier, as compaction would.
type Store struct {
	topic string
	cl    *kgo.Client
	adm   *kadm.Client
	log   *slog.Logger

	writing      chan struct{} // held by the registration in progress
	producerOpts []kgo.Opt     // of the client each registration writes with

	mu       sync.Mutex
	st       *registry.State
	topicID  kadm.TopicID  // of the topic being read; another means it was created again
	next     int64         // next offset to read
	advanced chan struct{} // closed and replaced whenever next moves
	skipped  int           // records Apply refused
	done     chan struct{}
	cancel   context.CancelFunc
}

// openWait bounds how long Open waits for a topic the broker does not list
// yet.
const openWait = 30 * time.Second

// Open creates the topic if it is missing and starts following it. conn
// holds librdkafka connection settings (kclient.ConnSettings). Close stops it.
func Open(ctx context.Context, bootstrap string, conn map[string]string, topic string, log *slog.Logger) (*Store, error) {
	if err := kclient.EnsureTopics(ctx, bootstrap, conn, kclient.Topic{Name: topic, Partitions: 1, Compacted: true}); err != nil {
		return nil, fmt.Errorf("schema registry topic %s: %w", topic, err)
	}
	opts, err := kclient.FranzOpts(bootstrap, conn)
	if err != nil {
		return nil, fmt.Errorf("schema registry on %s: %w", bootstrap, err)
	}
	cl, err := kgo.NewClient(append(slices.Clone(opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(time.Second),
	)...)
	if err != nil {
		return nil, fmt.Errorf("schema registry client for %s: %w", bootstrap, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Store{
		topic: topic, cl: cl, adm: kadm.NewClient(cl), log: log,
		producerOpts: append(opts,
			kgo.ProducerLinger(0),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.ProducerBatchMaxBytes(registry.MaxRecordBytes+(1<<20)),
		),
		st: registry.NewState(), advanced: make(chan struct{}), done: make(chan struct{}), cancel: cancel,
		writing: make(chan struct{}, 1),
	}
	// A topic just created (here or by another client) may not be in the
	// broker's metadata yet: wait for it a little.
	for deadline := time.Now().Add(openWait); ; {
		if s.topicID, err = s.currentTopicID(ctx); err == nil || time.Now().After(deadline) || sleepCtx(ctx, 200*time.Millisecond) != nil {
			break
		}
	}
	if err != nil {
		cl.Close()
		cancel()
		return nil, err
	}
	go s.follow(runCtx)
	return s, nil
}

// Close stops following the topic and closes the client.
func (s *Store) Close() {
	s.cancel()
	<-s.done
	s.cl.Close()
}

// follow applies the topic's records as they come.
func (s *Store) follow(ctx context.Context) {
	defer close(s.done)
	for {
		fs := s.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			s.log.Warn("reading the schema registry topic", "topic", t, "partition", p, "err", err)
		})
		s.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			rec, err := registry.DecodeRecord(r.Key, r.Value)
			if err == nil {
				err = s.st.Apply(rec)
			}
			if err != nil {
				s.skipped++
				s.log.Warn("skipped a schema registry record", "topic", r.Topic, "offset", r.Offset, "err", err)
			}
			s.next = r.Offset + 1
		})
		close(s.advanced)
		s.advanced = make(chan struct{})
		s.mu.Unlock()
	}
}

// currentTopicID returns the id of the topic as it exists now.
func (s *Store) currentTopicID(ctx context.Context) (kadm.TopicID, error) {
	md, err := s.adm.Metadata(ctx, s.topic)
	if err != nil {
		return kadm.TopicID{}, fmt.Errorf("schema registry topic %s: %w", s.topic, err)
	}
	d, ok := md.Topics[s.topic]
	if !ok || d.Err != nil {
		return kadm.TopicID{}, fmt.Errorf("schema registry topic %s: %v", s.topic, d.Err)
	}
	return d.ID, nil
}

// Sync waits until the Store has read everything the topic held at the
// call, so what it then answers includes every registration made before.
func (s *Store) Sync(ctx context.Context) error {
	id, err := s.currentTopicID(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	read := s.next // before asking for the end: offsets never go back
	s.mu.Unlock()
	ends, err := s.adm.ListEndOffsets(ctx, s.topic)
	if err != nil {
		return fmt.Errorf("end of schema registry topic %s: %w", s.topic, err)
	}
	end, ok := ends.Lookup(s.topic, 0)
	if !ok {
		return fmt.Errorf("end of schema registry topic %s: no partition 0", s.topic)
	}
	if end.Err != nil {
		return fmt.Errorf("end of schema registry topic %s: %w", s.topic, end.Err)
	}
	s.resetIfRecreated(id, end.Offset < read)
	return s.waitFor(ctx, end.Offset)
}

// resetIfRecreated starts over from an empty state when the topic was
// deleted and created again (a hub that lost its data): it has another id
// than the one being read, or (shrunk) it ends before an offset already
// read. What it held is gone; the producer then registers its schemas
// again.
func (s *Store) resetIfRecreated(id kadm.TopicID, shrunk bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == s.topicID && !shrunk {
		return
	}
	s.log.Warn("the schema registry topic was created again: reading it afresh", "topic", s.topic, "read", s.next)
	s.st, s.next, s.topicID = registry.NewState(), 0, id
	// Forget the old topic (its id too) and follow the new one.
	s.cl.PurgeTopicsFromClient(s.topic)
	s.cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{s.topic: {0: kgo.NewOffset().AtStart()}})
}

// waitFor waits until every offset before end is read.
func (s *Store) waitFor(ctx context.Context, end int64) error {
	for {
		s.mu.Lock()
		next, advanced := s.next, s.advanced
		s.mu.Unlock()
		if next >= end {
			return nil
		}
		select {
		case <-advanced:
		case <-s.done:
			return errors.New("schema registry store closed")
		case <-ctx.Done():
			return fmt.Errorf("reading schema registry topic %s to offset %d (at %d): %w", s.topic, end, next, ctx.Err())
		}
	}
}

// Read calls fn with the state, which it must not keep or change.
func (s *Store) Read(fn func(*registry.State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s.st)
}

// Skipped returns how many records of the topic could not be applied.
func (s *Store) Skipped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.skipped
}

// Register registers schema text under subject (id 0: the id the
// registry's rule gives, State.PlanRegister) and returns the version that
// holds it. Registering what is already there writes nothing.
func (s *Store) Register(ctx context.Context, subject, text string, id int) (registry.SchemaValue, error) {
	select {
	case s.writing <- struct{}{}:
		defer func() { <-s.writing }()
	case <-ctx.Done():
		return registry.SchemaValue{}, fmt.Errorf("register %s: waiting for the registration in progress: %w", subject, ctx.Err())
	}
	schema, err := registry.Parse(text)
	if err != nil {
		return registry.SchemaValue{}, err
	}
	lastErr := fmt.Errorf("register %s: versions kept being taken by other writers (%d attempts)", subject, registerAttempts)
	for range registerAttempts {
		if err := s.Sync(ctx); err != nil {
			return registry.SchemaValue{}, err
		}
		var plan registry.Plan
		var err error
		s.Read(func(st *registry.State) { plan, err = st.PlanRegister(subject, schema, text, id) })
		if err != nil || plan.Existing {
			return plan.Value, err
		}
		r, err := s.write(ctx, plan.Value)
		if err != nil {
			lastErr = fmt.Errorf("write %s version %d to schema registry topic %s: %w", subject, plan.Value.Version, s.topic, err)
			if err := sleepCtx(ctx, time.Second); err != nil {
				return registry.SchemaValue{}, lastErr
			}
			continue
		}
		if err := s.waitFor(ctx, r.Offset+1); err != nil {
			return registry.SchemaValue{}, err
		}
		var got registry.SchemaValue
		s.Read(func(st *registry.State) { got, _ = st.Version(subject, plan.Value.Version) })
		if got.ID == plan.Value.ID {
			return got, nil
		}
		// Another writer took this version at the same time: plan again.
	}
	return registry.SchemaValue{}, lastErr
}

// write writes one schema record and returns it with its offset. Each
// write has a client of its own: registrations are rare, and a new client
// knows a topic that was created again since the last one.
func (s *Store) write(ctx context.Context, v registry.SchemaValue) (*kgo.Record, error) {
	cl, err := kgo.NewClient(s.producerOpts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	key, value := registry.SchemaRecord(v)
	return cl.ProduceSync(ctx, &kgo.Record{Topic: s.topic, Partition: 0, Key: key, Value: value}).First()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
