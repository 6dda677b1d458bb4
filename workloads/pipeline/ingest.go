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
	return runSessions(ctx, g.log, g.session)
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
	tooLarge int64 // records skipped, too large for the hub
	batch    int   // alerts in the open transaction
	// warnedPartitions: the upstream's extra partitions were logged.
	warnedPartitions bool
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

	// Every partition starts at an offset the relay chose and saved: the
	// reset policy (earliest) applies only to an offset the upstream
	// deleted meanwhile, which assignNew logs.
	c, err := kafka.NewConsumer(kclient.TransactionalConsumerConfig(cfg.Upstream, stream.IngestGroup, true, cfg.UpstreamKafka))
	if err != nil {
		return fmt.Errorf("upstream consumer for %s: %w", cfg.Upstream, err)
	}
	defer c.Close()
	if err := out.BeginTransaction(); err != nil {
		return fmt.Errorf("%w: begin: %w", errResume, err)
	}
	assigned := map[int32]bool{}
	chosen, err := g.assignNew(ctx, c, assigned, len(g.next) == 0)
	if err != nil {
		return g.abort(ctx, out, err)
	}
	if chosen {
		// Saved at once: a relay stopped before its first alert must
		// resume where it started, not at a later end.
		if err := g.commitAndBegin(ctx, out); err != nil {
			return err
		}
	}
	g.log.Info("relaying", "hub", cfg.Bootstrap, "topic", cfg.Topic, "partitions", len(assigned), "resumed", data != nil)
	if cfg.Ready != nil {
		cfg.Ready()
		g.cfg.Ready = nil
	}

	var opened time.Time // when the open transaction got its first alert
	progress := time.NewTicker(progressEvery)
	defer progress.Stop()
	partitions := time.NewTicker(ingestPartitionsEvery)
	defer partitions.Stop()
	for ctx.Err() == nil {
		select {
		case <-progress.C:
			g.log.Info("progress", "alerts_copied", g.copied, "schemas", len(g.schemas), "not_framed", g.unframed, "too_large", g.tooLarge)
		case <-partitions.C:
			if !opened.IsZero() {
				break // not with alerts in a transaction: the lookup may take a while
			}
			if _, err := g.assignNew(ctx, c, assigned, false); err != nil {
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
			if g.needsImport(e) && !opened.IsZero() {
				// Importing may wait for a registry longer than a
				// transaction may stay open: commit what is copied first.
				if err := g.commitAndBegin(ctx, out); err != nil {
					return err
				}
				opened = time.Time{}
			}
			if err := g.importSchemaOf(ctx, e); err != nil {
				return g.abort(ctx, out, err)
			}
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
			if err := g.commitAndBegin(ctx, out); err != nil {
				return err
			}
			opened = time.Time{}
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

// upstreamLookup bounds a lookup of the upstream topic's partitions.
const upstreamLookup = 30 * time.Second

// assignNew assigns the upstream partitions not yet assigned, each at an
// offset it resolves and records in g.next: the saved one; else, for a
// relay with no saved offsets (fresh), the partition's end, or its
// beginning with FromBeginning; else (a partition added to the upstream
// since) its beginning. A saved offset the upstream has deleted meanwhile
// (retention) is logged, with the count lost, and replaced by the
// beginning. It reports whether it chose an offset that is not saved.
func (g *ingestRun) assignNew(ctx context.Context, c *kafka.Consumer, assigned map[int32]bool, fresh bool) (chosen bool, err error) {
	topic := g.cfg.UpstreamTopic
	lctx, cancel := context.WithTimeout(ctx, upstreamLookup)
	parts, err := kclient.WaitTopic(lctx, g.cfg.Upstream, g.cfg.UpstreamKafka, topic)
	cancel()
	if err != nil {
		return false, fmt.Errorf("upstream topic %s on %s not found within %v (check the bootstrap servers, the credentials, "+
			"the topic's name and that the user may describe and read it): %w", topic, g.cfg.Upstream, upstreamLookup, err)
	}
	if int32(len(parts)) > g.hubPartitions && !g.warnedPartitions {
		g.warnedPartitions = true
		g.log.Warn("the upstream topic has more partitions than the hub's: two upstream partitions share a hub partition, and "+
			"filters may close a visit of alerts without mb-* headers before its last alert (give the hub at least as many)",
			"upstream_partitions", len(parts), "hub_partitions", g.hubPartitions)
	}
	var add []kafka.TopicPartition
	for _, p := range parts {
		if assigned[p] {
			continue
		}
		lo, hi, err := c.QueryWatermarkOffsets(topic, p, int(upstreamLookup.Milliseconds()))
		if err != nil {
			return false, fmt.Errorf("offsets of upstream partition %s[%d]: %w", topic, p, err)
		}
		off, saved := g.next[p]
		switch {
		case saved && off < lo:
			g.log.Error("the upstream deleted alerts before the relay copied them (its retention): starting at its oldest",
				"partition", p, "saved_offset", off, "oldest", lo, "lost", lo-off)
			off = lo
		case saved && off > hi:
			g.log.Error("the saved offset is past the upstream partition's end (a topic created again?): starting at its beginning",
				"partition", p, "saved_offset", off, "end", hi)
			off = lo
		case saved:
		case fresh && !g.cfg.FromBeginning:
			off, chosen = hi, true
		default:
			off, chosen = lo, true
		}
		g.next[p] = off
		add = append(add, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(off)})
		assigned[p] = true
	}
	if len(add) == 0 {
		return chosen, nil
	}
	if err := c.IncrementalAssign(add); err != nil {
		return false, fmt.Errorf("assign upstream partitions of %s: %w", topic, err)
	}
	return chosen, nil
}

// copy queues the alert in the open transaction. One too large for the
// hub's producer is skipped and logged, never retried for ever.
func (g *ingestRun) copy(ctx context.Context, out *kafka.Producer, m *kafka.Message) error {
	if _, _, err := alert.ParseWire(m.Value); err != nil {
		if g.unframed++; g.unframed == 1 || g.unframed%1000 == 0 {
			g.log.Warn("alert not in the Confluent wire format: copied as it is (filters dead-letter it)",
				"at", m.TopicPartition.String(), "err", err, "not_framed", g.unframed)
		}
	}
	topic := g.cfg.Topic
	msg := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: m.TopicPartition.Partition % g.hubPartitions},
		Key:            m.Key, Value: m.Value, Headers: m.Headers,
	}
	if m.TimestampType != kafka.TimestampNotAvailable {
		msg.Timestamp = m.Timestamp
	}
	err := kclient.ProduceWaiting(ctx, out, msg, nil)
	var ke kafka.Error
	switch {
	case errors.As(err, &ke) && ke.Code() == kafka.ErrMsgSizeTooLarge:
		g.tooLarge++
		g.log.Error("alert too large for the hub: skipped", "at", m.TopicPartition.String(), "bytes", len(m.Value),
			"limit", kclient.MaxMessageBytes, "too_large", g.tooLarge)
	case err != nil:
		return fmt.Errorf("queue alert for %s: %w", topic, err)
	default:
		g.batch++
		g.copied++
	}
	g.next[m.TopicPartition.Partition] = int64(m.TopicPartition.Offset) + 1
	return nil
}

