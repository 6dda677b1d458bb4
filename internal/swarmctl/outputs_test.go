package swarmctl

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// fakeGroups is an engine running filter groups: it lists their services
// (every one; the label filter is the engine's) and serves their configs.
type fakeGroups struct {
	mu       sync.Mutex
	services []swarm.Service
	configs  map[string]swarm.Config
	writes   int // requests other than GET
}

func (f *fakeGroups) add(t *testing.T, g swarmspec.FilterGroup) {
	t.Helper()
	ds, err := swarmspec.FilterGroupSpecs(g)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range ds {
		spec := d.Spec
		for _, c := range d.Configs {
			id := "id-" + c.Name
			f.configs[id] = swarm.Config{ID: id, Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: c.Name}, Data: c.Data}}
			spec = withObjectIDs(spec, map[string]string{c.Name: id})
		}
		f.services = append(f.services, swarm.Service{ID: d.Name(), Spec: spec})
	}
}

func (f *fakeGroups) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet {
		f.writes++
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/services") && r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(f.services)
	case strings.Contains(r.URL.Path, "/configs/"):
		c, ok := f.configs[r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(c)
	default:
		http.NotFound(w, r)
	}
}

// TestClaimTopics: a group is refused when a group running on its
// mirror (isolated: its --output and --name; shared: its filters file
// and --name) writes one of its topics (an output, or the dead-letter and
// state topics of a filter process of the same name), or when a group
// being placed at the same moment in this provider process has claimed
// it; the claim holds until released, and groups that do not clash go on.
func TestClaimTopics(t *testing.T) {
	ctx := context.Background()
	f := &fakeGroups{configs: map[string]swarm.Config{}}
	f.add(t, swarmspec.FilterGroup{Name: "iso", Mode: swarmspec.ModeIsolated, Image: "w", Network: "n", Mirror: "m0",
		Filters: []swarmspec.Filter{{Name: "bright", Expression: "true", ConsumerNode: -1}}})
	f.add(t, swarmspec.FilterGroup{Name: "sh", Mode: swarmspec.ModeShared, Image: "w", Network: "n", Mirror: "m0",
		Filters: []swarmspec.Filter{{Name: "s", Output: "band.r", Expression: "true", ConsumerNode: -1}}})
	s := &Swarm{Manager: NewManager(fakeClient(t, f), nil), ID: "swarm", claims: newTopicClaims()}
	group := func(name, mode, mirror string, fs ...swarmspec.Filter) swarmspec.FilterGroup {
		return swarmspec.FilterGroup{Name: name, Mode: mode, Mirror: mirror, Filters: fs}
	}
	iso, shared := swarmspec.ModeIsolated, swarmspec.ModeShared

	ts, err := s.MirrorTopics(ctx, "m0", "new")
	want := []swarmspec.GroupTopic{
		{Group: "iso", Filter: "bright", Topic: "bright"},
		{Group: "iso", Filter: "bright", Kind: swarmspec.TopicDeadLetter, Topic: "bright-deadletter"},
		{Group: "iso", Filter: "bright", Kind: swarmspec.TopicState, Topic: "bright-state"},
		{Group: "sh", Kind: swarmspec.TopicDeadLetter, Topic: "sh-deadletter"},
		{Group: "sh", Kind: swarmspec.TopicState, Topic: "sh-state"},
		{Group: "sh", Filter: "s", Topic: "band.r"},
	}
	if err != nil || !slices.Equal(ts, want) {
		t.Fatalf("topics on m0: %+v %v, want %+v", ts, err, want)
	}
	var clash *TopicClashError
	err = s.CheckTopics(ctx, group("new", shared, "m0", swarmspec.Filter{Name: "a", Output: "band_r"}, swarmspec.Filter{Name: "bright"}))
	if !errors.As(err, &clash) || len(clash.Clashes) != 2 || !strings.Contains(err.Error(), `filter group "sh"`) ||
		!strings.Contains(err.Error(), `filter group "iso"`) {
		t.Fatalf("running groups' outputs: %v", err)
	}
	if err := s.CheckTopics(ctx, group("iso", iso, "m0", swarmspec.Filter{Name: "bright"})); err != nil {
		t.Errorf("a group's own topics: %v", err)
	}
	// Process names: an isolated filter named like iso's filter (its
	// --name) or like the shared group sh (its --name), whatever its
	// output; a shared group named like iso's filter.
	err = s.CheckTopics(ctx, group("new", iso, "m0", swarmspec.Filter{Name: "bright", Output: "new-1"}, swarmspec.Filter{Name: "sh", Output: "new-2"}))
	if !errors.As(err, &clash) || len(clash.Clashes) != 2 || !clash.Clashes[0].SameProcessName() || clash.Clashes[0].Other.Group != "iso" ||
		clash.Clashes[1].Other.Group != "sh" || !strings.Contains(err.Error(), `"bright-deadletter" and "bright-state"`) {
		t.Fatalf("isolated process names: %v", err)
	}
	err = s.CheckTopics(ctx, group("bright", shared, "m0", swarmspec.Filter{Name: "x", Output: "new-1"}))
	if !errors.As(err, &clash) || len(clash.Clashes) != 1 || clash.Clashes[0].Index != -1 ||
		!strings.Contains(err.Error(), `filter group "bright", name: its filter process is named "bright"`) {
		t.Fatalf("shared process name: %v", err)
	}
	if err := s.CheckTopics(ctx, group("new", shared, "m0", swarmspec.Filter{Name: "bright", Output: "new-1"})); err != nil {
		t.Errorf("a shared group's filter named like another's isolated filter: %v", err)
	}

	// Two groups placed at once: the second to claim a topic is refused.
	release, err := s.ClaimTopics(ctx, group("c1", iso, "m0", swarmspec.Filter{Name: "x", Output: "clash.topic"}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.ClaimTopics(ctx, group("c2", iso, "m0", swarmspec.Filter{Name: "y", Output: "clash_topic"}))
	if !errors.As(err, &clash) || clash.Clashes[0].Other.Group != "c1" || !strings.Contains(err.Error(), `filter group "c2"`) {
		t.Fatalf("second claim: %v", err)
	}
	if err := s.CheckTopics(ctx, group("c2", iso, "m0", swarmspec.Filter{Name: "y", Output: "clash_topic"})); err == nil {
		t.Error("the plan's check does not see the claim")
	}
	// ... also for a process name only.
	_, err = s.ClaimTopics(ctx, group("c3", iso, "m0", swarmspec.Filter{Name: "x", Output: "c3-out"}))
	if !errors.As(err, &clash) || len(clash.Clashes) != 1 || !clash.Clashes[0].SameProcessName() || clash.Clashes[0].Other.Group != "c1" {
		t.Fatalf("claim of a process name: %v", err)
	}
	other, err := s.ClaimTopics(ctx, group("c2", iso, "m1", swarmspec.Filter{Name: "y", Output: "clash_topic"}))
	if err != nil {
		t.Errorf("another mirror: %v", err)
	}
	other()
	release()
	release() // twice: nothing more
	if len(s.claims.claims) != 0 {
		t.Errorf("claims left: %v", s.claims.claims)
	}
	// Released and c1 running: the swarm refuses c2 now.
	f.add(t, swarmspec.FilterGroup{Name: "c1", Mode: swarmspec.ModeIsolated, Image: "w", Network: "n", Mirror: "m0",
		Filters: []swarmspec.Filter{{Name: "x", Output: "clash.topic", ConsumerNode: -1}}})
	if _, err := s.ClaimTopics(ctx, group("c2", iso, "m0", swarmspec.Filter{Name: "y", Output: "clash_topic"})); !errors.As(err, &clash) {
		t.Errorf("after c1 runs: %v", err)
	}
	if len(s.claims.claims) != 0 {
		t.Errorf("a refused claim is kept: %v", s.claims.claims)
	}
}

// TestServiceNamesOfAnotherOwner: a filter group whose services would
// take a name a service of another owner holds (group "a" with filter
// "b-c" and group "a-b" with filter "c" both give "mb-a-b-c"; a service
// the provider did not place) is refused by CheckNames, naming each name
// and its holder, and by Apply before it changes anything; the group's
// own names and free names pass.
func TestServiceNamesOfAnotherOwner(t *testing.T) {
	ctx := context.Background()
	f := &fakeGroups{configs: map[string]swarm.Config{}}
	f.add(t, swarmspec.FilterGroup{Name: "a", Mode: swarmspec.ModeIsolated, Image: "w", Network: "n", Mirror: "m0",
		Filters: []swarmspec.Filter{{Name: "b-c", Expression: "true", ConsumerNode: -1}}})
	f.services = append(f.services, swarm.Service{ID: "mine", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "mb-a-b-d"}}})
	m := NewManager(fakeClient(t, f), nil)

	ab := swarmspec.FilterGroup{Name: "a-b", Mode: swarmspec.ModeIsolated, Image: "w", Network: "n", Mirror: "m1",
		Filters: []swarmspec.Filter{{Name: "c", Expression: "true", ConsumerNode: -1}, {Name: "d", Expression: "true", ConsumerNode: -1, NoConsumer: true},
			{Name: "e", Expression: "true", ConsumerNode: -1}}}
	var names []string
	for _, s := range swarmspec.GroupServices(ab) {
		names = append(names, s.Name)
	}
	err := m.CheckNames(ctx, swarmspec.FilterGroupOwner(ab.Name), names)
	var clash *NameClashError
	if !errors.As(err, &clash) {
		t.Fatalf("CheckNames: %v, want a *NameClashError", err)
	}
	want := []NameClash{{"mb-a-b-c", swarmspec.FilterGroupOwner("a")}, {"mb-a-b-c-c", swarmspec.FilterGroupOwner("a")}, {"mb-a-b-d", ""}}
	if !slices.Equal(clash.Clashes, want) {
		t.Errorf("clashes %+v, want %+v", clash.Clashes, want)
	}
	for _, s := range []string{`filter group "a-b"`, `"mb-a-b-c" is already taken by filter group "a"`,
		`"mb-a-b-d" is already taken by a service this provider did not place`, "rename one of them"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if err := m.CheckNames(ctx, swarmspec.FilterGroupOwner("a"), []string{"mb-a-b-c", "mb-a-b-c-c", "mb-a-x"}); err != nil {
		t.Errorf("the group's own and free names: %v", err)
	}

	ds, err := swarmspec.FilterGroupSpecs(ab)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(ctx, swarmspec.FilterGroupOwner(ab.Name), ds); !errors.As(err, &clash) || f.writes != 0 {
		t.Errorf("Apply: %v after %d changes, want a *NameClashError before any", err, f.writes)
	}
}

// TestClaimServiceNames: two groups placed at the same moment (on any
// mirrors of one swarm) asking for one service name: the second to claim
// is refused, naming the first; once the first's claim is released (its
// services exist, and Apply's own check takes over), the name is free to
// claim again; groups of other swarms are not compared.
func TestClaimServiceNames(t *testing.T) {
	ctx := context.Background()
	f := &fakeGroups{configs: map[string]swarm.Config{}}
	claims := newTopicClaims()
	s := &Swarm{Manager: NewManager(fakeClient(t, f), nil), ID: "swarm", claims: claims}
	other := &Swarm{Manager: NewManager(fakeClient(t, f), nil), ID: "other", claims: claims}
	a := swarmspec.FilterGroup{Name: "a", Mode: swarmspec.ModeIsolated, Mirror: "m0",
		Filters: []swarmspec.Filter{{Name: "b-c", Output: "a-out", NoConsumer: true}}}
	ab := swarmspec.FilterGroup{Name: "a-b", Mode: swarmspec.ModeIsolated, Mirror: "m1",
		Filters: []swarmspec.Filter{{Name: "c", Output: "ab-out", NoConsumer: true}}}

	releaseA, err := s.ClaimTopics(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.ClaimTopics(ctx, ab)
	var clash *NameClashError
	if !errors.As(err, &clash) || !slices.Equal(clash.Clashes, []NameClash{{"mb-a-b-c", swarmspec.FilterGroupOwner("a")}}) {
		t.Fatalf("a-b claimed beside a: %v, want mb-a-b-c refused as filter group a's", err)
	}
	if !strings.Contains(err.Error(), `filter group "a-b": service name "mb-a-b-c" is already taken by filter group "a"`) {
		t.Errorf("error %q", err)
	}
	releaseOther, err := other.ClaimTopics(ctx, ab)
	if err != nil {
		t.Errorf("a-b on another swarm: %v", err)
	}
	releaseOther()
	releaseA()
	releaseAB, err := s.ClaimTopics(ctx, ab)
	if err != nil {
		t.Errorf("a-b after a's claim was released: %v", err)
	}
	releaseAB()
	if len(claims.names) != 0 || len(claims.claims) != 0 {
		t.Errorf("claims left after every release: %v %v", claims.names, claims.claims)
	}
}
