package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// progressEvery is how often a filter logs its progress.
const progressEvery = 10 * time.Second

// FilterConfig configures a filter process: one filter (the original,
// isolated design) or many sharing one read and one decode of the stream.
type FilterConfig struct {
	Bootstrap     string        // the (mirror) broker with the full stream
	Input         string        // topic of the full stream
	Specs         []filter.Spec // one or more filters
	Name          string        // process name: group id, dead-letter topic; default the single filter's name
	Group         string        // consumer group; default "minibroker-filter-" + Name
	VisitPath     string        // field holding the visit, for the per-visit cap
	IDPath        string        // field holding the alert id
	DeadLetter    string        // topic for undecodable alerts; default Name + "-deadletter"
	SchemasTopic  string
	Schemas       []avro.Schema // known without the schemas topic
	FromBeginning bool
	// DecodeBytes decodes bytes fields (the cutouts) too. Skipping them
	// halves the decode time of an 80 KB alert; it is turned on by itself
	// when an expression mentions a cutout.
	DecodeBytes bool

	OutputBootstrap string // where filtered streams go; default Bootstrap
	TimingBootstrap string // the hub; default Bootstrap
	TimingTopic     string

	Kafka map[string]string
	Log   *slog.Logger

	// Ready, if set, is called once the consumer has its partitions.
	Ready func()
}

func (c *FilterConfig) defaults() error {
	if c.Bootstrap == "" {
		return errors.New("filter: bootstrap servers are required")
	}
	if len(c.Specs) == 0 {
		return errors.New("filter: no filters given")
	}
	if c.Name == "" {
		if len(c.Specs) != 1 {
			return errors.New("filter: a name is required for a shared group of filters")
		}
		c.Name = c.Specs[0].Name
	}
	c.Input = orDefault(c.Input, stream.AlertsTopic)
	c.Group = orDefault(c.Group, stream.FilterGroup(c.Name))
	c.VisitPath = orDefault(c.VisitPath, alert.DefaultVisitPath)
	c.IDPath = orDefault(c.IDPath, alert.DefaultIDPath)
	c.DeadLetter = orDefault(c.DeadLetter, stream.DeadLetterTopic(c.Name))
	c.OutputBootstrap = orDefault(c.OutputBootstrap, c.Bootstrap)
	c.TimingBootstrap = orDefault(c.TimingBootstrap, c.Bootstrap)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

// RunFilters reads the full stream and writes each filter's selection to
// its output topic until ctx ends. Undecodable alerts are counted, copied to
// the dead-letter topic and skipped.
func RunFilters(ctx context.Context, cfg FilterConfig) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	set, err := filter.NewSet(cfg.Specs)
	if err != nil {
		return err
	}
	// Use the specs with their defaults (an empty Output means Name), in a
	// new slice: the caller's is left as it is.
	cfg.Specs = make([]filter.Spec, set.Len())
	for i := range cfg.Specs {
		cfg.Specs[i] = set.Spec(i)
	}
	f := &filterRun{cfg: cfg, set: set, log: cfg.Log.With("filter", cfg.Name), visits: map[visitKey]*visitTally{}}
	return f.run(ctx)
}

type visitKey struct {
	run   string
	visit int64
}

// visitTally counts what a filter process did with one visit.
type visitTally struct {
	count, seen, dead int
	matched, selected []int // per filter
	bytes             int64
}

type filterRun struct {
	cfg    FilterConfig
	set    *filter.Set
	log    *slog.Logger
	dec    *alert.Decoder
	book   *schemaBook
	out    *kafka.Producer
	sink   *timingSink
	visits map[visitKey]*visitTally

	read, dead, selected int64
}

