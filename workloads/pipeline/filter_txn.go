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
)

// An exactly-once filter runs in sessions. A session makes a
// transactional producer (which fences any predecessor and aborts what it
// left open), restores the process's state from the last committed record
// of its state topic, and joins the consumer group, which resumes from the
// offsets committed with that record. Each transaction then holds the
// filtered alerts, dead letters, the state record and the input offsets:
// after a crash, all of it is there or none of it. When Kafka aborts a
// transaction, the session ends and a new one resumes from the last
// commit.

// Timeouts of the transactional steps.
const (
	// txnStepTimeout bounds one attempt of a transactional call; retriable
	// failures (a broker restarting) are retried until the filter stops.
	txnStepTimeout = 30 * time.Second
	// resumeDelay is the pause before a new session after an aborted one.
	resumeDelay = time.Second
)

// errResume marks a failure after which a new session resumes from the
// last committed transaction.
var errResume = errors.New("transaction aborted")

func (f *filterRun) runExactlyOnce(ctx context.Context) error {
	member := newGroupMember(f.cfg.Input, f.cfg.Ready, f.cfg.FromBeginning, f.cfg.OutOfGroupLimit, f.log)
	return runSessions(ctx, f.log, func(ctx context.Context) error { return f.session(ctx, member) })
}

// runSessions runs transactional sessions one after another: after one
// that failed with errResume, a new one resumes from the last committed
// transaction, resumeDelay later. It returns the first other error, or
// nil once ctx ends (what was not committed is redone by the next
// process).
func runSessions(ctx context.Context, log *slog.Logger, session func(context.Context) error) error {
	for {
		err := session(ctx)
		if ctx.Err() != nil && errors.Is(err, errResume) {
			return nil
		}
		if err == nil || !errors.Is(err, errResume) {
			return err
		}
		log.Warn("resuming from the last committed transaction", "err", err)
		if sleepUntil(ctx, time.Now().Add(resumeDelay)) != nil {
			return nil
		}
	}
}

