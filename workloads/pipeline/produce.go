package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// ProduceConfig configures the alert producer.
type ProduceConfig struct {
	Bootstrap      string
	Topic          string
	Partitions     int              // used when the topic has to be created
	SchemasTopic   string           // the schema registry's topic
	Registry       *registry.Client // register through this registry; nil: write SchemasTopic directly
	Source         Source
	AlertsPerVisit int
	Interval       time.Duration
	Visits         int  // 0 sends forever
	Align          bool // start each visit at the next multiple of Interval, like the original
	Parallel       int  // concurrent senders, one producer each (one per CCD)
	Name           string
	Run            string // run id; default from the start time

	TimingBootstrap string // default Bootstrap
	TimingTopic     string // "" disables timing events

	Kafka map[string]string // librdkafka overrides
	Log   *slog.Logger

	// OnVisit, if set, is called after each visit is acknowledged.
	OnVisit func(VisitResult)

	// NameRecord, if set, names record r of a Replay source (its file and
	// place there) in the message about an alert too large to send.
	NameRecord func(record int) string
}

// VisitResult describes one sent visit.
type VisitResult struct {
	Run    string
	Visit  int64
	Alerts int // alerts sent and acknowledged
	// Skipped counts the alerts too large for the hub, not sent: a
	// stand-in went in the place of each (see sender.standIn).
	Skipped int
	Bytes   int64
	Start   time.Time // before the first alert was serialized
	End     time.Time // when the last alert was acknowledged
}

// Duration is the time to serialize and send the visit.
func (v VisitResult) Duration() time.Duration { return v.End.Sub(v.Start) }

