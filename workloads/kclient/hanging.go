package kclient

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// Hanging transactions (KIP-664).
//
// Once Kafka's transaction coordinator has decided a transaction's outcome
// it writes a marker in each of the transaction's partitions. If it records
// the transaction complete while some markers were never written (seen when
// a single broker stops during a commit and, restarting, cannot reach its
// own listener for a while), those partitions keep the transaction open for
// ever: read_committed consumers stop in front of it, and a consumer group
// whose transactional offset commit is left open never gets stable offsets
// again. librdkafka has no remedy for this; the Admin API has
// (DescribeProducers, WriteTxnMarkers), and a transactional process can use
// it on its own transactional.id:
//
//  1. LastTxn, before InitTransactions, reads what the coordinator recorded
//     of the id's last transaction: its producer id, epoch and outcome
//     (InitTransactions resets that record).
//  2. InitTransactions completes whatever the coordinator still had open for
//     the id and gives the process a newer epoch, so that no transaction of
//     the id from an older epoch can still be open anywhere.
//  3. CloseHanging finds, in the partitions the id writes (its topics, and
//     its group's partition of the offsets topic), every transaction of the
//     id from an older epoch still open, and closes it with the outcome the
//     coordinator decided (see outcome). The process's first transaction
//     then starts on partitions as the coordinator meant to leave them.
//
// The record read in step 1 must be kept until step 3 has succeeded: a
// retry after InitTransactions would read a record that no longer knows.

// TxnRecord is what a transaction coordinator recorded of a transactional
// id's last transaction.
type TxnRecord struct {
	ProducerID int64
	Epoch      int16
	// StartMillis is when the transaction began (coordinator's clock,
	// Unix ms); -1 when unknown.
	StartMillis int64
	// State is the coordinator's state name (Empty, Ongoing, PrepareCommit,
	// CompleteCommit, PrepareAbort, CompleteAbort, PrepareEpochFence), or
	// "" when the coordinator knows no such id.
	State string
}

// Committed tells whether the coordinator decided to commit the
// transaction (librdkafka uses transaction version 1: every transaction of
// a producer session has its epoch, and the outcome is the last one's).
func (r TxnRecord) Committed() bool {
	return r.State == "PrepareCommit" || r.State == "CompleteCommit"
}

// ClosedTxn is one partition's hanging transaction that CloseHanging closed.
type ClosedTxn struct {
	Topic       string
	Partition   int32
	ProducerID  int64
	Epoch       int16
	StartOffset int64 // the transaction's first offset in the partition
	Committed   bool  // closed with a commit marker (else an abort marker)
}

func (c ClosedTxn) String() string {
	outcome := "aborted"
	if c.Committed {
		outcome = "committed"
	}
	return fmt.Sprintf("%s-%d from offset %d (producer %d epoch %d) %s", c.Topic, c.Partition, c.StartOffset, c.ProducerID, c.Epoch, outcome)
}

// newAdmin is a franz-go admin client for bootstrap (host:port,...) with
// the command's connection settings. It serves the Admin API calls
// librdkafka lacks.
func newAdmin(bootstrap string, conn map[string]string) (*kadm.Client, error) {
	opts, err := kgoConnOpts(conn)
	if err != nil {
		return nil, fmt.Errorf("admin client for %s: %w", bootstrap, err)
	}
	cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers(strings.Split(bootstrap, ",")...))...)
	if err != nil {
		return nil, fmt.Errorf("admin client for %s: %w", bootstrap, err)
	}
	return kadm.NewClient(cl), nil
}

// LastTxn returns what the coordinator recorded of txnID's last
// transaction. Call it before InitTransactions, which resets the record.
func LastTxn(ctx context.Context, bootstrap string, conn map[string]string, txnID string) (TxnRecord, error) {
	ad, err := newAdmin(bootstrap, conn)
	if err != nil {
		return TxnRecord{}, err
	}
	defer ad.Close()
	return describeTxn(ctx, ad, txnID)
}

func describeTxn(ctx context.Context, ad *kadm.Client, txnID string) (TxnRecord, error) {
	ds, err := ad.DescribeTransactions(ctx, txnID)
	if err != nil {
		return TxnRecord{}, fmt.Errorf("describe transaction %q: %w", txnID, err)
	}
	d, ok := ds[txnID]
	if !ok {
		return TxnRecord{}, fmt.Errorf("describe transaction %q: no answer for it", txnID)
	}
	if d.Err != nil {
		if errors.Is(d.Err, kerr.TransactionalIDNotFound) {
			return TxnRecord{}, nil
		}
		return TxnRecord{}, fmt.Errorf("describe transaction %q: %w", txnID, d.Err)
	}
	return TxnRecord{ProducerID: d.ProducerID, Epoch: d.ProducerEpoch, StartMillis: d.StartTimestamp, State: d.State}, nil
}

