package kclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// TestCloseHanging leaves transactions hanging on a real broker the way
// Kafka's coordinator does when it records an outcome without writing every
// marker: data and a consumer group's offset commit written in a
// transaction the coordinator never registered them with (the broker's
// partition verification is off so that it accepts them). It checks that
// the stall is real (a read_committed consumer gets no committed offsets,
// and reads nothing past the open transaction), then that LastTxn,
// InitTransactions and CloseHanging close each with the coordinator's
// outcome: committed with the transaction the coordinator committed,
// aborted for one it never decided.
func TestCloseHanging(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kafka broker; skipped under -short")
	}
	b := kafkabed.StartBrokerT(t, kafkabed.WithHangableTransactions())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, topic := range []string{"input", "registered", "hang-c", "hang-a"} {
		kafkabed.Must(t, b.CreateTopic(ctx, topic, 1, nil))
	}
	// Committed: the coordinator marks "registered" only; the record in
	// hang-c and group-c's offset commit stay open after its commit.
	kafkabed.Must(t, b.HangTransaction(ctx, kafkabed.Hang{TxnID: "txn-c", CommitVia: "registered",
		Records: map[string]string{"hang-c": "c1"}, Offsets: []kafkabed.GroupOffset{{Group: "group-c", Topic: "input", Offset: 42}}}))
	// Never decided: the coordinator knows nothing of these partitions, so
	// no timeout of its will abort them.
	kafkabed.Must(t, b.HangTransaction(ctx, kafkabed.Hang{TxnID: "txn-a",
		Records: map[string]string{"hang-a": "a1"}, Offsets: []kafkabed.GroupOffset{{Group: "group-a", Topic: "input", Offset: 7}}}))

	// The stall, as a filter meets it.
	for _, g := range []string{"group-c", "group-a"} {
		if off, err := committed(b.Bootstrap(), g, "input", 5*time.Second); err == nil {
			t.Fatalf("%s: committed offset %d read through an open transaction: the hang was not set up", g, off)
		}
	}
	if got := readCommitted(t, b.Bootstrap(), "hang-c", 3*time.Second); len(got) != 0 {
		t.Fatalf("hang-c read %v before the transaction was closed", got)
	}

	closeAll := func(txnID, group string, topics ...string) []kclient.ClosedTxn {
		t.Helper()
		last, err := kclient.LastTxn(ctx, b.Bootstrap(), nil, txnID)
		kafkabed.Must(t, err)
		p, err := kafka.NewProducer(kclient.TransactionalProducerConfig(b.Bootstrap(), txnID, nil))
		kafkabed.Must(t, err)
		defer p.Close()
		kafkabed.Must(t, p.InitTransactions(ctx))
		closed, err := kclient.CloseHanging(ctx, b.Bootstrap(), nil, txnID, group, last, topics)
		kafkabed.Must(t, err)
		return closed
	}
	// A topic not created yet (as __consumer_offsets before any group) is
	// not an error.
	topics := []string{"registered", "hang-c", "hang-a", "never-created"}
	closedC := closeAll("txn-c", "group-c", topics...)
	closedA := closeAll("txn-a", "group-a", topics...)
	checkClosed(t, "txn-c", closedC, true, stream.OffsetsTopic, "hang-c-0")
	checkClosed(t, "txn-a", closedA, false, stream.OffsetsTopic, "hang-a-0")

	if off, err := committed(b.Bootstrap(), "group-c", "input", 10*time.Second); err != nil || off != 42 {
		t.Errorf("group-c after closing: committed offset %d, %v; want 42 (the transaction was committed)", off, err)
	}
	if off, err := committed(b.Bootstrap(), "group-a", "input", 10*time.Second); err != nil || off != int64(kafka.OffsetInvalid) {
		t.Errorf("group-a after closing: committed offset %d, %v; want none (the transaction was aborted)", off, err)
	}
	if got := readCommitted(t, b.Bootstrap(), "hang-c", 5*time.Second); strings.Join(got, ",") != "c1" {
		t.Errorf("hang-c after closing reads %v, want [c1]", got)
	}
	plain(t, b.Bootstrap(), "hang-a", "after")
	if got := readCommitted(t, b.Bootstrap(), "hang-a", 5*time.Second); strings.Join(got, ",") != "after" {
		t.Errorf("hang-a after closing reads %v, want [after] (a1 aborted, later records readable)", got)
	}

	// A second pass finds nothing: the current session's epoch is newer.
	if again := closeAll("txn-c", "group-c", topics...); len(again) != 0 {
		t.Errorf("closing again closed %v", again)
	}
}

func checkClosed(t *testing.T, txnID string, closed []kclient.ClosedTxn, commit bool, want ...string) {
	t.Helper()
	var got []string
	for _, c := range closed {
		got = append(got, c.Topic)
		if c.Topic != stream.OffsetsTopic {
			got[len(got)-1] += "-0"
		}
		if c.Committed != commit {
			t.Errorf("%s: %s closed with commit=%v, want %v", txnID, c, c.Committed, commit)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: closed %v, want %v", txnID, got, want)
	}
}

// committed is a read_committed consumer's committed offset of partition 0
// of topic for group, as a restarted filter asks for it.
func committed(bootstrap, group, topic string, timeout time.Duration) (int64, error) {
	c, err := kafka.NewConsumer(kclient.TransactionalConsumerConfig(bootstrap, group, true, nil))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	tps, err := c.Committed([]kafka.TopicPartition{{Topic: &topic, Partition: 0}}, int(timeout.Milliseconds()))
	if err != nil {
		return 0, err
	}
	if tps[0].Error != nil {
		return 0, tps[0].Error
	}
	return int64(tps[0].Offset), nil
}

// readCommitted reads topic's values with read_committed for a while.
func readCommitted(t *testing.T, bootstrap, topic string, d time.Duration) []string {
	t.Helper()
	c, err := kafka.NewConsumer(kclient.TransactionalConsumerConfig(bootstrap, "reader-"+topic+time.Now().Format("150405.000"), true, nil))
	kafkabed.Must(t, err)
	defer c.Close()
	kafkabed.Must(t, c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: kafka.OffsetBeginning}}))
	var got []string
	for end := time.Now().Add(d); time.Now().Before(end); {
		if m, ok := c.Poll(100).(*kafka.Message); ok {
			got = append(got, string(m.Value))
		}
	}
	return got
}

// plain writes one record without a transaction.
func plain(t *testing.T, bootstrap, topic, value string) {
	t.Helper()
	p, err := kafka.NewProducer(kclient.ProducerConfig(bootstrap, nil))
	kafkabed.Must(t, err)
	defer p.Close()
	done := make(chan kafka.Event, 1)
	kafkabed.Must(t, p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: []byte(value)}, done))
	select {
	case ev := <-done:
		if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
			t.Fatalf("write to %s: %v", topic, m.TopicPartition.Error)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("write to %s: not delivered in 20 s", topic)
	}
}
