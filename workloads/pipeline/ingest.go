package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// Ingest batching: a transaction commits once it has been open this long
// or holds this many alerts. Alerts become readable on the hub at the
// commit, so the interval bounds the latency the relay adds.
const (
	DefaultIngestCommitInterval = 100 * time.Millisecond
	ingestMaxBatch              = 2000
	// ingestPartitionsEvery is how often the relay looks for partitions
	// added to the upstream topic.
	ingestPartitionsEvery = 30 * time.Second
	// ingestStateVersion is the version of the relay's state record.
	ingestStateVersion = 1
)

// IngestConfig configures the relay of an upstream alert stream into the
// hub (`minibroker ingest`).
type IngestConfig struct {
	Upstream      string            // upstream bootstrap servers
	UpstreamTopic string            // the upstream's alert topic
	UpstreamKafka map[string]string // librdkafka settings for the upstream: SASL, TLS, tuning
	// UpstreamRegistry is the upstream's schema registry, where the relay
	// looks up each schema id it meets.
	UpstreamRegistry *registry.Client

	Bootstrap  string // the hub
	Topic      string // hub topic written; default stream.AlertsTopic
	Partitions int    // of Topic, when the relay creates it; default stream.DefaultPartitions
	// Registry is ours, where each upstream schema is registered under its
	// upstream id; nil: the relay writes SchemasTopic itself, as the
	// producer does where no registry service runs.
	Registry     *registry.Client
	SchemasTopic string // default stream.SchemasTopic
	StateTopic   string // default stream.IngestStateTopic
	// TimingTopic is created on the hub for the filters' and consumers'
	// timing events, as the producer does where one runs ("": none).
	TimingTopic string
	// TransactionalID is the relay's transactional.id on the hub; default
	// stream.IngestTransactionalID. One relay per hub.
	TransactionalID string
	// FromBeginning starts at the upstream's oldest alert when the relay
	// has no saved offsets; otherwise it starts at the upstream's end.
	FromBeginning bool
	// CommitInterval is how long a transaction collects alerts before it
	// commits; default DefaultIngestCommitInterval.
	CommitInterval time.Duration

	Kafka map[string]string // librdkafka settings for the hub
	Log   *slog.Logger
	// Ready, if set, is called once the relay reads the upstream.
	Ready func()
}