func (f *filterRun) run(ctx context.Context) error {
	cfg := f.cfg
	reg := alert.NewRegistry()
	reg.Add(alert.SyntheticSchema())
	for _, s := range cfg.Schemas {
		reg.Add(s)
	}
	var opts []alert.DecodeOption
	if !cfg.DecodeBytes && !mentionsCutout(cfg.Specs) {
		opts = append(opts, alert.WithoutBytes())
	}
	// Build only the fields the expressions read, plus those of the visit
	// and the id: for the default filter that is diaSource alone, not the
	// history, the object and the cutouts.
	if fields, all := f.set.Fields(); !all {
		fields = append(fields, topField(cfg.VisitPath), topField(cfg.IDPath))
		opts = append(opts, alert.WithFields(fields...))
	}
	f.dec = alert.NewDecoder(reg, opts...)
	f.book = &schemaBook{reg: reg, bootstrap: cfg.Bootstrap, topic: cfg.SchemasTopic}
	if err := f.book.refresh(ctx); err != nil {
		f.log.Warn("reading schemas", "err", err)
	}

	outs := []kclient.Topic{{Name: cfg.DeadLetter, Partitions: 1}}
	for _, s := range cfg.Specs {
		outs = append(outs, kclient.Topic{Name: s.Output, Partitions: 1})
	}
	if err := kclient.EnsureTopics(ctx, cfg.OutputBootstrap, outs...); err != nil {
		return err
	}
	out, err := kafka.NewProducer(kclient.ProducerConfig(cfg.OutputBootstrap, mergeKafka(map[string]string{"linger.ms": "0"}, cfg.Kafka)))
	if err != nil {
		return fmt.Errorf("output producer for %s: %w", cfg.OutputBootstrap, err)
	}
	f.out = out
	go drainEvents(out, f.log)
	defer func() { flush(ctx, out); out.Close() }()

	if f.sink, err = newTimingSink(cfg.TimingBootstrap, cfg.TimingTopic, f.log); err != nil {
		return err
	}
	defer f.sink.Close(ctx)

	f.log.Info("waiting for the input topic", "bootstrap", cfg.Bootstrap, "input", cfg.Input)
	if _, err := kclient.WaitTopic(ctx, cfg.Bootstrap, cfg.Input); err != nil {
		return err
	}
	c, err := kafka.NewConsumer(kclient.ConsumerConfig(cfg.Bootstrap, cfg.Group, cfg.FromBeginning, cfg.Kafka))
	if err != nil {
		return fmt.Errorf("consumer for %s: %w", cfg.Bootstrap, err)
	}
	defer c.Close()
	if err := subscribeReady(c, cfg.Input, cfg.Ready); err != nil {
		return err
	}
	f.log.Info("filtering", "bootstrap", cfg.Bootstrap, "input", cfg.Input, "filters", len(cfg.Specs), "group", cfg.Group)

	progress := time.NewTicker(progressEvery)
	defer progress.Stop()
	for ctx.Err() == nil {
		select {
		case <-progress.C:
			f.log.Info("progress", "alerts_read", f.read, "selected", f.selected, "dead_letters", f.dead, "open_visits", len(f.visits))
		default:
		}
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			f.handle(ctx, e)
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("filter %s consuming %s: %w", cfg.Name, cfg.Input, e)
			}
			f.log.Warn("kafka", "err", e)
		}
	}
	return nil
}

// handle filters one alert of the full stream.
func (f *filterRun) handle(ctx context.Context, m *kafka.Message) {
	f.read++
	key := visitKey{run: headerString(m.Headers, stream.HeaderRun)}
	key.visit, _ = headerInt(m.Headers, stream.HeaderVisit)
	count, hasCount := headerInt(m.Headers, stream.HeaderCount)
	tally := f.tally(key, int(count), hasCount)
	if tally != nil {
		tally.seen++
		tally.bytes += int64(len(m.Value))
	}

	rec, err := f.decode(ctx, m.Value)
	if err != nil {
		f.deadLetter(m, err)
		if tally != nil {
			tally.dead++
		}
	} else {
		capVisit, verr := alert.LookupInt(rec, f.cfg.VisitPath)
		if verr != nil {
			capVisit = key.visit
		}
		id, _ := alert.Lookup(rec, f.cfg.IDPath)
		f.set.Evaluate(rec, capVisit, func(i int, rank int, admitted bool) {
			if tally != nil {
				tally.matched[i]++
			}
			if !admitted {
				return
			}
			if tally != nil {
				tally.selected[i]++
			}
			f.selected++
			f.emitSelected(m, i, rank, capVisit, id)
		})
	}
	if tally != nil && tally.seen >= tally.count {
		f.finish(key, tally)
	}
}

func (f *filterRun) tally(key visitKey, count int, ok bool) *visitTally {
	if !ok || count <= 0 {
		return nil // not from our producer: filter it, but time nothing
	}
	t := f.visits[key]
	if t == nil {
		f.forgetOldVisits()
		n := len(f.cfg.Specs)
		t = &visitTally{count: count, matched: make([]int, n), selected: make([]int, n)}
		f.visits[key] = t
	}
	return t
}

