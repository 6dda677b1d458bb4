package swarmspec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/swarm"
	"gopkg.in/yaml.v3"

	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// Topics the filter groups sharing a mirror write (issue 13). A group's
// filters write their output topics, and each of its filter processes
// (one per filter, isolated; one for the group, shared) its dead letters
// and its exactly-once state to topics named after the process
// (stream.DeadLetterTopic, stream.FilterStateTopic): the filter's name
// for an isolated filter, the group's for a shared group. Two groups on
// one mirror writing one topic (or two names Kafka takes as the same,
// stream.TopicCollisionKey) would each hand their users the other's
// alerts or, for processes of one name, resume from each other's state
// (wrong caps, visits completed twice or never) and mix their dead
// letters. What a running group writes is read from the spec the
// provider gave it, so groups placed by any version of the provider are
// seen: a filter process's --name argument, an isolated filter's
// --output, a shared group's filters file (the config mounted at
// SharedFiltersFile).

// SharedFiltersFile is where a shared group's filters file is mounted.
const SharedFiltersFile = ConfigDir + "/filters.yaml"

// GroupOfOwner returns the filter group an owner label names, if it
// names one.
func GroupOfOwner(owner string) (string, bool) {
	return strings.CutPrefix(owner, FilterGroupOwner(""))
}

// TopicKind is what a filter group writes to a topic.
type TopicKind int

const (
	TopicOutput     TopicKind = iota // a filter's output
	TopicDeadLetter                  // a filter process's dead letters
	TopicState                       // a filter process's exactly-once state
)

// GroupTopic is a topic a filter group writes on its mirror.
type GroupTopic struct {
	Group string
	// Filter writing it: the output's filter, or the isolated filter
	// whose process it is; "" for the topics of a shared group's process.
	Filter string
	Kind   TopicKind
	Topic  string
}

// Process is the name of the filter process whose dead-letter or state
// topic this is; "" for an output.
func (t GroupTopic) Process() string {
	switch t.Kind {
	case TopicDeadLetter:
		return strings.TrimSuffix(t.Topic, stream.DeadLetterTopic(""))
	case TopicState:
		return strings.TrimSuffix(t.Topic, stream.FilterStateTopic(""))
	}
	return ""
}

// ProcessTopics are the topics the filter process name of the group
// writes besides outputs (filter: the isolated filter it runs, or "").
func ProcessTopics(group, filter, name string) []GroupTopic {
	return []GroupTopic{
		{Group: group, Filter: filter, Kind: TopicDeadLetter, Topic: stream.DeadLetterTopic(name)},
		{Group: group, Filter: filter, Kind: TopicState, Topic: stream.FilterStateTopic(name)},
	}
}

// GroupTopics are the topics the group writes on its mirror (Name, Mode
// and Filters are read), as FilterGroupSpecs places it: each filter's
// output; the dead-letter and state topics of each isolated filter's
// process, after the filter it follows, or of the shared process, last.
func GroupTopics(g FilterGroup) []GroupTopic {
	var out []GroupTopic
	for _, f := range g.Filters {
		out = append(out, GroupTopic{Group: g.Name, Filter: f.Name, Topic: f.OutputTopic()})
		if g.Mode != ModeShared {
			out = append(out, ProcessTopics(g.Name, f.Name, f.Name)...)
		}
	}
	if g.Mode == ModeShared {
		out = append(out, ProcessTopics(g.Name, "", g.Name)...)
	}
	return out
}

// IsFilterProcess reports whether a service is a filter group's filter
// process (isolated or shared), the writer of its topics.
func IsFilterProcess(spec swarm.ServiceSpec) bool {
	c := spec.Labels[LabelComponent]
	return c == ComponentFilter || c == ComponentFilters
}

