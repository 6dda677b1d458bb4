package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

type mirrorModel struct {
	componentModel
	NodeIndex             types.Int64  `tfsdk:"node_index"`
	KafkaImage            types.String `tfsdk:"kafka_image"`
	HeapMB                types.Int64  `tfsdk:"heap_mb"`
	Partitions            types.Int64  `tfsdk:"partitions"`
	RetentionMinutes      types.Int64  `tfsdk:"retention_minutes"`
	Properties            types.Map    `tfsdk:"properties"`
	Topics                types.String `tfsdk:"topics"`
	MirrorMakerHeapMB     types.Int64  `tfsdk:"mirror_maker_heap_mb"`
	MirrorMakerProperties types.Map    `tfsdk:"mirror_maker_properties"`
	Resources             types.Object `tfsdk:"resources"`
	Bootstrap             types.String `tfsdk:"bootstrap"`
	KafkaCredentials      types.String `tfsdk:"kafka_credentials"`
	ExternalAddress       types.String `tfsdk:"external_address"`
	ExternalPort          types.Int64  `tfsdk:"external_port"`
	ExternalBootstrap     types.String `tfsdk:"external_bootstrap"`
}

func (m *mirrorModel) owner() string { return swarmspec.MirrorOwner(m.Name.ValueString()) }

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
			Properties: props, Resources: roleResources(ctx, m.Resources, "kafka"),
		},
		Topics:                m.Topics.ValueString(),
		MirrorMakerHeapMB:     int(m.MirrorMakerHeapMB.ValueInt64()),
		MirrorMakerProperties: mmProps,
		MirrorMakerResources:  roleResources(ctx, m.Resources, "mirror_maker"),
	}
}

// mirrorRoles are the roles of a mirror's resources attribute.
var mirrorRoles = []resourceRole{
	{name: "kafka", what: "the mirror Kafka", def: swarmspec.MirrorKafkaResources, jvm: true, broker: true,
		heap: path.Root("heap_mb"), heapDefault: swarmspec.DefaultKafkaHeapMB},
	{name: "mirror_maker", what: "MirrorMaker 2", def: swarmspec.MirrorMakerResources, jvm: true,
		heap: path.Root("mirror_maker_heap_mb"), heapDefault: swarmspec.DefaultMirrorMakerHeapMB},
}

// mirrorResource is minibroker_mirror: a mirror Kafka and its MirrorMaker 2
// on one filter node.
type mirrorResource struct{ resourceBase }

func newMirrorResource() resource.Resource {
	return &mirrorResource{newComponentBase("_mirror", mirrorSchema(context.Background()))}
}