// session filters until ctx ends (nil, after committing what was handled)
// or a transaction fails (an errResume error, or a fatal one).
func (f *filterRun) session(ctx context.Context, member *groupMember) error {
	cfg := f.cfg
	txnID := stream.FilterTransactionalID(cfg.Group)
	out, err := kafka.NewProducer(kclient.TransactionalProducerConfig(cfg.OutputBootstrap, txnID,
		mergeKafka(map[string]string{"linger.ms": "0"}, cfg.Kafka)))
	if err != nil {
		return fmt.Errorf("output producer for %s: %w", cfg.OutputBootstrap, err)
	}
	f.out = out
	go drainEvents(out, f.log)
	defer out.Close()
	// The coordinator's record of the last session's last transaction,
	// kept until its hanging transactions are closed: InitTransactions
	// resets it.
	if f.lastTxn == nil {
		last, err := lastTxn(ctx, cfg.OutputBootstrap, cfg.Kafka, txnID)
		if err != nil {
			return err
		}
		f.lastTxn = &last
	}
	if err := retryTxn(ctx, "init transactions", func(ctx context.Context) error { return out.InitTransactions(ctx) }); err != nil {
		return err
	}
	if err := f.closeHanging(ctx, txnID, *f.lastTxn); err != nil {
		return err
	}
	f.lastTxn = nil

	stateCtx, cancel := context.WithTimeout(ctx, txnStepTimeout)
	data, err := readState(stateCtx, cfg.OutputBootstrap, cfg.Kafka, cfg.StateTopic)
	cancel()
	if err != nil {
		return fmt.Errorf("%w: %w", errResume, err)
	}
	if f.visits, err = restoreBook(data, f.set); err != nil {
		return err
	}
	f.finished, f.uncommittedOut, f.txnErr = false, 0, nil
	f.parked, f.quietSince = nil, time.Now()
	f.inFlight = map[pendingID]bool{}
	f.dropDelivered()
	f.emitPending() // completion events not known to have reached the hub

	c, err := member.open(kclient.TransactionalConsumerConfig(cfg.Bootstrap, cfg.Group, cfg.FromBeginning, cfg.Kafka))
	if err != nil {
		return err
	}
	defer func() {
		if member.stuck() {
			member.abandon(c)
		} else {
			c.Close()
		}
	}()
	f.log.Info("filtering (exactly once)", "bootstrap", cfg.Bootstrap, "input", cfg.Input, "filters", len(cfg.Specs),
		"group", cfg.Group, "transactional_id", txnID, "open_visits", len(f.visits.open))

	if err := out.BeginTransaction(); err != nil {
		return fmt.Errorf("%w: begin: %w", errResume, err)
	}
	progress := time.NewTicker(progressEvery)
	defer progress.Stop()
	var opened time.Time // when the open transaction got its first alert; zero: nothing to commit
	for ctx.Err() == nil {
		select {
		case <-progress.C:
			f.logProgress()
		default:
		}
		wait := 100 * time.Millisecond
		if !opened.IsZero() {
			wait = max(min(wait, time.Until(opened.Add(cfg.CommitInterval))), time.Millisecond)
		}
		if f.visits.lane.hasWork() && len(f.parked) == 0 {
			wait = min(wait, laneIdle) // the slow lane is worked once no alert has come for laneIdle
		}
		switch e := c.Poll(int(wait.Milliseconds())).(type) {
		case nil:
			f.workLane(ctx, time.Now().Add(laneSlice), 0)
		case *kafka.Message:
			if opened.IsZero() {
				opened = time.Now()
			}
			f.handle(ctx, e)
			if f.txnErr != nil {
				return f.abort(ctx, out, f.txnErr)
			}
			if f.visits.lane.bytes > maxLaneBytes {
				f.workLane(ctx, time.Now().Add(time.Hour), maxLaneBytes)
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("%w: filter %s consuming %s: %w", errResume, cfg.Name, cfg.Input, e)
			}
			f.log.Warn("kafka", "err", e)
		}
		f.dropDelivered()
		if f.resolveParked(ctx, false); f.txnErr != nil {
			return f.abort(ctx, out, f.txnErr)
		}
		if f.closeQuiet(time.Now()); (f.finished || f.uncommittedOut > 0 || f.visits.lane.moved) && opened.IsZero() {
			opened = time.Now() // a closed visit's state and events, or the slow lane's output or progress, commit now
		}
		switch {
		case member.revoked:
			// Partitions may have moved on; what this transaction holds is
			// redone from the last commit.
			return f.abort(ctx, out, errors.New("partitions revoked"))
		case member.startErr != nil:
			return f.abort(ctx, out, fmt.Errorf("starting new partitions at their end: %w", member.startErr))
		case member.stuck():
			return f.abort(ctx, out, fmt.Errorf("out of the consumer group for over %s", member.limit))
		}
		if !opened.IsZero() && f.commitDue(time.Since(opened)) {
			if err := f.commit(ctx, c, out); err != nil {
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
	// Stopping: what was read is filtered and committed, within
	// closeTimeout.
	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	defer cancel()
	if f.resolveParked(stop, true); len(f.parked) > 0 {
		return f.abort(stop, out, fmt.Errorf("stopping with %d alerts whose schema could not be read yet", len(f.parked)))
	}
	if err := f.commit(stop, c, out); err != nil {
		return fmt.Errorf("last commit before stopping: %w", err)
	}
	return nil
}

// maxUncommitted bounds how long a transaction without output stays open:
// what a crash would make the filter read again.
const maxUncommitted = time.Second

// commitDue reports whether the open transaction, open for d, should
// commit: at once when a visit is complete; after CommitInterval when it
// holds filtered alerts or dead letters (readers are waiting for them);
// otherwise after maxUncommitted. Each commit stalls the filter for a few
// round trips, so a stretch of alerts that selects nothing (caps full, no
// match) is not cut into many. Never while alerts are parked (at most about
// a second).
func (f *filterRun) commitDue(d time.Duration) bool {
	if len(f.parked) > 0 {
		return false // their offsets would commit before they are filtered
	}
	return f.finished || (f.uncommittedOut > 0 && d >= f.cfg.CommitInterval) || d >= maxUncommitted
}

// commit ends the open transaction: the state record, then the input
// offsets, then the commit; the completed visits' timing events are sent
// once it has committed.
func (f *filterRun) commit(ctx context.Context, c *kafka.Consumer, out *kafka.Producer) error {
	if f.txnErr != nil {
		return f.abort(ctx, out, f.txnErr)
	}
	began := time.Now()
	defer func() { f.commits++; f.commitTime += time.Since(began) }()
	lane := f.visits.lane
	f.releaseHeld(lane.needs())
	offsets, err := consumedOffsets(c)
	if err != nil {
		return f.abort(ctx, out, err)
	}
	lane.limit(offsets) // what the deferred filters still need is read again after a crash
	lane.prune(offsets)
	state, err := f.visits.snapshot(f.set, lane.replayPending(offsets))
	if err != nil {
		return fmt.Errorf("encode the filter state: %w", err)
	}
	if err := writeState(ctx, out, f.cfg.StateTopic, state); err != nil {
		return f.abort(ctx, out, err)
	}
	meta, err := c.GetConsumerGroupMetadata()
	if err != nil {
		return f.abort(ctx, out, fmt.Errorf("consumer group metadata: %w", err))
	}
	if err := retryTxn(ctx, "send offsets", func(ctx context.Context) error {
		return out.SendOffsetsToTransaction(ctx, offsets, meta)
	}); err != nil {
		return f.abortIfAbortable(ctx, out, err)
	}
	if err := retryTxn(ctx, "commit", func(ctx context.Context) error { return out.CommitTransaction(ctx) }); err != nil {
		return f.abortIfAbortable(ctx, out, err)
	}
	f.uncommittedOut, lane.moved = 0, false
	f.emitPending()
	return nil
}

// consumedOffsets returns the next offset to read of every assigned
// partition that has been read from.
func consumedOffsets(c *kafka.Consumer) ([]kafka.TopicPartition, error) {
	parts, err := c.Assignment()
	if err != nil {
		return nil, fmt.Errorf("assignment: %w", err)
	}
	pos, err := c.Position(parts)
	if err != nil {
		return nil, fmt.Errorf("positions: %w", err)
	}
	out := pos[:0]
	for _, tp := range pos {
		if tp.Offset >= 0 {
			out = append(out, tp)
		}
	}
	return out, nil
}

// abort aborts the open transaction and ends the session: a new one
// resumes from the last commit.
func (f *filterRun) abort(ctx context.Context, out *kafka.Producer, cause error) error {
	if err := fencedError(out); err != nil {
		return fmt.Errorf("filter %s was replaced by a newer process with the same transactional.id: %w", f.cfg.Name, err)
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), txnStepTimeout)
	defer cancel()
	if err := out.AbortTransaction(actx); err != nil {
		f.log.Warn("abort transaction", "err", err) // the next session's producer aborts it
	}
	return fmt.Errorf("%w: %w", errResume, cause)
}

// abortIfAbortable aborts after an error that needs it; any other
// non-fatal error also ends the session, as the transaction's outcome is
// then unknown to this producer. A fenced producer stops: a newer process
// with the same transactional.id runs.
func (f *filterRun) abortIfAbortable(ctx context.Context, out *kafka.Producer, err error) error {
	var ke kafka.Error
	if errors.As(err, &ke) && ke.Code() == kafka.ErrFenced {
		return fmt.Errorf("filter %s was replaced by a newer process with the same transactional.id: %w", f.cfg.Name, err)
	}
	if ferr := fencedError(out); ferr != nil {
		return fmt.Errorf("filter %s was replaced by a newer process with the same transactional.id: %w", f.cfg.Name, ferr)
	}
	if errors.As(err, &ke) && ke.TxnRequiresAbort() {
		return f.abort(ctx, out, err)
	}
	return fmt.Errorf("%w: %w", errResume, err)
}

// fencedError returns the producer's fatal error if it is that of a
// producer fenced by a newer one with its transactional.id (seen first,
// often, as a failed produce rather than a failed commit): that process
// runs, and this one must stop rather than fence it back.
func fencedError(out *kafka.Producer) error {
	err := out.GetFatalError()
	var ke kafka.Error
	if errors.As(err, &ke) && ke.Code() == kafka.ErrFenced {
		return err
	}
	return nil
}

// lastTxn reads what the transaction coordinator recorded of txnID's last
// transaction, before InitTransactions resets it (see kclient.CloseHanging).
func lastTxn(ctx context.Context, bootstrap string, conn map[string]string, txnID string) (kclient.TxnRecord, error) {
	sctx, cancel := context.WithTimeout(ctx, txnStepTimeout)
	defer cancel()
	last, err := kclient.LastTxn(sctx, bootstrap, conn, txnID)
	if err != nil {
		return last, fmt.Errorf("%w: %w", errResume, err)
	}
	return last, nil
}

// LogClosedHanging is the message a filter logs (at WARN, with the
// partition) for each transaction of its previous session it closed.
const LogClosedHanging = "closed a transaction Kafka had left open (hanging)"

// closeHanging closes the transactions of the previous session that Kafka
// left open in the partitions this filter writes (its outputs, dead
// letters, state and its group's offsets), with the outcome the coordinator
// decided: otherwise the group's offsets stay unstable and the filter
// reads nothing ever again.
func (f *filterRun) closeHanging(ctx context.Context, txnID string, last kclient.TxnRecord) error {
	topics := []string{f.cfg.DeadLetter, f.cfg.StateTopic}
	for _, s := range f.cfg.Specs {
		topics = append(topics, s.Output)
	}
	sctx, cancel := context.WithTimeout(ctx, txnStepTimeout)
	defer cancel()
	closed, err := kclient.CloseHanging(sctx, f.cfg.OutputBootstrap, f.cfg.Kafka, txnID, f.cfg.Group, last, topics)
	for _, c := range closed {
		f.log.Warn(LogClosedHanging, "partition", c.String())
	}
	if err != nil {
		return fmt.Errorf("%w: closing hanging transactions of %s: %w", errResume, txnID, err)
	}
	return nil
}

// retryTxn runs a transactional call, each attempt bounded by
// txnStepTimeout, again while it fails with a retriable error and ctx
// lasts.
func retryTxn(ctx context.Context, what string, call func(context.Context) error) error {
	for {
		sctx, cancel := context.WithTimeout(ctx, txnStepTimeout)
		err := call(sctx)
		cancel()
		if err == nil {
			return nil
		}
		var ke kafka.Error
		if !errors.As(err, &ke) || !ke.IsRetriable() || ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}