func (c *ProduceConfig) defaults() error {
	if c.Bootstrap == "" {
		return errors.New("produce: bootstrap servers are required")
	}
	if c.Source == nil {
		return errors.New("produce: no alert source")
	}
	if c.AlertsPerVisit <= 0 {
		return fmt.Errorf("produce: alerts per visit must be positive, got %d", c.AlertsPerVisit)
	}
	if c.Interval <= 0 {
		return fmt.Errorf("produce: interval must be positive, got %s", c.Interval)
	}
	if c.Visits < 0 {
		return fmt.Errorf("produce: visits must be 0 (forever) or more, got %d", c.Visits)
	}
	c.Topic = orDefault(c.Topic, stream.AlertsTopic)
	c.Name = orDefault(c.Name, "producer")
	c.Parallel = max(c.Parallel, 1)
	if c.Parallel > c.AlertsPerVisit {
		c.Parallel = c.AlertsPerVisit
	}
	c.Partitions = max(c.Partitions, 1)
	c.TimingBootstrap = orDefault(c.TimingBootstrap, c.Bootstrap)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// Produce sends visits of alerts until Visits are sent or ctx ends. It
// creates the alert, schema and timing topics if they are missing and
// publishes the alerts' schemas first, so that filters can decode them.
func Produce(ctx context.Context, cfg ProduceConfig) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	log := cfg.Log.With("producer", cfg.Name)
	topics := []kclient.Topic{{Name: cfg.Topic, Partitions: cfg.Partitions}}
	if cfg.SchemasTopic != "" {
		topics = append(topics, kclient.Topic{Name: cfg.SchemasTopic, Partitions: 1, Compacted: true})
	}
	if err := kclient.EnsureTopics(ctx, cfg.Bootstrap, cfg.Kafka, topics...); err != nil {
		return err
	}
	if cfg.TimingTopic != "" {
		if err := kclient.EnsureTopics(ctx, cfg.TimingBootstrap, cfg.Kafka, kclient.Topic{Name: cfg.TimingTopic, Partitions: 1}); err != nil {
			return err
		}
	}
	if err := publishSchemas(ctx, cfg.Bootstrap, cfg.Kafka, cfg.SchemasTopic, cfg.Topic, cfg.Registry, cfg.Source.Schemas()); err != nil {
		return err
	}
	sink, err := newTimingSink(cfg.TimingBootstrap, cfg.Kafka, cfg.TimingTopic, log)
	if err != nil {
		return err
	}
	defer sink.Close(ctx)

	limit := messageMaxBytes(cfg.Kafka)
	senders := make([]*sender, cfg.Parallel)
	for i := range senders {
		// No delivery timeout: through a hub outage the alerts wait in the
		// client and are sent when it is back, once each (idempotence).
		p, err := kafka.NewProducer(kclient.ProducerConfig(cfg.Bootstrap,
			mergeKafka(map[string]string{"message.timeout.ms": "0"}, cfg.Kafka)))
		if err != nil {
			return fmt.Errorf("producer for %s: %w", cfg.Bootstrap, err)
		}
		senders[i] = &sender{p: p, topic: cfg.Topic, src: cfg.Source, limit: limit, name: cfg.NameRecord, log: log}
		defer p.Close()
	}

	run := cfg.Run
	next := time.Now()
	if cfg.Align {
		next = nextMultiple(next, cfg.Interval)
	}
	if run == "" {
		run = strconv.FormatInt(next.UnixMilli(), 36)
	}
	log.Info("producing", "bootstrap", cfg.Bootstrap, "topic", cfg.Topic, "alerts_per_visit", cfg.AlertsPerVisit,
		"interval", cfg.Interval, "visits", cfg.Visits, "parallel", cfg.Parallel, "run", run, "first_visit_at", next.Format(time.RFC3339Nano))

	var total VisitResult
	for n := 0; cfg.Visits == 0 || n < cfg.Visits; n++ {
		if err := sleepUntil(ctx, next); err != nil {
			return nil // stopped between visits
		}
		ensureSchemas(ctx, cfg, senders[0].p, log)
		// The visit id is the scheduled start in milliseconds: unique across
		// runs, and it orders visits in time.
		visit := next.UnixMilli()
		res, err := sendVisit(ctx, senders, run, visit, cfg.AlertsPerVisit)
		if err != nil {
			return fmt.Errorf("visit %d (%d of %d): %w", visit, n+1, cfg.Visits, err)
		}
		if res.Skipped > 0 {
			log.Warn("alerts too large for the hub were not sent (stand-ins went in their place)", "visit", visit,
				"skipped", res.Skipped, "sent", res.Alerts, "limit_bytes", limit)
		}
		sink.Emit(timing.Event{Kind: timing.KindProduce, Run: run, Visit: visit, Name: cfg.Name,
			Start: res.Start, End: res.End, Alerts: res.Alerts, Bytes: res.Bytes, DeadLetters: res.Skipped})
		total.Alerts += res.Alerts
		total.Bytes += res.Bytes
		secs := res.Duration().Seconds()
		log.Info("visit sent", "visit", visit, "n", n+1, "alerts", res.Alerts, "skipped", res.Skipped, "MB", mb(res.Bytes),
			"seconds", round3(secs), "alerts_per_s", int(float64(res.Alerts)/secs), "MB_per_s", round3(mb(res.Bytes)/secs),
			"total_alerts", total.Alerts)
		if cfg.OnVisit != nil {
			cfg.OnVisit(res)
		}
		next = next.Add(cfg.Interval)
		if now := time.Now(); next.Before(now) {
			late := now.Sub(next)
			next = now
			if cfg.Align { // keep the cadence: the next slot, as the telescope would
				next = nextMultiple(now, cfg.Interval)
			}
			log.Warn("producer falls behind the visit interval", "late_by", late, "next_visit_at", next.Format(time.RFC3339Nano))
		}
	}
	return nil
}

// sender is one of the producer's parallel senders.
type sender struct {
	p     *kafka.Producer
	topic string
	src   Source
	buf   []byte
	limit int                     // the client's message.max.bytes
	name  func(record int) string // ProduceConfig.NameRecord
	log   *slog.Logger
	// logged counts the skipped alerts logged one by one in the current
	// visit (shared by the visit's senders).
	logged *atomic.Int32
}

// maxSkipLogs bounds the alerts of one visit logged one by one when too
// large (every alert of a misconfigured synthetic stream could be); the
// visit's summary line counts them all.
const maxSkipLogs = 10

// sendVisit sends one visit, split in contiguous index ranges over the
// senders, and waits until every alert is acknowledged.
func sendVisit(ctx context.Context, senders []*sender, run string, visit int64, n int) (VisitResult, error) {
	res := VisitResult{Run: run, Visit: visit, Start: time.Now()}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		logged atomic.Int32
	)
	for i, s := range senders {
		lo, hi := i*n/len(senders), (i+1)*n/len(senders)
		s.logged = &logged
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.send(ctx, run, visit, lo, hi, n)
			mu.Lock()
			defer mu.Unlock()
			res.Alerts += r.sent
			res.Skipped += r.skipped
			res.Bytes += r.bytes
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	res.End = time.Now()
	return res, errors.Join(errs...)
}

// sendResult is what one sender did with its part of a visit.
type sendResult struct {
	sent, skipped int
	bytes         int64
}

