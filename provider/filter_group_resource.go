package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

type filterGroupModel struct {
	componentModel
	Mirror           types.String  `tfsdk:"mirror"`
	Mode             types.String  `tfsdk:"mode"`
	WorkloadsImage   types.String  `tfsdk:"workloads_image"`
	Filters          []filterModel `tfsdk:"filters"`
	Resources        types.Object  `tfsdk:"resources"`
	OutputTopics     types.Map     `tfsdk:"output_topics"`
	KafkaCredentials types.String  `tfsdk:"kafka_credentials"`
	Readers          types.Map     `tfsdk:"readers"`
	VisitQuietTime   types.String  `tfsdk:"visit_quiet_time"`
}

// readerModel is one filter's connection details for its owner outside
// the swarm (readers).
type readerModel struct {
	Bootstrap     types.String `tfsdk:"bootstrap"`
	Topic         types.String `tfsdk:"topic"`
	Username      types.String `tfsdk:"username"`
	Password      types.String `tfsdk:"password"`
	CACertificate types.String `tfsdk:"ca_certificate"`
	Properties    types.String `tfsdk:"properties"`
}

var readerType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"bootstrap": types.StringType, "topic": types.StringType, "username": types.StringType,
	"password": types.StringType, "ca_certificate": types.StringType, "properties": types.StringType,
}}

func (m *filterGroupModel) owner() string { return swarmspec.FilterGroupOwner(m.Name.ValueString()) }

// outputTopics is the output topic of every filter, by name; ok is false
// while a name or output is unknown.
func (m filterGroupModel) outputTopics() (topics map[string]string, ok bool) {
	topics = map[string]string{}
	for _, f := range m.Filters {
		if f.Name.IsUnknown() || f.Output.IsUnknown() {
			return nil, false
		}
		topics[f.Name.ValueString()] = f.spec().OutputTopic()
	}
	return topics, true
}

type filterModel struct {
	Name         types.String `tfsdk:"name"`
	Expression   types.String `tfsdk:"expression"`
	MaxPerVisit  types.Int64  `tfsdk:"max_per_visit"`
	CostLimit    types.Int64  `tfsdk:"cost_limit"`
	TimeBudget   types.String `tfsdk:"time_budget"`
	Output       types.String `tfsdk:"output"`
	Consumer     types.Bool   `tfsdk:"consumer"`
	ConsumerNode types.Int64  `tfsdk:"consumer_node"`
	Readers      types.List   `tfsdk:"readers"`
}

func (f filterModel) spec() swarmspec.Filter {
	node := -1
	if !f.ConsumerNode.IsNull() {
		node = int(f.ConsumerNode.ValueInt64())
	}
	var readers []string
	f.Readers.ElementsAs(context.Background(), &readers, false)
	return swarmspec.Filter{
		Name: f.Name.ValueString(), Expression: f.Expression.ValueString(),
		MaxPerVisit: int(f.MaxPerVisit.ValueInt64()), Output: f.Output.ValueString(),
		CostLimit:    uint64(max(f.CostLimit.ValueInt64(), 0)),       // null (a state from before the attribute): the default
		TimeBudget:   parseDurationOr(f.TimeBudget.ValueString(), 0), // likewise; validated at plan
		ConsumerNode: node, NoConsumer: !f.Consumer.ValueBool(), Readers: readers,
	}
}

// filterGroupResource is minibroker_filter_group: CEL filters on a mirror's
// node and their consumers.
type filterGroupResource struct{ resourceBase }

func newFilterGroupResource() resource.Resource {
	return &filterGroupResource{newComponentBase("_filter_group", filterGroupSchema(context.Background()))}
}

