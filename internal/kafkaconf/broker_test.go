package kafkaconf

import (
	"reflect"
	"testing"
)

func TestBrokerProperties(t *testing.T) {
	tests := []struct {
		name string
		opts BrokerOptions
		want map[string]string // subset that must match exactly
		gone []string          // keys that must be absent
	}{
		{
			name: "defaults bind all interfaces",
			opts: BrokerOptions{},
			want: map[string]string{
				"process.roles":                    "broker,controller",
				"node.id":                          "1",
				"controller.quorum.voters":         "1@127.0.0.1:9093",
				"controller.listener.names":        "CONTROLLER",
				"listeners":                        "PLAINTEXT://:9092,BROKER://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093",
				"advertised.listeners":             "PLAINTEXT://localhost:9092,BROKER://127.0.0.1:9094",
				"inter.broker.listener.name":       "BROKER",
				"listener.security.protocol.map":   "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
				"log.dirs":                         "/var/lib/kafka/data",
				"num.partitions":                   "1",
				"offsets.topic.replication.factor": "1",
				"transaction.state.log.min.isr":    "1",
				"group.initial.rebalance.delay.ms": "0",
				"message.max.bytes":                "16777216",
				"replica.fetch.max.bytes":          "16777216",
				"socket.request.max.bytes":         "104857600",
			},
			gone: []string{"controller.quorum.bootstrap.servers", "zookeeper.connect"},
		},
		{
			name: "loopback test bed",
			opts: BrokerOptions{
				NodeID: 3, ListenerHost: "127.0.0.1", ListenerPort: 40001,
				ControllerPort: 40002, InterBrokerPort: 40003, LogDirs: "/tmp/x/data", NumPartitions: 4,
			},
			want: map[string]string{
				"node.id":                  "3",
				"controller.quorum.voters": "3@127.0.0.1:40002",
				"listeners":                "PLAINTEXT://127.0.0.1:40001,BROKER://127.0.0.1:40003,CONTROLLER://127.0.0.1:40002",
				"advertised.listeners":     "PLAINTEXT://127.0.0.1:40001,BROKER://127.0.0.1:40003",
				"log.dirs":                 "/tmp/x/data",
				"num.partitions":           "4",
			},
		},
		{
			name: "container advertising a swarm service name and published port",
			opts: BrokerOptions{ListenerHost: "0.0.0.0", AdvertisedHost: "hub", AdvertisedPort: 19092},
			want: map[string]string{
				"listeners":            "PLAINTEXT://0.0.0.0:9092,BROKER://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093",
				"advertised.listeners": "PLAINTEXT://hub:19092,BROKER://127.0.0.1:9094",
			},
		},
		{
			name: "ipv6 literals are bracketed",
			opts: BrokerOptions{ListenerHost: "::1", ControllerHost: "::1"},
			want: map[string]string{
				"listeners":                "PLAINTEXT://[::1]:9092,BROKER://[::1]:9094,CONTROLLER://[::1]:9093",
				"advertised.listeners":     "PLAINTEXT://[::1]:9092,BROKER://[::1]:9094",
				"controller.quorum.voters": "1@[::1]:9093",
			},
		},
		{
			name: "larger messages raise fetch and request limits",
			opts: BrokerOptions{MessageMaxBytes: 64 * MiB},
			want: map[string]string{
				"message.max.bytes":                "67108864",
				"replica.fetch.max.bytes":          "67108864",
				"replica.fetch.response.max.bytes": "134217728",
				"socket.request.max.bytes":         "268435456",
			},
		},
		{
			name: "overrides win and may add keys",
			opts: BrokerOptions{Overrides: map[string]string{
				"num.partitions":            "12",
				"auto.create.topics.enable": "false",
			}},
			want: map[string]string{
				"num.partitions":            "12",
				"auto.create.topics.enable": "false",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := BrokerProperties(tc.opts)
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
			if again := BrokerProperties(tc.opts); again != text {
				t.Errorf("output not deterministic")
			}
		})
	}
}

func TestBrokerPropertiesDoesNotMutateOverrides(t *testing.T) {
	ov := map[string]string{"a": "b"}
	BrokerProperties(BrokerOptions{Overrides: ov})
	if !reflect.DeepEqual(ov, map[string]string{"a": "b"}) {
		t.Fatalf("overrides mutated: %v", ov)
	}
}

func TestFormatArgs(t *testing.T) {
	got := FormatArgs("AAAAAAAAAAAAAAAAAAAAAA", "/etc/kafka/server.properties")
	want := []string{"format", "--cluster-id", "AAAAAAAAAAAAAAAAAAAAAA",
		"--config", "/etc/kafka/server.properties", "--ignore-formatted"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FormatArgs = %q, want %q", got, want)
	}
}