// recordFraming is room, besides an alert's value and headers, for its
// record's framing (lengths, offsets, attributes: varints) and its
// batch's header (61 bytes), which the broker counts against its
// message.max.bytes.
const recordFraming = 61 + 64

// messageMaxBytes is the client's message.max.bytes: kclient's, or the
// value of a --kafka override.
func messageMaxBytes(over map[string]string) int {
	if v, err := strconv.Atoi(over["message.max.bytes"]); err == nil && v > 0 {
		return v
	}
	return kclient.MaxMessageBytes
}

// send produces alerts [lo, hi) of a visit and waits for their delivery
// reports. An alert too large for the client's message.max.bytes is not
// sent: a stand-in goes in its place (standIn). Alerts the broker refuses
// as too large (its limit can be below the client's: a topic's
// max.message.bytes) are sent again one at a time, since librdkafka
// does not split a refused batch and the batch may have held smaller
// alerts too; one refused alone is replaced by a stand-in likewise.
func (s *sender) send(ctx context.Context, run string, visit int64, lo, hi, count int) (sendResult, error) {
	var res sendResult
	reports := make(chan kafka.Event, 1024)
	acked := make(chan deliveries, 1)
	go func() { acked <- collectDeliveries(reports, hi-lo) }()

	runHeader := kafka.Header{Key: stream.HeaderRun, Value: []byte(run)}
	headers := func(i int) []kafka.Header {
		return []kafka.Header{runHeader, intHeader(stream.HeaderVisit, visit),
			intHeader(stream.HeaderIndex, int64(i)), intHeader(stream.HeaderCount, int64(count))}
	}
	sizes := make([]int, hi-lo)
	for i := lo; i < hi; i++ {
		var err error
		s.buf, err = s.src.Alert(s.buf[:0], visit, i)
		if err != nil {
			return res, err
		}
		msg := s.message(s.buf, headers(i), i)
		if size := messageSize(msg); size > s.limit {
			s.skip(visit, i, len(s.buf), fmt.Sprintf("alert of %d bytes (with its headers and framing %d) is over the hub client's limit of %d bytes (message.max.bytes)", len(s.buf), size, s.limit))
			msg = s.standIn(headers(i), i, fmt.Sprintf("producer: alert of %d bytes over the limit of %d bytes (message.max.bytes): not sent", len(s.buf), s.limit))
			res.skipped++
		} else {
			sizes[i-lo] = len(s.buf)
		}
		if err := kclient.ProduceWaiting(ctx, s.p, msg, reports); err != nil {
			return res, err
		}
	}
	var d deliveries
	select {
	case d = <-acked:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	if d.err != nil {
		return res, d.err
	}
	tooLarge := map[int]bool{}
	for _, i := range d.tooLarge {
		tooLarge[i] = true
	}
	for i := lo; i < hi; i++ {
		if sizes[i-lo] > 0 && !tooLarge[i] {
			res.sent++
			res.bytes += int64(sizes[i-lo])
		}
	}
	// Refused by the broker: again, one at a time.
	for _, i := range d.tooLarge {
		if sizes[i-lo] == 0 {
			return res, fmt.Errorf("the hub refused the stand-in of alert %d of visit %d as too large", i, visit)
		}
		var err error
		s.buf, err = s.src.Alert(s.buf[:0], visit, i)
		if err != nil {
			return res, err
		}
		err = s.sendOne(ctx, s.message(s.buf, headers(i), i))
		var kerr kafka.Error
		switch {
		case err == nil:
			res.sent++
			res.bytes += int64(len(s.buf))
			continue
		case !errors.As(err, &kerr) || kerr.Code() != kafka.ErrMsgSizeTooLarge:
			return res, err
		}
		s.skip(visit, i, len(s.buf), fmt.Sprintf("the hub refused the alert of %d bytes, sent alone, as too large "+
			"(MSG_SIZE_TOO_LARGE: the topic's max.message.bytes is below the client's %d)", len(s.buf), s.limit))
		res.skipped++
		if err := s.sendOne(ctx, s.standIn(headers(i), i, fmt.Sprintf("producer: the hub refused the alert of %d bytes as too large: not sent", len(s.buf)))); err != nil {
			return res, fmt.Errorf("stand-in for alert %d of visit %d: %w", i, visit, err)
		}
	}
	return res, nil
}

// message is alert index i with its headers, to the sender's topic.
func (s *sender) message(value []byte, headers []kafka.Header, i int) *kafka.Message {
	return &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &s.topic, Partition: kafka.PartitionAny},
		Value:          value, Headers: headers, Opaque: i,
	}
}

