package swarmspec

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// Filter group modes.
const (
	// ModeIsolated runs one container per filter, as the original design.
	ModeIsolated = "isolated"
	// ModeShared runs all filters of the group in one container that reads
	// and decodes the stream once.
	ModeShared = "shared"
)

// Filter is one user filter and its consumer.
type Filter struct {
	Name       string
	Expression string
	// MaxPerVisit as filter.Spec.MaxPerVisit: 0 means the default, 20;
	// negative means no cap.
	MaxPerVisit int
	// Output topic; empty means Name.
	Output string
	// CostLimit as filter.Spec.CostLimit: 0 means the default,
	// filter.DefaultCostLimit.
	CostLimit uint64
	// TimeBudget as filter.Spec.TimeBudget: 0 means the default,
	// filter.DefaultTimeBudget.
	TimeBudget time.Duration
	// ConsumerNode pins the consumer to a consumer node by index; negative
	// lets Swarm spread consumers over all consumer nodes.
	ConsumerNode int
	// NoConsumer runs no consumer for this filter.
	NoConsumer bool
	// Readers are named readers of the filter's stream outside the swarm,
	// besides its default one (NamedReaderUser).
	Readers []string
}

// Spec is the filter as the filter process reads it (--filters YAML).
func (f Filter) Spec() filter.Spec {
	return filter.Spec{Name: f.Name, Expr: f.Expression, Output: f.Output, MaxPerVisit: f.MaxPerVisit, CostLimit: f.costLimit(),
		TimeBudget: f.timeBudget()}
}

// timeBudget is TimeBudget with the default as 0, as costLimit.
func (f Filter) timeBudget() time.Duration {
	if f.TimeBudget == filter.DefaultTimeBudget {
		return 0
	}
	return f.TimeBudget
}

// costLimit is CostLimit with the default as 0, so that the filters YAML
// and the command of a filter that leaves it alone, and their hashes,
// stay what they were before the setting existed (no restart on upgrade).
func (f Filter) costLimit() uint64 {
	if f.CostLimit == filter.DefaultCostLimit {
		return 0
	}
	return f.CostLimit
}

// costLimitArgs passes CostLimit and TimeBudget to an isolated filter
// process when they are not the defaults.
func (f Filter) costLimitArgs() []string {
	var args []string
	if f.costLimit() != 0 {
		args = append(args, "--cost-limit", strconv.FormatUint(f.costLimit(), 10))
	}
	if f.timeBudget() != 0 {
		args = append(args, "--time-budget", f.timeBudget().String())
	}
	return args
}

// OutputTopic returns the topic the filter writes to.
func (f Filter) OutputTopic() string { return f.Spec().WithDefaults().Output }

// FilterGroup is a set of filters on a mirror's node and their consumers.
type FilterGroup struct {
	Name            string
	Mode            string
	Image           string
	Network         string
	Mirror          string // mirror name
	MirrorNodeIndex int    // the mirror's filter node
	// MirrorID is the mirror Kafka's service id: the access job runs again
	// for a new broker.
	MirrorID string
	Filters  []Filter
	// FilterResources of each filter task (isolated) or of the shared one,
	// ConsumerResources of each consumer; zero fields take FilterResources
	// and ConsumerResources.
	FilterResources, ConsumerResources Resources
	// Security, when set, gives every process its own Kafka user and each
	// filter a reader (ReaderUser) for its owner outside the swarm.
	Security *Security
	// VisitQuiet is how long a filter waits after the last alert of a
	// visit whose alerts carry no mb-* headers (an upstream stream)
	// before it closes the visit; 0 means stream.DefaultVisitQuiet.
	VisitQuiet time.Duration
}

// visitQuietArgs passes VisitQuiet to a filter process only when it is
// not the default, so that the specs of groups that leave it alone, and
// their hashes, stay what they were before the flag existed (no restart
// on upgrade).
func (g FilterGroup) visitQuietArgs() []string {
	if g.VisitQuiet == 0 || g.VisitQuiet == stream.DefaultVisitQuiet {
		return nil
	}
	return []string{"--visit-quiet", g.VisitQuiet.String()}
}

