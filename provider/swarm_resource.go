package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/boolplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// swarmResource is minibroker_swarm: the nodes (hosts, or EC2 instances
// from the aws block in swarm_aws.go), the swarm swarmctl.Form makes of
// them, the overlay network, and the hub, registry and producer services
// (or, with the upstream block in swarm_upstream.go, the upstream relay in
// the producer's place).
type swarmResource struct{ resourceBase }

func newSwarmResource() resource.Resource {
	// Local archive paths and timeouts belong to the workstation, not the
	// swarm: import leaves them out.
	return &swarmResource{newResourceBase("_swarm", swarmSchema(context.Background()), "image_archives", "timeouts")}
}

// --- schema -----------------------------------------------------------

func swarmSchema(ctx context.Context) schema.Schema {
	return schema.Schema{
		MarkdownDescription: "A Docker Swarm formed from existing hosts or from EC2 instances it provisions, with the mini-broker's hub Kafka on the " +
			"manager and the alert producer on the producer node (or, with `upstream`, the relay of an upstream alert stream).\n\n" +
			"Creating it initialises the swarm on the `manager` host (or adopts the swarm that host already " +
			"manages), joins the other hosts, labels every node with its role and index, loads `image_archives` " +
			"onto the nodes that run their images, creates the attachable overlay network and starts the hub and " +
			"the producer, waiting until their tasks run. Destroying it removes all of that and makes every host " +
			"it joined leave the swarm.\n\n" +
			"With `aws` instead of `hosts`, creating it first launches the EC2 instances and waits until Docker " +
			"answers on them over SSH; destroying it terminates them and deletes what it created on EC2.\n\n" +
			"Default timeouts: create 15m, update 15m, delete 10m, read 2m.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "With `hosts`, the swarm's cluster id; with `aws`, `mb-` and 12 hex digits derived from the subnet and `aws.name_prefix`, the value of the `minibroker:swarm` tag on everything created (the swarm carries it as its `minibroker.id` label).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"hosts":     hostsSchema(),
			"aws":       awsSchema(),
			"instances": instancesSchema(),
			"security_group_id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "With `aws`: the security group of the instances.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"network": schema.StringAttribute{
				Optional: true, Computed: true,
				Default:             stringdefault.StaticString(swarmspec.DefaultNetwork),
				MarkdownDescription: "Name of the attachable overlay network every service joins. Default `minibroker`; changing it replaces the swarm.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"encrypt_network": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "Encrypt the overlay network's traffic between nodes (IPsec, `docker network create --opt encrypted`; " +
					"the nodes' kernels need the `esp4` and `xfrm` modules, standard on Ubuntu; without them an encrypted overlay carries " +
					"nothing, so set false). Default true for a new swarm; a swarm " +
					"created by a provider without this attribute keeps its unencrypted network unless you set it. Changing it replaces the swarm.",
				PlanModifiers: []planmodifier.Bool{legacyUnencrypted{}, boolplanmodifier.RequiresReplaceIf(
					func(_ context.Context, req planmodifier.BoolRequest, resp *boolplanmodifier.RequiresReplaceIfFuncResponse) {
						// A swarm from before the attribute has an
						// unencrypted network (null counts as false).
						resp.RequiresReplace = req.PlanValue.ValueBool() != req.StateValue.ValueBool()
					}, "Changing the network's encryption replaces the swarm.", "Changing the network's encryption replaces the swarm.")},
			},
			"kafka_auth": schema.BoolAttribute{
				Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "Require authentication on every Kafka listener (SASL/SCRAM-SHA-512; TLS as well unless the overlay network " +
					"is encrypted) and authorize each service only what it needs (Kafka's StandardAuthorizer, ACLs per service). " +
					"Default true. Mirrors and filter groups then need `kafka_credentials`. Changing it restarts every Kafka service.",
			},
			"credentials_generation": schema.Int64Attribute{
				Optional: true, Computed: true, Default: int64default.StaticInt64(1),
				Validators: []validator.Int64{int64validator.AtLeast(1)},
				MarkdownDescription: "Change it (e.g. add one) to rotate the Kafka credentials: a new CA, new broker certificates and a new " +
					"password for every Kafka user, readers included. Mirrors and filter groups take them on their next apply. Default 1.",
			},
			"ca": caAttribute(),
			"kafka_credentials": schema.StringAttribute{
				Computed: true, Sensitive: true,
				MarkdownDescription: "What mirrors and filter groups need to join the swarm's Kafka (the CA and the seed every Kafka " +
					"user's password derives from); give it to their `kafka_credentials`. Sensitive; not kept in the swarm's labels, " +
					"so an import makes new ones on the next apply.",
				PlanModifiers: []planmodifier.String{regenerateOnGeneration{}},
			},
			"report_properties": schema.StringAttribute{
				Computed: true, Sensitive: true,
				MarkdownDescription: "librdkafka properties of the report's Kafka user (read-only on the timing topic), the CA inline: " +
					"`minibroker report --config -` reads them from standard input in a container on the overlay network (see the " +
					"examples' `report_command`). Unused with `kafka_auth = false`.",
				PlanModifiers: []planmodifier.String{regenerateOnGeneration{}},
			},
			"schema_registry_port": schema.Int64Attribute{
				Optional: true, Computed: true, Default: int64default.StaticInt64(swarmspec.DefaultRegistryPort),
				Validators: []validator.Int64{int64validator.Between(1, 65535)},
				MarkdownDescription: "Port the schema registry (the Confluent Schema Registry API over the hub's schemas topic, " +
					"`minibroker registry`) is published on, on the manager node. Open it to your users, as each mirror's " +
					"`external_port`.",
			},
			"schema_registry_url": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "Where users outside the swarm reach the schema registry: `https://MANAGER:PORT` " +
					"(`http://` with `kafka_auth = false`). Confluent's deserializers look the alerts' schema ids up there.",
			},
			"schema_registry_properties": schema.StringAttribute{
				Computed: true, Sensitive: true,
				MarkdownDescription: "Settings of the schema registry's read-only user, for Confluent's clients: `url`, " +
					"`basic.auth.user.info` and `ssl.ca.location` (the `ca_certificate`, saved as `minibroker-ca.pem`). Python's " +
					"`SchemaRegistryClient` takes them as its configuration dict.",
			},
			"ca_certificate": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "PEM certificate of the CA that signs the brokers' certificates: what clients outside the swarm trust.",
				PlanModifiers:       []planmodifier.String{regenerateOnGeneration{}},
			},
			"address_pool": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "CIDR the swarm takes overlay subnets from (`docker swarm init " +
					"--default-addr-pool`), in /20 networks so that hundreds of tasks fit. Default " + swarmctl.DefaultAddressPool + ". " +
					"Only used when the swarm is created.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"kafka_image": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Image of the hub Kafka. Default: the provider's `kafka_image`.",
			},
			"workloads_image": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Image of the producer, the schema registry and the upstream relay. Default: the provider's `workloads_image`.",
			},
			"image_archives": schema.ListAttribute{
				Optional:    true,
				ElementType: types.StringType,
				MarkdownDescription: "Local `docker save` archives (e.g. from `make image`) loaded onto every node " +
					"that runs one of their images: Kafka images onto the manager and filter nodes, the workloads " +
					"image onto producer, filter and consumer nodes. A node that already has the image is skipped, " +
					"so no registry is needed. Images loaded here are removed again on destroy.",
			},
			"hub":       hubSchema(),
			"producer":  producerSchema(),
			"upstream":  upstreamSchema(),
			"resources": resourcesSchema(" (a producer sending a number of `visits` restarts only when it fails)", swarmRoles...),
			"manager_address": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "SSH address of the manager; give it to `minibroker_mirror` and `minibroker_filter_group`.",
			},
			"hub_bootstrap": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Bootstrap address of the hub Kafka on the overlay network.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"network_id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Id of the overlay network.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"node_ids": schema.MapAttribute{
				Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Swarm node id of every host, by address.",
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			},
			"nodes_by_role": schema.MapAttribute{
				Computed: true, ElementType: types.ListType{ElemType: types.StringType},
				MarkdownDescription: "Swarm node ids by role, in index order.",
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			},
			"services": schema.MapAttribute{
				Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Service ids of the swarm's own services (hub, registry, producer or upstream relay, access job), by service name.",
				PlanModifiers:       []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			},
			"host_keys": schema.MapAttribute{
				Computed: true, ElementType: types.StringType,
				MarkdownDescription: "SSH host key fingerprints (SHA256) of the hosts, by address; with " +
					"`host_key_policy = \"trust_on_first_use\"` a changed key is refused.",
				PlanModifiers: []planmodifier.Map{mapplanmodifier.UseStateForUnknown()},
			},
			"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true, Read: true}),
		},
	}
}

