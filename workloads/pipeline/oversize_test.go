package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/hamba/avro/v2/ocf"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// oversizeLimit is the hub's limit in these tests, and bigIndex the alert
// of the replay file that exceeds it (three cutouts of 60 KB), between
// nine small ones.
const (
	oversizeLimit = 100_000
	bigIndex      = 5
	fileAlerts    = 10
)

// writeOversizeReplay writes the replay file and returns its path and
// the big alert's diaSourceId.
func writeOversizeReplay(t *testing.T) (string, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "one-too-big.avro")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc, err := ocf.NewEncoderWithSchema(alert.SyntheticSchema(), f)
	if err != nil {
		t.Fatal(err)
	}
	small, big := alert.NewGenerator(3, 0), alert.NewGenerator(3, 60_000)
	var bigID int64
	for i := range fileAlerts {
		g := small
		if i == bigIndex {
			g = big
		}
		payload, tr, err := g.Alert(nil, 1, i)
		if err != nil {
			t.Fatal(err)
		}
		if i == bigIndex {
			bigID = tr.DiaSourceID
			if len(payload) <= oversizeLimit {
				t.Fatalf("the big alert has %d bytes, not over %d", len(payload), oversizeLimit)
			}
		} else if len(payload) > oversizeLimit/10 {
			t.Fatalf("small alert %d has %d bytes", i, len(payload))
		}
		if _, err := enc.Write(payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return path, bigID
}

// TestProducerSkipsOversizedAlert replays a file holding one alert over
// the hub's limit between good ones, the limit being the client's
// message.max.bytes (checked before sending) or the topic's
// max.message.bytes (the broker refuses it: MSG_SIZE_TOO_LARGE, and the
// batches that held it). Either way the producer names the alert, sends
// every other one, puts a stand-in in its place, counts it in the produce
// event's dead letters, and goes on; an exactly-once filter completes
// every visit, filtering the nine good alerts and dead-lettering the
// stand-in.
func TestProducerSkipsOversizedAlert(t *testing.T) {
	path, bigID := writeOversizeReplay(t)
	for _, tc := range []struct {
		name      string
		kafka     map[string]string // the producer's overrides
		topicConf map[string]string // the alert topic's
		why       string
		real      bool // on real Kafka rather than kfake
	}{
		{"client limit", map[string]string{"message.max.bytes": fmt.Sprint(oversizeLimit)}, nil, "over the hub client's limit of 100000 bytes", false},
		{"broker limit", nil, map[string]string{"max.message.bytes": fmt.Sprint(oversizeLimit)}, "MSG_SIZE_TOO_LARGE", false},
		{"broker limit on real Kafka", nil, map[string]string{"max.message.bytes": fmt.Sprint(oversizeLimit)}, "MSG_SIZE_TOO_LARGE", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			var bootstrap string
			if tc.real {
				if testing.Short() {
					t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
				}
				bootstrap = kafkabed.StartBrokerT(t).Bootstrap()
			} else {
				c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{"message.max.bytes": fmt.Sprint(kclient.MaxMessageBytes)}))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				bootstrap = c.ListenAddrs()[0]
			}
			if err := kclient.EnsureTopics(ctx, bootstrap, nil, kclient.Topic{Name: stream.AlertsTopic, Partitions: 2, Config: tc.topicConf}); err != nil {
				t.Fatal(err)
			}
			src, skipped, err := pipeline.NewReplay(alert.DefaultVisitPath, path)
			if err == nil && len(skipped) > 0 {
				err = fmt.Errorf("bad blocks skipped: %v", skipped)
			}
			if err != nil {
				t.Fatal(err)
			}
			spec := filter.Spec{Name: "everything", Expr: "true", MaxPerVisit: -1}
			var mu sync.Mutex
			received := map[int64]int{}
			stop := runReady(ctx, t, func(ctx context.Context, ready func()) error {
				return pipeline.RunFilters(ctx, pipeline.FilterConfig{Bootstrap: bootstrap, Specs: []filter.Spec{spec},
					SchemasTopic: stream.SchemasTopic, FromBeginning: true, TimingTopic: stream.TimingTopic, Ready: ready})
			}, func(ctx context.Context, ready func()) error {
				return pipeline.Consume(ctx, pipeline.ConsumeConfig{Bootstrap: bootstrap, Topic: spec.Name, FromBeginning: true,
					TimingTopic: stream.TimingTopic, Ready: ready, OnAlert: func(r pipeline.Received) error {
						mu.Lock()
						received[r.Visit]++
						mu.Unlock()
						return nil
					}})
			})
			stopped := false
			defer func() {
				if !stopped {
					stop()
				}
			}()

			var logs syncBuffer
			run := "oversize-" + strings.ReplaceAll(tc.name, " ", "-")
			var results []pipeline.VisitResult
			err = pipeline.Produce(ctx, pipeline.ProduceConfig{Bootstrap: bootstrap, SchemasTopic: stream.SchemasTopic,
				Source: src, AlertsPerVisit: fileAlerts, Interval: 200 * time.Millisecond, Visits: 2, Run: run, Parallel: 2,
				TimingTopic: stream.TimingTopic, Kafka: tc.kafka, Log: slog.New(slog.NewTextHandler(&logs, nil)),
				NameRecord: func(r int) string { return fmt.Sprintf("%s, alert %d of %d", path, r+1, fileAlerts) },
				OnVisit:    func(v pipeline.VisitResult) { results = append(results, v) }})
			if err != nil {
				t.Fatalf("the producer stopped: %v\n%s", err, logs.String())
			}

			// The producer: named the alert each visit, sent the rest.
			for _, s := range []string{"alert too large for the hub", fmt.Sprintf("diaSourceId=%d", bigID),
				fmt.Sprintf("alert=\"%s, alert %d of %d\"", path, bigIndex+1, fileAlerts), "index=5", tc.why} {
				if n := strings.Count(logs.String(), s); n != 2 {
					t.Errorf("the log says %q %d times, want once per visit", s, n)
				}
			}
			if len(results) != 2 {
				t.Fatalf("%d visits sent, want 2", len(results))
			}
			for _, r := range results {
				if r.Alerts != fileAlerts-1 || r.Skipped != 1 {
					t.Errorf("visit %d: sent %d, skipped %d; want %d and 1", r.Visit, r.Alerts, r.Skipped, fileAlerts-1)
				}
			}

			// The filter completed both visits.
			evs, err := pipeline.WaitComplete(ctx, bootstrap, nil, stream.TimingTopic, run, 1, 2, time.Minute)
			if err != nil {
				t.Fatalf("visits not completed: %v\n%s", err, logs.String())
			}
			stopped = true
			if errs := stop(); len(errs) > 0 {
				t.Fatal(errs)
			}
			var produced, filtered int
			for _, e := range evs {
				switch e.Kind {
				case timing.KindProduce:
					produced++
					if e.Alerts != fileAlerts-1 || e.DeadLetters != 1 {
						t.Errorf("produce event of visit %d: %d alerts, %d dead letters; want %d and 1", e.Visit, e.Alerts, e.DeadLetters, fileAlerts-1)
					}
				case timing.KindFilter:
					filtered++
					if e.Alerts != fileAlerts || e.Selected != fileAlerts-1 || e.DeadLetters != 1 {
						t.Errorf("filter event of visit %d: read %d, selected %d, dead %d; want %d, %d, 1",
							e.Visit, e.Alerts, e.Selected, e.DeadLetters, fileAlerts, fileAlerts-1)
					}
				}
			}
			for _, r := range results {
				if received[r.Visit] != fileAlerts-1 {
					t.Errorf("visit %d: the consumer received %d alerts, want %d", r.Visit, received[r.Visit], fileAlerts-1)
				}
			}
			if produced != 2 || filtered != 2 {
				t.Errorf("%d produce and %d filter events, want 2 and 2", produced, filtered)
			}

			// The hub: every good alert once, a stand-in for the big one.
			var standIns, good int
			indexes := map[string]int{}
			err = kclient.ReadAll(ctx, bootstrap, nil, stream.AlertsTopic, func(m *kafka.Message) error {
				var visit, index, why string
				for _, h := range m.Headers {
					switch h.Key {
					case stream.HeaderVisit:
						visit = string(h.Value)
					case stream.HeaderIndex:
						index = string(h.Value)
					case stream.HeaderError:
						why = string(h.Value)
					}
				}
				indexes[visit+"/"+index]++
				if m.Value == nil {
					standIns++
					if index != fmt.Sprint(bigIndex) || !strings.Contains(why, "producer: ") || !strings.Contains(why, "not sent") {
						t.Errorf("stand-in at index %s says %q", index, why)
					}
				} else {
					good++
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if standIns != 2 || good != 2*(fileAlerts-1) || len(indexes) != 2*fileAlerts {
				t.Errorf("the hub holds %d stand-ins and %d alerts at %d places; want 2, %d, %d", standIns, good, len(indexes), 2*(fileAlerts-1), 2*fileAlerts)
			}
			for k, n := range indexes {
				if n != 1 {
					t.Errorf("%s sent %d times", k, n)
				}
			}
			var dead int
			if err := kclient.ReadAll(ctx, bootstrap, nil, stream.DeadLetterTopic(spec.Name), func(m *kafka.Message) error {
				dead++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if dead != 2 {
				t.Errorf("the filter dead-lettered %d records, want the 2 stand-ins", dead)
			}
			if t.Failed() {
				t.Log(logs.String())
			}
		})
	}
}
