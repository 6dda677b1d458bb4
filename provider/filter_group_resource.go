package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
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

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
)

var (
	_ resource.Resource                   = (*filterGroupResource)(nil)
	_ resource.ResourceWithConfigure      = (*filterGroupResource)(nil)
	_ resource.ResourceWithImportState    = (*filterGroupResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*filterGroupResource)(nil)
	_ resource.ResourceWithValidateConfig = (*filterGroupResource)(nil)
)

type filterGroupResource struct{ pd *providerData }

func newFilterGroupResource() resource.Resource { return &filterGroupResource{} }

type filterGroupModel struct {
	ID             types.String   `tfsdk:"id"`
	SwarmID        types.String   `tfsdk:"swarm_id"`
	ManagerAddress types.String   `tfsdk:"manager_address"`
	Name           types.String   `tfsdk:"name"`
	Mirror         types.String   `tfsdk:"mirror"`
	Mode           types.String   `tfsdk:"mode"`
	WorkloadsImage types.String   `tfsdk:"workloads_image"`
	Filters        []filterModel  `tfsdk:"filters"`
	OutputTopics   types.Map      `tfsdk:"output_topics"`
	Services       types.Map      `tfsdk:"services"`
	ManagerHostKey types.String   `tfsdk:"manager_host_key"`
	Timeouts       timeouts.Value `tfsdk:"timeouts"`
}

type filterModel struct {
	Name         types.String `tfsdk:"name"`
	Expression   types.String `tfsdk:"expression"`
	MaxPerVisit  types.Int64  `tfsdk:"max_per_visit"`
	Output       types.String `tfsdk:"output"`
	Consumer     types.Bool   `tfsdk:"consumer"`
	ConsumerNode types.Int64  `tfsdk:"consumer_node"`
}

func (r *filterGroupResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_filter_group"
}

func (r *filterGroupResource) Configure(_ context.Context, req resource.ConfigureRequest, _ *resource.ConfigureResponse) {
	if pd, ok := req.ProviderData.(*providerData); ok {
		r.pd = pd
	}
}

func (r *filterGroupResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Filters on a mirror's node and one consumer per filter on the consumer nodes. Each " +
			"filter is a CEL expression over `alert` (the decoded Avro alert) with a per-visit cap; it reads the " +
			"full stream from the co-located mirror and writes the alerts it selects to its output topic there. " +
			"Expressions are compiled at plan time. Changing filters updates the services in place.\n\n" +
			"Default timeouts: create 10m, update 10m, delete 5m, read 1m.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The group's name.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"swarm_id": schema.StringAttribute{Required: true, PlanModifiers: replace,
				MarkdownDescription: "Id of the swarm (`minibroker_swarm.X.id`); the manager must run this swarm. Changing it replaces the group."},
			"manager_address": schema.StringAttribute{Required: true,
				MarkdownDescription: "SSH address of the swarm's manager (`minibroker_swarm.X.manager_address`), where the Swarm API is reached."},
			"name": schema.StringAttribute{Required: true, PlanModifiers: replace,
				Validators:          []validator.String{objectNameValidator{swarmspec.MaxGroupNameLen}},
				MarkdownDescription: "Group name: at most 20 lower-case letters, digits and inner dashes. Services are `mb-NAME-FILTER` and `mb-NAME-FILTER-c` (isolated) or `mb-NAME-filters` (shared)."},
			"mirror": schema.StringAttribute{Required: true, PlanModifiers: replace,
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
						MarkdownDescription: "Filter name: letters, digits, `.`, `_`, `-`, at most 30; also the output topic by default."},
					"expression": schema.StringAttribute{Required: true,
						MarkdownDescription: "Boolean CEL expression over `alert`, e.g. `alert.diaSource.snr > 5.0`."},
					"max_per_visit": schema.Int64Attribute{Optional: true, Computed: true,
						Default:             int64default.StaticInt64(filter.DefaultMaxPerVisit),
						Validators:          []validator.Int64{int64validator.Any(int64validator.AtLeast(1), int64validator.OneOf(-1))},
						MarkdownDescription: "Most alerts written per visit; -1 for no cap. Default 20, as the original design."},
					"output": schema.StringAttribute{Optional: true,
						MarkdownDescription: "Output topic on the mirror. Default: the filter's name."},
					"consumer": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
						MarkdownDescription: "Run a consumer of the output topic on a consumer node; it logs one JSON line per alert (`docker service logs`). Default true."},
					"consumer_node": schema.Int64Attribute{Optional: true,
						Validators:          []validator.Int64{int64validator.AtLeast(0)},
						MarkdownDescription: "Pin the consumer to this consumer node (0-based). Default: Swarm spreads consumers."},
				}},
			},
			"output_topics": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Output topic of every filter, by filter name."},
			"services": schema.MapAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Service ids by service name.",
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.UseStateForUnknown()}},
			"manager_host_key": schema.StringAttribute{Computed: true,
				MarkdownDescription: "SSH host key fingerprint of the manager (kept with `trust_on_first_use`).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true, Read: true}),
		},
	}
}

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
}

