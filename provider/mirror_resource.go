package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Default timeouts of mirrors and filter groups.
const (
	componentCreateTimeout = 10 * time.Minute
	componentUpdateTimeout = 10 * time.Minute
	componentDeleteTimeout = 5 * time.Minute
	componentReadTimeout   = time.Minute
)

var (
	_ resource.Resource                = (*mirrorResource)(nil)
	_ resource.ResourceWithConfigure   = (*mirrorResource)(nil)
	_ resource.ResourceWithImportState = (*mirrorResource)(nil)
	_ resource.ResourceWithModifyPlan  = (*mirrorResource)(nil)
)

type mirrorResource struct{ pd *providerData }

func newMirrorResource() resource.Resource { return &mirrorResource{} }

type mirrorModel struct {
	ID                    types.String   `tfsdk:"id"`
	SwarmID               types.String   `tfsdk:"swarm_id"`
	ManagerAddress        types.String   `tfsdk:"manager_address"`
	Name                  types.String   `tfsdk:"name"`
	NodeIndex             types.Int64    `tfsdk:"node_index"`
	KafkaImage            types.String   `tfsdk:"kafka_image"`
	HeapMB                types.Int64    `tfsdk:"heap_mb"`
	Partitions            types.Int64    `tfsdk:"partitions"`
	RetentionMinutes      types.Int64    `tfsdk:"retention_minutes"`
	Properties            types.Map      `tfsdk:"properties"`
	Topics                types.String   `tfsdk:"topics"`
	MirrorMakerHeapMB     types.Int64    `tfsdk:"mirror_maker_heap_mb"`
	MirrorMakerProperties types.Map      `tfsdk:"mirror_maker_properties"`
	Bootstrap             types.String   `tfsdk:"bootstrap"`
	Services              types.Map      `tfsdk:"services"`
	ManagerHostKey        types.String   `tfsdk:"manager_host_key"`
	Timeouts              timeouts.Value `tfsdk:"timeouts"`
}

func (r *mirrorResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_mirror"
}

func (r *mirrorResource) Configure(_ context.Context, req resource.ConfigureRequest, _ *resource.ConfigureResponse) {
	if pd, ok := req.ProviderData.(*providerData); ok {
		r.pd = pd
	}
}

