// Package upstream is an upstream alert stream for tests, as a community
// broker meets Rubin's: a real Kafka broker with SASL/SCRAM-SHA-512 over
// TLS whose reader may only read and describe one topic, and a Confluent
// schema registry of its own (HTTPS, a read-only user) holding Rubin's
// alert schema v11 under Rubin's id 1100. Its alerts are written by
// Python's confluent-kafka Producer and AvroSerializer (pyclients), code
// this project did not write, from Rubin's real sample: no mb-* headers.
package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/pyclients"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
)

// The upstream's contract.
const (
	Topic = "lsst-alerts"
	// User is the upstream's reader (a community broker): Describe and Read
	// on Topic, nothing else, no consumer group.
	User = "upstream.community-broker"
	// RubinV11ID is the id of Rubin's lsst.v11_0.alert in the upstream's
	// registry, by Rubin's rule.
	RubinV11ID = 1100
	// RubinSample is Rubin's sample alert file, beside the repository.
	RubinSample = "../shared/data/rubin-alert-v11/fakeAlert.avro"
	// topicPartitions is the upstream topic's partition count: fewer than
	// the hub's, as can happen.
	topicPartitions = 2
)

// Upstream is a running upstream stream.
type Upstream struct {
	Broker *kafkabed.Broker
	// Password is User's, on the broker and the registry.
	Password string
	// RegistryURL is the registry's https:// URL; CAFile the CA of the
	// broker's and the registry's certificates.
	RegistryURL, CAFile string
	// V11 is the schema text the registry holds under RubinV11ID.
	V11 string

	dir, root, python string
}

// Visit is one visit the upstream writes: its id and alert count.
type Visit struct {
	ID    int64
	Count int
}

// Alert is what the upstream's producer reports of each alert it wrote.
type Alert struct {
	DiaSourceID int64   `json:"diaSourceId"`
	Visit       int64   `json:"visit"`
	Snr         float64 `json:"snr"`
}