func filterGroupSchema(ctx context.Context) schema.Schema {
	nameDoc := fmt.Sprintf("Group name: at most %d lower-case letters, digits and inner dashes. "+
		"Services are `mb-NAME-FILTER` and `mb-NAME-FILTER-c` (isolated) or `mb-NAME-filters` (shared). A shared group's filter "+
		"process is named after the group: its dead letters and state go to `NAME-deadletter` and `NAME-state` on the mirror, so a "+
		"shared group named like an isolated filter of another group on the mirror is refused (see `filters.name`). Service names are the "+
		"swarm's: a group whose service would take the name of another's (group `a` with filter `b-c` and group `a-b` with filter `c` "+
		"both give `mb-a-b-c`) is refused at plan, naming the attribute.", swarmspec.MaxGroupNameLen)
	attrs := componentSchema(ctx, "group", swarmspec.MaxGroupNameLen, nameDoc, map[string]schema.Attribute{
		"mirror": schema.StringAttribute{Required: true, PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			MarkdownDescription: "Name of the mirror to read from (`minibroker_mirror.X.name`); the filters run on its node."},
		"mode": schema.StringAttribute{Optional: true, Computed: true,
			Default:    stringdefault.StaticString(swarmspec.ModeIsolated),
			Validators: []validator.String{stringvalidator.OneOf(swarmspec.ModeIsolated, swarmspec.ModeShared)},
			MarkdownDescription: "`isolated` (the default): one container per filter, as in the original design. `shared`: all filters " +
				"in one container that reads and decodes the stream once (far less CPU and network per filter)."},
		"workloads_image": schema.StringAttribute{Optional: true, Computed: true,
			MarkdownDescription: "Image of filters and consumers. Default: the provider's `workloads_image`."},
		"filters": schema.ListNestedAttribute{Required: true,
			MarkdownDescription: "The filters, each with its output topic on the mirror and, by default, a consumer. " +
				"Adding, removing or changing filters updates the group in place.",
			Validators: []validator.List{listvalidator.SizeAtLeast(1)},
			NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
				"name": schema.StringAttribute{Required: true,
					MarkdownDescription: fmt.Sprintf("Filter name: letters, digits, `.`, `_`, `-`, at most %d; also the output topic by default. "+
						"An isolated filter's process is named after the filter, a shared group's after the group, and a process keeps its "+
						"dead letters and its exactly-once state in `PROCESS-deadletter` and `PROCESS-state` on the mirror: so two groups on "+
						"one mirror may not both have a process of one name (or of names differing only in `.` and `_`), which would resume "+
						"from each other's state. Such a group is refused as for `output`, naming the other group; rename one of them.",
						swarmspec.MaxFilterNameLen)},
				"expression": schema.StringAttribute{Required: true,
					MarkdownDescription: "Boolean CEL expression over `alert`, e.g. `alert.diaSource.snr > 5.0`."},
				"max_per_visit": schema.Int64Attribute{Optional: true, Computed: true,
					Default:    int64default.StaticInt64(filter.DefaultMaxPerVisit),
					Validators: []validator.Int64{int64validator.AtLeast(-1)},
					MarkdownDescription: fmt.Sprintf("Most alerts written per visit; -1 for no cap. Default %d, as the original design; "+
						"0 also means the default, as in a filters file and for `minibroker filter --max-per-visit`.", filter.DefaultMaxPerVisit)},
				"cost_limit": schema.Int64Attribute{Optional: true, Computed: true,
					Default:    int64default.StaticInt64(int64(filter.DefaultCostLimit)),
					Validators: []validator.Int64{int64validator.Between(1, int64(filter.MaxCostLimit))},
					MarkdownDescription: fmt.Sprintf("CEL runtime cost limit of one evaluation of the expression: one that reaches it fails "+
						"(the alert is not selected) and is counted as a `cost_limit` error. CEL counts about one unit per field access, comparison or call; "+
						"the default filter costs 8. Default %d; at most %d (ten times the default: an evaluation that reaches it takes about "+
						"a quarter of a second of CPU).", filter.DefaultCostLimit, filter.MaxCostLimit)},
				"time_budget": schema.StringAttribute{Optional: true, Computed: true,
					Default:    stringdefault.StaticString(filter.DefaultTimeBudget.String()),
					Validators: []validator.String{timeBudgetValidator()},
					MarkdownDescription: fmt.Sprintf("Evaluation time the filter may spend on one visit, a Go duration from %v to %v: "+
						"past it the filter is quarantined for the rest of the visit (its alerts are not evaluated, so the other filters of "+
						"a shared process keep their lag), and over it in two visits running, for the next %d visits too. Each quarantine "+
						"is logged, sent to the timing topic and named in `minibroker report`. Default `%v`: a usual filter spends "+
						"well under 0.1 s on a visit of 10,000 alerts.", filter.MinTimeBudget, filter.MaxTimeBudget, filter.QuarantineVisits,
						filter.DefaultTimeBudget)},
				"output": schema.StringAttribute{Optional: true,
					MarkdownDescription: "Output topic on the mirror. Default: the filter's name. Each filter of the group needs its own " +
						"(Kafka takes `.` and `_` as the same), and topics the mini-broker keeps for itself are refused at plan: `" +
						stream.AlertsTopic + "`, `" + stream.SchemasTopic + "`, `" + stream.TimingTopic + "`, `" + stream.IngestStateTopic +
						"`, `heartbeats`, `__*`, `*-deadletter`, `*-state` and `*.internal`. Nor may two groups on one mirror write one topic " +
						"(each group's users would get the other's alerts): an output that another group on the mirror writes is refused, " +
						"naming that group, at plan when the swarm answers, else at apply before anything changes; so is one of two groups " +
						"created in the same apply (the second to claim the topic). To move an output to another group, or to rename a group, " +
						"give the topic up in an apply of its own first (remove the filter, or destroy the group), then add it."},
				"consumer": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
					MarkdownDescription: "Run a consumer of the output topic on a consumer node; it logs one JSON line per alert (`docker service logs`). Default true."},
				"consumer_node": schema.Int64Attribute{Optional: true,
					Validators:          []validator.Int64{int64validator.AtLeast(0)},
					MarkdownDescription: "Pin the consumer to this consumer node (0-based). Default: Swarm spreads consumers."},
				"readers": schema.ListAttribute{Optional: true, ElementType: types.StringType,
					Validators: []validator.List{listvalidator.UniqueValues(), listvalidator.ValueStringsAre(
						stringvalidator.RegexMatches(readerName, "1 to 20 lower-case letters, digits or inner dashes"))},
					MarkdownDescription: "Named readers of the filter's stream outside the swarm, besides its default one, e.g. `[\"alice\", \"laptop\"]`: " +
						"each gets its own user and password in `readers` under `FILTER/NAME`. Removing a name removes its user."},
			}},
		},
		"visit_quiet_time": schema.StringAttribute{Optional: true, Computed: true,
			Default:    stringdefault.StaticString(stream.DefaultVisitQuiet.String()),
			Validators: []validator.String{visitQuietValidator()},
			MarkdownDescription: "How long a filter waits after the last alert of a visit whose alerts carry no `mb-*` headers (a " +
				"swarm fed from `upstream`: the producer's headers say when a visit is complete, an upstream's do not) before " +
				"it closes the visit, if every partition has not already delivered a later visit's alert, a Go duration up to `1h`. Default `" + stream.DefaultVisitQuiet.String() + "`. Changing it " +
				"restarts the filter processes."},
		"resources": resourcesSchema("",
			resourceRole{name: "filter", what: "each filter (isolated) or the group's one filter process (shared)", def: swarmspec.FilterResources},
			resourceRole{name: "consumer", what: "each consumer", def: swarmspec.ConsumerResources}),
		"output_topics": schema.MapAttribute{Computed: true, ElementType: types.StringType,
			MarkdownDescription: "Output topic of every filter, by filter name."},
		"kafka_credentials": kafkaCredentialsAttribute(),
		"readers": schema.MapNestedAttribute{Computed: true, Sensitive: true,
			MarkdownDescription: "With `kafka_credentials`, by filter name (and `FILTER/NAME` for a filter's named `readers`): how the filter's owner reads its stream from outside the swarm, " +
				"over the mirror's external listener (SASL_SSL). The user may read only that topic, in consumer groups named after it " +
				"(`username` or `username.*`). Sensitive (it holds the password). Write `ca_certificate` to `" + CAFileName + "` and give " +
				"`properties` to `minibroker consume --config`, or to any librdkafka client. Empty without an external listener.",
			PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
				"bootstrap":      schema.StringAttribute{Computed: true, MarkdownDescription: "The mirror's external bootstrap address."},
				"topic":          schema.StringAttribute{Computed: true, MarkdownDescription: "The filter's output topic."},
				"username":       schema.StringAttribute{Computed: true, MarkdownDescription: "SCRAM-SHA-512 user name."},
				"password":       schema.StringAttribute{Computed: true, Sensitive: true, MarkdownDescription: "Its password."},
				"ca_certificate": schema.StringAttribute{Computed: true, MarkdownDescription: "PEM certificate of the CA to trust."},
				"properties": schema.StringAttribute{Computed: true, Sensitive: true,
					MarkdownDescription: "librdkafka properties: bootstrap, SASL_SSL, user, password, `ssl.ca.location=" + CAFileName + "`, `group.id`."},
			}}},
	})
	return schema.Schema{
		MarkdownDescription: "Filters on a mirror's node and one consumer per filter on the consumer nodes. Each " +
			"filter is a CEL expression over `alert` (the decoded Avro alert) with a per-visit cap; it reads the " +
			"full stream from the co-located mirror and writes the alerts it selects to its output topic there. " +
			"Expressions are compiled at plan time. Changing filters updates the services in place. Each topic on a mirror " +
			"belongs to one group: an output another group on the mirror writes is refused (see `filters.output`), and so is a " +
			"filter process named like another group's, whose dead-letter and state topics it would share (see `filters.name`).\n\n" +
			"Default timeouts: create 10m, update 10m, delete 5m, read 1m.",
		Attributes: attrs,
	}
}