func (c *IngestConfig) defaults() error {
	switch {
	case c.Upstream == "" || c.UpstreamTopic == "":
		return errors.New("ingest: the upstream's bootstrap servers and topic are required")
	case c.UpstreamRegistry == nil:
		return errors.New("ingest: the upstream's schema registry is required, to import the schemas of its alerts")
	case c.Bootstrap == "":
		return errors.New("ingest: the hub's bootstrap servers are required")
	}
	c.Topic = orDefault(c.Topic, stream.AlertsTopic)
	if c.Partitions <= 0 {
		c.Partitions = stream.DefaultPartitions
	}
	c.SchemasTopic = orDefault(c.SchemasTopic, stream.SchemasTopic)
	c.StateTopic = orDefault(c.StateTopic, stream.IngestStateTopic)
	c.TransactionalID = orDefault(c.TransactionalID, stream.IngestTransactionalID)
	if c.CommitInterval <= 0 {
		c.CommitInterval = DefaultIngestCommitInterval
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// Ingest copies the upstream topic into the hub's alert topic until ctx
// ends, exactly once: each transaction on the hub holds a batch of alerts
// and a record, in the compacted StateTopic, of the upstream offsets they
// reach; a restarted relay resumes from the last committed record, so an
// alert is neither lost nor copied twice across crashes. Keys, values,
// headers and record timestamps are kept; upstream partition p goes to hub
// partition p modulo the hub's count, which keeps each partition's order.
//
// Before an alert in the Confluent wire format is copied, its schema id is
// looked up in the upstream registry and registered in ours under the same
// id. An alert that is not in the wire format, or whose schema cannot be
// imported, is copied all the same and logged: the filters dead-letter it.
func Ingest(ctx context.Context, cfg IngestConfig) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	g := &ingestRun{cfg: cfg, log: cfg.Log.With("upstream", cfg.Upstream, "upstream_topic", cfg.UpstreamTopic),
		schemas: map[uint32]schemaImport{}}
	topics := []kclient.Topic{{Name: cfg.Topic, Partitions: cfg.Partitions},
		{Name: cfg.StateTopic, Partitions: 1, Compacted: true, Config: stateTopicConfig}}
	if cfg.TimingTopic != "" {
		topics = append(topics, kclient.Topic{Name: cfg.TimingTopic, Partitions: 1})
	}
	if err := kclient.EnsureTopics(ctx, cfg.Bootstrap, cfg.Kafka, topics...); err != nil {
		return err
	}
	parts, err := kclient.WaitTopic(ctx, cfg.Bootstrap, cfg.Kafka, cfg.Topic)
	if err != nil {
		return err
	}
	g.hubPartitions = int32(len(parts))
	if cfg.Registry == nil {
		if g.store, err = service.Open(ctx, cfg.Bootstrap, cfg.Kafka, cfg.SchemasTopic, slog.New(slog.DiscardHandler)); err != nil {
			return err
		}
		defer g.store.Close()
	}
	for {
		err := g.session(ctx)
		if ctx.Err() != nil && errors.Is(err, errResume) {
			return nil // stopping: what was not committed is copied by the next process
		}
		if err == nil || !errors.Is(err, errResume) {
			return err
		}
		g.log.Warn("resuming from the last committed transaction", "err", err)
		if sleepUntil(ctx, time.Now().Add(resumeDelay)) != nil {
			return nil
		}
	}
}

type ingestRun struct {
	cfg           IngestConfig
	log           *slog.Logger
	store         *service.Store // ours, when no registry service is given
	hubPartitions int32
	// schemas remembers each schema id met: imported, or why not (so an
	// id that cannot be imported is tried again only after a while).
	schemas map[uint32]schemaImport
	// next is each upstream partition's next offset to copy, as of the
	// open transaction.
	next     map[int32]int64
	lastTxn  *kclient.TxnRecord
	copied   int64
	unframed int64 // records copied that are not in the wire format
	batch    int   // alerts in the open transaction
}

type schemaImport struct {
	ok    bool
	retry time.Time // not imported: when to try again
}

// ingestState is the relay's record in its state topic.
type ingestState struct {
	Version int    `json:"version"`
	Topic   string `json:"topic"` // the upstream topic the offsets are of
	// Offsets holds each upstream partition's next offset to copy.
	Offsets map[int32]int64 `json:"offsets"`
}

func (g *ingestRun) session(ctx context.Context) error {
	cfg := g.cfg
	out, err := kafka.NewProducer(kclient.TransactionalProducerConfig(cfg.Bootstrap, cfg.TransactionalID,
		mergeKafka(map[string]string{"linger.ms": "5"}, cfg.Kafka)))
	if err != nil {
		return fmt.Errorf("hub producer for %s: %w", cfg.Bootstrap, err)
	}
	go drainEvents(out, g.log)
	defer out.Close()
	if g.lastTxn == nil {
		last, err := lastTxn(ctx, cfg.Bootstrap, cfg.Kafka, cfg.TransactionalID)
		if err != nil {
			return err
		}
		g.lastTxn = &last
	}
	if err := retryTxn(ctx, "init transactions", func(ctx context.Context) error { return out.InitTransactions(ctx) }); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, txnStepTimeout)
	closed, err := kclient.CloseHanging(sctx, cfg.Bootstrap, cfg.Kafka, cfg.TransactionalID, "", *g.lastTxn, []string{cfg.Topic, cfg.StateTopic})
	cancel()
	for _, c := range closed {
		g.log.Warn(LogClosedHanging, "partition", c.String())
	}
	if err != nil {
		return fmt.Errorf("%w: closing hanging transactions of %s: %w", errResume, cfg.TransactionalID, err)
	}
	g.lastTxn = nil

	sctx, cancel = context.WithTimeout(ctx, txnStepTimeout)
	data, err := readState(sctx, cfg.Bootstrap, cfg.Kafka, cfg.StateTopic)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %w", errResume, err)
	}
	var st ingestState
	if data != nil {
		if err := json.Unmarshal(data, &st); err != nil || st.Version != ingestStateVersion {
			return fmt.Errorf("ingest state in %s: version %d, error %v; this relay reads version %d", cfg.StateTopic, st.Version, err, ingestStateVersion)
		}
		if st.Topic != cfg.UpstreamTopic {
			g.log.Warn("saved offsets are of another upstream topic: starting afresh", "saved_topic", st.Topic)
			st.Offsets = nil
		}
	}
	g.next = map[int32]int64{}
	for p, o := range st.Offsets {
		g.next[p] = o
	}

	c, err := kafka.NewConsumer(kclient.TransactionalConsumerConfig(cfg.Upstream, stream.IngestGroup, cfg.FromBeginning, cfg.UpstreamKafka))
	if err != nil {
		return fmt.Errorf("upstream consumer for %s: %w", cfg.Upstream, err)
	}
	defer c.Close()
	assigned := map[int32]bool{}
	if err := g.assignNew(ctx, c, assigned, data == nil); err != nil {
		return err
	}
	g.log.Info("relaying", "hub", cfg.Bootstrap, "topic", cfg.Topic, "partitions", len(assigned), "resumed", data != nil)
	if cfg.Ready != nil {
		cfg.Ready()
		g.cfg.Ready = nil
	}

	if err := out.BeginTransaction(); err != nil {
		return fmt.Errorf("%w: begin: %w", errResume, err)
	}
	var opened time.Time // when the open transaction got its first alert
	progress := time.NewTicker(progressEvery)
	defer progress.Stop()
	partitions := time.NewTicker(ingestPartitionsEvery)
	defer partitions.Stop()
	for ctx.Err() == nil {
		select {
		case <-progress.C:
			g.log.Info("progress", "alerts_copied", g.copied, "schemas", len(g.schemas))
		case <-partitions.C:
			if err := g.assignNew(ctx, c, assigned, true); err != nil {
				g.log.Warn("looking for new upstream partitions", "err", err)
			}
		default:
		}
		wait := 100 * time.Millisecond
		if !opened.IsZero() {
			wait = max(min(wait, time.Until(opened.Add(cfg.CommitInterval))), time.Millisecond)
		}
		switch e := c.Poll(int(wait.Milliseconds())).(type) {
		case *kafka.Message:
			if opened.IsZero() {
				opened = time.Now()
			}
			if err := g.copy(ctx, out, e); err != nil {
				return g.abort(ctx, out, err)
			}
		case kafka.Error:
			switch {
			case e.IsFatal():
				return fmt.Errorf("%w: consuming %s on %s: %w", errResume, cfg.UpstreamTopic, cfg.Upstream, e)
			case e.Code() == kafka.ErrGroupAuthorizationFailed:
				// librdkafka looks up the coordinator of group.id even for
				// a consumer that assigns its partitions and commits
				// nothing, as the relay does: an upstream that grants no
				// group is expected.
				g.log.Debug("upstream kafka", "err", e)
			default:
				g.log.Warn("upstream kafka", "err", e)
			}
		}
		if !opened.IsZero() && (time.Since(opened) >= cfg.CommitInterval || g.batch >= ingestMaxBatch) {
			if err := g.commit(ctx, out); err != nil {
				return err
			}
			opened = time.Time{}
			if err := out.BeginTransaction(); err != nil {
				return fmt.Errorf("%w: begin: %w", errResume, err)
			}
		}
	}
	if opened.IsZero() {
		return nil
	}
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if err := g.commit(stop, out); err != nil {
		return fmt.Errorf("last commit before stopping: %w", err)
	}
	return nil
}

