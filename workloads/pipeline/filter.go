package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// DefaultCommitInterval is how long an exactly-once filter's transaction
// holding filtered alerts stays open while a visit streams in: they become
// readable at its commit, so it bounds the latency exactly-once adds to
// them. Each commit costs a few round trips to the broker (5-400 ms on a
// loaded 2-core machine), during which the filter reads nothing.
const DefaultCommitInterval = 250 * time.Millisecond

// FilterConfig configures a filter process: one filter (the original,
// isolated design) or many sharing one read and one decode of the stream.
type FilterConfig struct {
	Bootstrap     string        // the (mirror) broker with the full stream
	Input         string        // topic of the full stream
	Specs         []filter.Spec // one or more filters
	Name          string        // process name: group id, dead-letter topic; default the single filter's name
	Group         string        // consumer group; default "minibroker-filter-" + Name
	VisitPath     string        // field holding the visit, for the per-visit cap and alerts without mb-* headers
	IDPath        string        // field holding the alert id
	DeadLetter    string        // topic for undecodable alerts; default Name + "-deadletter"
	SchemasTopic  string
	Schemas       []avro.Schema // known without the schemas topic
	FromBeginning bool
	// AtLeastOnce turns transactions off: offsets are auto-committed every
	// second, whatever became of the output. Only to measure what
	// exactly-once costs.
	AtLeastOnce bool
	// StateTopic keeps the process's visit tallies and cap counts, written
	// in the same transactions as the output; default
	// stream.FilterStateTopic(Name).
	StateTopic string
	// CommitInterval is how long a transaction holding filtered alerts
	// collects more before it commits (a visit's last alert commits at
	// once; one without output waits up to a second); the filtered alerts
	// are readable only then. Default DefaultCommitInterval.
	CommitInterval time.Duration
	// VisitQuiet closes a visit whose alerts carry no mb-* headers (an
	// upstream stream) when none of its alerts has arrived for this long
	// and no later visit has closed it first; default
	// stream.DefaultVisitQuiet.
	VisitQuiet time.Duration
	// OutOfGroupLimit is how long the filter's consumer may stay out of
	// its group before it is replaced by a new client (exactly-once: a
	// new session); default DefaultOutOfGroupLimit.
	OutOfGroupLimit time.Duration
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
	c.StateTopic = orDefault(c.StateTopic, stream.FilterStateTopic(c.Name))
	c.OutputBootstrap = orDefault(c.OutputBootstrap, c.Bootstrap)
	if c.CommitInterval <= 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.VisitQuiet <= 0 {
		c.VisitQuiet = stream.DefaultVisitQuiet
	}
	if !c.AtLeastOnce && c.OutputBootstrap != c.Bootstrap {
		// Offsets commit through the output's cluster, in its transaction.
		return fmt.Errorf("filter %s: exactly-once needs the filtered streams on the input's cluster (%s), not %s; "+
			"use at-least-once to write them elsewhere", c.Name, c.Bootstrap, c.OutputBootstrap)
	}
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
	f := &filterRun{cfg: cfg, set: set, log: cfg.Log.With("filter", cfg.Name),
		acked: make(chan timing.Event, 4096), inFlight: map[pendingID]bool{}}
	return f.run(ctx)
}