func (r *mirrorResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	resp.Schema = schema.Schema{
		MarkdownDescription: "A downstream Kafka on one filter node, filled from the hub by MirrorMaker 2 " +
			"(identity replication policy: topics keep their names). Configuration reaches the containers as " +
			"Swarm configs with content-hashed names. Filter groups on the same node read the full stream from it.\n\n" +
			"Default timeouts: create 10m, update 10m, delete 5m, read 1m.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The mirror's name.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"swarm_id": schema.StringAttribute{Required: true, PlanModifiers: replace,
				MarkdownDescription: "Id of the swarm (`minibroker_swarm.X.id`); the manager must run this swarm. Changing it replaces the mirror."},
			"manager_address": schema.StringAttribute{Required: true,
				MarkdownDescription: "SSH address of the swarm's manager (`minibroker_swarm.X.manager_address`), where the Swarm API is reached."},
			"name": schema.StringAttribute{Required: true, PlanModifiers: replace,
				Validators:          []validator.String{objectNameValidator{swarmspec.MaxMirrorNameLen}},
				MarkdownDescription: "Mirror name: at most 30 lower-case letters, digits and inner dashes. Services are `mb-mirror-NAME` (Kafka, also its DNS name) and `mb-mirror-NAME-mm2`."},
			"node_index": schema.Int64Attribute{Required: true,
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
				Validators:          []validator.Int64{int64validator.AtLeast(0)},
				MarkdownDescription: "Index among the swarm's `filter` hosts (0-based, in `hosts` order) of the node that runs the mirror. Changing it replaces the mirror (a mirror's data stays on its node)."},
			"kafka_image": schema.StringAttribute{Optional: true, Computed: true,
				MarkdownDescription: "Kafka image for the broker and MirrorMaker 2. Default: the provider's `kafka_image`."},
			"heap_mb": schema.Int64Attribute{Optional: true, Computed: true,
				Default: int64default.StaticInt64(swarmspec.DefaultKafkaHeapMB), MarkdownDescription: "Kafka JVM heap in MiB. Default 1024.",
				Validators: []validator.Int64{int64validator.AtLeast(128)}},
			"partitions": schema.Int64Attribute{Optional: true, Computed: true,
				Default: int64default.StaticInt64(swarmspec.DefaultPartitions), MarkdownDescription: "Partitions of topics created on the mirror (filtered streams). Default 4.",
				Validators: []validator.Int64{int64validator.Between(1, 1024)}},
			"retention_minutes": schema.Int64Attribute{Optional: true, Computed: true,
				Default: int64default.StaticInt64(swarmspec.DefaultRetentionMinutes), MarkdownDescription: "`log.retention.minutes` of the mirror. Default 60.",
				Validators: []validator.Int64{int64validator.AtLeast(1)}},
			"properties": schema.MapAttribute{Optional: true, ElementType: types.StringType,
				MarkdownDescription: "Extra `server.properties` entries; they win over the provider's."},
			"topics": schema.StringAttribute{Optional: true, Computed: true,
				Default:             stringdefault.StaticString(kafkaconf.DefaultMirrorTopics),
				MarkdownDescription: "Java regular expression of hub topics to copy. Default `alerts|minibroker-schemas` (the stream and its schemas)."},
			"mirror_maker_heap_mb": schema.Int64Attribute{Optional: true, Computed: true,
				Default: int64default.StaticInt64(swarmspec.DefaultMirrorMakerHeapMB), MarkdownDescription: "MirrorMaker 2 JVM heap in MiB. Default 512.",
				Validators: []validator.Int64{int64validator.AtLeast(128)}},
			"mirror_maker_properties": schema.MapAttribute{Optional: true, ElementType: types.StringType,
				MarkdownDescription: "Extra `mm2.properties` entries, e.g. `\"hub->mirror.tasks.max\" = \"4\"`."},
			"bootstrap": schema.StringAttribute{Computed: true,
				MarkdownDescription: "Bootstrap address of the mirror Kafka on the overlay network."},
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

func (m mirrorModel) spec(ctx context.Context, network string) swarmspec.Mirror {
	props, mmProps := map[string]string{}, map[string]string{}
	m.Properties.ElementsAs(ctx, &props, false)
	m.MirrorMakerProperties.ElementsAs(ctx, &mmProps, false)
	return swarmspec.Mirror{
		Name:      m.Name.ValueString(),
		NodeIndex: int(m.NodeIndex.ValueInt64()),
		Kafka: swarmspec.Kafka{
			Image: m.KafkaImage.ValueString(), Network: network, HeapMB: int(m.HeapMB.ValueInt64()),
			Partitions: int(m.Partitions.ValueInt64()), RetentionMinutes: int(m.RetentionMinutes.ValueInt64()),
			Properties: props,
		},
		Topics:                m.Topics.ValueString(),
		MirrorMakerHeapMB:     int(m.MirrorMakerHeapMB.ValueInt64()),
		MirrorMakerProperties: mmProps,
	}
}

// desired returns the mirror's services, the settings riding on the Kafka
// service as a label for import.
func (m mirrorModel) desired(ctx context.Context, network string) []swarmspec.Desired {
	out := swarmspec.MirrorSpecs(m.spec(ctx, network))
	b, _ := json.Marshal(m.spec(ctx, ""))
	setSettings(&out[0], string(b))
	return out
}

func setSettings(d *swarmspec.Desired, settings string) {
	d.Spec.Labels[labelSettings] = settings
	d.Spec.Labels[swarmspec.LabelSpecHash] = swarmspec.Hash(d.Spec, d.Configs)
}

func (r *mirrorResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.pd == nil {
		return
	}
	var plan, config mirrorModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if config.KafkaImage.IsNull() {
		plan.KafkaImage = types.StringValue(r.pd.kafkaImage)
	}
	plan.ID = plan.Name
	if !plan.Name.IsUnknown() {
		plan.Bootstrap = types.StringValue(swarmspec.Bootstrap(swarmspec.MirrorKafkaService(plan.Name.ValueString())))
	}
	if !req.State.Raw.IsNull() {
		var state mirrorModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if hasDrift(state.Services) {
			plan.Services = types.MapUnknown(types.StringType)
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *mirrorResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan mirrorModel
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
		resp.Diagnostics.AddError("Cannot create mirror", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	if err != nil {
		resp.Diagnostics.AddError("Cannot create mirror", err.Error())
	}
}

func (r *mirrorResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state mirrorModel
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
		resp.Diagnostics.AddError("Cannot update mirror", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// apply creates or updates the mirror's services and waits until they run.
// On a failure after services exist, plan.Services is set so that state
// keeps them.
func (r *mirrorResource) apply(ctx context.Context, plan *mirrorModel, knownKey string) error {
	sw, err := openSwarm(ctx, r.pd, plan.SwarmID.ValueString(), plan.ManagerAddress.ValueString(), knownKey)
	if err != nil {
		return err
	}
	if err := checkNodeExists(ctx, sw, swarmspec.RoleFilter, int(plan.NodeIndex.ValueInt64())); err != nil {
		return err
	}
	plan.ManagerHostKey = types.StringValue(sw.hostKey)
	return sw.deploy(ctx, swarmspec.MirrorOwner(plan.Name.ValueString()), plan.desired(ctx, sw.network), &plan.Services)
}

func (r *mirrorResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state mirrorModel
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
		resp.Diagnostics.AddError("Cannot read mirror", err.Error())
		return
	}
	owner := swarmspec.MirrorOwner(state.Name.ValueString())
	if state.SwarmID.ValueString() == "" { // import
		if err := restoreMirror(ctx, sw, &state); err != nil {
			resp.Diagnostics.AddError("Cannot import mirror", err.Error())
			return
		}
	}
	svc, err := observeServices(ctx, sw.cli, owner, state.desired(ctx, sw.network))
	if err != nil {
		resp.Diagnostics.AddError("Cannot read mirror", err.Error())
		return
	}
	if allDrifted(svc) {
		// Every service is gone: the mirror no longer exists.
		resp.State.RemoveResource(ctx)
		return
	}
	state.Services = stringMap(svc)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

func restoreMirror(ctx context.Context, sw *swarmHandle, m *mirrorModel) error {
	name := m.Name.ValueString()
	services, err := listOwned(ctx, sw.cli, swarmspec.MirrorOwner(name))
	if err != nil {
		return err
	}
	k, ok := services[swarmspec.MirrorKafkaService(name)]
	if !ok {
		return fmt.Errorf("no mirror %q in swarm %s", name, sw.swarmID)
	}
	var s swarmspec.Mirror
	if err := json.Unmarshal([]byte(k.Spec.Labels[labelSettings]), &s); err != nil {
		return fmt.Errorf("service %s has no readable %s label: %w", k.Spec.Name, labelSettings, err)
	}
	m.SwarmID = types.StringValue(sw.swarmID)
	m.ManagerHostKey = types.StringValue(sw.hostKey)
	m.NodeIndex = types.Int64Value(int64(s.NodeIndex))
	m.KafkaImage = types.StringValue(s.Kafka.Image)
	m.HeapMB = types.Int64Value(int64(s.Kafka.HeapMB))
	m.Partitions = types.Int64Value(int64(s.Kafka.Partitions))
	m.RetentionMinutes = types.Int64Value(int64(s.Kafka.RetentionMinutes))
	m.Properties = optMap(s.Kafka.Properties)
	m.Topics = types.StringValue(s.Topics)
	m.MirrorMakerHeapMB = types.Int64Value(int64(s.MirrorMakerHeapMB))
	m.MirrorMakerProperties = optMap(s.MirrorMakerProperties)
	m.Bootstrap = types.StringValue(swarmspec.Bootstrap(swarmspec.MirrorKafkaService(name)))
	return nil
}

func (r *mirrorResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state mirrorModel
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
		state.ManagerHostKey.ValueString(), swarmspec.MirrorOwner(state.Name.ValueString())); err != nil {
		resp.Diagnostics.AddError("Cannot delete mirror", err.Error())
	}
}

func (r *mirrorResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importByName(ctx, req, resp, "MIRROR_NAME")
}

func splitImportID(id string) (manager, name string, ok bool) {
	i := strings.LastIndex(id, "/")
	if i <= 0 || i == len(id)-1 {
		return "", "", false
	}
	return id[:i], id[i+1:], true
}

func allDrifted(m map[string]string) bool {
	for _, id := range m {
		if id != driftedID {
			return false
		}
	}
	return true
}

func optMap(m map[string]string) types.Map {
	if len(m) == 0 {
		return types.MapNull(types.StringType)
	}
	return stringMap(m)
}