// CloseHanging closes every transaction of txnID from before the current
// producer session that is still open in topics (all their partitions) or
// in group's partition of the offsets topic (none when group is empty). last is what LastTxn returned
// before InitTransactions; call CloseHanging after it, before the first
// transaction. It returns what it closed.
func CloseHanging(ctx context.Context, bootstrap string, conn map[string]string, txnID, group string, last TxnRecord, topics []string) ([]ClosedTxn, error) {
	ad, err := newAdmin(bootstrap, conn)
	if err != nil {
		return nil, err
	}
	defer ad.Close()
	now, err := describeTxn(ctx, ad, txnID)
	if err != nil {
		return nil, err
	}
	if now.State == "" {
		return nil, fmt.Errorf("transaction %q: the coordinator does not know it after InitTransactions", txnID)
	}
	set := kadm.TopicsSet{}
	set.MergeTopics(topics) // every partition of each
	// Only the group's own partition of the offsets topic: the others are
	// other groups' business, and an error there must not stop this one.
	// A writer without a group (group "") commits no offsets.
	if group != "" {
		n, err := partitionCount(ctx, ad, stream.OffsetsTopic)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			set.Add(stream.OffsetsTopic, GroupOffsetsPartition(group, n))
		}
	}
	described, err := ad.DescribeProducers(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("describe producers of %s: %w", strings.Join(topics, ", "), err)
	}
	var closed []ClosedTxn
	var markers []kadm.TxnMarkers
	var errs []error
	for _, p := range described.SortedPartitions() {
		if p.Err != nil {
			errs = append(errs, fmt.Errorf("describe producers of %s-%d: %w", p.Topic, p.Partition, p.Err))
			continue
		}
		for _, dp := range p.ActiveProducers.Sorted() {
			if dp.CurrentTxnStartOffset < 0 || !olderSession(dp, now, last) {
				continue
			}
			c := ClosedTxn{Topic: dp.Topic, Partition: dp.Partition, ProducerID: dp.ProducerID, Epoch: dp.ProducerEpoch,
				StartOffset: dp.CurrentTxnStartOffset, Committed: outcome(dp, last)}
			closed = append(closed, c)
			markers = append(markers, kadm.TxnMarkers{
				ProducerID: dp.ProducerID, ProducerEpoch: dp.ProducerEpoch, Commit: c.Committed,
				CoordinatorEpoch: max(dp.CoordinatorEpoch, 0),
				Topics:           kadm.TopicsSet{dp.Topic: {dp.Partition: {}}},
			})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(markers) == 0 {
		return nil, nil
	}
	res, err := ad.WriteTxnMarkers(ctx, markers...)
	if err != nil {
		return nil, fmt.Errorf("write transaction markers: %w", err)
	}
	res.EachPartition(func(p kadm.TxnMarkersPartitionResponse) {
		if p.Err != nil {
			errs = append(errs, fmt.Errorf("write a transaction marker in %s-%d: %w", p.Topic, p.Partition, p.Err))
		}
	})
	return closed, errors.Join(errs...)
}

// outcome tells whether to commit a hanging transaction of a partition.
// librdkafka speaks transaction protocol version 1: every transaction of a
// producer session has the session's producer id and epoch, and the
// coordinator's record (last) is of the session's last transaction. A
// session only ever aborts its last transaction (an abort ends it), so:
//   - the last transaction is closed as the coordinator recorded it;
//   - an earlier one of the same session (its last write before the last
//     transaction began: the writer's clock against the coordinator's, one
//     node's clock in a swarm, where a mirror's filters run beside it) was
//     committed;
//   - anything else (an older session, or a record that no longer knows,
//     as after a crash between InitTransactions and CloseHanging) is
//     aborted, which is what the coordinator would have done had it known.
func outcome(dp kadm.DescribedProducer, last TxnRecord) bool {
	if dp.ProducerID != last.ProducerID || dp.ProducerEpoch != last.Epoch {
		return false
	}
	if last.Committed() {
		return true
	}
	return last.StartMillis > 0 && dp.LastTimestamp < last.StartMillis && last.State != "Empty"
}

// partitionCount is topic's partition count, 0 when it does not exist.
func partitionCount(ctx context.Context, ad *kadm.Client, topic string) (int, error) {
	m, err := ad.Metadata(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	t, ok := m.Topics[topic]
	if !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
		return 0, nil
	}
	if t.Err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, t.Err)
	}
	return len(t.Partitions), nil
}

// GroupOffsetsPartition is the partition of the offsets topic (of n
// partitions) that holds group's offsets: Kafka's
// Utils.abs(group.hashCode()) % n, with Java's String.hashCode over UTF-16
// code units.
func GroupOffsetsPartition(group string, n int) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(u)
	}
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % int32(n)
}

// olderSession tells whether a partition's open transaction is one of the
// transactional id's from before its current producer session now: its
// producer id with an older epoch, or the id's previous producer id (Kafka
// gives a new one when the epoch runs out).
func olderSession(dp kadm.DescribedProducer, now, last TxnRecord) bool {
	if dp.ProducerID == now.ProducerID {
		return dp.ProducerEpoch < now.Epoch
	}
	return last.State != "" && dp.ProducerID == last.ProducerID
}
