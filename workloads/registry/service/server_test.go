package service_test

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
)

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

const (
	writer   = "producer"
	reader   = "reader"
	password = "pw-1"
)

var testUsers = []registry.User{
	{Name: writer, Password: password, Role: registry.RoleWrite},
	{Name: reader, Password: password, Role: registry.RoleRead},
}

// startRegistry serves the registry over bootstrap's topic, with HTTPS and
// the test users, and returns its URL and a client for it.
func startRegistry(t *testing.T, ctx context.Context, bootstrap string, conn map[string]string) (*httptest.Server, *service.Store) {
	t.Helper()
	store, err := service.Open(ctx, bootstrap, conn, "schemas", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	srv := httptest.NewUnstartedServer(service.NewServer(store, testUsers, quietLog()))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut by Close
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, store
}

// fakeKafka starts a one-broker kfake cluster for the test and returns its
// address.
func fakeKafka(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func srClient(t *testing.T, srv *httptest.Server, user string) *sr.Client {
	t.Helper()
	opts := []sr.ClientOpt{sr.URLs(srv.URL), sr.HTTPClient(srv.Client())}
	if user != "" {
		opts = append(opts, sr.BasicAuth(user, password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func errCode(err error) int {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return 0
}

// franz-go's schema-registry client (pkg/sr), a client this project did not
// write, against the registry on kfake: registration, look-ups, the error
// codes Confluent's clients act on, and the users' roles.
func TestServerWithFranzGoClient(t *testing.T) {
	addr := fakeKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, _ := startRegistry(t, ctx, addr, nil)
	w, r := srClient(t, srv, writer), srClient(t, srv, reader)

	syn := alert.SyntheticSchemaJSON()
	ss, err := w.CreateSchema(ctx, "alerts-value", sr.Schema{Schema: syn, Type: sr.TypeAvro})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if want := int(alert.SchemaID(alert.SyntheticSchema())); ss.ID != want || ss.Version != 1 || ss.Subject != "alerts-value" {
		t.Errorf("registered %+v, want id %d version 1", ss, want)
	}
	again, err := w.RegisterSchema(ctx, "alerts-value", sr.Schema{Schema: syn}, -1, -1)
	if err != nil || again != ss.ID {
		t.Errorf("registering again: id %d, %v", again, err)
	}
	got, err := r.SchemaByID(ctx, ss.ID)
	if err != nil || got.Schema != syn {
		t.Errorf("reader's schema by id: %.80q, %v", got.Schema, err)
	}
	if subjects, err := r.Subjects(ctx); err != nil || strings.Join(subjects, ",") != "alerts-value" {
		t.Errorf("subjects %v, %v", subjects, err)
	}
	if vs, err := r.SubjectVersions(ctx, "alerts-value"); err != nil || len(vs) != 1 || vs[0] != 1 {
		t.Errorf("versions %v, %v", vs, err)
	}
	if latest, err := r.SchemaByVersion(ctx, "alerts-value", -1); err != nil || latest.ID != ss.ID {
		t.Errorf("latest %+v, %v", latest, err)
	}
	if found, err := r.LookupSchema(ctx, "alerts-value", sr.Schema{Schema: syn}); err != nil || found.ID != ss.ID || found.Version != 1 {
		t.Errorf("look-up %+v, %v", found, err)
	}
	// An import keeps its id.
	if id, err := w.RegisterSchema(ctx, "upstream-value", sr.Schema{Schema: `{"type":"record","name":"u","fields":[]}`}, 4242, -1); err != nil || id != 4242 {
		t.Errorf("import under id 4242: %d, %v", id, err)
	}

	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"unknown id", func() error { _, err := r.SchemaByID(ctx, 999); return err }(), 40403},
		{"unknown subject", func() error { _, err := r.SubjectVersions(ctx, "nope"); return err }(), 40401},
		{"unknown version", func() error { _, err := r.SchemaByVersion(ctx, "alerts-value", 7); return err }(), 40402},
		{"look-up of an unregistered schema", func() error {
			_, err := r.LookupSchema(ctx, "alerts-value", sr.Schema{Schema: `"string"`})
			return err
		}(), 40403},
		{"invalid schema", func() error { _, err := w.CreateSchema(ctx, "x", sr.Schema{Schema: `{"type":"recrd"}`}); return err }(), 42201},
		{"protobuf", func() error {
			_, err := w.CreateSchema(ctx, "x", sr.Schema{Schema: `syntax = "proto3";`, Type: sr.TypeProtobuf})
			return err
		}(), 42201},
		{"taken id", func() error {
			_, err := w.RegisterSchema(ctx, "x", sr.Schema{Schema: `"string"`}, 4242, -1)
			return err
		}(), 42205},
		{"reader registers", func() error { _, err := r.CreateSchema(ctx, "x", sr.Schema{Schema: `"string"`}); return err }(), 40301},
		{"id beyond 31 bits", func() error {
			_, err := w.RegisterSchema(ctx, "x", sr.Schema{Schema: `"string"`}, 1<<31, -1)
			return err
		}(), 42201},
		{"no credentials", func() error { _, err := srClient(t, srv, "").Subjects(ctx); return err }(), 40101},
	} {
		if code := errCode(tc.err); code != tc.code {
			t.Errorf("%s: %v (code %d), want error code %d", tc.name, tc.err, code, tc.code)
		}
	}

	// Raw requests: an oversized body, an unknown path and a method the
	// path does not take get Confluent's error shape with the HTTP status of
	// the code; HEAD answers like GET, without a body.
	var header http.Header
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		req.SetBasicAuth(writer, password)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		header = resp.Header
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != registry.ContentType {
			t.Errorf("%s %s: content type %q", method, path, ct)
		}
		return resp.StatusCode, string(b)
	}
	if st, body := do("POST", "/subjects/big/versions", `{"schema":"`+strings.Repeat("x", 5<<20)+`"}`); st != 422 || !strings.Contains(body, `"error_code":42201`) {
		t.Errorf("oversized body: %d %s", st, body)
	}
	if st, body := do("POST", "/subjects//versions", `{"schema":"\"string\""}`); st != 422 || !strings.Contains(body, `"error_code":42201`) {
		t.Errorf("empty subject: %d %s", st, body)
	}
	if st, body := do("GET", "/no/such/path", ""); st != 404 || !strings.Contains(body, `"error_code":40400`) {
		t.Errorf("unknown path: %d %s", st, body)
	}
	for _, tc := range []struct{ method, path, allow string }{
		{"DELETE", "/subjects/alerts-value/versions", "GET, HEAD, POST"},
		{"PUT", "/config", "GET, HEAD"},
		{"GET", "/subjects/alerts-value", "POST"},
		{"POST", "/schemas/ids/1", "GET, HEAD"},
	} {
		st, body := do(tc.method, tc.path, "")
		if st != 405 || body != `{"error_code":405,"message":"HTTP 405 Method Not Allowed"}`+"\n" || header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %s, Allow %q; want 405 and Allow %q", tc.method, tc.path, st, body, header.Get("Allow"), tc.allow)
		}
	}
	if st, body := do("HEAD", "/subjects/alerts-value/versions/1", ""); st != 200 || body != "" {
		t.Errorf("HEAD of a version: %d %q, want 200 and no body", st, body)
	}
	if st, body := do("GET", "/config", ""); st != 200 || body != `{"compatibilityLevel":"NONE"}`+"\n" {
		t.Errorf("config: %d %s", st, body)
	}
	if st, body := do("GET", "/subjects/alerts-value/versions/1/schema", ""); st != 200 || !strings.HasPrefix(body, `{"type": "record"`) && !strings.HasPrefix(body, `{`) {
		t.Errorf("raw schema: %d %.80s", st, body)
	}
}

// Many clients register different schemas under one subject at the same
// time through one registry: every schema gets its own version, and each
// id answers.
func TestConcurrentWriters(t *testing.T) {
	addr := fakeKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, _ := startRegistry(t, ctx, addr, nil)
	w, other := srClient(t, srv, writer), srClient(t, srv, writer)

	const n = 10
	ids := make([]int, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		schema := func(j int) string {
			return `{"type":"record","name":"r` + strconv.Itoa(j) + `","fields":[]}`
		}
		wg.Go(func() {
			id, err := w.RegisterSchema(ctx, "shared-value", sr.Schema{Schema: schema(i)}, -1, -1)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		})
		wg.Go(func() {
			id, err := other.RegisterSchema(ctx, "shared-value", sr.Schema{Schema: schema(n + i)}, -1, -1)
			if err != nil {
				t.Error(err)
			}
			ids[n+i] = id
		})
	}
	wg.Wait()
	vs, err := w.SubjectVersions(ctx, "shared-value")
	if err != nil || len(vs) != 2*n {
		t.Fatalf("versions %v (%v), want %d", vs, err, 2*n)
	}
	for i, id := range ids {
		if _, err := w.SchemaByID(ctx, id); err != nil {
			t.Errorf("schema %d (id %d): %v", i, id, err)
		}
	}
}

// A hub that lost its data has an empty schemas topic again: registering
// what the Store had read before writes it again, so filters can still
// learn it.
func TestStoreAfterTopicRecreated(t *testing.T) {
	addr := fakeKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := service.Open(ctx, addr, nil, "schemas", quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	text := alert.SyntheticSchemaJSON()
	if _, err := store.Register(ctx, "alerts-value", text, 0); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopic(ctx, "schemas"); err != nil {
		t.Fatal(err)
	}
	if err := kclient.EnsureTopics(ctx, addr, nil, kclient.Topic{Name: "schemas", Partitions: 1, Compacted: true}); err != nil {
		t.Fatal(err)
	}
	v, err := store.Register(ctx, "alerts-value", text, 0)
	if err != nil || v.Version != 1 {
		t.Fatalf("registering again: %+v, %v", v, err)
	}
	ends, err := adm.ListEndOffsets(ctx, "schemas")
	if err != nil {
		t.Fatal(err)
	}
	if end, _ := ends.Lookup("schemas", 0); end.Offset != 1 {
		t.Errorf("the new topic ends at %d, want the one record written again", end.Offset)
	}
}
