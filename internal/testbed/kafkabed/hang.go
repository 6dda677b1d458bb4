package kafkabed

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// WithHangableTransactions lets HangTransaction leave transactions open:
// it turns off the broker's check that a transactional write goes to a
// partition the transaction coordinator knows of (KIP-890 part 1).
func WithHangableTransactions() Option {
	return WithProperty("transaction.partition.verification.enable", "false")
}

// Hang describes a transaction that HangTransaction leaves open in some
// partitions, as Kafka's transaction coordinator leaves one when it records
// an outcome without writing every marker.
type Hang struct {
	TxnID string
	// Records are values written in the transaction to partition 0 of
	// their topic, left open.
	Records map[string]string
	// Offsets are offsets committed in the transaction (TxnOffsetCommit),
	// left open: the group's committed offsets are unstable until the
	// transaction is closed.
	Offsets []GroupOffset
	// CommitVia, when set, is a topic whose partition 0 the coordinator
	// registers: the transaction writes a record there too and is
	// committed, so that the coordinator records it committed while the
	// partitions above keep it open. Empty: the coordinator registers
	// nothing and never decides.
	CommitVia string
}

// GroupOffset is a consumer group's offset in partition 0 of a topic.
type GroupOffset struct {
	Group, Topic string
	Offset       int64
}

// HangTransaction leaves h's transaction open; the broker must have been
// started WithHangableTransactions. It speaks the transaction protocol
// request by request (franz-go's kmsg), leaving out what a client would
// always send. Topics must exist.
func (b *Broker) HangTransaction(ctx context.Context, h Hang) error {
	// Versions of Kafka 3.7: before Produce addressed topics by id and
	// AddPartitionsToTxn batched transactions.
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.bootstrap), kgo.MaxVersions(kversion.V3_7_0()))
	if err != nil {
		return fmt.Errorf("kafkabed: client for %s: %w", b.bootstrap, err)
	}
	defer cl.Close()
	r := rawTxn{cl: cl, id: h.TxnID}
	if err := r.initProducerID(ctx); err != nil {
		return err
	}
	if h.CommitVia != "" {
		if err := r.addPartition(ctx, h.CommitVia); err != nil {
			return err
		}
		if err := r.produce(ctx, h.CommitVia, "committed"); err != nil {
			return err
		}
	}
	for topic, value := range h.Records {
		if err := r.produce(ctx, topic, value); err != nil {
			return err
		}
	}
	for _, o := range h.Offsets {
		if err := r.commitOffset(ctx, o); err != nil {
			return err
		}
	}
	if h.CommitVia != "" {
		return r.endTxn(ctx, true)
	}
	return nil
}

// rawTxn is one transactional producer session, request by request.
type rawTxn struct {
	cl    *kgo.Client
	id    string
	pid   int64
	epoch int16
	seq   map[string]int32 // next sequence number by topic (partition 0)
}

// send sends req until the error code code finds in its response is not a
// retriable one (or ctx ends).
func (r *rawTxn) send(ctx context.Context, req kmsg.Request, code func(kmsg.Response) int16) (kmsg.Response, error) {
	for {
		resp, err := r.cl.Request(ctx, req)
		if err == nil {
			err = kerr.ErrorForCode(code(resp))
		}
		if err == nil {
			return resp, nil
		}
		if !kerr.IsRetriable(err) && !errors.Is(err, kerr.ConcurrentTransactions) || ctx.Err() != nil {
			return nil, fmt.Errorf("kafkabed: transaction %q: %T: %w", r.id, req, err)
		}
		time.Sleep(pollInterval)
	}
}

func (r *rawTxn) initProducerID(ctx context.Context) error {
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = &r.id
	req.TransactionTimeoutMillis = 60_000
	resp, err := r.send(ctx, req, func(k kmsg.Response) int16 { return k.(*kmsg.InitProducerIDResponse).ErrorCode })
	if err != nil {
		return err
	}
	ir := resp.(*kmsg.InitProducerIDResponse)
	r.pid, r.epoch, r.seq = ir.ProducerID, ir.ProducerEpoch, map[string]int32{}
	return nil
}

func (r *rawTxn) addPartition(ctx context.Context, topic string) error {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = r.id, r.pid, r.epoch
	req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: topic, Partitions: []int32{0}}}
	_, err := r.send(ctx, req, func(k kmsg.Response) int16 {
		for _, t := range k.(*kmsg.AddPartitionsToTxnResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
		return 0
	})
	return err
}

func (r *rawTxn) endTxn(ctx context.Context, commit bool) error {
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = r.id, r.pid, r.epoch, commit
	_, err := r.send(ctx, req, func(k kmsg.Response) int16 { return k.(*kmsg.EndTxnResponse).ErrorCode })
	return err
}

// commitOffset writes a transactional offset commit without
// AddOffsetsToTxn: the coordinator does not learn of it.
func (r *rawTxn) commitOffset(ctx context.Context, o GroupOffset) error {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = r.id, o.Group, r.pid, r.epoch
	req.Generation, req.MemberID = -1, ""
	req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: o.Topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{
		{Partition: 0, Offset: o.Offset, LeaderEpoch: -1}}}}
	_, err := r.send(ctx, req, func(k kmsg.Response) int16 {
		for _, t := range k.(*kmsg.TxnOffsetCommitResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
		return 0
	})
	return err
}

// produce writes one transactional record to partition 0 of topic.
func (r *rawTxn) produce(ctx context.Context, topic, value string) error {
	rec := kmsg.Record{Value: []byte(value)}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // after its own (zero, one-byte) varint length
	now := time.Now().UnixMilli()
	batch := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: 0x10, // transactional
		FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: r.pid, ProducerEpoch: r.epoch, FirstSequence: r.seq[topic],
		NumRecords: 1, Records: rec.AppendTo(nil),
	}
	batch.Length = int32(len(batch.AppendTo(nil)) - 12) // after FirstOffset and Length
	raw := batch.AppendTo(nil)
	batch.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))) // from Attributes on
	raw = batch.AppendTo(nil)

	req := kmsg.NewPtrProduceRequest()
	req.TransactionID, req.Acks, req.TimeoutMillis = &r.id, -1, 10_000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: topic, Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: raw}}}}
	_, err := r.send(ctx, req, func(k kmsg.Response) int16 {
		for _, t := range k.(*kmsg.ProduceResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
		return 0
	})
	if err == nil {
		r.seq[topic]++
	}
	return err
}