func hostsSchema() schema.ListNestedAttribute {
	return schema.ListNestedAttribute{
		Optional: true, Computed: true,
		MarkdownDescription: "The machines, unless `aws` provisions them (then this lists the instances). Exactly one `manager` (it runs the hub Kafka and the swarm's " +
			"control plane); one `producer` while the producer is enabled or `upstream` is set (its relay runs there; at most one in any case); `filter` hosts " +
			"for the mirrors and their filters; `consumer` hosts for the consumers. Hosts of one role are numbered from 0 in list order (`minibroker.index` label); " +
			"mirrors pick their filter node by that number. Adding or removing non-manager hosts is an in-place " +
			"update; changing the manager replaces the swarm.",
		Validators: []validator.List{listvalidator.SizeAtLeast(2)},
		NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
			"address": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "SSH address, `host` or `host:port` (port 22 by default).",
			},
			"role": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "`manager`, `producer`, `filter` or `consumer`.",
				Validators:          []validator.String{stringvalidator.OneOf(swarmspec.Roles...)},
			},
			"docker_socket": schema.StringAttribute{
				Optional: true, Computed: true,
				Default:             stringdefault.StaticString(dockerssh.DefaultDockerSocket),
				MarkdownDescription: "Path of the Docker Engine's unix socket on the host. Default `" + dockerssh.DefaultDockerSocket + "`.",
			},
			"advertise_address": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Address other nodes reach this one at for Swarm traffic (2377/tcp, " +
					"7946/tcp+udp, 4789/udp). Default: the host part of `address`. When it is an IP address (a private one, " +
					"ideally), the manager listens for Swarm only there; a host name, or an address that is not the host's own " +
					"(NAT), leaves it listening on every interface.",
			},
		}},
	}
}

func hubSchema() schema.SingleNestedAttribute {
	attrs := map[string]schema.Attribute{
		"heap_mb": schema.Int64Attribute{Optional: true, Computed: true,
			Default:             int64default.StaticInt64(swarmspec.DefaultKafkaHeapMB),
			Validators:          []validator.Int64{int64validator.AtLeast(128)},
			MarkdownDescription: fmt.Sprintf("JVM heap in MiB. Default %d.", swarmspec.DefaultKafkaHeapMB)},
		"partitions": schema.Int64Attribute{Optional: true, Computed: true,
			Default:             int64default.StaticInt64(stream.DefaultPartitions),
			Validators:          []validator.Int64{int64validator.Between(1, 1024)},
			MarkdownDescription: fmt.Sprintf("Partitions of the alert topic and of topics created on first use. Default %d.", stream.DefaultPartitions)},
		"retention_minutes": schema.Int64Attribute{Optional: true, Computed: true,
			Default:             int64default.StaticInt64(swarmspec.DefaultRetentionMinutes),
			Validators:          []validator.Int64{int64validator.Between(1, maxRetentionMinutes)},
			MarkdownDescription: fmt.Sprintf("How long alerts are kept (`log.retention.minutes`, at most %d). Default %d.", maxRetentionMinutes, swarmspec.DefaultRetentionMinutes)},
		"properties": schema.MapAttribute{Optional: true, ElementType: types.StringType, Sensitive: true,
			Validators: []validator.Map{propertiesValidator{}},
			MarkdownDescription: "Extra `server.properties` entries; they win over the provider's (an override of `listeners` must keep the " +
				"`BROKER` and `CONTROLLER` listeners). Keys as Kafka's (lower-case letters, digits, `.`, `_`, `-`) and values on one line, " +
				"checked at plan. Sensitive (they may hold " +
				"credentials): not kept in the swarm's labels, so an import leaves them unset until the next apply."},
	}
	return schema.SingleNestedAttribute{
		Optional: true, Computed: true,
		Default:             objectdefault.StaticValue(objectDefault(attrs)),
		MarkdownDescription: "The hub Kafka (KRaft, one broker+controller) on the manager node.",
		Attributes:          attrs,
	}
}