type filterRun struct {
	cfg  FilterConfig
	set  *filter.Set
	log  *slog.Logger
	dec  *alert.Decoder
	book *schemaBook
	out  *kafka.Producer
	sink *timingSink
	// visits is what the process remembers of visits; with exactly-once,
	// it is saved in every transaction and restored from the last one.
	visits *visitBook
	// finished is set when a visit completes, so that the transaction
	// holding its last alert commits at once.
	finished bool
	// quietSince is when the quiet time of every open visit started at
	// the latest: the start of the session, whose restored visits get a
	// full quiet time to receive the rest of their alerts.
	quietSince time.Time
	// parked holds the alerts waiting for the next re-read of the schemas
	// topic (resolveParked); their offsets are not committed before.
	parked []parkedAlert
	// resolving is set while resolveParked filters the parked alerts.
	resolving bool

	read, dead, selected, dups, late int64
	uncommittedOut                   int   // filtered alerts and dead letters in the open transaction
	txnErr                           error // why the open transaction must not commit
	// acked receives the completion events the hub has stored; inFlight
	// holds those sent and not yet acknowledged (exactly-once).
	acked    chan timing.Event
	inFlight map[pendingID]bool
	// lastTxn is the coordinator's record of the previous session's last
	// transaction, read before InitTransactions and kept until its hanging
	// transactions are closed (exactly-once; kclient.CloseHanging).
	lastTxn    *kclient.TxnRecord
	commits    int64         // transactions committed (exactly-once)
	commitTime time.Duration // spent committing them
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
	f.book = &schemaBook{reg: reg, bootstrap: cfg.Bootstrap, conn: cfg.Kafka, topic: cfg.SchemasTopic, log: f.log}
	if err := f.book.refresh(ctx); err != nil {
		f.log.Warn("reading schemas", "err", err)
	}

	outs := []kclient.Topic{{Name: cfg.DeadLetter, Partitions: 1}}
	for _, s := range cfg.Specs {
		outs = append(outs, kclient.Topic{Name: s.Output, Partitions: 1})
	}
	if !cfg.AtLeastOnce {
		outs = append(outs, kclient.Topic{Name: cfg.StateTopic, Partitions: 1, Compacted: true, Config: stateTopicConfig})
	}
	if err := kclient.EnsureTopics(ctx, cfg.OutputBootstrap, cfg.Kafka, outs...); err != nil {
		return err
	}
	var err error
	if f.sink, err = newTimingSink(cfg.TimingBootstrap, cfg.Kafka, cfg.TimingTopic, f.log); err != nil {
		return err
	}
	defer f.sink.Close(ctx)
	f.set.OnQuarantine(f.quarantined)

	f.log.Info("waiting for the input topic", "bootstrap", cfg.Bootstrap, "input", cfg.Input)
	if _, err := kclient.WaitTopic(ctx, cfg.Bootstrap, cfg.Kafka, cfg.Input); err != nil {
		return err
	}
	if cfg.AtLeastOnce {
		return f.runAtLeastOnce(ctx)
	}
	return f.runExactlyOnce(ctx)
}

