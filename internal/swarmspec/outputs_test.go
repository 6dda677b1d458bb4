package swarmspec

import (
	"slices"
	"strings"
	"testing"
)

// TestTopicClashes: a filter whose output topic another group on the
// mirror writes clashes, also when the names differ only in '.' and '_'
// (Kafka's collision); the group's own topics never do; the clash names
// the attribute (output, or name without it), the other group and both
// topics.
func TestTopicClashes(t *testing.T) {
	others := []GroupTopic{
		{Group: "a", Filter: "bright", Topic: "bright"},
		{Group: "a", Filter: "x", Topic: "band.r"},
		{Group: "me", Filter: "old", Topic: "mine"}, // the group's own, as it runs now
	}
	fs := []Filter{
		{Name: "ok"},
		{Name: "bright"},                 // by name
		{Name: "r", Output: "band_r"},    // '.' and '_'
		{Name: "m", Output: "mine"},      // its own
		{Name: "dash", Output: "band-r"}, // '-' is not '.'
		{Name: "b2", Output: "bright_2"}, // another topic
	}
	got := TopicClashes(FilterGroup{Name: "me", Mode: ModeShared, Mirror: "m0", Filters: fs}, others)
	if len(got) != 2 {
		t.Fatalf("clashes %+v, want filters[1] and filters[2]", got)
	}
	if c := got[0]; c.Index != 1 || c.Attribute != "name" || c.Mine.Topic != "bright" || c.Other.Group != "a" || c.Mirror != "m0" {
		t.Errorf("by name: %+v", c)
	}
	if c := got[1]; c.Index != 2 || c.Attribute != "output" || c.Mine.Topic != "band_r" || c.Other.Topic != "band.r" {
		t.Errorf("'.' and '_': %+v", c)
	}
	for _, want := range []string{`filter group "me", filters[2].output (r): output topic "band_r" collides with "band.r", ` +
		`written by filter group "a" (filter "x") on mirror "m0": Kafka takes '.' and '_' as the same`} {
		if msg := got[1].Error(); !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if msg := got[0].Error(); !strings.Contains(msg, "filters[1].name (bright): output topic \"bright\" (its name, without `output`) "+
		`is already written by filter group "a" (filter "bright") on mirror "m0"`) {
		t.Errorf("message %q", msg)
	}
	if c := TopicClashes(FilterGroup{Name: "a", Mode: ModeShared, Mirror: "m0", Filters: fs}, others); len(c) != 1 || c[0].Other.Group != "me" {
		t.Errorf("group a sees only me's topic: %+v", c)
	}
}

// TestProcessTopicClashes: a filter process named like another group's on
// the mirror (an isolated filter after the filter, a shared group after
// the group; '.' and '_' alike) would share its dead-letter and state
// topics: one clash per process, at filters[i].name or the group's name,
// whatever the outputs; a process topic that is another group's output
// clashes too.
func TestProcessTopicClashes(t *testing.T) {
	others := slices.Concat(
		GroupTopics(FilterGroup{Name: "g0", Mode: ModeIsolated, Filters: []Filter{{Name: "bright"}, {Name: "band.r", Output: "r-out"}}}),
		GroupTopics(FilterGroup{Name: "sh", Mode: ModeShared, Filters: []Filter{{Name: "s", Output: "s-out"}}}),
		[]GroupTopic{{Group: "old", Filter: "o", Topic: "legacy-state"}}, // placed before such outputs were refused
	)
	iso := FilterGroup{Name: "p2", Mode: ModeIsolated, Mirror: "m0", Filters: []Filter{
		{Name: "ok"},
		{Name: "bright", Output: "p2-bright"}, // g0's process name
		{Name: "band_r", Output: "p2-r"},      // '.' and '_'
		{Name: "sh", Output: "p2-sh"},         // the shared group's process name
		{Name: "legacy", Output: "p2-legacy"}, // its state topic is old's output
	}}
	got := TopicClashes(iso, others)
	if len(got) != 4 {
		t.Fatalf("clashes %+v, want filters[1] to [4]", got)
	}
	for i, c := range got {
		if c.Index != i+1 || c.Attribute != "name" || c.Filter != iso.Filters[i+1].Name {
			t.Errorf("clash %d at filters[%d].%s (%s)", i, c.Index, c.Attribute, c.Filter)
		}
		if want := i < 3; c.SameProcessName() != want {
			t.Errorf("clash %d: same process name %v, want %v", i, c.SameProcessName(), want)
		}
	}
	for i, want := range []string{
		`filter group "p2", filters[1].name (bright): its filter process is named "bright", as the process of filter group "g0"'s filter "bright" ` +
			`on mirror "m0" is, so their dead-letter and state topics would be shared ("bright-deadletter" and "bright-state"): ` +
			`each process would resume from the other's exactly-once state (wrong caps, visits completed twice or never) and their ` +
			`dead letters would mix. Rename one of them (an isolated filter's process is named after the filter, a shared group's after the group; ` +
			`if filter group "g0" is to be destroyed or renamed, do that in an apply of its own first)`,
		`filters[2].name (band_r): its filter process is named "band_r", and the process of filter group "g0"'s filter "band.r" on mirror "m0" ` +
			`is named "band.r": Kafka takes '.' and '_' as the same, so their dead-letter and state topics would be shared ` +
			`("band_r-deadletter" and "band_r-state" with "band.r-deadletter" and "band.r-state")`,
		`filters[3].name (sh): its filter process is named "sh", as the process of filter group "sh" (shared, named after the group) on mirror "m0" is`,
		`filters[4].name (legacy): the state topic "legacy-state" of its filter process "legacy" is also the output topic of filter group "old" ` +
			`(filter "o") on mirror "m0"`,
	} {
		if msg := got[i].Error(); !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}

	// A shared group named like an isolated filter of another: at its name.
	sh := FilterGroup{Name: "bright", Mode: ModeShared, Mirror: "m0", Filters: []Filter{{Name: "f", Output: "own"}}}
	got = TopicClashes(sh, others)
	if len(got) != 1 || got[0].Index != -1 || got[0].Attribute != "name" || !got[0].SameProcessName() {
		t.Fatalf("shared group named bright: %+v", got)
	}
	if msg, want := got[0].Error(), `filter group "bright", name: its filter process is named "bright", as the process of filter group "g0"'s filter "bright"`; !strings.Contains(msg, want) {
		t.Errorf("message %q lacks %q", msg, want)
	}
	// The same filters shared: one process, named after the group, no clash.
	if c := TopicClashes(FilterGroup{Name: "p2", Mode: ModeShared, Mirror: "m0", Filters: iso.Filters[1:4]}, others); len(c) != 0 {
		t.Errorf("shared p2: %+v", c)
	}
	// Both a process name and an output: two clashes at one attribute.
	if c := TopicClashes(FilterGroup{Name: "p3", Mode: ModeIsolated, Mirror: "m0", Filters: []Filter{{Name: "bright"}}}, others); len(c) != 2 ||
		c[0].SameProcessName() || !c[1].SameProcessName() {
		t.Errorf("isolated bright without output: %+v", c)
	}
}

// TestTopicsReadBackFromSpecs: what MirrorTopics reads from a running
// group's services is what FilterGroupSpecs put there, in both modes,
// and what GroupTopics says the group writes.
func TestTopicsReadBackFromSpecs(t *testing.T) {
	fs := []Filter{{Name: "f.1", Expression: "true", ConsumerNode: -1}, {Name: "f2", Output: "out_2", Expression: "true", ConsumerNode: -1}}
	want := []GroupTopic{
		{Group: "g", Filter: "f.1", Topic: "f.1"},
		{Group: "g", Filter: "f.1", Kind: TopicDeadLetter, Topic: "f.1-deadletter"},
		{Group: "g", Filter: "f.1", Kind: TopicState, Topic: "f.1-state"},
		{Group: "g", Filter: "f2", Topic: "out_2"},
		{Group: "g", Filter: "f2", Kind: TopicDeadLetter, Topic: "f2-deadletter"},
		{Group: "g", Filter: "f2", Kind: TopicState, Topic: "f2-state"},
	}
	isoGroup := FilterGroup{Name: "g", Mode: ModeIsolated, Image: "w:1", Network: "n", Mirror: "m", Filters: fs}
	if got := GroupTopics(isoGroup); !slices.Equal(got, want) {
		t.Errorf("isolated group's topics: %+v, want %+v", got, want)
	}
	iso, err := FilterGroupSpecs(isoGroup)
	if err != nil {
		t.Fatal(err)
	}
	var got []GroupTopic
	for _, d := range iso {
		ts, ok := IsolatedTopics(d.Spec)
		if ok != IsFilterProcess(d.Spec) {
			t.Errorf("%s: topics %v, filter process %v", d.Name(), ok, IsFilterProcess(d.Spec))
		}
		if name, named := ProcessName(d.Spec); named != ok || (ok && name != d.Spec.Labels[LabelFilter]) {
			t.Errorf("%s: process name %q %v", d.Name(), name, named)
		}
		if _, _, shared := SharedFiltersConfig(d.Spec); shared {
			t.Errorf("%s is no shared filters service", d.Name())
		}
		got = append(got, ts...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("isolated: %+v, want %+v", got, want)
	}
	if p := want[1].Process(); p != "f.1" || want[2].Process() != "f.1" || want[0].Process() != "" {
		t.Errorf("process of f.1-deadletter: %q", p)
	}

	sharedGroup := FilterGroup{Name: "g", Mode: ModeShared, Image: "w:1", Network: "n", Mirror: "m", Filters: fs}
	shared, err := FilterGroupSpecs(sharedGroup)
	if err != nil {
		t.Fatal(err)
	}
	d := shared[0]
	_, name, ok := SharedFiltersConfig(d.Spec)
	if !ok || !IsFilterProcess(d.Spec) || len(d.Configs) != 1 || name != d.Configs[0].Name {
		t.Fatalf("shared service %s: config %q %v, has %+v", d.Name(), name, ok, d.Configs)
	}
	if _, ok := IsolatedTopics(d.Spec); ok {
		t.Error("the shared service read as an isolated filter")
	}
	outs, err := SharedOutputs("g", d.Configs[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	process, ok := ProcessName(d.Spec)
	if !ok || process != "g" {
		t.Fatalf("shared process name %q %v", process, ok)
	}
	wantShared := []GroupTopic{want[0], want[3], {Group: "g", Kind: TopicDeadLetter, Topic: "g-deadletter"}, {Group: "g", Kind: TopicState, Topic: "g-state"}}
	if got := append(outs, ProcessTopics("g", "", process)...); !slices.Equal(got, wantShared) {
		t.Errorf("shared: %+v, want %+v", got, wantShared)
	}
	if got := GroupTopics(sharedGroup); !slices.Equal(got, wantShared) {
		t.Errorf("shared group's topics: %+v, want %+v", got, wantShared)
	}
	if g, ok := GroupOfOwner(d.Spec.Labels[LabelOwner]); !ok || g != "g" {
		t.Errorf("owner %q: %q %v", d.Spec.Labels[LabelOwner], g, ok)
	}
	if _, ok := GroupOfOwner(MirrorOwner("m")); ok {
		t.Error("a mirror's owner read as a group")
	}
}

// TestGroupServicesAreTheSpecs: GroupServices names exactly the filter
// processes and consumers FilterGroupSpecs places (secured: besides the
// access job), each with the filter whose name is part of it.
func TestGroupServicesAreTheSpecs(t *testing.T) {
	fs := []Filter{
		{Name: "b-c", Expression: "true", ConsumerNode: -1},
		{Name: "Bright.r", Expression: "true", ConsumerNode: -1, NoConsumer: true},
		{Name: "x_y", Expression: "true", ConsumerNode: -1},
	}
	for _, mode := range []string{ModeIsolated, ModeShared} {
		g := FilterGroup{Name: "a", Mode: mode, Image: "w", Network: "n", Mirror: "m0", Filters: fs,
			Security: &Security{Seed: "s"}}
		ds, err := FilterGroupSpecs(g)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, d := range ds {
			if d.Name() != FilterGroupAccessService("a") {
				want = append(want, d.Name())
			}
		}
		var got []string
		for _, s := range GroupServices(g) {
			got = append(got, s.Name)
			if s.Index >= 0 && (fs[s.Index].Name != s.Filter || !strings.Contains(s.Name, FilterSlug(s.Filter))) {
				t.Errorf("%s: %+v does not name its filter", mode, s)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: GroupServices %v, FilterGroupSpecs %v", mode, got, want)
		}
	}
}