// needsImport reports whether the alert's schema id is one to look up now.
func (g *ingestRun) needsImport(m *kafka.Message) bool {
	id, _, err := alert.ParseWire(m.Value)
	if err != nil {
		return false
	}
	s, seen := g.schemas[id]
	return !seen || (!s.ok && !time.Now().Before(s.retry))
}

// importSchemaOf imports the schema of an alert in the wire format, if it
// is one to look up now.
func (g *ingestRun) importSchemaOf(ctx context.Context, m *kafka.Message) error {
	if !g.needsImport(m) {
		return nil
	}
	id, _, _ := alert.ParseWire(m.Value)
	return g.importSchema(ctx, id)
}

// schemaRetry is how long the relay waits before looking up again a
// schema id it could not import.
const schemaRetry = time.Minute

// importSchema makes sure our registry holds schema id as the upstream's
// does. An id the upstream's registry does not know (404), or ours refuses
// (another schema holds the id, or it is not valid Avro: 409, 422), is
// logged and its alerts copied anyway, to be dead-lettered by the filters;
// any other failure (a registry unreachable, a 5xx past the retries, a
// wrong password) is an error: the session ends and resumes, so no alert
// is copied without its schema for a reason that may pass.
func (g *ingestRun) importSchema(ctx context.Context, id uint32) error {
	text, err := fetchRetry(ctx, g.cfg.UpstreamRegistry, int(id))
	if apiStatus(err) == http.StatusNotFound {
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
	status := apiStatus(err)
	if status == http.StatusConflict || status == http.StatusUnprocessableEntity ||
		errors.Is(err, registry.ErrIDTaken) || errors.Is(err, registry.ErrInvalidSchema) {
		g.log.Error("our registry refused the upstream's schema: its alerts are copied and will be dead-lettered", "id", id, "err", err)
		g.schemas[id] = schemaImport{retry: time.Now().Add(schemaRetry)}
		return nil
	}
	if err != nil {
		return fmt.Errorf("import schema %d into our registry: %w", id, err)
	}
	if got != int(id) {
		g.log.Error("our registry holds the upstream's schema under another id: its alerts will be dead-lettered", "id", id, "ours", got)
	}
	g.log.Info("imported schema", "id", id, "subject", subject)
	g.schemas[id] = schemaImport{ok: got == int(id), retry: time.Now().Add(schemaRetry)}
	return nil
}

// apiStatus is the HTTP status of a registry's error answer, 0 if err is
// not one.
func apiStatus(err error) int {
	var ae *registry.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
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

// commitAndBegin commits the open transaction and begins the next.
func (g *ingestRun) commitAndBegin(ctx context.Context, out *kafka.Producer) error {
	if err := g.commit(ctx, out); err != nil {
		return err
	}
	if err := out.BeginTransaction(); err != nil {
		return fmt.Errorf("%w: begin: %w", errResume, err)
	}
	return nil
}

// commit ends the open transaction with the state record of the offsets
// it reaches.
func (g *ingestRun) commit(ctx context.Context, out *kafka.Producer) error {
	state, err := json.Marshal(ingestState{Version: ingestStateVersion, Topic: g.cfg.UpstreamTopic, Offsets: g.next})
	if err != nil {
		return fmt.Errorf("encode the ingest state: %w", err)
	}
	if err := writeState(ctx, out, g.cfg.StateTopic, state); err != nil {
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