// assignNew assigns the upstream partitions not yet assigned: at their
// saved offset, or else at the start FromBeginning says (fresh) or at their
// beginning (a partition added to the upstream while the relay ran).
func (g *ingestRun) assignNew(ctx context.Context, c *kafka.Consumer, assigned map[int32]bool, fresh bool) error {
	topic := g.cfg.UpstreamTopic
	parts, err := kclient.WaitTopic(ctx, g.cfg.Upstream, g.cfg.UpstreamKafka, topic)
	if err != nil {
		return fmt.Errorf("upstream topic %s on %s: %w", topic, g.cfg.Upstream, err)
	}
	var add []kafka.TopicPartition
	for _, p := range parts {
		if assigned[p] {
			continue
		}
		off, saved := g.next[p]
		start := kafka.Offset(off)
		switch {
		case saved:
		case fresh && !g.cfg.FromBeginning && len(assigned) == 0:
			start = kafka.OffsetEnd
		default:
			start = kafka.OffsetBeginning
		}
		add = append(add, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: start})
		assigned[p] = true
	}
	if len(add) == 0 {
		return nil
	}
	if err := c.IncrementalAssign(add); err != nil {
		return fmt.Errorf("assign upstream partitions of %s: %w", topic, err)
	}
	return nil
}

// copy imports the alert's schema if it is new, then queues the alert in
// the open transaction.
func (g *ingestRun) copy(ctx context.Context, out *kafka.Producer, m *kafka.Message) error {
	if id, _, err := alert.ParseWire(m.Value); err == nil {
		if err := g.importSchema(ctx, id); err != nil {
			return err
		}
	} else if g.unframed++; g.unframed == 1 || g.unframed%1000 == 0 {
		g.log.Warn("alert not in the Confluent wire format: copied as it is (filters dead-letter it)",
			"at", m.TopicPartition.String(), "err", err, "not_framed", g.unframed)
	}
	topic := g.cfg.Topic
	msg := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: m.TopicPartition.Partition % g.hubPartitions},
		Key:            m.Key, Value: m.Value, Headers: m.Headers,
	}
	if m.TimestampType != kafka.TimestampNotAvailable {
		msg.Timestamp = m.Timestamp
	}
	if err := produceRetry(ctx, out, msg, nil); err != nil {
		return fmt.Errorf("queue alert for %s: %w", topic, err)
	}
	g.next[m.TopicPartition.Partition] = int64(m.TopicPartition.Offset) + 1
	g.batch++
	g.copied++
	return nil
}