func producerSchema() schema.SingleNestedAttribute {
	attrs := map[string]schema.Attribute{
		"enabled": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
			MarkdownDescription: "Run the producer; false removes its service and keeps the rest. Default true."},
		"alerts_per_visit": schema.Int64Attribute{Optional: true, Computed: true,
			Default:             int64default.StaticInt64(stream.DefaultAlertsPerVisit),
			Validators:          []validator.Int64{int64validator.Between(1, maxAlertsPerVisit)},
			MarkdownDescription: fmt.Sprintf("Alerts in each visit, at most %d (every filter keeps a bit per alert of each open visit). Default %d, as a Rubin visit.", maxAlertsPerVisit, stream.DefaultAlertsPerVisit)},
		"interval": schema.StringAttribute{Optional: true, Computed: true,
			Default:             stringdefault.StaticString(stream.DefaultInterval.String()),
			Validators:          []validator.String{durationValidator()},
			MarkdownDescription: "Time between visits, a Go duration. Default `" + stream.DefaultInterval.String() + "`, as Rubin."},
		"visits": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(0),
			Validators:          []validator.Int64{int64validator.AtLeast(0)},
			MarkdownDescription: "Visits to send, then stop; 0 (the default) sends forever."},
		"cutout_bytes": schema.Int64Attribute{Optional: true, Computed: true,
			Default:    int64default.StaticInt64(alert.DefaultCutoutBytes),
			Validators: []validator.Int64{int64validator.Between(0, maxCutoutBytes)},
			MarkdownDescription: fmt.Sprintf("Bytes of each of the 3 cutouts of a synthetic alert. Default %d, which gives ~80 KB alerts; 0 gives small ones. "+
				"At most %d, so that an alert fits the hub's message limit (%d bytes): the producer skips an alert too large to send.", alert.DefaultCutoutBytes, maxCutoutBytes, hubMessageMaxBytes)},
		"parallel": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(stream.DefaultParallel),
			Validators:          []validator.Int64{int64validator.Between(1, 256)},
			MarkdownDescription: fmt.Sprintf("Concurrent senders splitting each visit. Default %d.", stream.DefaultParallel)},
		"seed": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(stream.DefaultSeed),
			MarkdownDescription: fmt.Sprintf("Seed of the synthetic alerts. Default %d.", stream.DefaultSeed)},
		"replay_files": schema.ListAttribute{Optional: true, ElementType: types.StringType,
			MarkdownDescription: "Local Avro container files of real alerts (e.g. Rubin's `fakeAlert.avro`, " +
				"each at most 500 KB) sent in turn instead of synthetic alerts; they reach the node as Swarm configs."},
	}
	return schema.SingleNestedAttribute{
		Optional: true, Computed: true,
		Default:    objectdefault.StaticValue(objectDefault(attrs)),
		Attributes: attrs,
		MarkdownDescription: "The alert producer on the producer node. Its settings update in place. With `upstream` the producer " +
			"does not run: leave this out, or set `enabled = false` (a producer that would run is refused at plan).",
	}
}

// swarmRoles are the roles of the swarm's resources attribute.
var swarmRoles = []resourceRole{
	{name: "hub", what: "the hub Kafka", def: swarmspec.HubResources, jvm: true, broker: true,
		heap: path.Root("hub").AtName("heap_mb"), heapDefault: swarmspec.DefaultKafkaHeapMB},
	{name: "producer", what: "the producer, or the upstream relay `mb-ingest` in its place", def: swarmspec.ProducerResources},
}

// --- model ------------------------------------------------------------

// swarmModel is minibroker_swarm's state: the machines, what runs on them
// (swarmServicesModel) and what apply and refresh learn (swarmObservedModel).
type swarmModel struct {
	ID            types.String `tfsdk:"id"`
	Hosts         types.List   `tfsdk:"hosts"`
	AWS           types.Object `tfsdk:"aws"`
	Instances     types.List   `tfsdk:"instances"`
	SecurityGroup types.String `tfsdk:"security_group_id"`
	swarmServicesModel
	swarmObservedModel
	Timeouts timeouts.Value `tfsdk:"timeouts"`
}

// hostModels returns the hosts list (empty while unknown).
func (m swarmModel) hostModels() []hostModel {
	var hs []hostModel
	if !m.Hosts.IsNull() && !m.Hosts.IsUnknown() {
		m.Hosts.ElementsAs(context.Background(), &hs, false)
	}
	return hs
}

// awsMode reports whether the resource provisions EC2 instances.
func (m swarmModel) awsMode() bool { return !m.AWS.IsNull() }

// hosts validates the hosts and numbers them within their role; on EC2 an
// instance's number is its index tag, even with a gap left by one
// terminated outside Terraform.
func (m swarmModel) hosts() ([]swarmspec.Host, error) {
	var in []swarmspec.Host
	for _, h := range m.hostModels() {
		in = append(in, swarmspec.Host{Address: h.Address.ValueString(), Role: h.Role.ValueString(),
			Socket: h.DockerSocket.ValueString(), Advertise: h.AdvertiseAddress.ValueString()})
	}
	out, err := swarmspec.NumberHosts(in)
	if err != nil || !m.awsMode() {
		return out, err
	}
	index := map[string]int{}
	for _, in := range m.instanceModels() {
		index[in.PrivateIP.ValueString()] = int(in.Index.ValueInt64())
	}
	for i := range out {
		if n, ok := index[out[i].Advertise]; ok {
			out[i].Index = n
		}
	}
	return out, nil
}

// legacyUnencrypted plans encrypt_network = false, unless configured, for a
// swarm whose state predates the attribute: its network was created
// unencrypted, and the default must not replace it (with every broker's
// data) on upgrade.
type legacyUnencrypted struct{}

func (legacyUnencrypted) Description(context.Context) string {
	return "a swarm created before encrypt_network keeps its unencrypted network unless the attribute is set"
}

func (m legacyUnencrypted) MarkdownDescription(ctx context.Context) string { return m.Description(ctx) }

func (legacyUnencrypted) PlanModifyBool(_ context.Context, req planmodifier.BoolRequest, resp *planmodifier.BoolResponse) {
	if !req.State.Raw.IsNull() && req.StateValue.IsNull() && req.ConfigValue.IsNull() {
		resp.PlanValue = types.BoolValue(false)
	}
}

