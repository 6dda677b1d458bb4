package stream

import "testing"

func TestReserved(t *testing.T) {
	for _, topic := range []string{
		AlertsTopic, SchemasTopic, TimingTopic, IngestStateTopic, OffsetsTopic, "__transaction_state", "__anything",
		DeadLetterTopic("Filter001"), FilterStateTopic("shared"), "x-state", "-deadletter", "heartbeats",
		"mm2-offsets.hub.internal", "hub.checkpoints.internal",
	} {
		if why, ok := Reserved(topic); !ok || why == "" {
			t.Errorf("Reserved(%q) = %q, %v; want reserved with a reason", topic, why, ok)
		}
	}
	for _, topic := range []string{
		"Filter001", "alerts2", "my-alerts", "Alerts", "_schemas-x", "state", "deadletter", "x-states", "x_state",
		"_single_underscore", "internal", "heartbeats2", "minibroker-timing-copy",
	} {
		if why, ok := Reserved(topic); ok {
			t.Errorf("Reserved(%q) = %q, true; want free", topic, why)
		}
	}
}

func TestTopicCollisionKey(t *testing.T) {
	if TopicCollisionKey("a.b_c") != TopicCollisionKey("a_b.c") || TopicCollisionKey("a.b") == TopicCollisionKey("a-b") {
		t.Fatal("'.' and '_' must collide, '-' must not")
	}
}