// ForTest starts an upstream for the test, its broker's client listener
// and its registry on host (an address of this machine: "" is 127.0.0.1;
// a lab's Gateway is where the lab's nodes reach it), and stops it in
// t.Cleanup. It never skips: a missing part fails the test.
func ForTest(t *testing.T, host string) *Upstream {
	t.Helper()
	if host == "" {
		host = "127.0.0.1"
	}
	root, err := images.RepoRoot()
	must(t, err)
	python, err := pyclients.Python(root)
	must(t, err)
	if _, err := os.Stat(filepath.Join(root, RubinSample)); err != nil {
		t.Fatalf("upstream: Rubin's shared sample is missing: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kafkabed.StartTimeout)
	defer cancel()

	u := &Upstream{dir: t.TempDir(), root: root, python: python}
	ca, err := kafkabed.NewCA()
	must(t, err)
	u.Broker = kafkabed.StartBrokerT(t, kafkabed.WithSecurity(ca, true, ""), kafkabed.WithListenHost(host))
	must(t, u.Broker.CreateTopic(ctx, Topic, topicPartitions, nil))
	u.Password = password(t)
	plan := access.Plan{Owner: "upstream.", Clusters: []access.ClusterPlan{{Bootstrap: u.Broker.Bootstrap(), Users: []access.User{{
		Name: User, Password: u.Password,
		Grants: []access.Grant{{Resource: access.Topic, Name: Topic, Pattern: access.Literal, Operations: access.Ops(access.Describe, access.Read)}},
	}}}}}
	if _, err := kclient.ApplyAccess(ctx, plan, u.Broker.AdminSettings()); err != nil {
		t.Fatalf("upstream: the reader's user: %v", err)
	}

	store, err := service.Open(ctx, u.Broker.Bootstrap(), u.Broker.AdminSettings(), "_schemas", slog.New(slog.DiscardHandler))
	must(t, err)
	t.Cleanup(store.Close)
	schema, _, _, _, err := alert.ReadOCFRecords(filepath.Join(root, RubinSample))
	must(t, err)
	u.V11 = schema.String()
	if v, err := store.Register(ctx, registry.ValueSubject(Topic), u.V11, RubinV11ID); err != nil || v.ID != RubinV11ID {
		t.Fatalf("upstream registry: Rubin's v11 under id %d: %v", v.ID, err)
	}
	u.RegistryURL, u.CAFile = Serve(t, store, ca, host, []registry.User{{Name: User, Password: u.Password, Role: registry.RoleRead}})
	return u
}

// Serve serves a registry store's API over HTTPS on host with a
// certificate from ca, until the test ends, and returns its URL and the CA
// file.
func Serve(t *testing.T, store *service.Store, ca pki.Pair, host string, users []registry.User) (url, caFile string) {
	t.Helper()
	leaf, err := pki.Issue(ca, "registry", []string{host}, time.Now(), time.Hour)
	must(t, err)
	cert, err := tls.X509KeyPair([]byte(leaf.CertPEM), []byte(leaf.KeyPEM))
	must(t, err)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	must(t, err)
	srv := httptest.NewUnstartedServer(service.NewServer(store, users, slog.New(slog.DiscardHandler)))
	srv.Listener.Close()
	srv.Listener = ln
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	must(t, os.WriteFile(caFile, []byte(ca.CertPEM), 0o644))
	return srv.URL, caFile
}

// ClientSettings are the reader's librdkafka settings (without
// bootstrap.servers), as an upstream gives them to a community broker.
func (u *Upstream) ClientSettings() kafkaconf.Properties {
	return u.Broker.ClientSettings(User, u.Password)
}

// RegistrySettings are the reader's settings for the registry, in
// Confluent's client keys.
func (u *Upstream) RegistrySettings() kafkaconf.Properties {
	return kafkaconf.Properties{registry.SettingURL: u.RegistryURL, registry.SettingUserInfo: User + ":" + u.Password,
		registry.SettingCA: u.CAFile}
}

// Write has the upstream's producer write the visits, one after the other,
// each alert Rubin's sample with a new diaSourceId, the visit and a
// pseudo-random diaSource.snr, and returns what it wrote.
func (u *Upstream) Write(ctx context.Context, t *testing.T, visits ...Visit) []Alert {
	t.Helper()
	writer := kafkaconf.Properties(u.Broker.AdminSettings())
	writer["bootstrap.servers"] = u.Broker.Bootstrap()
	writerFile := filepath.Join(u.dir, "writer.properties")
	registryFile := filepath.Join(u.dir, "writer-registry.properties")
	must(t, os.WriteFile(writerFile, []byte(writer.Render("")), 0o600))
	must(t, os.WriteFile(registryFile, []byte(u.RegistrySettings().Render("")), 0o600))
	args := []string{filepath.Join(u.root, pyclients.UpstreamProducer), writerFile, registryFile, Topic, filepath.Join(u.root, RubinSample)}
	for _, v := range visits {
		args = append(args, fmt.Sprintf("%d:%d", v.ID, v.Count))
	}
	cmd := exec.CommandContext(ctx, u.python, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("the upstream's producer: %v\n%s", err, stderr.String())
		return nil
	}
	var out []Alert
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var a Alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Errorf("upstream producer output %q: %v", sc.Text(), err)
		}
		out = append(out, a)
	}
	return out
}

// Select returns the ids of the alerts of visit whose snr is above min,
// as float32 compares them (the schema's type): an independent selection.
func Select(alerts []Alert, visit int64, min float64) []string {
	var ids []string
	for _, a := range alerts {
		if a.Visit == visit && float32(a.Snr) > float32(min) {
			ids = append(ids, fmt.Sprint(a.DiaSourceID))
		}
	}
	return ids
}

func password(t *testing.T) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	must(t, err)
	return fmt.Sprintf("%x", b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