// maxOpenVisits bounds the visits a filter tallies at once: a visit whose
// first alerts went by before the filter started never completes, and must
// not be kept forever.
const maxOpenVisits = 64

// forgetOldVisits drops the oldest open visit when there are too many.
func (f *filterRun) forgetOldVisits() {
	if len(f.visits) < maxOpenVisits {
		return
	}
	var oldest visitKey
	first := true
	for k := range f.visits {
		if first || k.visit < oldest.visit {
			oldest, first = k, false
		}
	}
	t := f.visits[oldest]
	delete(f.visits, oldest)
	f.log.Warn("visit never completed: not timed", "visit", oldest.visit, "run", oldest.run, "alerts_seen", t.seen, "alerts_in_visit", t.count)
}

// finish records that every alert of a visit has been through the filters.
func (f *filterRun) finish(key visitKey, t *visitTally) {
	end := time.Now()
	delete(f.visits, key)
	for i, s := range f.cfg.Specs {
		f.sink.Emit(timing.Event{Kind: timing.KindFilter, Run: key.run, Visit: key.visit, Name: s.Name,
			Source: s.Output, End: end, Alerts: t.seen, Bytes: t.bytes, Matched: t.matched[i], Selected: t.selected[i], DeadLetters: t.dead})
	}
	f.log.Debug("visit filtered", "visit", key.visit, "alerts", t.seen, "dead_letters", t.dead)
}

// decode decodes an alert, first learning its schema from the schemas topic
// if it is not known yet.
func (f *filterRun) decode(ctx context.Context, value []byte) (map[string]any, error) {
	rec, id, err := f.dec.DecodeMessage(value)
	if errors.Is(err, alert.ErrUnknownSchema) {
		if known, lerr := f.book.learn(ctx, id); lerr != nil {
			f.log.Warn("reading schemas", "err", lerr)
		} else if known {
			f.log.Info("learned schema", "id", id)
			rec, _, err = f.dec.DecodeMessage(value)
		}
	}
	return rec, err
}

func (f *filterRun) emitSelected(m *kafka.Message, i, rank int, visit int64, id any) {
	spec := f.cfg.Specs[i]
	hs := []kafka.Header{
		{Key: stream.HeaderRun, Value: []byte(headerString(m.Headers, stream.HeaderRun))},
		intHeader(stream.HeaderVisit, visit),
		intHeader(stream.HeaderRank, int64(rank)),
		{Key: stream.HeaderID, Value: []byte(fmt.Sprint(id))},
		{Key: stream.HeaderFrom, Value: []byte(spec.Name)},
	}
	out := spec.Output
	if err := produceRetry(context.Background(), f.out, &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &out, Partition: kafka.PartitionAny},
		Key:            m.Key, Value: m.Value, Headers: hs,
	}, nil); err != nil {
		f.log.Error("queue filtered alert", "output", out, "err", err)
	}
}

// deadLetter copies an alert that could not be decoded, with the reason.
func (f *filterRun) deadLetter(m *kafka.Message, cause error) {
	f.dead++
	if f.dead == 1 || f.dead%1000 == 0 {
		f.log.Warn("undecodable alert sent to the dead-letter topic", "topic", f.cfg.DeadLetter,
			"at", m.TopicPartition.String(), "err", cause, "dead_letters", f.dead)
	}
	hs := append(append([]kafka.Header(nil), m.Headers...),
		kafka.Header{Key: stream.HeaderError, Value: []byte(cause.Error())},
		kafka.Header{Key: stream.HeaderSource, Value: []byte(m.TopicPartition.String())},
		kafka.Header{Key: stream.HeaderSourceOffset, Value: []byte(strconv.FormatInt(int64(m.TopicPartition.Offset), 10))})
	dl := f.cfg.DeadLetter
	if err := produceRetry(context.Background(), f.out, &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &dl, Partition: kafka.PartitionAny},
		Key:            m.Key, Value: m.Value, Headers: hs,
	}, nil); err != nil {
		f.log.Error("queue dead letter", "err", err)
	}
}

func topField(path string) string {
	top, _, _ := strings.Cut(path, ".")
	return top
}

func mentionsCutout(specs []filter.Spec) bool {
	for _, s := range specs {
		if strings.Contains(strings.ToLower(s.Expr), "cutout") {
			return true
		}
	}
	return false
}

func mergeKafka(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}