// swarmServicesModel configures the network, the images and the services
// of the swarm itself.
type swarmServicesModel struct {
	Network               types.String `tfsdk:"network"`
	EncryptNetwork        types.Bool   `tfsdk:"encrypt_network"`
	KafkaAuth             types.Bool   `tfsdk:"kafka_auth"`
	CredentialsGeneration types.Int64  `tfsdk:"credentials_generation"`
	CA                    types.Object `tfsdk:"ca"`
	KafkaCredentials      types.String `tfsdk:"kafka_credentials"`
	ReportProperties      types.String `tfsdk:"report_properties"`
	RegistryPort          types.Int64  `tfsdk:"schema_registry_port"`
	RegistryURL           types.String `tfsdk:"schema_registry_url"`
	RegistryProperties    types.String `tfsdk:"schema_registry_properties"`
	CACertificate         types.String `tfsdk:"ca_certificate"`
	AddressPool           types.String `tfsdk:"address_pool"`
	KafkaImage            types.String `tfsdk:"kafka_image"`
	WorkloadsImage        types.String `tfsdk:"workloads_image"`
	ImageArchives         types.List   `tfsdk:"image_archives"`
	Hub                   types.Object `tfsdk:"hub"`
	Producer              types.Object `tfsdk:"producer"`
	Upstream              types.Object `tfsdk:"upstream"`
	Resources             types.Object `tfsdk:"resources"`
}

// hubModel is the hub block.
type hubModel struct {
	HeapMB           types.Int64 `tfsdk:"heap_mb"`
	Partitions       types.Int64 `tfsdk:"partitions"`
	RetentionMinutes types.Int64 `tfsdk:"retention_minutes"`
	Properties       types.Map   `tfsdk:"properties"`
}

// hub describes the hub Kafka.
func (m swarmServicesModel) hub(ctx context.Context) swarmspec.Kafka {
	var h hubModel
	m.Hub.As(ctx, &h, basetypes.ObjectAsOptions{})
	props := map[string]string{}
	h.Properties.ElementsAs(ctx, &props, false)
	return swarmspec.Kafka{
		Image:            m.KafkaImage.ValueString(),
		Network:          m.Network.ValueString(),
		HeapMB:           int(h.HeapMB.ValueInt64()),
		Partitions:       int(h.Partitions.ValueInt64()),
		RetentionMinutes: int(h.RetentionMinutes.ValueInt64()),
		Properties:       props,
		Resources:        roleResources(ctx, m.Resources, "hub"),
	}
}

// producerModel is the producer block.
type producerModel struct {
	Enabled        types.Bool   `tfsdk:"enabled"`
	AlertsPerVisit types.Int64  `tfsdk:"alerts_per_visit"`
	Interval       types.String `tfsdk:"interval"`
	Visits         types.Int64  `tfsdk:"visits"`
	CutoutBytes    types.Int64  `tfsdk:"cutout_bytes"`
	Parallel       types.Int64  `tfsdk:"parallel"`
	Seed           types.Int64  `tfsdk:"seed"`
	ReplayFiles    types.List   `tfsdk:"replay_files"`
}

// producer returns the producer's description, or nil when it is
// disabled; its settings are checked either way.
func (m swarmServicesModel) producer(ctx context.Context) (*swarmspec.Producer, error) {
	var p producerModel
	m.Producer.As(ctx, &p, basetypes.ObjectAsOptions{})
	interval, err := time.ParseDuration(p.Interval.ValueString())
	if err != nil {
		return nil, fmt.Errorf("producer.interval: %w", err)
	}
	spec := &swarmspec.Producer{
		Image:          m.WorkloadsImage.ValueString(),
		Network:        m.Network.ValueString(),
		AlertsPerVisit: int(p.AlertsPerVisit.ValueInt64()),
		Interval:       interval,
		Visits:         int(p.Visits.ValueInt64()),
		CutoutBytes:    int(p.CutoutBytes.ValueInt64()),
		Parallel:       int(p.Parallel.ValueInt64()),
		Seed:           p.Seed.ValueInt64(),
		Partitions:     m.hub(ctx).Partitions,
		Resources:      roleResources(ctx, m.Resources, "producer"),
	}
	var files []string
	p.ReplayFiles.ElementsAs(ctx, &files, false)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("producer.replay_files: %w", err)
		}
		if len(data) > swarmspec.MaxConfigBytes {
			return nil, fmt.Errorf("producer.replay_files: %s is %d bytes; Swarm configs hold at most %d", f, len(data), swarmspec.MaxConfigBytes)
		}
		spec.Replay = append(spec.Replay, swarmspec.ReplayFile{Name: f, Data: data})
	}
	if !p.Enabled.ValueBool() {
		return nil, nil
	}
	return spec, nil
}

// swarmObservedModel holds the computed attributes apply and refresh fill.
type swarmObservedModel struct {
	ManagerAddress types.String `tfsdk:"manager_address"`
	HubBootstrap   types.String `tfsdk:"hub_bootstrap"`
	NetworkID      types.String `tfsdk:"network_id"`
	NodeIDs        types.Map    `tfsdk:"node_ids"`
	NodesByRole    types.Map    `tfsdk:"nodes_by_role"`
	Services       types.Map    `tfsdk:"services"`
	HostKeys       types.Map    `tfsdk:"host_keys"`
}

// setNodes records node ids by address, and by role in index order.
func (m *swarmModel) setNodes(hosts []swarmspec.Host, ids map[string]string) {
	m.NodeIDs = idMap(ids)
	by := map[string][]string{}
	for _, h := range hosts {
		by[h.Role] = append(by[h.Role], idValue(ids[h.Address]).ValueString())
	}
	m.NodesByRole, _ = types.MapValueFrom(context.Background(), types.ListType{ElemType: types.StringType}, by)
}

type hostModel struct {
	Address          types.String `tfsdk:"address"`
	Role             types.String `tfsdk:"role"`
	DockerSocket     types.String `tfsdk:"docker_socket"`
	AdvertiseAddress types.String `tfsdk:"advertise_address"`
}

// hostType is the type of one element of hosts.
var hostType = hostsSchema().NestedObject.Type()

func hostList(hs []hostModel) types.List {
	l, _ := types.ListValueFrom(context.Background(), hostType, hs)
	return l
}