// Name limits keep every derived service name within Docker's 63 characters.
const (
	MaxGroupNameLen  = 20
	MaxFilterNameLen = 30
	MaxMirrorNameLen = 30
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// ValidObjectName reports whether a mirror or group name can be part of a
// service name (lower-case letters, digits and inner dashes).
func ValidObjectName(name string, maxLen int) error {
	if len(name) > maxLen || !dnsLabel.MatchString(name) {
		return fmt.Errorf("%q must be 1 to %d lower-case letters, digits or inner dashes", name, maxLen)
	}
	return nil
}

// FilterSlug is a filter name as it appears in service names: lower case,
// with '_' and '.' turned into '-'.
func FilterSlug(name string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(name))
}

// FilterService names the service of one filter (isolated mode).
func FilterService(group, filter string) string { return "mb-" + group + "-" + FilterSlug(filter) }

// SharedFilterService names the one service of a shared group.
func SharedFilterService(group string) string { return "mb-" + group + "-filters" }

// ConsumerService names the consumer of one filter.
func ConsumerService(group, filter string) string {
	return "mb-" + group + "-" + FilterSlug(filter) + "-c"
}

// FilterGroupSpecs returns the filter services and consumers of a group
// and, secured, the job that applies its Kafka users.
func FilterGroupSpecs(g FilterGroup) ([]Desired, error) {
	owner := FilterGroupOwner(g.Name)
	mirror := Bootstrap(MirrorKafkaService(g.Mirror))
	hub := Bootstrap(HubService)
	place := NodeConstraints(RoleFilter, g.MirrorNodeIndex)
	sec := g.Security
	var out []Desired
	var mirrorUsers, hubUsers []access.User
	// process adds a filter process, its user and its grants.
	process := func(svc service, user, name, group string, filters []Filter) {
		sec.secureClient(&svc, user)
		out = append(out, svc.build())
		if sec == nil {
			return
		}
		writes := []string{stream.DeadLetterTopic(name), stream.FilterStateTopic(name)}
		for _, f := range filters {
			writes = append(writes, f.OutputTopic())
		}
		mirrorUsers = append(mirrorUsers, sec.user(user, access.FilterGrants(stream.AlertsTopic, stream.SchemasTopic,
			writes, group, stream.FilterTransactionalID(group), stream.OffsetsTopic)))
		hubUsers = append(hubUsers, sec.user(user, access.TimingWriterGrants(stream.TimingTopic)))
	}

	switch g.Mode {
	case ModeIsolated:
		for _, f := range g.Filters {
			group := stream.FilterGroup(g.Name + "-" + f.Name)
			process(service{
				name:    FilterService(g.Name, f.Name),
				image:   g.Image,
				command: []string{WorkloadsBinary},
				args: append([]string{"filter", "--bootstrap", mirror, "--timing-bootstrap", hub,
					"--name", f.Name, "--expr", f.Expression,
					"--max-per-visit", itoa(f.MaxPerVisit), "--output", f.OutputTopic(),
					"--group", group}, append(f.costLimitArgs(), g.visitQuietArgs()...)...),
				labels:      labels(owner, ComponentFilter, LabelMirror, g.Mirror, LabelFilter, f.Name),
				constraints: place,
				network:     g.Network,
				resources:   g.FilterResources,
			}, FilterUser(g.Name, f.Name), f.Name, group, []Filter{f})
		}
	case ModeShared:
		yml, err := filtersYAML(g.Filters)
		if err != nil {
			return nil, err
		}
		name := SharedFilterService(g.Name)
		cfg := newConfig(name, yml, SharedFiltersFile)
		group := stream.SharedFiltersGroup(g.Name)
		process(service{
			name:    name,
			image:   g.Image,
			command: []string{WorkloadsBinary},
			args: append([]string{"filter", "--bootstrap", mirror, "--timing-bootstrap", hub,
				"--name", g.Name, "--filters", cfg.Target,
				"--group", group}, g.visitQuietArgs()...),
			labels:      labels(owner, ComponentFilters, LabelMirror, g.Mirror),
			constraints: place,
			network:     g.Network,
			configs:     []Config{cfg},
			resources:   g.FilterResources,
		}, SharedFiltersUser(g.Name), g.Name, group, g.Filters)
	default:
		return nil, fmt.Errorf("filter group mode %q: want %q or %q", g.Mode, ModeIsolated, ModeShared)
	}

	for _, f := range g.Filters {
		if sec != nil {
			for _, reader := range append([]string{ReaderUser(g.Name, f.Name)}, namedReaders(g.Name, f)...) {
				mirrorUsers = append(mirrorUsers, sec.user(reader, access.ReaderGrants(f.OutputTopic(), stream.SchemasTopic, reader)))
			}
		}
		if f.NoConsumer {
			continue
		}
		name, group := "consumer-"+f.Name, stream.ConsumerGroup(g.Name+"-"+f.Name)
		svc := service{
			name:    ConsumerService(g.Name, f.Name),
			image:   g.Image,
			command: []string{WorkloadsBinary},
			args: []string{"consume", "--bootstrap", mirror, "--timing-bootstrap", hub,
				"--topic", f.OutputTopic(), "--name", name, "--group", group, "--out", "-"},
			labels:      labels(owner, ComponentConsumer, LabelMirror, g.Mirror, LabelFilter, f.Name),
			constraints: NodeConstraints(RoleConsumer, f.ConsumerNode),
			network:     g.Network,
			resources:   g.ConsumerResources,
		}
		user := ConsumerUser(g.Name, f.Name)
		sec.secureClient(&svc, user)
		out = append(out, svc.build())
		if sec != nil {
			mirrorUsers = append(mirrorUsers, sec.user(user, access.ConsumerGrants(f.OutputTopic(), group)))
			hubUsers = append(hubUsers, sec.user(user, access.TimingWriterGrants(stream.TimingTopic)))
		}
	}
	if sec != nil {
		plan := access.Plan{Owner: groupUsers(g.Name), Clusters: []access.ClusterPlan{
			cluster(mirror, mirrorUsers...), cluster(hub, hubUsers...),
		}}
		out = append(out, sec.accessJob(FilterGroupAccessService(g.Name), g.Image, g.Network, owner, plan, g.MirrorID))
	}
	return out, nil
}