// standIn is what the producer sends in the place of alert i when the
// alert is too large to send: no value, the alert's mb-* headers and an
// mb-error header saying why. The filters complete a visit once they
// have read mb-count of its records, so without it none would complete
// the visit; each filter dead-letters the stand-in (it has no alert to
// decode), with that header, and counts it in its completion event.
func (s *sender) standIn(headers []kafka.Header, i int, why string) *kafka.Message {
	return s.message(nil, append(headers, kafka.Header{Key: stream.HeaderError, Value: []byte(why)}), i)
}

// sendOne produces msg and waits for its delivery report.
func (s *sender) sendOne(ctx context.Context, msg *kafka.Message) error {
	report := make(chan kafka.Event, 1)
	if err := kclient.ProduceWaiting(ctx, s.p, msg, report); err != nil {
		return err
	}
	select {
	case ev := <-report:
		if m, ok := ev.(*kafka.Message); ok && m.TopicPartition.Error != nil {
			return m.TopicPartition.Error
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// skip logs an alert that is not sent, naming it (its record, file and
// diaSourceId when the source is a Replay), for the first maxSkipLogs of
// the visit.
func (s *sender) skip(visit int64, i, size int, why string) {
	if s.logged != nil && s.logged.Add(1) > maxSkipLogs {
		return
	}
	attrs := []any{"visit", visit, "index", i, "bytes", size, "limit_bytes", s.limit, "why", why}
	if r, ok := s.src.(*Replay); ok {
		rec, id := r.alertOrigin(i)
		where := fmt.Sprintf("replay record %d", rec)
		if s.name != nil {
			where = s.name(rec)
		}
		attrs = append(attrs, "alert", where)
		if id != nil {
			attrs = append(attrs, "diaSourceId", id)
		}
	}
	s.log.Warn("alert too large for the hub: not sent, a stand-in goes in its place so that the visit completes", attrs...)
}

// alertOrigin is the record of the files that alert index of a visit
// replays and its alert.DefaultIDPath, if it has one.
func (s *Replay) alertOrigin(index int) (record int, id any) {
	record = index % s.r.Len()
	_, rec := s.r.Record(record)
	if v, ok := alert.Lookup(rec, alert.DefaultIDPath); ok {
		id = v
	}
	return record, id
}

// messageSize is what msg weighs against message.max.bytes: its value,
// key and headers and room for their framing.
func messageSize(msg *kafka.Message) int {
	n := len(msg.Value) + len(msg.Key) + recordFraming
	for _, h := range msg.Headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// deliveries is what a sender's delivery reports said.
type deliveries struct {
	tooLarge []int // alerts (Opaque) the broker refused as too large
	err      error // the first other failure
}

// collect reads n delivery reports and returns the first failure.
func collect(reports <-chan kafka.Event, n int) error {
	var first error
	for range n {
		if m, ok := (<-reports).(*kafka.Message); ok && m.TopicPartition.Error != nil && first == nil {
			first = fmt.Errorf("alert not acknowledged by the broker: %w", m.TopicPartition.Error)
		}
	}
	return first
}

// collectDeliveries reads n delivery reports of alerts whose Opaque is
// their index, setting apart those the broker refused as too large.
func collectDeliveries(reports <-chan kafka.Event, n int) deliveries {
	var d deliveries
	for range n {
		m, ok := (<-reports).(*kafka.Message)
		if !ok || m.TopicPartition.Error == nil {
			continue
		}
		var kerr kafka.Error
		if i, isIndex := m.Opaque.(int); isIndex && errors.As(m.TopicPartition.Error, &kerr) && kerr.Code() == kafka.ErrMsgSizeTooLarge {
			d.tooLarge = append(d.tooLarge, i)
			continue
		}
		if d.err == nil {
			d.err = fmt.Errorf("alert not acknowledged by the broker: %w", m.TopicPartition.Error)
		}
	}
	return d
}

// PublishSchemas registers each schema, under the subject of the alerts
// topic's values and its alert.SchemaID, in the schema registry's topic (a
// registry.Store: the registry service serves the same records), so that
// filters on any mirror can decode alerts and outside clients can look the
// ids up. Registering what is already there writes nothing.
func PublishSchemas(ctx context.Context, bootstrap string, conn map[string]string, topic, alertsTopic string, schemas []avro.Schema) error {
	if topic == "" || len(schemas) == 0 {
		return nil
	}
	return publishSchemas(ctx, bootstrap, conn, topic, alertsTopic, nil, schemas)
}

// publishSchemas registers the schemas through reg, or when it is nil in the
// registry's topic on bootstrap (none when topic is empty).
func publishSchemas(ctx context.Context, bootstrap string, conn map[string]string, topic, alertsTopic string, reg *registry.Client, schemas []avro.Schema) error {
	if len(schemas) == 0 || (reg == nil && topic == "") {
		return nil
	}
	subject := registry.ValueSubject(alertsTopic)
	if reg != nil {
		for _, s := range schemas {
			id := alert.SchemaID(s)
			got, err := registerRetry(ctx, reg, subject, alert.SchemaText(s), int(id))
			if err != nil {
				return fmt.Errorf("register schema %d: %w", id, err)
			}
			if got != int(id) {
				return fmt.Errorf("register schema %d: the registry holds it under id %d", id, got)
			}
		}
		return nil
	}
	store, err := service.Open(ctx, bootstrap, conn, topic, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer store.Close()
	for _, s := range schemas {
		id := alert.SchemaID(s)
		if _, err := store.Register(ctx, subject, alert.SchemaText(s), int(id)); err != nil {
			return fmt.Errorf("publish schema %d to %s on %s: %w", id, topic, bootstrap, err)
		}
	}
	return nil
}

// registryWait bounds how long the producer waits for a schema registry
// that does not answer (one starting with the swarm), retrying every
// registryRetry.
const (
	registryWait  = 2 * time.Minute
	registryRetry = 2 * time.Second
)

// registerRetry registers through reg, retrying while the registry cannot
// be reached or answers a server error (its Kafka not ready); any other
// answer of the registry is final.
func registerRetry(ctx context.Context, reg *registry.Client, subject, text string, id int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, registryWait)
	defer cancel()
	for {
		got, err := reg.Register(ctx, subject, text, id)
		var ae *registry.APIError
		if err == nil || (errors.As(err, &ae) && ae.Status < 500) {
			return got, err
		}
		select {
		case <-ctx.Done():
			return 0, err
		case <-time.After(registryRetry):
		}
	}
}

// schemaCheckTimeout bounds the check that the hub still has the schemas.
const schemaCheckTimeout = 5 * time.Second

// ensureSchemas publishes the schemas again, and creates the topics again,
// if the schemas topic is missing or empty: a hub that lost its data must
// not leave filters unable to decode. Existence is checked with a metadata
// request for all topics first (one naming the topic would make a hub with
// auto.create.topics.enable create it, uncompacted). A hub that does not
// answer is not checked: the visit goes out anyway and waits in the client.
func ensureSchemas(ctx context.Context, cfg ProduceConfig, p *kafka.Producer, log *slog.Logger) {
	if cfg.SchemasTopic == "" {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, schemaCheckTimeout)
	defer cancel()
	_, err := kclient.Partitions(cctx, p, cfg.SchemasTopic)
	if err == nil {
		var lo, hi int64
		lo, hi, err = p.QueryWatermarkOffsets(cfg.SchemasTopic, 0, int(schemaCheckTimeout.Milliseconds()))
		if err == nil && hi > lo {
			return
		}
	}
	if err != nil && !errors.Is(err, kclient.ErrNoTopic) {
		log.Warn("cannot check the schemas topic", "topic", cfg.SchemasTopic, "err", err)
		return
	}
	log.Warn("the hub has lost the schemas: publishing them again", "topic", cfg.SchemasTopic)
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = kclient.EnsureTopics(pctx, cfg.Bootstrap, cfg.Kafka, kclient.Topic{Name: cfg.Topic, Partitions: cfg.Partitions},
		kclient.Topic{Name: cfg.SchemasTopic, Partitions: 1, Compacted: true})
	if err == nil {
		err = publishSchemas(pctx, cfg.Bootstrap, cfg.Kafka, cfg.SchemasTopic, cfg.Topic, cfg.Registry, cfg.Source.Schemas())
	}
	if err != nil {
		log.Error("publish the schemas again", "topic", cfg.SchemasTopic, "err", err)
	}
}

func nextMultiple(t time.Time, d time.Duration) time.Time {
	n := t.Truncate(d)
	if n.Before(t) {
		n = n.Add(d)
	}
	return n
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func mb(b int64) float64       { return float64(b) / 1e6 }
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