// desired returns the swarm's own services, the resource's settings riding
// on the hub as a label, for import. With an upstream the relay runs in
// the producer's place, and the registry and the access plan have its
// users.
func (r *swarmResource) desired(ctx context.Context, m swarmModel) ([]swarmspec.Desired, error) {
	prod, err := m.producer(ctx)
	if err != nil {
		return nil, err
	}
	settings, err := r.settings.encode(ctx, m)
	if err != nil {
		return nil, err
	}
	sec, err := m.security()
	if err != nil {
		return nil, err
	}
	hubKafka := m.hub(ctx)
	hubKafka.Security = sec
	hub := swarmspec.HubSpec(hubKafka)
	hub.SetSettings(settings)
	reg, err := m.registry(sec)
	if err != nil {
		return nil, err
	}
	up := m.upstream(ctx)
	reg.Ingest = up != nil
	out := []swarmspec.Desired{hub, swarmspec.RegistrySpec(reg)}
	switch {
	case up != nil:
		out = append(out, swarmspec.IngestSpec(m.ingest(ctx, *up, sec, reg)))
	case prod != nil:
		prod.Security = sec
		prod.Registry = &reg
		out = append(out, swarmspec.ProducerSpec(*prod))
	}
	if sec != nil {
		out = append(out, swarmspec.SwarmAccessSpec(m.WorkloadsImage.ValueString(), m.Network.ValueString(), sec, up != nil))
	}
	return out, nil
}

// registry is the swarm's schema registry service, published on the
// manager's address.
func (m swarmModel) registry(sec *swarmspec.Security) (swarmspec.Registry, error) {
	hosts, err := m.hosts()
	if err != nil {
		return swarmspec.Registry{}, err
	}
	return swarmspec.Registry{Image: m.WorkloadsImage.ValueString(), Network: m.Network.ValueString(),
		Port: int(m.RegistryPort.ValueInt64()), Host: swarmspec.HostPart(swarmspec.ManagerOf(hosts).Address), Security: sec}, nil
}

// setRegistry fills the registry's computed attributes: the URL once the
// hosts are known, the reader's properties once the credentials are too.
func (m *swarmModel) setRegistry() error {
	hosts, err := m.hosts()
	if err != nil {
		return err
	}
	m.RegistryURL = types.StringValue(swarmspec.RegistryURL(m.KafkaAuth.ValueBool(),
		swarmspec.HostPart(swarmspec.ManagerOf(hosts).Address), int(m.RegistryPort.ValueInt64())))
	if m.KafkaAuth.ValueBool() && (m.KafkaCredentials.IsNull() || m.KafkaCredentials.IsUnknown()) {
		return nil
	}
	sec, err := m.security()
	if err != nil {
		return err
	}
	reg, err := m.registry(sec)
	if err != nil {
		return err
	}
	m.RegistryProperties = types.StringValue(swarmspec.RegistryReaderProperties(reg, CAFileName))
	return nil
}

// security is the swarm's Kafka security: nil with kafka_auth = false.
func (m swarmServicesModel) security() (*swarmspec.Security, error) {
	if !m.KafkaAuth.ValueBool() {
		return nil, nil
	}
	return security(m.KafkaCredentials.ValueString())
}

// ensureCredentials makes the Kafka credentials the plan leaves unknown
// (a new swarm, a new credentials_generation).
func (m *swarmServicesModel) ensureCredentials() error {
	if !m.KafkaCredentials.IsUnknown() && !m.KafkaCredentials.IsNull() {
		return nil
	}
	ca, err := userCA(context.Background(), m.CA)
	if err != nil {
		return err
	}
	creds, err := newKafkaCredentials(m.CredentialsGeneration.ValueInt64(), !m.EncryptNetwork.ValueBool(), ca)
	if err != nil {
		return fmt.Errorf("kafka credentials: %w", err)
	}
	m.KafkaCredentials = types.StringValue(creds)
	sec, err := security(creds)
	if err != nil {
		return err
	}
	m.CACertificate = types.StringValue(sec.CA.CertPEM)
	m.ReportProperties = types.StringValue(swarmspec.ReportProperties(sec))
	return nil
}

// formSpec is what swarmctl.Form makes of the hosts; prior is the state
// before an update (nil on create).
func (m swarmModel) formSpec(ctx context.Context, hosts []swarmspec.Host, prior *swarmModel) swarmctl.Spec {
	spec := swarmctl.Spec{
		Hosts:          hosts,
		AddressPool:    m.AddressPool.ValueString(),
		KafkaImage:     m.KafkaImage.ValueString(),
		WorkloadsImage: m.WorkloadsImage.ValueString(),
		RemoveUnlisted: m.awsMode(),
	}
	m.ImageArchives.ElementsAs(ctx, &spec.Archives, false)
	if m.awsMode() {
		spec.IDLabel = m.ID.ValueString()
	} else if prior != nil {
		spec.ClusterID = prior.ID.ValueString()
	}
	return spec
}

// priorOf is what an earlier apply left (nil: none), for swarmctl.
func priorOf(m *swarmModel) swarmctl.Prior {
	if m == nil {
		return swarmctl.Prior{}
	}
	p := swarmctl.Prior{NodeIDs: idsOf(m.NodeIDs), HostKeys: stringsOf(m.HostKeys)}
	for _, h := range m.hostModels() {
		p.Hosts = append(p.Hosts, swarmspec.Host{Address: h.Address.ValueString(), Role: h.Role.ValueString(),
			Socket: h.DockerSocket.ValueString()})
	}
	return p
}

// fillUnknown replaces still-unknown computed values with empty ones, so a
// partly created swarm can be saved in state.
func fillUnknown(m *swarmModel) {
	for _, s := range []*types.String{&m.NetworkID, &m.ManagerAddress, &m.SecurityGroup, &m.RegistryURL} {
		if s.IsUnknown() {
			*s = types.StringValue("")
		}
	}
	// Credentials not made yet: null, which the next plan makes.
	for _, s := range []*types.String{&m.KafkaCredentials, &m.CACertificate, &m.ReportProperties, &m.RegistryProperties} {
		if s.IsUnknown() {
			*s = types.StringNull()
		}
	}
	if m.Hosts.IsUnknown() {
		m.Hosts = hostList(nil)
	}
	if m.Instances.IsUnknown() {
		m.Instances = instanceList(nil)
	}
	if !m.awsMode() {
		m.Instances = types.ListNull(instanceType)
		m.SecurityGroup = types.StringNull()
	} else {
		a := m.awsConfig()
		for _, s := range []*types.String{&a.AMI, &a.SubnetID, &a.KeyName} {
			if s.IsUnknown() {
				*s = types.StringValue("")
			}
		}
		m.AWS = awsObject(a)
	}
	for _, mp := range []*types.Map{&m.NodeIDs, &m.Services, &m.HostKeys} {
		if mp.IsUnknown() {
			*mp = types.MapValueMust(types.StringType, map[string]attr.Value{})
		}
	}
	if m.NodesByRole.IsUnknown() {
		m.NodesByRole = types.MapValueMust(types.ListType{ElemType: types.StringType}, map[string]attr.Value{})
	}
}