// namedReaders are the users of a filter's named readers.
func namedReaders(group string, f Filter) []string {
	var out []string
	for _, name := range f.Readers {
		out = append(out, NamedReaderUser(group, f.Name, name))
	}
	return out
}

// FilterGroupRemovalSpecs are what a secured filter group leaves while it
// is being removed: its access job with an empty plan, which removes its
// users and their ACLs on the hub and, unless mirrorGone (its users went
// with the mirror's broker), on its mirror. Nil for a group without
// security.
func FilterGroupRemovalSpecs(g FilterGroup, mirrorGone bool) []Desired {
	if g.Security == nil {
		return nil
	}
	plan := access.Plan{Owner: groupUsers(g.Name), Clusters: []access.ClusterPlan{cluster(Bootstrap(HubService))}}
	if !mirrorGone {
		plan.Clusters = append(plan.Clusters, cluster(Bootstrap(MirrorKafkaService(g.Mirror))))
	}
	return []Desired{g.Security.accessJob(FilterGroupAccessService(g.Name), g.Image, g.Network, FilterGroupOwner(g.Name), plan)}
}

// filtersYAML renders the --filters file of a shared group, the
// filter.File that filter.LoadSpecs reads.
func filtersYAML(filters []Filter) ([]byte, error) {
	var doc filter.File
	for _, f := range filters {
		doc.Filters = append(doc.Filters, f.Spec())
	}
	return doc.Marshal() // yaml.Marshal, unless it would not read back
}

// GroupService is a service FilterGroupSpecs gives a filter group, with
// the filter whose name is part of its name (Index -1: the group's name
// alone).
type GroupService struct {
	Name   string
	Index  int
	Filter string
}

// GroupServices names the filter processes and consumers FilterGroupSpecs
// gives the group (Name, Mode and Filters are read). Their names join the
// group's and the filter's with dashes, which both may hold, so they may
// equal another group's: group "a" with filter "b-c" and group "a-b" with
// filter "c" both give "mb-a-b-c". Services of one name cannot both run
// (and their Kafka consumer groups would be one), so swarmctl refuses a
// name another owner holds. The access job's name cannot clash ("mb--").
func GroupServices(g FilterGroup) []GroupService {
	var out []GroupService
	if g.Mode == ModeShared {
		out = append(out, GroupService{Name: SharedFilterService(g.Name), Index: -1})
	}
	for i, f := range g.Filters {
		if g.Mode != ModeShared {
			out = append(out, GroupService{Name: FilterService(g.Name, f.Name), Index: i, Filter: f.Name})
		}
		if !f.NoConsumer {
			out = append(out, GroupService{Name: ConsumerService(g.Name, f.Name), Index: i, Filter: f.Name})
		}
	}
	return out
}