// argValue is the value of the flag in a service's command, if present.
func argValue(spec swarm.ServiceSpec, flag string) (string, bool) {
	if spec.TaskTemplate.ContainerSpec == nil {
		return "", false
	}
	args := spec.TaskTemplate.ContainerSpec.Args
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// ProcessName reads the name of a group's filter process (isolated or
// shared), its --name argument, which names its dead-letter and state
// topics; ok is false for any other service.
func ProcessName(spec swarm.ServiceSpec) (name string, ok bool) {
	if _, isGroup := GroupOfOwner(spec.Labels[LabelOwner]); !isGroup || !IsFilterProcess(spec) {
		return "", false
	}
	return argValue(spec, "--name")
}

// IsolatedTopics reads the topics an isolated filter's service writes
// from its command (FilterGroupSpecs): its --output and, after its
// --name, its dead-letter and state topics; ok is false for any other
// service.
func IsolatedTopics(spec swarm.ServiceSpec) (out []GroupTopic, ok bool) {
	group, isGroup := GroupOfOwner(spec.Labels[LabelOwner])
	if !isGroup || spec.Labels[LabelComponent] != ComponentFilter {
		return nil, false
	}
	topic, ok := argValue(spec, "--output")
	if !ok {
		return nil, false
	}
	f := spec.Labels[LabelFilter]
	out = []GroupTopic{{Group: group, Filter: f, Topic: topic}}
	if name, ok := ProcessName(spec); ok {
		out = append(out, ProcessTopics(group, f, name)...)
	}
	return out, true
}

// SharedFiltersConfig returns the config holding the filters file a
// shared group's service mounts (its id, as Swarm filled it in, and
// name); ok is false for any other service.
func SharedFiltersConfig(spec swarm.ServiceSpec) (id, name string, ok bool) {
	if spec.Labels[LabelComponent] != ComponentFilters || spec.TaskTemplate.ContainerSpec == nil {
		return "", "", false
	}
	for _, r := range spec.TaskTemplate.ContainerSpec.Configs {
		if r.File != nil && r.File.Name == SharedFiltersFile {
			return r.ConfigID, r.ConfigName, true
		}
	}
	return "", "", false
}

// SharedOutputs reads the output topics of a shared group from its
// filters file (filtersYAML). It only reads the YAML: expressions are
// not compiled.
func SharedOutputs(group string, filtersFile []byte) ([]GroupTopic, error) {
	var doc filter.File
	if err := yaml.Unmarshal(filtersFile, &doc); err != nil {
		return nil, fmt.Errorf("filters file of filter group %q: %w", group, err)
	}
	var out []GroupTopic
	for _, s := range doc.Filters {
		out = append(out, GroupTopic{Group: group, Filter: s.Name, Topic: s.WithDefaults().Output})
	}
	return out, nil
}

// TopicClash is a topic that a group being placed would write and that
// another filter group on its mirror already writes (or one Kafka takes
// as the same).
type TopicClash struct {
	Group  string // the group being placed
	Mirror string
	// Index is the position in the group of the filter whose setting
	// names the topic; -1 when it is the group's own name (the process
	// of a shared group).
	Index  int
	Filter string // that filter's name; "" when Index is -1
	// Attribute is the setting that names the topic: output; name (the
	// filter's, for its output without `output` or for its isolated
	// process; the group's when Index is -1).
	Attribute string
	Mine      GroupTopic // the group's topic
	Other     GroupTopic // what the other group writes
}

// SameProcessName reports whether the clash is of two filter processes
// of one name (as Kafka compares them): their dead-letter topics and
// their state topics are both shared. (TopicClashes reports it once, as
// the dead-letter topics'.)
func (c TopicClash) SameProcessName() bool {
	return c.Mine.Kind != TopicOutput && c.Mine.Kind == c.Other.Kind
}

// Error says what clashes, where, why it matters and what to change.
func (c TopicClash) Error() string {
	at := fmt.Sprintf("filter group %q, filters[%d].%s (%s)", c.Group, c.Index, c.Attribute, c.Filter)
	if c.Index < 0 {
		at = fmt.Sprintf("filter group %q, %s", c.Group, c.Attribute)
	}
	mirror := fmt.Sprintf(" on mirror %q", c.Mirror)
	kafka := stream.TopicCollisionKey(c.Mine.Topic) == stream.TopicCollisionKey(c.Other.Topic) && c.Mine.Topic != c.Other.Topic
	const sameKey = "Kafka takes '.' and '_' as the same"
	first := fmt.Sprintf("if filter group %q is to be destroyed, renamed or to give the topic up, do that in an apply of its own first", c.Other.Group)
	switch {
	case c.Mine.Kind == TopicOutput && c.Other.Kind == TopicOutput:
		what := fmt.Sprintf("output topic %q", c.Mine.Topic)
		if c.Attribute == "name" {
			what += " (its name, without `output`)"
		}
		other := fmt.Sprintf("filter group %q (filter %q)%s", c.Other.Group, c.Other.Filter, mirror)
		clash := "is already written by " + other
		if kafka {
			clash = fmt.Sprintf("collides with %q, written by %s: %s", c.Other.Topic, other, sameKey)
		}
		return fmt.Sprintf("%s: %s %s; each group's users would get the other's alerts. Give it another `output` (%s)", at, what, clash, first)
	case c.SameProcessName():
		mine, other := c.Mine.Process(), c.Other.Process()
		named := fmt.Sprintf("is named %q, as the process of %s%s is", mine, processOf(c.Other), mirror)
		topics := fmt.Sprintf("%q and %q", stream.DeadLetterTopic(mine), stream.FilterStateTopic(mine))
		if kafka {
			named = fmt.Sprintf("is named %q, and the process of %s%s is named %q: %s", mine, processOf(c.Other), mirror, other, sameKey)
			topics = fmt.Sprintf("%q and %q with %q and %q", stream.DeadLetterTopic(mine), stream.FilterStateTopic(mine),
				stream.DeadLetterTopic(other), stream.FilterStateTopic(other))
		}
		return fmt.Sprintf("%s: its filter process %s, so their dead-letter and state topics would be shared (%s): "+
			"each process would resume from the other's exactly-once state (wrong caps, visits completed twice or never) "+
			"and their dead letters would mix. Rename one of them (%s; if filter group %q is to be destroyed or renamed, "+
			"do that in an apply of its own first)", at, named, topics, processNaming, c.Other.Group)
	default:
		clash := "is also"
		if kafka {
			clash = fmt.Sprintf("collides with %q (%s),", c.Other.Topic, sameKey)
		}
		advice := fmt.Sprintf("Give it another `output` (%s)", first)
		if c.Mine.Kind != TopicOutput {
			advice = fmt.Sprintf("Rename one of them (%s; %s)", processNaming, first)
		}
		return fmt.Sprintf("%s: %s %s %s%s; the two would be written to one topic, "+
			"mixing a filter process's dead letters or exactly-once state with other records. %s",
			at, topicOf(c.Mine, true), clash, topicOf(c.Other, false), mirror, advice)
	}
}

const processNaming = "an isolated filter's process is named after the filter, a shared group's after the group"

// processOf names whose process writes t: a group's filter or a group.
func processOf(t GroupTopic) string {
	if t.Filter == "" {
		return fmt.Sprintf("filter group %q (shared, named after the group)", t.Group)
	}
	return fmt.Sprintf("filter group %q's filter %q", t.Group, t.Filter)
}

// topicOf describes t, of the group being placed (mine) or another.
func topicOf(t GroupTopic, mine bool) string {
	var what string
	switch t.Kind {
	case TopicOutput:
		if mine {
			return fmt.Sprintf("output topic %q", t.Topic)
		}
		return fmt.Sprintf("the output topic of filter group %q (filter %q)", t.Group, t.Filter)
	case TopicDeadLetter:
		what = "dead-letter topic"
	default:
		what = "state topic"
	}
	if mine {
		return fmt.Sprintf("the %s %q of its filter process %q", what, t.Topic, t.Process())
	}
	return fmt.Sprintf("the %s of the process of %s", what, processOf(t))
}

// TopicClashes returns, in the order of GroupTopics, a clash for each
// topic the group (Name, Mode and Filters are read) would write that
// collides (stream.TopicCollisionKey) with one that another group on its
// mirror writes (others; those of the group itself are left out): an
// output with an output, or a process's dead-letter or state topic with
// another's (processes of one name: one clash) or with an output.
// Clashes within the group are the plan's (provider/validate_input.go:
// outputs; filter names that give one service name, FilterSlug, which
// also catches processes of one name).
func TopicClashes(g FilterGroup, others []GroupTopic) []TopicClash {
	taken := map[string]GroupTopic{}
	for _, o := range others {
		if o.Group == g.Name {
			continue
		}
		if _, dup := taken[stream.TopicCollisionKey(o.Topic)]; !dup {
			taken[stream.TopicCollisionKey(o.Topic)] = o
		}
	}
	index := map[string]int{}
	for i, f := range g.Filters {
		index[f.Name] = i
	}
	var out []TopicClash
	sameName := map[int]bool{} // processes (by Index) reported as of one name
	for _, t := range GroupTopics(g) {
		o, clash := taken[stream.TopicCollisionKey(t.Topic)]
		if !clash {
			continue
		}
		c := TopicClash{Group: g.Name, Mirror: g.Mirror, Index: -1, Attribute: "name", Mine: t, Other: o}
		if t.Filter != "" {
			c.Index, c.Filter = index[t.Filter], t.Filter
			if t.Kind == TopicOutput && g.Filters[c.Index].Output != "" {
				c.Attribute = "output"
			}
		}
		if c.SameProcessName() {
			if sameName[c.Index] {
				continue // reported with the dead-letter topics
			}
			sameName[c.Index] = true
		}
		out = append(out, c)
	}
	return out
}