// maxVisitQuiet bounds visit_quiet_time. The wait matters only for the
// last visit before a pause in the stream (the first alert of a later
// visit closes a visit at once); holding that visit open, its completion
// event unsent, for longer than an hour would be a slip, not a choice.
const maxVisitQuiet = time.Hour

// visitQuietValidator accepts a duration above 0 and at most maxVisitQuiet.
func visitQuietValidator() stringCheck {
	return stringCheck{"a duration above 0 and at most 1h, such as 30s", "Invalid visit quiet time", func(s string) error {
		if d, err := time.ParseDuration(s); err != nil || d <= 0 || d > maxVisitQuiet {
			return fmt.Errorf("want a duration above 0 and at most %s, such as %s or 1m30s, got %q", maxVisitQuiet, stream.DefaultVisitQuiet, s)
		}
		return nil
	}}
}

func timeBudgetValidator() stringCheck {
	return stringCheck{fmt.Sprintf("a duration from %v to %v", filter.MinTimeBudget, filter.MaxTimeBudget), "Invalid time budget", func(s string) error {
		if d, err := time.ParseDuration(s); err != nil || d < filter.MinTimeBudget || d > filter.MaxTimeBudget {
			return fmt.Errorf("want a duration from %v to %v of evaluation time per visit, such as %v, got %q",
				filter.MinTimeBudget, filter.MaxTimeBudget, filter.DefaultTimeBudget, s)
		}
		return nil
	}}
}