// schemaRetry is how long the relay waits before looking up again a
// schema id it could not import.
const schemaRetry = time.Minute

// importSchema makes sure our registry holds schema id as the upstream's
// does. Only a failure to reach either registry (or ctx ending) is an
// error, which aborts the transaction; an id the upstream does not know or
// ours refuses is logged and its alerts copied anyway.
func (g *ingestRun) importSchema(ctx context.Context, id uint32) error {
	if s, seen := g.schemas[id]; seen && (s.ok || time.Now().Before(s.retry)) {
		return nil
	}
	text, err := fetchRetry(ctx, g.cfg.UpstreamRegistry, int(id))
	var ae *registry.APIError
	if errors.As(err, &ae) && ae.Status < 500 {
		g.log.Error("the upstream registry has no such schema: its alerts are copied and will be dead-lettered", "id", id, "err", err)
		g.schemas[id] = schemaImport{retry: time.Now().Add(schemaRetry)}
		return nil
	}
	if err != nil {
		return fmt.Errorf("schema %d from the upstream registry: %w", id, err)
	}
	subject := registry.ValueSubject(g.cfg.Topic)
	var got int
	if g.store != nil {
		var v registry.SchemaValue
		v, err = g.store.Register(ctx, subject, text, int(id))
		got = v.ID
	} else {
		got, err = registerRetry(ctx, g.cfg.Registry, subject, text, int(id))
	}
	if errors.As(err, &ae) && ae.Status < 500 || errors.Is(err, registry.ErrIDTaken) || errors.Is(err, registry.ErrInvalidSchema) {
		g.log.Error("our registry refused the upstream's schema: its alerts are copied and will be dead-lettered", "id", id, "err", err)
		g.schemas[id] = schemaImport{retry: time.Now().Add(schemaRetry)}
		return nil
	}
	if err != nil {
		return fmt.Errorf("import schema %d: %w", id, err)
	}
	if got != int(id) {
		g.log.Error("our registry holds the upstream's schema under another id: its alerts will be dead-lettered", "id", id, "ours", got)
	}
	g.log.Info("imported schema", "id", id, "subject", subject)
	g.schemas[id] = schemaImport{ok: got == int(id), retry: time.Now().Add(schemaRetry)}
	return nil
}

// fetchRetry reads schema id from reg, retrying while the registry cannot
// be reached or answers a server error, as registerRetry does.
func fetchRetry(ctx context.Context, reg *registry.Client, id int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, registryWait)
	defer cancel()
	for {
		text, err := reg.Schema(ctx, id)
		var ae *registry.APIError
		if err == nil || (errors.As(err, &ae) && ae.Status < http.StatusInternalServerError) {
			return text, err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(registryRetry):
		}
	}
}

// commit ends the open transaction with the state record of the offsets
// it reaches.
func (g *ingestRun) commit(ctx context.Context, out *kafka.Producer) error {
	state, err := json.Marshal(ingestState{Version: ingestStateVersion, Topic: g.cfg.UpstreamTopic, Offsets: g.next})
	if err != nil {
		return fmt.Errorf("encode the ingest state: %w", err)
	}
	topic := g.cfg.StateTopic
	if err := produceRetry(ctx, out, &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(stateKey), Value: state,
	}, nil); err != nil {
		return g.abort(ctx, out, err)
	}
	if err := retryTxn(ctx, "commit", func(ctx context.Context) error { return out.CommitTransaction(ctx) }); err != nil {
		return g.abort(ctx, out, err)
	}
	g.batch = 0
	return nil
}

// abort aborts the open transaction and ends the session: the next one
// resumes from the last committed offsets.
func (g *ingestRun) abort(ctx context.Context, out *kafka.Producer, cause error) error {
	g.batch = 0
	if err := fencedError(out); err != nil {
		return fmt.Errorf("the relay was replaced by a newer one with transactional id %s: %w", g.cfg.TransactionalID, err)
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txnStepTimeout)
	defer cancel()
	if err := out.AbortTransaction(actx); err != nil {
		g.log.Warn("abort transaction", "err", err) // the next session's producer aborts it
	}
	return fmt.Errorf("%w: %w", errResume, cause)
}