// --- plan ---------------------------------------------------------------

func (r *swarmResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	validateJVMResources(ctx, req.Config, swarmRoles, &resp.Diagnostics)
	var caCfg types.Object
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("ca"), &caCfg)...)
	if fullyKnown(ctx, req.Config, path.Root("ca"), types.ObjectType{}) {
		if ca, err := userCA(ctx, caCfg); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("ca"), "Invalid CA", err.Error())
		} else if ca != nil {
			if err := pki.CheckCA(*ca); err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("ca"), "Invalid CA", err.Error()+": give a CA certificate and its own private key")
			}
		}
	}
	var enabled types.Bool
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("producer").AtName("enabled"), &enabled)...)
	producerOn := enabled.IsNull() || enabled.IsUnknown() || enabled.ValueBool()
	upstream := validateUpstream(ctx, req.Config, &resp.Diagnostics)
	needWhy, needOtherwise := producerNodeUse(producerOn, upstream)

	var awsCfg types.Object
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("aws"), &awsCfg)...)
	var hostsCfg types.List
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("hosts"), &hostsCfg)...)
	switch {
	case awsCfg.IsUnknown() || hostsCfg.IsUnknown():
	case awsCfg.IsNull() && hostsCfg.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("hosts"), "No nodes",
			"Set hosts (machines you already have) or aws (EC2 instances the swarm creates).")
		return
	case !awsCfg.IsNull() && !hostsCfg.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("aws"), "Both hosts and aws",
			"hosts lists machines you already have and aws creates EC2 instances; set one of them, not both.")
		return
	}
	if !awsCfg.IsNull() && !awsCfg.IsUnknown() {
		validateAWS(ctx, req.Config, needWhy, needOtherwise, &resp.Diagnostics)
		var port types.Int64
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("schema_registry_port"), &port)...)
		if !port.IsNull() && !port.IsUnknown() && port.ValueInt64() != swarmspec.DefaultRegistryPort {
			resp.Diagnostics.AddAttributeError(path.Root("schema_registry_port"), "Port fixed on EC2",
				fmt.Sprintf("On EC2 the security group opens the registry's default port %d to aws.consumer_cidr_blocks: keep it.",
					swarmspec.DefaultRegistryPort))
		}
		return
	}
	if !fullyKnown(ctx, req.Config, path.Root("hosts"), types.ListType{}) {
		return
	}
	var m swarmModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.Hosts.IsNull() {
		return
	}
	hosts, err := m.hosts()
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("hosts"), "Invalid hosts", err.Error())
		return
	}
	if needWhy != "" && !slices.ContainsFunc(hosts, func(h swarmspec.Host) bool { return h.Role == swarmspec.RoleProducer }) {
		resp.Diagnostics.AddAttributeError(path.Root("hosts"), "No producer host",
			fmt.Sprintf("%s but no host has role \"producer\": add one%s.", needWhy, needOtherwise))
	}
}

func (r *swarmResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || r.pd == nil {
		return
	}
	var awsPlan types.Object
	resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, path.Root("aws"), &awsPlan)...)
	if awsPlan.IsNull() && !fullyKnown(ctx, req.Plan, path.Root("hosts"), types.ListType{}) {
		resp.Diagnostics.Append(defaultImage(ctx, req.Config, &resp.Plan, "kafka_image", r.pd.kafkaImage)...)
		resp.Diagnostics.Append(defaultImage(ctx, req.Config, &resp.Plan, "workloads_image", r.pd.workloadsImage)...)
		return
	}
	var plan, config swarmModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if config.KafkaImage.IsNull() {
		plan.KafkaImage = types.StringValue(r.pd.kafkaImage)
	}
	if config.WorkloadsImage.IsNull() {
		plan.WorkloadsImage = types.StringValue(r.pd.workloadsImage)
	}
	plan.HubBootstrap = types.StringValue(swarmspec.Bootstrap(swarmspec.HubService))
	if !plan.awsMode() {
		if hosts, err := plan.hosts(); err == nil {
			plan.ManagerAddress = types.StringValue(swarmspec.ManagerOf(hosts).Address)
			plan.RegistryURL = types.StringValue(swarmspec.RegistryURL(plan.KafkaAuth.ValueBool(),
				swarmspec.HostPart(swarmspec.ManagerOf(hosts).Address), int(plan.RegistryPort.ValueInt64())))
		}
		plan.Instances = types.ListNull(instanceType)
		plan.SecurityGroup = types.StringNull()
	}

	if !req.State.Raw.IsNull() {
		var state swarmModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if resp.Diagnostics.HasError() {
			return
		}
		hostsChanged := false
		if plan.awsMode() {
			var replace bool
			hostsChanged, replace = planFleet(&plan, &state)
			if replace {
				resp.RequiresReplace = append(resp.RequiresReplace, path.Root("aws"))
			}
		} else {
			if !plan.ManagerAddress.IsUnknown() && plan.ManagerAddress.ValueString() != state.ManagerAddress.ValueString() {
				resp.RequiresReplace = append(resp.RequiresReplace, path.Root("hosts"))
			}
			hostsChanged = !slices.Equal(hostKeysOf(plan.hostModels()), hostKeysOf(state.hostModels()))
		}
		if hostsChanged || hasDrift(state.NodeIDs) {
			plan.NodeIDs = types.MapUnknown(types.StringType)
			plan.NodesByRole = types.MapUnknown(types.ListType{ElemType: types.StringType})
			plan.HostKeys = types.MapUnknown(types.StringType)
		}
		// kafka_auth adds or removes the access job.
		// So does upstream, which puts the relay in the producer's place.
		servicesChanged := !plan.Hub.Equal(state.Hub) || !plan.Producer.Equal(state.Producer) || !plan.Upstream.Equal(state.Upstream) ||
			!plan.KafkaImage.Equal(state.KafkaImage) || !plan.WorkloadsImage.Equal(state.WorkloadsImage) ||
			plan.KafkaAuth.ValueBool() != state.KafkaAuth.ValueBool() || !plan.RegistryPort.Equal(state.RegistryPort)
		for _, role := range swarmRoles { // as numbers: 0.05 configured and 0.05 imported differ in precision
			servicesChanged = servicesChanged || roleResources(ctx, plan.Resources, role.name) != roleResources(ctx, state.Resources, role.name)
		}
		if servicesChanged || hasDrift(state.Services) || hostsChanged {
			plan.Services = types.MapUnknown(types.StringType)
		}
		if state.NetworkID.ValueString() == driftedID {
			plan.NetworkID = types.StringUnknown()
		}
		planRegistry(&plan, &state)
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}

