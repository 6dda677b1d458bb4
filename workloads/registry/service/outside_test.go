package service_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/pyclients"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// rubinFakeAlert is Rubin's real sample alert file, shared beside the
// repository.
const rubinFakeAlert = "../../../../shared/data/rubin-alert-v11/fakeAlert.avro"

// serveTLS serves store's API over HTTPS on loopback with a certificate of
// a new CA, and returns its URL and the CA file.
func serveTLS(t *testing.T, store *service.Store) (string, string) {
	t.Helper()
	ca, err := pki.NewCA("registry test CA", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.Issue(ca, "registry", []string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair([]byte(leaf.CertPEM), []byte(leaf.KeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(service.NewServer(store, testUsers, quietLog()))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte(ca.CertPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile
}

// Confluent's own clients, from PyPI, use the registry as they use
// Confluent's: Python's AvroDeserializer decodes every alert the
// mini-broker's producer wrote (synthetic ones and Rubin's real sample,
// under Rubin's id 1100) by looking the ids up as a read-only user, may not
// register, and AvroSerializer registers and writes records (as the
// writer) that the mini-broker's decoder then reads. Then the registry is
// restarted and still knows every id: its state is the Kafka topic.
func TestConfluentClientsOnRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	python, err := pyclients.Python("../../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rubinFakeAlert); err != nil {
		t.Fatalf("the shared Rubin sample is missing: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	broker := kafkabed.StartBrokerT(t)
	bootstrap := broker.Bootstrap()
	store, err := service.Open(ctx, bootstrap, nil, stream.SchemasTopic, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	url, caFile := serveTLS(t, store)
	regClient, err := registry.NewClient(map[string]string{
		registry.SettingURL: url, registry.SettingUserInfo: writer + ":" + password, registry.SettingCA: caFile,
	})
	if err != nil {
		t.Fatal(err)
	}

	// The mini-broker's producer registers through the registry and sends
	// one visit of synthetic alerts and one of Rubin's sample.
	replay, skipped, err := pipeline.NewReplay(alert.DefaultVisitPath, rubinFakeAlert)
	if err == nil && len(skipped) > 0 {
		err = fmt.Errorf("bad blocks skipped: %v", skipped)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []struct {
		topic string
		src   pipeline.Source
	}{{"synthetic", pipeline.NewSynthetic(5, 0)}, {"rubin", replay}} {
		err := pipeline.Produce(ctx, pipeline.ProduceConfig{
			Bootstrap: bootstrap, Topic: src.topic, Partitions: 2, SchemasTopic: stream.SchemasTopic, Registry: regClient,
			Source: src.src, AlertsPerVisit: 40, Interval: time.Second, Visits: 1, Parallel: 1, Log: quietLog(),
		})
		if err != nil {
			t.Fatalf("produce %s: %v", src.topic, err)
		}
	}

	for _, tc := range []struct {
		topic  string
		wantID int
	}{{"synthetic", int(alert.SchemaID(alert.SyntheticSchema()))}, {"rubin", 1100}} {
		lines := runPython(ctx, t, python, bootstrap, url, caFile, tc.topic, tc.topic+"-python")
		var read int
		for _, l := range lines {
			if r, ok := l["read"].(map[string]any); ok {
				read++
				if int(r["id"].(float64)) != tc.wantID {
					t.Errorf("%s: alert with id %v, want %d", tc.topic, r["id"], tc.wantID)
				}
			}
			if code, ok := l["reader_register"]; ok && code.(float64) != 40301 {
				t.Errorf("the reader registering: error code %v, want 40301", code)
			}
		}
		if read != 40 {
			t.Errorf("%s: AvroDeserializer decoded %d alerts, want 40", tc.topic, read)
		}
		compareDecoded(ctx, t, bootstrap, tc.topic, lines)
	}

	// What Python's AvroSerializer wrote, our decoder reads, under the id
	// Rubin's rule gives lsst.v11_1.alert.
	dec := pipeline.NewAlertDecoder(bootstrap, nil, stream.SchemasTopic)
	var got int
	err = kclient.ReadAll(ctx, bootstrap, nil, "synthetic-python", func(m *kafka.Message) error {
		rec, err := dec.Decode(ctx, m.Value)
		if err != nil {
			return err
		}
		if id, _, _ := alert.ParseWire(m.Value); id != 1101 {
			t.Errorf("Python's record has id %d, want Rubin's 1101", id)
		}
		if rec["note"] != "from python "+string(rune('0'+got)) {
			t.Errorf("record %d: note %v", got, rec["note"])
		}
		got++
		return nil
	})
	if err != nil || got != 3 {
		t.Fatalf("read %d of Python's 3 records: %v", got, err)
	}

	// A new registry over the same topic knows every id.
	store.Close()
	store2, err := service.Open(ctx, bootstrap, nil, stream.SchemasTopic, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer store2.Close()
	url2, caFile2 := serveTLS(t, store2)
	pool, _ := tlsPool(caFile2)
	cl, err := sr.NewClient(sr.URLs(url2), sr.BasicAuth(reader, password), sr.HTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{int(alert.SchemaID(alert.SyntheticSchema())), 1100, 1101} {
		if _, err := cl.SchemaByID(ctx, id); err != nil {
			t.Errorf("after the restart, schema %d: %v", id, err)
		}
	}
	want := "rubin-python-value,rubin-value,synthetic-python-value,synthetic-value"
	if subjects, err := cl.Subjects(ctx); err != nil || strings.Join(subjects, ",") != want {
		t.Errorf("after the restart, subjects %v (%v), want %s", subjects, err, want)
	}
}

// compareDecoded checks that what Python decoded equals what the
// mini-broker's own decoder reads from the same messages.
func compareDecoded(ctx context.Context, t *testing.T, bootstrap, topic string, lines []map[string]any) {
	t.Helper()
	dec := pipeline.NewAlertDecoder(bootstrap, nil, stream.SchemasTopic)
	ours := map[[2]int64]map[string]any{}
	err := kclient.ReadAll(ctx, bootstrap, nil, topic, func(m *kafka.Message) error {
		rec, err := dec.Decode(ctx, m.Value)
		if err != nil {
			return err
		}
		ours[[2]int64{int64(m.TopicPartition.Partition), int64(m.TopicPartition.Offset)}] = rec
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		r, ok := l["read"].(map[string]any)
		if !ok {
			continue
		}
		rec := ours[[2]int64{int64(r["partition"].(float64)), int64(r["offset"].(float64))}]
		if rec == nil {
			t.Errorf("%s: Python read %v, which we did not", topic, r)
			continue
		}
		src, _ := alert.Lookup(rec, "diaSource.visit")
		id, _ := alert.LookupInt(rec, "diaSourceId")
		if float64(id) != r["diaSourceId"].(float64) || toFloat(src) != r["visit"].(float64) {
			t.Errorf("%s: Python decoded diaSourceId %v visit %v, we %v %v", topic, r["diaSourceId"], r["visit"], id, src)
		}
	}
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case int32:
		return float64(x)
	case float64:
		return x
	}
	return -1
}

func runPython(ctx context.Context, t *testing.T, python, bootstrap, url, caFile, in, out string) []map[string]any {
	t.Helper()
	cmd := exec.CommandContext(ctx, python, "testdata/confluent_clients.py", bootstrap, url, caFile, reader, writer, password, in, out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("Python's confluent-kafka on %s: %v\n%s", in, err, stderr.String())
	}
	var lines []map[string]any
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("python output %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

func tlsPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool, nil
}