// parseDurationOr parses a duration the schema validated; def if it is
// empty (null) or does not parse.
func parseDurationOr(s string, def time.Duration) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		return def
	}
	return d
}

// readerName is a named reader's name, part of its Kafka user name.
var readerName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$`)

// ValidateConfig compiles every expression, so a bad one fails the plan
// with the position in the expression.
func (r *filterGroupResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	if !fullyKnown(ctx, req.Config, path.Root("filters"), types.ListType{}) {
		return // checked again at plan time, once known
	}
	var m filterGroupModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	names, slugs := map[string]int{}, map[string]int{}
	for i, f := range m.Filters {
		p := path.Root("filters").AtListIndex(i)
		if !f.Name.IsUnknown() && !f.Name.IsNull() {
			name := f.Name.ValueString()
			switch {
			case len(name) > swarmspec.MaxFilterNameLen || !filter.ValidName(name):
				resp.Diagnostics.AddAttributeError(p.AtName("name"), "Invalid filter name",
					fmt.Sprintf("%q: want 1 to %d letters, digits, '.', '_' or '-'", name, swarmspec.MaxFilterNameLen))
			case names[name] > 0:
				resp.Diagnostics.AddAttributeError(p.AtName("name"), "Duplicate filter name", fmt.Sprintf("%q is also filters[%d]", name, names[name]-1))
			case slugs[swarmspec.FilterSlug(name)] > 0:
				resp.Diagnostics.AddAttributeError(p.AtName("name"), "Filter names collide",
					fmt.Sprintf("%q and filters[%d] give the same service name %q", name, slugs[swarmspec.FilterSlug(name)]-1, swarmspec.FilterSlug(name)))
			}
			names[name], slugs[swarmspec.FilterSlug(name)] = i+1, i+1
		}
		if f.Expression.IsUnknown() || f.Expression.IsNull() {
			continue
		}
		if _, err := filter.Compile(f.Expression.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(p.AtName("expression"), "Invalid CEL expression",
				describeCompileError(i, f.Name.ValueString(), err))
		}
	}
	validateFilterOutputs(m.Filters, &resp.Diagnostics)
	if !resp.Diagnostics.HasError() {
		validateServiceNames(&m, &resp.Diagnostics)
	}
}

// validateServiceNames refuses filters whose services would take one name
// within the group: filter "x"'s consumer and isolated filter "x-c" are
// both mb-GROUP-x-c. (Names other groups hold are checked at plan,
// checkAtPlan.)
func validateServiceNames(m *filterGroupModel, diags *diag.Diagnostics) {
	if m.Name.IsUnknown() || m.Mode.IsUnknown() {
		return
	}
	for _, f := range m.Filters {
		if f.Name.IsUnknown() || f.Consumer.IsUnknown() {
			return
		}
	}
	// In the configuration, a default not written is null.
	g := swarmspec.FilterGroup{Name: m.Name.ValueString(), Mode: m.Mode.ValueString()}
	if m.Mode.IsNull() {
		g.Mode = swarmspec.ModeIsolated
	}
	for _, f := range m.Filters {
		g.Filters = append(g.Filters, swarmspec.Filter{Name: f.Name.ValueString(), NoConsumer: !f.Consumer.IsNull() && !f.Consumer.ValueBool()})
	}
	first := map[string]swarmspec.GroupService{}
	for _, s := range swarmspec.GroupServices(g) {
		o, taken := first[s.Name]
		if !taken {
			first[s.Name] = s
			continue
		}
		diags.AddAttributeError(path.Root("filters").AtListIndex(s.Index).AtName("name"), "Filter names collide",
			fmt.Sprintf("filters[%d] (%s) and filters[%d] (%s) would both have a service named %q: a consumer is named "+
				"after its filter with \"-c\" added (`mb-GROUP-FILTER-c`); rename one of them", o.Index, o.Filter, s.Index, s.Filter, s.Name))
	}
}

// describeCompileError names the filter and the position in its expression;
// Terraform shows the resource, not always the nested attribute.
func describeCompileError(i int, name string, err error) string {
	var ce *filter.CompileError
	if !errors.As(err, &ce) {
		return fmt.Sprintf("filters[%d] (%s): %v", i, name, err)
	}
	return fmt.Sprintf("filters[%d].expression (filter %q), line %d column %d: %s\n\n%s",
		i, name, ce.Line, ce.Column, ce.Message, ce.Snippet)
}

// desired returns the group's services on the mirror's node (mirrorIndex),
// the resource's settings riding on every service as a label, for import.
func (r *filterGroupResource) desired(ctx context.Context, sw *swarmctl.Swarm, m *filterGroupModel, mirror swarmctl.MirrorInfo) ([]swarmspec.Desired, error) {
	g, err := r.group(ctx, sw, m, mirror)
	if err != nil {
		return nil, err
	}
	out, err := swarmspec.FilterGroupSpecs(g)
	if err != nil {
		return nil, err
	}
	settings, err := r.settings.encode(ctx, m)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].SetSettings(settings)
	}
	return out, nil
}

// group is the group's spec with the swarm's Kafka security; it records
// the readers' connection details in m.Readers.
func (r *filterGroupResource) group(ctx context.Context, sw *swarmctl.Swarm, m *filterGroupModel, mirror swarmctl.MirrorInfo) (swarmspec.FilterGroup, error) {
	g := swarmspec.FilterGroup{
		Name: m.Name.ValueString(), Mode: m.Mode.ValueString(), Image: m.WorkloadsImage.ValueString(),
		Network: sw.Network, Mirror: m.Mirror.ValueString(), MirrorNodeIndex: mirror.NodeIndex, MirrorID: mirror.ServiceID,
		FilterResources:   roleResources(ctx, m.Resources, "filter"),
		ConsumerResources: roleResources(ctx, m.Resources, "consumer"),
	}
	// Null only in a state from before the attribute, or when an import
	// reads a label without it: the default then, as validated.
	if d, err := time.ParseDuration(m.VisitQuietTime.ValueString()); err == nil {
		g.VisitQuiet = d
	}
	for _, f := range m.Filters {
		g.Filters = append(g.Filters, f.spec())
	}
	sec, err := componentSecurity(ctx, sw, m.KafkaCredentials)
	if err != nil {
		return g, err
	}
	g.Security = sec
	readers := map[string]readerModel{}
	if sec != nil && mirror.External != "" {
		for _, f := range g.Filters {
			users := map[string]string{f.Name: swarmspec.ReaderUser(g.Name, f.Name)}
			for _, name := range f.Readers {
				users[f.Name+"/"+name] = swarmspec.NamedReaderUser(g.Name, f.Name, name)
			}
			for key, user := range users {
				pw := sec.Password(user)
				readers[key] = readerModel{
					Bootstrap: types.StringValue(mirror.External), Topic: types.StringValue(f.OutputTopic()),
					Username: types.StringValue(user), Password: types.StringValue(pw),
					CACertificate: types.StringValue(sec.CA.CertPEM),
					Properties:    types.StringValue(clientProperties(mirror.External, user, pw, CAFileName)),
				}
			}
		}
	}
	m.Readers, _ = types.MapValueFrom(ctx, readerType, readers)
	return g, nil
}

func (r *filterGroupResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.pd == nil {
		return
	}
	if !fullyKnown(ctx, req.Plan, path.Root("filters"), types.ListType{}) {
		resp.Diagnostics.Append(defaultImage(ctx, req.Config, &resp.Plan, "workloads_image", r.pd.workloadsImage)...)
		return
	}
	var plan, config filterGroupModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if config.WorkloadsImage.IsNull() {
		plan.WorkloadsImage = types.StringValue(r.pd.workloadsImage)
	}
	plan.ID = plan.Name
	if topics, ok := plan.outputTopics(); ok {
		plan.OutputTopics = stringMap(topics)
	}
	var knownKey string
	var prior *filterGroupModel
	if !req.State.Raw.IsNull() {
		var state filterGroupModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		// kafka_credentials set or unset adds or removes the access job.
		if hasDrift(state.Services) || !sameFilterSet(plan.Filters, state.Filters) || plan.Mode.ValueString() != state.Mode.ValueString() ||
			plan.KafkaCredentials.IsNull() != state.KafkaCredentials.IsNull() {
			plan.Services = types.MapUnknown(types.StringType)
		}
		// The readers follow the filters, their outputs and named readers,
		// and the credentials (the mirror's address is read back on
		// refresh).
		if readersKey(plan.Filters) != readersKey(state.Filters) || !plan.KafkaCredentials.Equal(state.KafkaCredentials) {
			plan.Readers = types.MapUnknown(readerType)
		}
		knownKey = state.ManagerHostKey.ValueString()
		prior = &state
	}
	if topics, names := topicsChange(&plan, prior), namesChange(&plan, prior); topics || names {
		r.checkAtPlan(ctx, &plan, knownKey, topics, names, &resp.Diagnostics)
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// planCheckTimeout bounds the plan's look at the swarm (checkAtPlan).
const planCheckTimeout = 15 * time.Second

// checkAtPlan refuses at plan, at the attribute, a group that would write
// a topic another filter group on the mirror writes (an output, or the
// dead-letter and state topics of a filter process of the same name;
// swarmctl.CheckTopics; when topics), or whose services would take a name
// another service holds (swarmctl.CheckNames; when names), as apply would.
// (A plan that destroys the group holding the name or topic, and creates
// this one, is refused too: the check sees the swarm as it is, so that
// takes two applies.) Only when the swarm, its
// manager, the mirror and the mode are known and the swarm answers within
// planCheckTimeout: otherwise it says nothing, and apply checks. (A
// renamed group is refused for the topics of the group of its old name:
// Terraform plans a replacement's create with no prior state, so the plan
// cannot tell it from a new group.)
func (r *filterGroupResource) checkAtPlan(ctx context.Context, m *filterGroupModel, knownKey string, topics, names bool, diags *diag.Diagnostics) {
	for _, v := range []types.String{m.SwarmID, m.ManagerAddress, m.Mirror, m.Name, m.Mode} {
		if v.IsUnknown() || v.IsNull() || v.ValueString() == "" {
			return
		}
	}
	if r.pd.ctl == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, planCheckTimeout)
	defer cancel()
	sw, err := r.pd.ctl.OpenSwarm(ctx, m.SwarmID.ValueString(), m.ManagerAddress.ValueString(), knownKey)
	if err != nil {
		tflog.Debug(ctx, "topics and service names not checked at plan; apply checks them", map[string]any{"reason": err.Error()})
		return
	}
	g := topicGroup(m)
	if topics {
		checkTopicsAtPlan(ctx, sw, g, diags)
	}
	if names {
		checkNamesAtPlan(ctx, sw, g, diags)
	}
}

// checkTopicsAtPlan is checkAtPlan's topics.
func checkTopicsAtPlan(ctx context.Context, sw *swarmctl.Swarm, g swarmspec.FilterGroup, diags *diag.Diagnostics) {
	err := sw.CheckTopics(ctx, g)
	var clash *swarmctl.TopicClashError
	switch {
	case errors.As(err, &clash):
		for _, c := range clash.Clashes {
			at := path.Root(c.Attribute) // the group's name: its shared process's
			if c.Index >= 0 {
				at = path.Root("filters").AtListIndex(c.Index).AtName(c.Attribute)
			}
			diags.AddAttributeError(at, clashSummary(c), c.Error())
		}
	case err != nil:
		tflog.Debug(ctx, "topics not checked against the mirror's other groups at plan; apply checks them", map[string]any{"reason": err.Error()})
	}
}

// checkNamesAtPlan is checkAtPlan's service names.
func checkNamesAtPlan(ctx context.Context, sw *swarmctl.Swarm, g swarmspec.FilterGroup, diags *diag.Diagnostics) {
	services := swarmspec.GroupServices(g)
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = s.Name
	}
	err := sw.CheckNames(ctx, swarmspec.FilterGroupOwner(g.Name), names)
	var taken *swarmctl.NameClashError
	if !errors.As(err, &taken) {
		if err != nil {
			tflog.Debug(ctx, "service names not checked at plan; apply checks them", map[string]any{"reason": err.Error()})
		}
		return
	}
	for _, c := range taken.Clashes {
		i := slices.IndexFunc(services, func(s swarmspec.GroupService) bool { return s.Name == c.Service })
		at, whose := path.Root("name"), fmt.Sprintf("filter group %q", g.Name)
		if services[i].Index >= 0 {
			at = path.Root("filters").AtListIndex(services[i].Index).AtName("name")
			whose += fmt.Sprintf(", filter %q", services[i].Filter)
		}
		diags.AddAttributeError(at, "Service name taken on the swarm", fmt.Sprintf("%s: its service %q would take the name of "+
			"a service of %s. Service names join the group's name and the filter's with dashes (`mb-GROUP-FILTER`, "+
			"`mb-GROUP-FILTER-c`, `mb-GROUP-filters`), so two groups can ask for one; rename the group or the filter",
			whose, c.Service, c.Holder()))
	}
}

// clashSummary is the diagnostic's summary of a clash.
func clashSummary(c swarmspec.TopicClash) string {
	switch {
	case c.SameProcessName():
		return "Filter process name taken on the mirror"
	case c.Mine.Kind == swarmspec.TopicOutput && c.Other.Kind == swarmspec.TopicOutput:
		return "Output topic taken on the mirror"
	}
	return "Topic taken on the mirror"
}

// topicsChange reports whether the group is created (prior nil) or the
// topics it writes may change (its filters' outputs or names, its mode,
// its mirror): then they are checked against the other groups on its
// mirror, at plan and at apply.
func topicsChange(plan, prior *filterGroupModel) bool {
	if prior == nil {
		return true
	}
	a, _ := plan.outputTopics()
	b, _ := prior.outputTopics()
	return !maps.Equal(a, b) || plan.Mirror.ValueString() != prior.Mirror.ValueString() ||
		plan.Mode.ValueString() != prior.Mode.ValueString()
}

// namesChange reports whether the group is created (prior nil) or its
// services' names may change (its filters' names or consumers, its mode):
// then they are checked at plan against the swarm's other services (every
// apply checks them, swarmctl.CheckNames).
func namesChange(plan, prior *filterGroupModel) bool {
	return prior == nil || plan.Mode.ValueString() != prior.Mode.ValueString() || !sameFilterSet(plan.Filters, prior.Filters)
}

// topicGroup is what of the group names the topics it writes
// (swarmspec.GroupTopics): name, mode, mirror and filters.
func topicGroup(m *filterGroupModel) swarmspec.FilterGroup {
	g := swarmspec.FilterGroup{Name: m.Name.ValueString(), Mode: m.Mode.ValueString(), Mirror: m.Mirror.ValueString()}
	for _, f := range m.Filters {
		g.Filters = append(g.Filters, f.spec())
	}
	return g
}

// readersKey is what of the filters the readers attribute follows.
func readersKey(fs []filterModel) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, f.Name.ValueString()+"|"+f.spec().OutputTopic()+"|"+f.Readers.String())
	}
	return strings.Join(parts, ",")
}

// sameFilterSet reports whether both lists name the same filters with the
// same consumer choice, i.e. whether the set of services stays the same.
func sameFilterSet(a, b []filterModel) bool {
	key := func(fs []filterModel) string {
		var parts []string
		for _, f := range fs {
			parts = append(parts, f.Name.ValueString()+fmt.Sprint(f.Consumer.ValueBool()))
		}
		return strings.Join(parts, ",")
	}
	return key(a) == key(b)
}

func (r *filterGroupResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan filterGroupModel
	release := func() {}
	defer func() { release() }()
	r.createComponent(ctx, "filter group", req, resp, &plan, func(ctx context.Context, sw *swarmctl.Swarm) (d []swarmspec.Desired, err error) {
		d, release, err = r.placeClaimed(ctx, sw, &plan, nil)
		return d, err
	})
}

func (r *filterGroupResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state filterGroupModel
	if resp.Diagnostics.Append(req.State.Get(ctx, &state)...); resp.Diagnostics.HasError() {
		return
	}
	release := func() {}
	defer func() { release() }()
	r.updateComponent(ctx, "filter group", req, resp, &plan, func(ctx context.Context, sw *swarmctl.Swarm) (d []swarmspec.Desired, err error) {
		d, release, err = r.placeClaimed(ctx, sw, &plan, &state)
		return d, err
	})
}

// placeClaimed is place, after which a group being created or whose
// topics may change (topicsChange) claims the topics it writes on the
// mirror (swarmctl.ClaimTopics): refused, before anything changes, when
// another group there writes one of them or is claiming it in this apply.
// The caller calls release once the services are deployed (or failed).
func (r *filterGroupResource) placeClaimed(ctx context.Context, sw *swarmctl.Swarm, m, prior *filterGroupModel) (
	d []swarmspec.Desired, release func(), err error) {
	release = func() {}
	if d, err = r.place(ctx, sw, m); err != nil || !topicsChange(m, prior) {
		return d, release, err
	}
	release, err = sw.ClaimTopics(ctx, topicGroup(m))
	return d, release, err
}

// place finds the mirror's node, checks the consumer nodes the filters pin
// and returns the group's services.
func (r *filterGroupResource) place(ctx context.Context, sw *swarmctl.Swarm, m *filterGroupModel) ([]swarmspec.Desired, error) {
	mirror, err := sw.Mirror(ctx, m.Mirror.ValueString())
	if err != nil {
		return nil, err
	}
	for _, f := range m.Filters {
		if !f.ConsumerNode.IsNull() {
			if err := sw.CheckNode(ctx, swarmspec.RoleConsumer, int(f.ConsumerNode.ValueInt64())); err != nil {
				return nil, fmt.Errorf("filter %s: %w", f.Name.ValueString(), err)
			}
		}
	}
	return r.desired(ctx, sw, m, mirror)
}

func (r *filterGroupResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state filterGroupModel
	r.readComponent(ctx, "filter group", req, resp, &state, func(ctx context.Context, sw *swarmctl.Swarm) ([]swarmspec.Desired, error) {
		mirror, err := sw.Mirror(ctx, state.Mirror.ValueString())
		if errors.Is(err, swarmctl.ErrNoMirror) {
			return nil, errComponentGone // the mirror is gone, and with it the group's purpose
		}
		if err != nil {
			return nil, err
		}
		if topics, ok := state.outputTopics(); ok {
			state.OutputTopics = stringMap(topics)
		}
		return r.desired(ctx, sw, &state, mirror)
	})
}

func (r *filterGroupResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state filterGroupModel
	r.deleteComponent(ctx, "filter group", req, resp, &state, func(ctx context.Context, sw *swarmctl.Swarm) ([]swarmspec.Desired, error) {
		mirror, err := sw.Mirror(ctx, state.Mirror.ValueString())
		gone := errors.Is(err, swarmctl.ErrNoMirror) // its users there went with the mirror; those on the hub stay to remove
		if err != nil && !gone {
			return nil, err
		}
		g, err := r.group(ctx, sw, &state, mirror)
		if err != nil {
			return nil, err
		}
		return swarmspec.FilterGroupRemovalSpecs(g, gone), nil
	})
}

func (r *filterGroupResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importByName(ctx, req, resp, "GROUP_NAME")
}