// runAtLeastOnce is the filter without transactions: offsets are committed
// every second whatever became of the output, so a crash repeats or loses
// up to a second of alerts. It is kept to measure what exactly-once costs.
func (f *filterRun) runAtLeastOnce(ctx context.Context) error {
	cfg := f.cfg
	f.visits = newVisitBook()
	out, err := kafka.NewProducer(kclient.ProducerConfig(cfg.OutputBootstrap, mergeKafka(map[string]string{"linger.ms": "0"}, cfg.Kafka)))
	if err != nil {
		return fmt.Errorf("output producer for %s: %w", cfg.OutputBootstrap, err)
	}
	f.out = out
	go drainEvents(out, f.log)
	defer func() { flush(ctx, out); out.Close() }()

	member := newGroupMember(cfg.Input, cfg.Ready, cfg.FromBeginning, cfg.OutOfGroupLimit, f.log)
	f.quietSince = time.Now()
	consumerConfig := func() *kafka.ConfigMap {
		return kclient.ConsumerConfig(cfg.Bootstrap, cfg.Group, cfg.FromBeginning, cfg.Kafka)
	}
	c, err := member.open(consumerConfig())
	if err != nil {
		return err
	}
	// The output is flushed before Close commits the last offsets.
	defer func() {
		flush(ctx, out)
		if c != nil {
			c.Close()
		}
	}()
	f.log.Info("filtering (at least once)", "bootstrap", cfg.Bootstrap, "input", cfg.Input, "filters", len(cfg.Specs), "group", cfg.Group)

	progress := time.NewTicker(progressEvery)
	defer progress.Stop()
	for ctx.Err() == nil {
		select {
		case <-progress.C:
			f.logProgress()
		default:
		}
		if member.stuck() {
			f.log.Warn("out of the consumer group too long: starting a new consumer", "limit", member.limit)
			flush(ctx, out)
			member.abandon(c)
			next, err := member.open(consumerConfig())
			if err != nil {
				c = nil // abandoned: closed in the background
				return err
			}
			c = next
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
		f.resolveParked(ctx, false)
		f.closeQuiet(time.Now())
		if f.finished {
			f.emitPending()
		}
	}
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	f.resolveParked(stop, true)
	return nil
}

func (f *filterRun) logProgress() {
	attrs := []any{"alerts_read", f.read, "selected", f.selected, "dead_letters", f.dead,
		"duplicates_dropped", f.dups, "late", f.late, "open_visits", len(f.visits.open)}
	if f.commits > 0 {
		attrs = append(attrs, "transactions", f.commits, "commit_ms_mean", (f.commitTime / time.Duration(f.commits)).Milliseconds())
	}
	f.log.Info("progress", attrs...)
}

// handle filters one alert of the full stream.
func (f *filterRun) handle(ctx context.Context, m *kafka.Message) {
	f.read++
	if f.visits.lane.replaying(m) {
		f.replay(ctx, m)
		return
	}
	f.visits.lane.passed(m)
	key := visitKey{Run: headerString(m.Headers, stream.HeaderRun)}
	key.Visit, _ = headerInt(m.Headers, stream.HeaderVisit)
	count, hasCount := headerInt(m.Headers, stream.HeaderCount)
	if !hasCount || count <= 0 {
		f.handleHeaderless(ctx, m)
		return
	}
	if f.visits.isDone(key) {
		f.dups++ // a copy of an alert of a visit already complete
		f.visits.lane.dropped(m)
		return
	}
	tally := f.visits.open[key]
	if tally == nil {
		f.forgetOldVisits()
		tally = newTally(int(count), len(f.cfg.Specs))
		f.visits.open[key] = tally
	}
	index, ok := headerInt(m.Headers, stream.HeaderIndex)
	if !tally.firstSight(index, ok) {
		f.dups++
		tally.dups++
		f.visits.lane.dropped(m)
		return
	}
	tally.seen++
	tally.bytes += int64(len(m.Value))

	rec, err := f.decode(ctx, m.Value)
	switch {
	case f.mustRetry(err):
	case errors.Is(err, errParked):
		tally.parked++
		f.park(ctx, parkedAlert{m: m, key: key, tally: tally})
	default:
		f.filterFramed(ctx, m, key, tally, rec, err)
	}
}

// filterFramed filters a decoded alert of a visit with mb-* headers (or
// dead-letters it, err), and completes the visit when it was its last.
func (f *filterRun) filterFramed(ctx context.Context, m *kafka.Message, key visitKey, tally *visitTally, rec map[string]any, err error) {
	if err != nil {
		f.deadLetter(ctx, m, err)
		tally.dead++
	} else {
		capVisit, verr := alert.LookupInt(rec, f.cfg.VisitPath)
		if verr != nil {
			capVisit = key.Visit
		}
		f.evaluate(ctx, m, rec, capVisit, key, tally)
	}
	if tally.seen >= tally.count && tally.parked == 0 && f.visits.open[key] == tally {
		f.finish(key, tally)
	}
}

// parkedAlert is an alert read whose schema id was unknown: it is filtered
// after the next re-read of the schemas topic (resolveParked).
type parkedAlert struct {
	m     *kafka.Message
	key   visitKey
	tally *visitTally // its visit's, for an alert with mb-* headers; nil without
}

// maxParked bounds the alerts parked at once (up to ~80 KB each): a full
// lot waits for the re-read at once.
const maxParked = 1024

// park sets an alert aside until the next re-read of the schemas topic.
func (f *filterRun) park(ctx context.Context, p parkedAlert) {
	f.parked = append(f.parked, p)
	if len(f.parked) >= maxParked {
		f.resolveParked(ctx, true)
	}
}

// resolveParked re-reads the schemas topic, once it is due (at once if
// force, waiting for the rate limit), and filters the parked alerts: one
// re-read serves every unknown id however many there are, so a flood of
// alerts with random ids is dead-lettered within about a second while the
// others flow on. An id still unknown is dead-lettered. If the topic cannot
// be read, the alerts stay parked (exactly-once: the transaction aborts and
// they are read again).
func (f *filterRun) resolveParked(ctx context.Context, force bool) {
	if len(f.parked) == 0 || (!force && !f.book.refreshDue()) {
		return
	}
	if force && sleepUntil(ctx, f.book.last.Add(schemaRefreshEvery)) != nil {
		return
	}
	if err := f.book.refresh(ctx); err != nil {
		f.log.Warn("reading schemas", "err", err, "parked_alerts", len(f.parked))
		f.mustRetry(learnError{err})
		return
	}
	parked := f.parked
	f.parked = nil
	f.resolving = true // no filter is deferred meanwhile (deferSlow)
	defer func() { f.resolving = false }()
	learned := map[uint32]bool{}
	for _, p := range parked {
		rec, id, err := f.dec.DecodeMessage(p.m.Value)
		if errors.Is(err, alert.ErrUnknownSchema) {
			f.book.markUnknown(id)
		} else if !learned[id] {
			learned[id] = true
			f.log.Info("learned schema", "id", id)
		}
		if p.tally != nil {
			p.tally.parked--
			f.filterFramed(ctx, p.m, p.key, p.tally, rec, err)
		} else {
			f.filterHeaderless(ctx, p.m, rec, err)
		}
	}
}

// mustRetry reports whether err is a failure to read the schemas (the
// mirror or ctx going away) that leaves the alert to be read again: not the
// alert's fault, so it is not dead-lettered; the transaction aborts.
func (f *filterRun) mustRetry(err error) bool {
	if lerr := (learnError{}); errors.As(err, &lerr) && !f.cfg.AtLeastOnce {
		f.txnErr = err
		return true
	}
	return false
}

// evaluate runs the filters on a decoded alert of visit (the cap's key),
// writing what they select and counting it in tally, key's (nil: not
// timed); the deferred filters get it queued, and those that turned slow
// are deferred.
func (f *filterRun) evaluate(ctx context.Context, m *kafka.Message, rec map[string]any, visit int64, key visitKey, tally *visitTally) {
	defer f.deferSlow(visit)
	defer f.queueDeferred(m, rec, visit, key, tally != nil)
	id, _ := alert.Lookup(rec, f.cfg.IDPath)
	f.set.Evaluate(rec, visit, func(i int, rank int, admitted bool) {
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
		f.emitSelected(ctx, m, i, rank, visit, id)
	})
}

// handleHeaderless filters an alert without our mb-* headers (an upstream
// stream, relayed by `minibroker ingest`): its visit is the alert's own
// VisitPath field. Such a visit has no alert count, so it closes as soon
// as every partition that carries such alerts has delivered an alert of a later
// visit (a partition keeps its order, so an upstream that writes its
// visits in order writes no more of this one; closeOvertaken) or, failing
// that, after VisitQuiet without one of its alerts (closeQuiet). An alert
// of a visit already closed (a straggler) is filtered, under the same cap,
// and counted as late; it reopens nothing. An alert without the field is
// filtered but not timed. Without headers a copy cannot be told from the
// original, so none is dropped.
func (f *filterRun) handleHeaderless(ctx context.Context, m *kafka.Message) {
	rec, err := f.decode(ctx, m.Value)
	switch {
	case f.mustRetry(err):
	case errors.Is(err, errParked):
		f.park(ctx, parkedAlert{m: m})
	default:
		f.filterHeaderless(ctx, m, rec, err)
	}
}

// filterHeaderless filters a decoded header-less alert (or dead-letters
// it, err), in its visit.
func (f *filterRun) filterHeaderless(ctx context.Context, m *kafka.Message, rec map[string]any, err error) {
	if err != nil {
		f.deadLetter(ctx, m, err)
		if t := f.visits.current(); t != nil { // counted with the visit being read, as with mb-* headers
			t.seen++
			t.dead++
		}
		return
	}
	visit, verr := alert.LookupInt(rec, f.cfg.VisitPath)
	var tally *visitTally
	key := visitKey{Visit: visit}
	if verr == nil {
		tally = f.headerlessTally(key, m.TopicPartition.Partition)
	}
	if tally != nil {
		tally.seen++
		tally.bytes += int64(len(m.Value))
		tally.arrived(m.Timestamp, m.TimestampType, time.Now())
	}
	f.evaluate(ctx, m, rec, visit, key, tally)
}

// headerlessTally returns the open tally of a header-less visit read from
// partition, opening it when it is new; nil for a straggler of a closed
// visit.
func (f *filterRun) headerlessTally(key visitKey, partition int32) *visitTally {
	if newest, seen := f.visits.newest[partition]; !seen || key.Visit > newest {
		f.visits.newest[partition] = key.Visit
		f.closeOvertaken()
	}
	if t := f.visits.open[key]; t != nil {
		return t
	}
	if f.visits.isDone(key) {
		f.late++
		if f.late == 1 || f.late%1000 == 0 {
			f.log.Warn("alert of a visit already closed: filtered, not counted in its completion", "visit", key.Visit, "late", f.late)
		}
		return nil
	}
	f.forgetOldVisits()
	t := newTally(0, len(f.cfg.Specs))
	f.visits.open[key] = t
	return t
}

// closeOvertaken closes the open header-less visits that every partition
// which has delivered header-less alerts has gone past. (A partition that
// never carries any, as when the upstream has fewer partitions than the
// hub, must not hold visits open; the price is that, in a backlog read
// from the start, a partition not read yet does not hold the first visit
// open either: its alerts of that visit are late.)
func (f *filterRun) closeOvertaken() {
	for k, t := range f.visits.open {
		if t.count != 0 {
			continue
		}
		passed := true
		for _, v := range f.visits.newest {
			passed = passed && v > k.Visit
		}
		if passed {
			f.finish(k, t)
		}
	}
}

// closeQuiet closes the header-less visits without an alert for VisitQuiet.
func (f *filterRun) closeQuiet(now time.Time) {
	for k, t := range f.visits.open {
		if t.count == 0 && !t.last.IsZero() && now.Sub(later(t.last, f.quietSince)) >= f.cfg.VisitQuiet {
			f.finish(k, t)
		}
	}
}

// forgetOldVisits drops the oldest open visit when there are too many.
func (f *filterRun) forgetOldVisits() {
	if len(f.visits.open) < maxOpenVisits {
		return
	}
	var oldest visitKey
	first := true
	for k := range f.visits.open {
		if first || k.Visit < oldest.Visit {
			oldest, first = k, false
		}
	}
	t := f.visits.open[oldest]
	delete(f.visits.open, oldest)
	f.log.Warn("visit never completed: not timed", "visit", oldest.Visit, "run", oldest.Run, "alerts_seen", t.seen, "alerts_in_visit", t.count)
}

// finish records that every alert of a visit has been through the filters.
// Its timing events wait in the book until the visit's outputs are
// committed (emitPending).
func (f *filterRun) finish(key visitKey, t *visitTally) {
	f.visits.complete(key)
	f.finished = true
	for i, s := range f.cfg.Specs {
		ev := timing.Event{Kind: timing.KindFilter, Run: key.Run, Visit: key.Visit, Name: s.Name,
			Source: s.Output, Alerts: t.seen, Bytes: t.bytes, Matched: t.matched[i], Selected: t.selected[i],
			DeadLetters: t.dead, Duplicates: t.dups}
		if use, ok := f.set.VisitUse(i, key.Visit); ok {
			ev.Skipped, ev.Quarantined = use.Skipped, use.Quarantined
			if len(use.Errors) > 0 {
				ev.Errors = use.Errors
			}
		}
		if t.count == 0 {
			// Header-less: no produce event times the visit, so the event
			// carries the record timestamps of its first and last alerts,
			// and ends when the filter handled its last alert (not when the
			// visit closed).
			ev.Start, ev.Sent, ev.End = t.first, t.sent, t.last
		}
		if f.holdIfBehind(i, ev) {
			continue // sent once the deferred filter has passed the visit
		}
		f.visits.pending = append(f.visits.pending, ev)
	}
	f.log.Debug("visit filtered", "visit", key.Visit, "alerts", t.seen, "dead_letters", t.dead, "duplicates", t.dups)
}

// quarantined reports a filter that went over its time budget: at once,
// in the log and as a quarantine event on the hub (sent at least once: a
// restarted process may send it again, and the report lists it once).
func (f *filterRun) quarantined(q filter.Quarantine) {
	f.log.Error("filter quarantined: its alerts are not evaluated for the rest of the visit", "name", q.Filter, "visit", q.Visit, "reason", q.Reason)
	f.sink.Emit(timing.Event{Kind: timing.KindQuarantine, Visit: q.Visit, Name: q.Filter, End: time.Now(), Reason: q.Reason})
}

// emitPending sends the timing events of completed visits, stamped now:
// the time their outputs became readable. At least once, they stay pending
// (and in the saved state) until the hub has them: a restarted filter
// sends them again, and the report counts each once.
func (f *filterRun) emitPending() {
	f.finished = false
	end := time.Now()
	if f.cfg.AtLeastOnce {
		for _, ev := range f.visits.pending {
			if ev.End.IsZero() {
				ev.End = end
			}
			f.sink.Emit(ev)
		}
		f.visits.pending = nil
		return
	}
	for i := range f.visits.pending {
		ev := &f.visits.pending[i]
		if f.inFlight[pendingKey(*ev)] {
			continue
		}
		if ev.End.IsZero() {
			ev.End = end
		}
		f.inFlight[pendingKey(*ev)] = true
		f.sink.EmitTracked(*ev, f.acked)
	}
}

// dropDelivered forgets the pending events the hub has stored.
func (f *filterRun) dropDelivered() {
	for {
		select {
		case ev := <-f.acked:
			delete(f.inFlight, pendingKey(ev))
			f.visits.pending = slices.DeleteFunc(f.visits.pending, func(p timing.Event) bool { return pendingKey(p) == pendingKey(ev) })
		default:
			return
		}
	}
}

// errParked: the alert's schema id is unknown, and the next re-read of the
// schemas topic is not due yet; the alert waits for it (park).
var errParked = errors.New("schema unknown until the next re-read of the schemas topic")

// decode decodes an alert, first learning its schema from the schemas topic
// if it is not known yet and a re-read is due; errParked if one is not.
func (f *filterRun) decode(ctx context.Context, value []byte) (map[string]any, error) {
	rec, id, err := f.dec.DecodeMessage(value)
	if !errors.Is(err, alert.ErrUnknownSchema) {
		return rec, err
	}
	known, wait, lerr := f.book.lookup(ctx, id)
	switch {
	case lerr != nil:
		f.log.Warn("reading schemas", "err", lerr)
		return nil, learnError{lerr}
	case wait:
		return nil, errParked
	case known:
		f.log.Info("learned schema", "id", id)
		rec, _, err = f.dec.DecodeMessage(value)
	}
	return rec, err
}

func (f *filterRun) emitSelected(ctx context.Context, m *kafka.Message, i, rank int, visit int64, id any) {
	spec := f.cfg.Specs[i]
	hs := []kafka.Header{
		{Key: stream.HeaderRun, Value: []byte(headerString(m.Headers, stream.HeaderRun))},
		intHeader(stream.HeaderVisit, visit),
		intHeader(stream.HeaderRank, int64(rank)),
		{Key: stream.HeaderID, Value: []byte(fmt.Sprint(id))},
		{Key: stream.HeaderFrom, Value: []byte(spec.Name)},
	}
	out := spec.Output
	f.uncommittedOut++
	if err := kclient.ProduceWaiting(ctx, f.out, &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &out, Partition: kafka.PartitionAny},
		Key:            m.Key, Value: m.Value, Headers: hs,
	}, nil); err != nil {
		f.log.Error("queue filtered alert", "output", out, "err", err)
		f.txnErr = err // the transaction must not commit without it
	}
}