// planRegistry plans the registry's computed attributes on an update: the
// URL follows the manager's address, kafka_auth and the port; the reader's
// properties follow the URL and the credentials, and stay as they are
// while those do.
func planRegistry(plan, state *swarmModel) {
	if mgr := plan.ManagerAddress; !mgr.IsUnknown() && mgr.ValueString() != "" {
		plan.RegistryURL = types.StringValue(swarmspec.RegistryURL(plan.KafkaAuth.ValueBool(),
			swarmspec.HostPart(mgr.ValueString()), int(plan.RegistryPort.ValueInt64())))
	}
	if !plan.RegistryURL.IsUnknown() && plan.RegistryURL.Equal(state.RegistryURL) && plan.KafkaAuth.Equal(state.KafkaAuth) &&
		!plan.KafkaCredentials.IsUnknown() && plan.KafkaCredentials.Equal(state.KafkaCredentials) && !state.RegistryProperties.IsNull() {
		plan.RegistryProperties = state.RegistryProperties
	}
}

func hostKeysOf(hs []hostModel) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Address.ValueString()+"|"+h.Role.ValueString()+"|"+h.DockerSocket.ValueString()+"|"+h.AdvertiseAddress.ValueString())
	}
	return out
}

// --- create, update, delete ----------------------------------------------

// privateKey names the swarm's private state: the swarmctl.Record of what
// its applies did, which destroy undoes.
const privateKey = "minibroker"

func unmarshalRecord(b []byte) swarmctl.Record {
	var rec swarmctl.Record
	if len(b) > 0 {
		_ = json.Unmarshal(b, &rec)
	}
	return rec
}

func marshalRecord(rec swarmctl.Record) []byte { b, _ := json.Marshal(rec); return b }

func (r *swarmResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan swarmModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel, diags := withTimeout(ctx, plan.Timeouts.Create, swarmCreateTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	var rec swarmctl.Record
	var err error
	if plan.awsMode() {
		err = r.createOnEC2(ctx, &plan, &rec) // swarm_aws.go
	} else {
		err = r.converge(ctx, &plan, nil, &rec)
	}
	if plan.ID.IsUnknown() || (plan.awsMode() && plan.SecurityGroup.IsUnknown()) {
		// Nothing was created: no state.
		resp.Diagnostics.AddError("Cannot create swarm", err.Error())
		return
	}
	// Keep what exists in state even on failure, so destroy removes it.
	fillUnknown(&plan)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKey, marshalRecord(rec))...)
	if err != nil {
		resp.Diagnostics.AddError("Cannot create swarm", err.Error())
	}
}

func (r *swarmResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state swarmModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel, diags := withTimeout(ctx, plan.Timeouts.Update, swarmUpdateTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	b, diags := req.Private.GetKey(ctx, privateKey)
	resp.Diagnostics.Append(diags...)
	rec := unmarshalRecord(b)

	err := r.converge(ctx, &plan, &state, &rec)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKey, marshalRecord(rec))...)
	if err != nil {
		resp.Diagnostics.AddError("Cannot update swarm", err.Error())
		if plan.awsMode() && !plan.Instances.IsUnknown() {
			// Instances started on the way stay in state; the next
			// refresh puts the rest right.
			state.Instances = plan.Instances
			resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		}
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
}

// converge brings the nodes to the plan: on EC2 the fleet first; then the
// swarm formed, the network and the services in place. It fills the
// plan's computed attributes with what it learned, also on failure.
func (r *swarmResource) converge(ctx context.Context, plan, prior *swarmModel, rec *swarmctl.Record) error {
	// First, so that the state has them whatever fails later.
	if err := plan.ensureCredentials(); err != nil {
		return err
	}
	var fleet *provisioned
	if plan.awsMode() {
		var err error
		if fleet, err = r.provision(ctx, plan, prior); err != nil {
			return err
		}
	}
	hosts, err := plan.hosts()
	if err != nil {
		return err
	}
	desired, err := r.desired(ctx, *plan)
	if err != nil {
		return err
	}
	mgr, formed, err := r.pd.ctl.Form(ctx, plan.formSpec(ctx, hosts, prior), priorOf(prior), rec)
	if formed.ClusterID != "" {
		if !plan.awsMode() {
			plan.ID = types.StringValue(formed.ClusterID)
		}
		plan.ManagerAddress = types.StringValue(swarmspec.ManagerOf(hosts).Address)
		plan.HubBootstrap = types.StringValue(swarmspec.Bootstrap(swarmspec.HubService))
		if err := plan.setRegistry(); err != nil {
			return err
		}
		fillUnknown(plan)
	}
	if formed.NodeIDs != nil {
		plan.setNodes(hosts, formed.NodeIDs)
		plan.HostKeys = stringMap(formed.HostKeys)
	}
	if err != nil {
		return err
	}
	if fleet != nil && len(fleet.surplus) > 0 {
		tflog.Info(ctx, "terminating instances that left the swarm", map[string]any{"instances": fleet.surplus})
		if err := fleet.client.Terminate(ctx, fleet.surplus); err != nil {
			return err
		}
	}
	netID, err := mgr.EnsureNetwork(ctx, plan.Network.ValueString(), plan.EncryptNetwork.ValueBool())
	if err != nil {
		return err
	}
	plan.NetworkID = types.StringValue(netID)
	ids, err := mgr.Deploy(ctx, swarmspec.OwnerSwarm, desired)
	plan.Services = idMap(ids)
	return err
}