func mirrorSchema(ctx context.Context) schema.Schema {
	nameDoc := fmt.Sprintf("Mirror name: at most %d lower-case letters, digits and inner dashes. Services are `%s` (Kafka, also its DNS name) and `%s`.",
		swarmspec.MaxMirrorNameLen, swarmspec.MirrorKafkaService("NAME"), swarmspec.MirrorMakerService("NAME"))
	attrs := componentSchema(ctx, "mirror", swarmspec.MaxMirrorNameLen, nameDoc, map[string]schema.Attribute{
		"node_index": schema.Int64Attribute{Required: true,
			PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
			Validators:          []validator.Int64{int64validator.AtLeast(0)},
			MarkdownDescription: "Index among the swarm's `filter` hosts (0-based, in `hosts` order) of the node that runs the mirror. Changing it replaces the mirror: its data, on a volume of its node, does not move, so the new mirror starts empty and MirrorMaker 2 refills it from what the hub retains."},
		"kafka_image": schema.StringAttribute{Optional: true, Computed: true,
			MarkdownDescription: "Kafka image for the broker and MirrorMaker 2. Default: the provider's `kafka_image`."},
		"heap_mb": schema.Int64Attribute{Optional: true, Computed: true,
			Default:             int64default.StaticInt64(swarmspec.DefaultKafkaHeapMB),
			MarkdownDescription: fmt.Sprintf("Kafka JVM heap in MiB. Default %d.", swarmspec.DefaultKafkaHeapMB),
			Validators:          []validator.Int64{int64validator.AtLeast(128)}},
		"partitions": schema.Int64Attribute{Optional: true, Computed: true,
			Default:             int64default.StaticInt64(stream.DefaultPartitions),
			MarkdownDescription: fmt.Sprintf("Partitions of topics created on the mirror (filtered streams). Default %d.", stream.DefaultPartitions),
			Validators:          []validator.Int64{int64validator.Between(1, 1024)}},
		"retention_minutes": schema.Int64Attribute{Optional: true, Computed: true,
			Default:             int64default.StaticInt64(swarmspec.DefaultRetentionMinutes),
			MarkdownDescription: fmt.Sprintf("`log.retention.minutes` of the mirror, at most %d. Default %d.", maxRetentionMinutes, swarmspec.DefaultRetentionMinutes),
			Validators:          []validator.Int64{int64validator.Between(1, maxRetentionMinutes)}},
		"properties": schema.MapAttribute{Optional: true, ElementType: types.StringType, Sensitive: true,
			Validators: []validator.Map{propertiesValidator{}},
			MarkdownDescription: "Extra `server.properties` entries; they win over the provider's (an override of `listeners` must keep the " +
				"`BROKER` and `CONTROLLER` listeners). Keys as Kafka's (lower-case letters, digits, `.`, `_`, `-`) and values on one line, " +
				"checked at plan. Sensitive (they may hold " +
				"credentials): not kept in the swarm's labels, so an import leaves them unset until the next apply."},
		"topics": schema.StringAttribute{Optional: true, Computed: true,
			Default:    stringdefault.StaticString(kafkaconf.DefaultMirrorTopics),
			Validators: []validator.String{mirrorTopicsValidator()},
			MarkdownDescription: "Java regular expression of hub topics to copy (whole names). Default `" + kafkaconf.DefaultMirrorTopics + "` (the stream and its schemas). " +
				"Checked at plan: it must parse, and match `" + stream.AlertsTopic + "` and `" + stream.SchemasTopic + "`, which every filter on the mirror reads " +
				"(constructs only Java has, such as look-arounds, are left to MirrorMaker 2)."},
		"mirror_maker_heap_mb": schema.Int64Attribute{Optional: true, Computed: true,
			Default:             int64default.StaticInt64(swarmspec.DefaultMirrorMakerHeapMB),
			MarkdownDescription: fmt.Sprintf("MirrorMaker 2 JVM heap in MiB. Default %d.", swarmspec.DefaultMirrorMakerHeapMB),
			Validators:          []validator.Int64{int64validator.AtLeast(128)}},
		"mirror_maker_properties": schema.MapAttribute{Optional: true, ElementType: types.StringType, Sensitive: true,
			Validators: []validator.Map{propertiesValidator{mm2: true}},
			MarkdownDescription: "Extra `mm2.properties` entries, e.g. `\"hub->mirror.tasks.max\" = \"4\"`: keys as MirrorMaker 2's (lower-case letters, " +
				"digits, `.`, `_`, `-`, optionally after a flow `SOURCE->TARGET`) and values on one line, checked at plan. Sensitive (they may hold " +
				"credentials): not kept in the swarm's labels, so an import leaves them unset until the next apply."},
		"resources": resourcesSchema("", mirrorRoles...),
		"bootstrap": schema.StringAttribute{Computed: true,
			MarkdownDescription: "Bootstrap address of the mirror Kafka on the overlay network."},
		"kafka_credentials": kafkaCredentialsAttribute(),
		"external_address": schema.StringAttribute{Optional: true,
			MarkdownDescription: "Address (host name or IP) users outside the swarm dial to read their filtered streams; it is in the " +
				"broker's certificate. Default: the host of the mirror node's SSH address (`hosts[*].address`; on EC2 the public or " +
				"private address per `connect_via`)."},
		"external_port": schema.Int64Attribute{Optional: true, Computed: true,
			Default:    int64default.StaticInt64(kafkaconf.DefaultExternalPort),
			Validators: []validator.Int64{int64validator.Between(0, 65535)},
			MarkdownDescription: fmt.Sprintf("Port of the listener for users outside the swarm (SASL_SSL), published on the mirror's node. "+
				"Default %d; 0 publishes none. Only with `kafka_credentials`.", kafkaconf.DefaultExternalPort)},
		"external_bootstrap": schema.StringAttribute{Computed: true,
			MarkdownDescription: "Bootstrap address users outside the swarm give their clients (empty without an external listener).",
			PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
	})
	return schema.Schema{
		MarkdownDescription: "A downstream Kafka on one filter node, filled from the hub by MirrorMaker 2 " +
			"(identity replication policy: topics keep their names). Configuration reaches the containers as " +
			"Swarm configs with content-hashed names. Filter groups on the same node read the full stream from it.\n\n" +
			"The broker keeps its topics, consumer group offsets and MirrorMaker 2's state on the local volume " +
			"`" + swarmspec.DataVolume(swarmspec.MirrorKafkaService("NAME")) + "` of its node, so a restarted task, dockerd or node resumes where it was; destroy removes the volume.\n\n" +
			"Default timeouts: create 10m, update 10m, delete 5m, read 1m.",
		Attributes: attrs,
	}
}

// ValidateConfig checks the memory limits against the heaps.
func (r *mirrorResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	validateJVMResources(ctx, req.Config, mirrorRoles, &resp.Diagnostics)
}

// desired returns the mirror's services, the resource's settings riding on
// the Kafka service as a label, for import.
func (r *mirrorResource) desired(ctx context.Context, sw *swarmctl.Swarm, m *mirrorModel) ([]swarmspec.Desired, error) {
	spec, err := r.secured(ctx, sw, m)
	if err != nil {
		return nil, err
	}
	settings, err := r.settings.encode(ctx, m)
	if err != nil {
		return nil, err
	}
	out := swarmspec.MirrorSpecs(spec)
	out[0].SetSettings(settings)
	return out, nil
}

// accessImage is the image of the mirror's access job: the swarm's own
// access job's, which the manager has; the provider's workloads image for
// a swarm without one.
func (r *mirrorResource) accessImage(ctx context.Context, sw *swarmctl.Swarm) string {
	if image, ok := sw.ServiceImage(ctx, swarmspec.OwnerSwarm, swarmspec.SwarmAccessService); ok {
		return image
	}
	return r.pd.workloadsImage
}

// secured is the mirror's spec with the swarm's Kafka security and its
// external listener, whose address it records in external_bootstrap.
func (r *mirrorResource) secured(ctx context.Context, sw *swarmctl.Swarm, m *mirrorModel) (swarmspec.Mirror, error) {
	spec := m.spec(ctx, sw.Network)
	spec.AccessImage = r.accessImage(ctx, sw)
	sec, err := componentSecurity(ctx, sw, m.KafkaCredentials)
	if errors.Is(err, errNoCredentials) {
		// Imported: what runs says where the external listener is.
		if info, ierr := sw.Mirror(ctx, spec.Name); ierr == nil {
			m.ExternalBootstrap = types.StringValue(info.External)
		}
	}
	if err != nil {
		return spec, err
	}
	spec.Kafka.Security = sec
	m.ExternalBootstrap = types.StringValue("")
	if sec == nil || m.ExternalPort.ValueInt64() == 0 {
		return spec, nil
	}
	host := m.ExternalAddress.ValueString()
	if host == "" {
		if host, err = sw.NodeHost(ctx, swarmspec.RoleFilter, spec.NodeIndex); err != nil {
			return spec, fmt.Errorf("the mirror's external address: %w (or set external_address)", err)
		}
	}
	spec.Kafka.External = &swarmspec.External{Host: host, Port: int(m.ExternalPort.ValueInt64())}
	m.ExternalBootstrap = types.StringValue(spec.Kafka.External.Bootstrap())
	return spec, nil
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
		// kafka_credentials set or unset adds or removes the access job.
		if hasDrift(state.Services) || plan.KafkaCredentials.IsNull() != state.KafkaCredentials.IsNull() {
			plan.Services = types.MapUnknown(types.StringType)
		}
		if !plan.ExternalAddress.Equal(state.ExternalAddress) || !plan.ExternalPort.Equal(state.ExternalPort) ||
			plan.KafkaCredentials.IsNull() != state.KafkaCredentials.IsNull() {
			plan.ExternalBootstrap = types.StringUnknown()
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

func (r *mirrorResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan mirrorModel
	r.createComponent(ctx, "mirror", req, resp, &plan, func(ctx context.Context, sw *swarmctl.Swarm) ([]swarmspec.Desired, error) {
		return r.place(ctx, sw, &plan)
	})
}

func (r *mirrorResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan mirrorModel
	r.updateComponent(ctx, "mirror", req, resp, &plan, func(ctx context.Context, sw *swarmctl.Swarm) ([]swarmspec.Desired, error) {
		return r.place(ctx, sw, &plan)
	})
}

// place checks that the mirror's filter node exists and returns its
// services.
func (r *mirrorResource) place(ctx context.Context, sw *swarmctl.Swarm, m *mirrorModel) ([]swarmspec.Desired, error) {
	if err := sw.CheckNode(ctx, swarmspec.RoleFilter, int(m.NodeIndex.ValueInt64())); err != nil {
		return nil, err
	}
	return r.desired(ctx, sw, m)
}

func (r *mirrorResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state mirrorModel
	r.readComponent(ctx, "mirror", req, resp, &state, func(ctx context.Context, sw *swarmctl.Swarm) ([]swarmspec.Desired, error) {
		state.Bootstrap = types.StringValue(swarmspec.Bootstrap(swarmspec.MirrorKafkaService(state.Name.ValueString())))
		return r.desired(ctx, sw, &state)
	})
}

func (r *mirrorResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state mirrorModel
	r.deleteComponent(ctx, "mirror", req, resp, &state, func(ctx context.Context, sw *swarmctl.Swarm) ([]swarmspec.Desired, error) {
		// Only the credentials: the mirror's node may be gone already.
		sec, err := componentSecurity(ctx, sw, state.KafkaCredentials)
		if err != nil {
			return nil, err
		}
		spec := state.spec(ctx, sw.Network)
		spec.Kafka.Security, spec.AccessImage = sec, r.accessImage(ctx, sw)
		return swarmspec.MirrorRemovalSpecs(spec), nil
	})
}

func (r *mirrorResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importByName(ctx, req, resp, "MIRROR_NAME")
}