// deadLetter copies an alert that could not be decoded, with the reason.
func (f *filterRun) deadLetter(ctx context.Context, m *kafka.Message, cause error) {
	f.dead++
	f.visits.lane.dropped(m)
	if f.dead == 1 || f.dead%1000 == 0 {
		f.log.Warn("undecodable alert sent to the dead-letter topic", "topic", f.cfg.DeadLetter,
			"at", m.TopicPartition.String(), "err", cause, "dead_letters", f.dead)
	}
	hs := append(append([]kafka.Header(nil), m.Headers...),
		kafka.Header{Key: stream.HeaderError, Value: []byte(cause.Error())},
		kafka.Header{Key: stream.HeaderSource, Value: []byte(m.TopicPartition.String())},
		kafka.Header{Key: stream.HeaderSourceOffset, Value: []byte(strconv.FormatInt(int64(m.TopicPartition.Offset), 10))})
	dl := f.cfg.DeadLetter
	f.uncommittedOut++
	if err := kclient.ProduceWaiting(ctx, f.out, &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &dl, Partition: kafka.PartitionAny},
		Key:            m.Key, Value: m.Value, Headers: hs,
	}, nil); err != nil {
		f.log.Error("queue dead letter", "err", err)
		f.txnErr = err
	}
}

// learnError is a failure to read the schemas topic, as opposed to a
// schema that is not there.
type learnError struct{ err error }

func (e learnError) Error() string { return "read the schemas topic: " + e.err.Error() }
func (e learnError) Unwrap() error { return e.err }

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

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
