package kafkaconf

import "testing"

func TestMirrorMakerProperties(t *testing.T) {
	tests := []struct {
		name string
		opts MirrorOptions
		want map[string]string
		gone []string
	}{
		{
			name: "defaults hub to mirror",
			opts: MirrorOptions{SourceBootstrap: "127.0.0.1:1", TargetBootstrap: "127.0.0.1:2"},
			want: map[string]string{
				"clusters":                                "hub,mirror",
				"hub.bootstrap.servers":                   "127.0.0.1:1",
				"mirror.bootstrap.servers":                "127.0.0.1:2",
				"hub->mirror.enabled":                     "true",
				"hub->mirror.topics":                      "alerts|minibroker-schemas",
				"mirror->hub.enabled":                     "false",
				"replication.policy.class":                "org.apache.kafka.connect.mirror.IdentityReplicationPolicy",
				"refresh.topics.interval.seconds":         "5",
				"replication.factor":                      "1",
				"checkpoints.topic.replication.factor":    "1",
				"heartbeats.topic.replication.factor":     "1",
				"offset.storage.replication.factor":       "1",
				"config.storage.replication.factor":       "1",
				"status.storage.replication.factor":       "1",
				"emit.heartbeats.enabled":                 "false",
				"emit.checkpoints.enabled":                "false",
				"emit.offset-syncs.enabled":               "false",
				"sync.group.offsets.enabled":              "false",
				"sync.topic.acls.enabled":                 "false",
				"hub.consumer.max.partition.fetch.bytes":  "16777216",
				"hub.consumer.fetch.max.bytes":            "67108864",
				"hub.consumer.fetch.max.wait.ms":          "10",
				"hub.consumer.isolation.level":            "read_committed",
				"mirror.producer.linger.ms":               "5",
				"mirror.producer.batch.size":              "2097152",
				"mirror.producer.max.request.size":        "16777216",
				"mirror.scheduled.rebalance.max.delay.ms": "0",
				"plugin.discovery":                        "service_load",
				"mirror.plugin.discovery":                 "service_load",
			},
			gone: []string{"topics", "offset-syncs.topic.replication.factor", "offset-syncs.topic.location", "mirror.consumer.max.partition.fetch.bytes", "hub.producer.linger.ms"},
		},
		{
			name: "custom aliases move every prefix",
			opts: MirrorOptions{
				SourceAlias: "central", TargetAlias: "eu", Topics: `alerts\..*`,
				SourceBootstrap: "central:9092", TargetBootstrap: "eu:9092",
				ReplicationFactor: 3, RefreshTopicsSeconds: 30, MessageMaxBytes: 8 * MiB,
			},
			want: map[string]string{
				"clusters":                                   "central,eu",
				"central.bootstrap.servers":                  "central:9092",
				"eu.bootstrap.servers":                       "eu:9092",
				"central->eu.enabled":                        "true",
				"central->eu.topics":                         `alerts\..*`,
				"eu->central.enabled":                        "false",
				"replication.factor":                         "3",
				"status.storage.replication.factor":          "3",
				"refresh.topics.interval.seconds":            "30",
				"central.consumer.max.partition.fetch.bytes": "8388608",
				"eu.producer.max.request.size":               "8388608",
			},
			gone: []string{"hub->mirror.enabled", "mirror.producer.linger.ms"},
		},
		{
			name: "overrides win",
			opts: MirrorOptions{Overrides: map[string]string{
				"mirror.producer.linger.ms": "0",
				"hub->mirror.tasks.max":     "2",
			}},
			want: map[string]string{
				"mirror.producer.linger.ms": "0",
				"hub->mirror.tasks.max":     "2",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := MirrorMakerProperties(tc.opts)
			assertSortedUnique(t, text)
			got := parse(t, text)
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tc.gone {
				if _, ok := got[k]; ok {
					t.Errorf("%s present, want absent", k)
				}
			}
			if again := MirrorMakerProperties(tc.opts); again != text {
				t.Errorf("output not deterministic")
			}
		})
	}
}