func (m filterGroupModel) spec(network string, mirrorIndex int) swarmspec.FilterGroup {
	g := swarmspec.FilterGroup{
		Name: m.Name.ValueString(), Mode: m.Mode.ValueString(), Image: m.WorkloadsImage.ValueString(),
		Network: network, Mirror: m.Mirror.ValueString(), MirrorNodeIndex: mirrorIndex,
	}
	for _, f := range m.Filters {
		node := -1
		if !f.ConsumerNode.IsNull() {
			node = int(f.ConsumerNode.ValueInt64())
		}
		g.Filters = append(g.Filters, swarmspec.Filter{
			Name: f.Name.ValueString(), Expression: f.Expression.ValueString(),
			MaxPerVisit: int(f.MaxPerVisit.ValueInt64()), Output: f.Output.ValueString(),
			ConsumerNode: node, NoConsumer: !f.Consumer.ValueBool(),
		})
	}
	return g
}

func (m filterGroupModel) desired(network string, mirrorIndex int) ([]swarmspec.Desired, error) {
	out, err := swarmspec.FilterGroupSpecs(m.spec(network, mirrorIndex))
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(m.spec("", mirrorIndex))
	for i := range out {
		setSettings(&out[i], string(b))
	}
	return out, nil
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
	topics := map[string]string{}
	known := true
	for _, f := range plan.Filters {
		if f.Name.IsUnknown() || f.Output.IsUnknown() {
			known = false
			break
		}
		topics[f.Name.ValueString()] = swarmspec.Filter{Name: f.Name.ValueString(), Output: f.Output.ValueString()}.OutputTopic()
	}
	if known {
		plan.OutputTopics = stringMap(topics)
	}
	if !req.State.Raw.IsNull() {
		var state filterGroupModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if hasDrift(state.Services) || !sameFilterSet(plan.Filters, state.Filters) || plan.Mode.ValueString() != state.Mode.ValueString() {
			plan.Services = types.MapUnknown(types.StringType)
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
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
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, componentCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := r.apply(ctx, &plan, "")
	if plan.Services.IsUnknown() {
		resp.Diagnostics.AddError("Cannot create filter group", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	if err != nil {
		resp.Diagnostics.AddError("Cannot create filter group", err.Error())
	}
}

func (r *filterGroupResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state filterGroupModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Update(ctx, componentUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.apply(ctx, &plan, state.ManagerHostKey.ValueString()); err != nil {
		resp.Diagnostics.AddError("Cannot update filter group", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

func (r *filterGroupResource) apply(ctx context.Context, plan *filterGroupModel, knownKey string) error {
	sw, err := openSwarm(ctx, r.pd, plan.SwarmID.ValueString(), plan.ManagerAddress.ValueString(), knownKey)
	if err != nil {
		return err
	}
	idx, err := sw.mirrorNodeIndex(ctx, plan.Mirror.ValueString())
	if err != nil {
		return err
	}
	for _, f := range plan.Filters {
		if !f.ConsumerNode.IsNull() {
			if err := checkNodeExists(ctx, sw, swarmspec.RoleConsumer, int(f.ConsumerNode.ValueInt64())); err != nil {
				return fmt.Errorf("filter %s: %w", f.Name.ValueString(), err)
			}
		}
	}
	desired, err := plan.desired(sw.network, idx)
	if err != nil {
		return err
	}
	plan.ManagerHostKey = types.StringValue(sw.hostKey)
	return sw.deploy(ctx, swarmspec.FilterGroupOwner(plan.Name.ValueString()), desired, &plan.Services)
}

func (r *filterGroupResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state filterGroupModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Read(ctx, componentReadTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sw, err := openSwarm(ctx, r.pd, state.SwarmID.ValueString(), state.ManagerAddress.ValueString(), state.ManagerHostKey.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot read filter group", err.Error())
		return
	}
	owner := swarmspec.FilterGroupOwner(state.Name.ValueString())
	var idx int
	if state.SwarmID.ValueString() == "" { // import
		if idx, err = restoreFilterGroup(ctx, sw, &state); err != nil {
			resp.Diagnostics.AddError("Cannot import filter group", err.Error())
			return
		}
	} else if idx, err = sw.mirrorNodeIndex(ctx, state.Mirror.ValueString()); err != nil {
		// The mirror is gone, and with it the group's purpose.
		resp.State.RemoveResource(ctx)
		return
	}
	desired, err := state.desired(sw.network, idx)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read filter group", err.Error())
		return
	}
	svc, err := observeServices(ctx, sw.cli, owner, desired)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read filter group", err.Error())
		return
	}
	if allDrifted(svc) {
		resp.State.RemoveResource(ctx)
		return
	}
	state.Services = stringMap(svc)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func restoreFilterGroup(ctx context.Context, sw *swarmHandle, m *filterGroupModel) (int, error) {
	name := m.Name.ValueString()
	services, err := listOwned(ctx, sw.cli, swarmspec.FilterGroupOwner(name))
	if err != nil {
		return 0, err
	}
	var g swarmspec.FilterGroup
	found := false
	for _, s := range services {
		if err := json.Unmarshal([]byte(s.Spec.Labels[labelSettings]), &g); err == nil {
			found = true
			break
		}
	}
	if !found {
		return 0, fmt.Errorf("no filter group %q in swarm %s", name, sw.swarmID)
	}
	m.SwarmID = types.StringValue(sw.swarmID)
	m.ManagerHostKey = types.StringValue(sw.hostKey)
	m.Mirror = types.StringValue(g.Mirror)
	m.Mode = types.StringValue(g.Mode)
	m.WorkloadsImage = types.StringValue(g.Image)
	m.Filters = nil
	topics := map[string]string{}
	for _, f := range g.Filters {
		fm := filterModel{Name: types.StringValue(f.Name), Expression: types.StringValue(f.Expression),
			MaxPerVisit: types.Int64Value(int64(f.MaxPerVisit)), Output: optString(f.Output),
			Consumer: types.BoolValue(!f.NoConsumer), ConsumerNode: types.Int64Null()}
		if f.ConsumerNode >= 0 {
			fm.ConsumerNode = types.Int64Value(int64(f.ConsumerNode))
		}
		m.Filters = append(m.Filters, fm)
		topics[f.Name] = f.OutputTopic()
	}
	m.OutputTopics = stringMap(topics)
	return g.MirrorNodeIndex, nil
}

func (r *filterGroupResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state filterGroupModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, componentDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := deleteOwned(ctx, r.pd, state.SwarmID.ValueString(), state.ManagerAddress.ValueString(),
		state.ManagerHostKey.ValueString(), swarmspec.FilterGroupOwner(state.Name.ValueString())); err != nil {
		resp.Diagnostics.AddError("Cannot delete filter group", err.Error())
	}
}

func (r *filterGroupResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importByName(ctx, req, resp, "GROUP_NAME")
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