func (r *swarmResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state swarmModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel, diags := withTimeout(ctx, state.Timeouts.Delete, swarmDeleteTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	if state.awsMode() {
		// The swarm goes with its instances.
		if err := destroyFleet(ctx, &state); err != nil {
			resp.Diagnostics.AddError("Cannot destroy swarm", err.Error())
		}
		return
	}
	b, diags := req.Private.GetKey(ctx, privateKey)
	resp.Diagnostics.Append(diags...)
	hosts, err := state.hosts()
	if err == nil {
		err = r.pd.ctl.Destroy(ctx, swarmctl.Teardown{Hosts: hosts, Network: state.Network.ValueString(),
			NodeIDs: idsOf(state.NodeIDs), HostKeys: stringsOf(state.HostKeys)}, unmarshalRecord(b))
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot destroy swarm", err.Error())
	}
}

// --- read and import ----------------------------------------------------

func (r *swarmResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	// The import id is the manager's SSH address; Read fills in the rest.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("manager_address"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), importPending)...)
}

func (r *swarmResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state swarmModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel, diags := withTimeout(ctx, state.Timeouts.Read, swarmReadTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}

	importing := state.ID.ValueString() == importPending
	if state.awsMode() && !importing {
		managerAlive, anything, err := readFleet(ctx, &state)
		if err != nil {
			resp.Diagnostics.AddError("Cannot read the swarm's EC2 instances", err.Error())
			return
		}
		if !anything {
			tflog.Warn(ctx, "nothing of the swarm is left on EC2; planning to create it again", map[string]any{"id": state.ID.ValueString()})
			resp.State.RemoveResource(ctx)
			return
		}
		if !managerAlive {
			// The next plan replaces the swarm (see planFleet).
			tflog.Warn(ctx, "the manager instance is gone", map[string]any{"id": state.ID.ValueString()})
			resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
			return
		}
		if !state.formed() {
			// An interrupted create (tainted, so replaced): no swarm to read.
			resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
			return
		}
	}
	mgrAddr := state.ManagerAddress.ValueString()
	mgr, err := r.pd.ctl.OpenManager(ctx, mgrAddr, stringsOf(state.HostKeys)[mgrAddr])
	if err != nil {
		resp.Diagnostics.AddError("Cannot read swarm", err.Error())
		return
	}
	info, err := mgr.Swarm(ctx)
	switch {
	case err != nil && importing:
		resp.Diagnostics.AddError("Cannot import swarm", fmt.Sprintf("%s: %v", mgrAddr, err))
		return
	case errors.Is(err, swarmctl.ErrNotInSwarm):
		tflog.Warn(ctx, "the manager is no longer in a swarm; planning to create it again", map[string]any{"manager": mgrAddr, "error": err.Error()})
		resp.State.RemoveResource(ctx)
		return
	case err != nil:
		// An engine restarting or unreachable says nothing of the swarm:
		// keep it in state rather than plan a second one.
		resp.Diagnostics.AddError("Cannot read swarm", fmt.Sprintf("%s: %v; the swarm stays in state: try again once the manager's Docker engine answers", mgrAddr, err))
		return
	}
	if importing {
		if err := r.restore(ctx, mgr, info, &state); err != nil {
			resp.Diagnostics.AddError("Cannot import swarm", err.Error())
			return
		}
	} else if !info.Is(state.ID.ValueString()) {
		tflog.Warn(ctx, "the manager runs another swarm; planning to create it again", map[string]any{"swarm": info.ClusterID})
		resp.State.RemoveResource(ctx)
		return
	}

	hosts, err := state.hosts()
	if err != nil {
		resp.Diagnostics.AddError("Cannot read swarm nodes", err.Error())
		return
	}
	ids, err := mgr.ReadNodes(ctx, hosts, idsOf(state.NodeIDs))
	if err != nil {
		resp.Diagnostics.AddError("Cannot read swarm nodes", err.Error())
		return
	}
	state.setNodes(hosts, ids)
	netID, err := mgr.NetworkID(ctx, state.Network.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot read network", err.Error())
		return
	}
	state.NetworkID = idValue(netID)
	if state.KafkaAuth.ValueBool() && state.KafkaCredentials.IsNull() {
		// Imported: the credentials are in no label, so the specs cannot
		// be compared. The services are taken as they run; the next apply
		// makes new credentials and puts every service right.
		ids, err := mgr.ServiceIDs(ctx, swarmspec.OwnerSwarm)
		if err != nil {
			resp.Diagnostics.AddError("Cannot read services", err.Error())
			return
		}
		state.Services = idMap(ids)
		resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
		return
	}
	desired, err := r.desired(ctx, state)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read swarm", err.Error())
		return
	}
	svc, err := mgr.Observe(ctx, swarmspec.OwnerSwarm, desired)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read services", err.Error())
		return
	}
	state.Services = idMap(svc)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// restore rebuilds an imported state from the settings label on the hub;
// the nodes' ids are then found by address.
func (r *swarmResource) restore(ctx context.Context, mgr *swarmctl.Manager, info swarmctl.Info, m *swarmModel) error {
	settings, ok, err := mgr.Settings(ctx, swarmspec.OwnerSwarm)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no %s service on %s: this swarm was not created by minibroker_swarm", swarmspec.HubService, mgr.Address)
	}
	if err := r.settings.decode(ctx, settings, m); err != nil {
		return fmt.Errorf("service %s: %w", swarmspec.HubService, err)
	}
	m.ID = types.StringValue(info.ClusterID)
	if m.awsMode() {
		m.ID = types.StringValue(info.IDLabel)
	}
	m.HostKeys = optHostKey(mgr)
	m.HubBootstrap = types.StringValue(swarmspec.Bootstrap(swarmspec.HubService))
	m.NodeIDs = types.MapValueMust(types.StringType, map[string]attr.Value{})
	if !m.awsMode() {
		m.Instances = types.ListNull(instanceType)
		m.SecurityGroup = types.StringNull()
		return m.setRegistry()
	}
	// The instances are found by the id they are tagged with.
	if _, _, err := readFleet(ctx, m); err != nil {
		return err
	}
	if m.SecurityGroup.ValueString() == "" {
		return fmt.Errorf("swarm %s needs exactly one security group tagged %s=%s", m.ID.ValueString(), awsfleet.TagSwarm, m.ID.ValueString())
	}
	return m.setRegistry()
}

// optHostKey is the manager's host key as the host_keys map keeps it.
func optHostKey(mgr *swarmctl.Manager) types.Map {
	keys := map[string]string{}
	if mgr.HostKey != "" {
		keys[mgr.Address] = mgr.HostKey
	}
	return stringMap(keys)
}
