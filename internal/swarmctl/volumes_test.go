package swarmctl

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// fakeEngine answers the Volume API for one volume as dockerd does: the
// volume with labels, "in use" (409) for the first inUse removals, then
// removed (204), then not found (404). It records the requests.
type fakeEngine struct {
	labels map[string]string
	inUse  int

	mu       sync.Mutex
	requests []string
	removed  bool
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := r.URL.Path[strings.Index(r.URL.Path, "/volumes"):] // after the API version
	f.requests = append(f.requests, r.Method+" "+path)
	w.Header().Set("Content-Type", "application/json")
	switch {
	case f.removed:
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"message":"get v: no such volume"}`))
	case r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(map[string]any{"Name": "v", "Driver": "local", "Labels": f.labels})
	case f.inUse > 0:
		f.inUse--
		w.WriteHeader(http.StatusConflict)
		_, _ = w.Write([]byte(`{"message":"remove v: volume is in use - [0123456789ab]"}`))
	default:
		f.removed = true
		w.WriteHeader(http.StatusNoContent)
	}
}

func fakeClient(t *testing.T, h http.Handler) *client.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithVersion("1.47"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// TestRemoveVolume: a volume of ours is removed once no container uses it
// (retried while in use); one that is gone is nothing to do; one without
// our labels for the owner is kept; the error says where and which.
func TestRemoveVolume(t *testing.T) {
	ours := map[string]string{swarmspec.LabelManaged: "true", swarmspec.LabelOwner: "mirror/m1"}
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	f := &fakeEngine{labels: ours, inUse: 2}
	if err := removeVolume(ctx, log, fakeClient(t, f), "node n1", "v", "mirror/m1"); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET /volumes/v", "DELETE /volumes/v", "GET /volumes/v", "DELETE /volumes/v", "GET /volumes/v", "DELETE /volumes/v"}
	if !slices.Equal(f.requests, want) {
		t.Errorf("requests %v, want %v", f.requests, want)
	}
	if err := removeVolume(ctx, log, fakeClient(t, f), "node n1", "v", "mirror/m1"); err != nil {
		t.Errorf("a volume already gone: %v", err)
	}

	for name, labels := range map[string]map[string]string{
		"no labels":     nil,
		"another owner": {swarmspec.LabelManaged: "true", swarmspec.LabelOwner: "mirror/m2"},
	} {
		f := &fakeEngine{labels: labels}
		if err := removeVolume(ctx, log, fakeClient(t, f), "node n1", "v", "mirror/m1"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if slices.Contains(f.requests, "DELETE /volumes/v") {
			t.Errorf("%s: a volume that is not the owner's was removed", name)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	f = &fakeEngine{labels: ours, inUse: 1000}
	err := removeVolume(cctx, log, fakeClient(t, f), "node n1 (abc, 10.0.0.7)", "v", "mirror/m1")
	if err == nil || !strings.Contains(err.Error(), "node n1 (abc, 10.0.0.7)") || !strings.Contains(err.Error(), "volume v") {
		t.Errorf("error does not say where and which volume: %v", err)
	}
}

// TestVolumesOnlyOfBrokers: services without a volume of ours (filters,
// consumers, MirrorMaker 2) cost no API call when removed; a broker's
// volume is found on the node its tasks ran on.
func TestVolumesOnlyOfBrokers(t *testing.T) {
	var calls []string
	var mu sync.Mutex
	tasks := []swarm.Task{
		{ServiceID: "kafka", NodeID: "n1"}, {ServiceID: "kafka", NodeID: "n1"}, // a restarted task
		{ServiceID: "kafka"}, // not scheduled yet
		{ServiceID: "mm2", NodeID: "n1"},
		{ServiceID: "other", NodeID: "n2"},
	}
	cli := fakeClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tasks)
	}))
	m := NewManager(cli, nil)
	ds := swarmspec.MirrorSpecs(swarmspec.Mirror{Name: "m1", Kafka: swarmspec.Kafka{Image: "k:1", Network: "n"}})
	g, err := swarmspec.FilterGroupSpecs(swarmspec.FilterGroup{Name: "g", Mode: swarmspec.ModeShared, Image: "w:1", Network: "n", Mirror: "m1",
		Filters: []swarmspec.Filter{{Name: "f", Expression: "true", ConsumerNode: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	var others []swarm.Service
	for _, d := range append(g, ds[1]) {
		others = append(others, swarm.Service{ID: "other", Spec: d.Spec})
	}
	vols, err := m.volumesOf(context.Background(), others)
	if err != nil || len(vols) > 0 || len(calls) > 0 {
		t.Fatalf("services without volumes: %v %v, API calls %v", vols, err, calls)
	}
	vols, err = m.volumesOf(context.Background(), append(others,
		swarm.Service{ID: "kafka", Spec: ds[0].Spec}, swarm.Service{ID: "mm2", Spec: ds[1].Spec}))
	if err != nil {
		t.Fatal(err)
	}
	want := []nodeVolume{{node: "n1", name: "mb-mirror-m1-data", owner: "mirror/m1"}}
	if !slices.Equal(vols, want) || len(calls) != 1 {
		t.Errorf("volumes %v, want %v, with one task listing (calls %v)", vols, want, calls)
	}
}

// TestSpecDiffSeesMounts: a mount removed or changed by hand is drift.
func TestSpecDiffSeesMounts(t *testing.T) {
	want := swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec
	got := swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec
	cs := *got.TaskTemplate.ContainerSpec
	cs.Mounts = nil
	got.TaskTemplate.ContainerSpec = &cs
	if d := SpecDiff(want, got); !slices.Equal(d, []string{"mounts"}) {
		t.Errorf("diff %v, want [mounts]", d)
	}
}
