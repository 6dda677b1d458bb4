package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Defaults of the producer, as in the original deployment: one Rubin visit
// of 10,000 alerts every 39 s.
const (
	defaultAlertsPerVisit = 10000
	defaultInterval       = "39s"
	defaultCutoutBytes    = 26400
)

var hubAttrTypes = map[string]attr.Type{
	"heap_mb":           types.Int64Type,
	"partitions":        types.Int64Type,
	"retention_minutes": types.Int64Type,
	"properties":        types.MapType{ElemType: types.StringType},
}

var producerAttrTypes = map[string]attr.Type{
	"enabled":          types.BoolType,
	"alerts_per_visit": types.Int64Type,
	"interval":         types.StringType,
	"visits":           types.Int64Type,
	"cutout_bytes":     types.Int64Type,
	"parallel":         types.Int64Type,
	"seed":             types.Int64Type,
	"replay_files":     types.ListType{ElemType: types.StringType},
}

func defaultHub() types.Object {
	return types.ObjectValueMust(hubAttrTypes, map[string]attr.Value{
		"heap_mb":           types.Int64Value(swarmspec.DefaultKafkaHeapMB),
		"partitions":        types.Int64Value(swarmspec.DefaultPartitions),
		"retention_minutes": types.Int64Value(swarmspec.DefaultRetentionMinutes),
		"properties":        types.MapNull(types.StringType),
	})
}

func defaultProducer() types.Object {
	return types.ObjectValueMust(producerAttrTypes, map[string]attr.Value{
		"enabled":          types.BoolValue(true),
		"alerts_per_visit": types.Int64Value(defaultAlertsPerVisit),
		"interval":         types.StringValue(defaultInterval),
		"visits":           types.Int64Value(0),
		"cutout_bytes":     types.Int64Value(defaultCutoutBytes),
		"parallel":         types.Int64Value(1),
		"seed":             types.Int64Value(1),
		"replay_files":     types.ListNull(types.StringType),
	})
}

func swarmSchema(ctx context.Context) schema.Schema {
	return schema.Schema{
		MarkdownDescription: "A Docker Swarm formed from existing hosts or from EC2 instances it provisions, with the mini-broker's hub Kafka on the " +
			"manager and the alert producer on the producer node.\n\n" +
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
				MarkdownDescription: "With `hosts`, the swarm's cluster id; with `aws`, `mb-` and 12 hex digits, the value of the `minibroker:swarm` tag on everything created (the swarm carries it as its `minibroker.id` label).",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"hosts": schema.ListNestedAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "The machines, unless `aws` provisions them (then this lists the instances). Exactly one `manager` (it runs the hub Kafka and the swarm's " +
					"control plane); one `producer` while the producer is enabled (at most one in any case); `filter` hosts " +
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
						Default:             stringdefault.StaticString("/var/run/docker.sock"),
						MarkdownDescription: "Path of the Docker Engine's unix socket on the host. Default `/var/run/docker.sock`.",
					},
					"advertise_address": schema.StringAttribute{
						Optional: true,
						MarkdownDescription: "Address other nodes reach this one at for Swarm traffic (2377/tcp, " +
							"7946/tcp+udp, 4789/udp). Default: the host part of `address`.",
					},
				}},
			},
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
			"address_pool": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "CIDR the swarm takes overlay subnets from (`docker swarm init " +
					"--default-addr-pool`), in /20 networks so that hundreds of tasks fit. Default 10.0.0.0/8. " +
					"Only used when the swarm is created.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"kafka_image": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Image of the hub Kafka. Default: the provider's `kafka_image`.",
			},
			"workloads_image": schema.StringAttribute{
				Optional: true, Computed: true,
				MarkdownDescription: "Image of the producer. Default: the provider's `workloads_image`.",
			},
			"image_archives": schema.ListAttribute{
				Optional:    true,
				ElementType: types.StringType,
				MarkdownDescription: "Local `docker save` archives (e.g. from `make image`) loaded onto every node " +
					"that runs one of their images: Kafka images onto the manager and filter nodes, the workloads " +
					"image onto producer, filter and consumer nodes. A node that already has the image is skipped, " +
					"so no registry is needed. Images loaded here are removed again on destroy.",
			},
			"hub": schema.SingleNestedAttribute{
				Optional: true, Computed: true,
				Default:             objectdefault.StaticValue(defaultHub()),
				MarkdownDescription: "The hub Kafka (KRaft, one broker+controller) on the manager node.",
				Attributes: map[string]schema.Attribute{
					"heap_mb": schema.Int64Attribute{Optional: true, Computed: true,
						Default:             int64default.StaticInt64(swarmspec.DefaultKafkaHeapMB),
						Validators:          []validator.Int64{int64validator.AtLeast(128)},
						MarkdownDescription: "JVM heap in MiB. Default 1024."},
					"partitions": schema.Int64Attribute{Optional: true, Computed: true,
						Default:             int64default.StaticInt64(swarmspec.DefaultPartitions),
						Validators:          []validator.Int64{int64validator.Between(1, 1024)},
						MarkdownDescription: "Partitions of the alert topic and of topics created on first use. Default 4."},
					"retention_minutes": schema.Int64Attribute{Optional: true, Computed: true,
						Default:             int64default.StaticInt64(swarmspec.DefaultRetentionMinutes),
						Validators:          []validator.Int64{int64validator.AtLeast(1)},
						MarkdownDescription: "How long alerts are kept (`log.retention.minutes`). Default 60."},
					"properties": schema.MapAttribute{Optional: true, ElementType: types.StringType,
						MarkdownDescription: "Extra `server.properties` entries; they win over the provider's."},
				},
			},
			"producer": schema.SingleNestedAttribute{
				Optional: true, Computed: true,
				Default:             objectdefault.StaticValue(defaultProducer()),
				MarkdownDescription: "The alert producer on the producer node. Its settings update in place.",
				Attributes: map[string]schema.Attribute{
					"enabled": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
						MarkdownDescription: "Run the producer; false removes its service and keeps the rest. Default true."},
					"alerts_per_visit": schema.Int64Attribute{Optional: true, Computed: true,
						Default:             int64default.StaticInt64(defaultAlertsPerVisit),
						Validators:          []validator.Int64{int64validator.AtLeast(1)},
						MarkdownDescription: "Alerts in each visit. Default 10000, as a Rubin visit."},
					"interval": schema.StringAttribute{Optional: true, Computed: true,
						Default:             stringdefault.StaticString(defaultInterval),
						Validators:          []validator.String{durationValidator{}},
						MarkdownDescription: "Time between visits, a Go duration. Default `39s`, as Rubin."},
					"visits": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(0),
						Validators:          []validator.Int64{int64validator.AtLeast(0)},
						MarkdownDescription: "Visits to send, then stop; 0 (the default) sends forever."},
					"cutout_bytes": schema.Int64Attribute{Optional: true, Computed: true,
						Default:             int64default.StaticInt64(defaultCutoutBytes),
						Validators:          []validator.Int64{int64validator.AtLeast(0)},
						MarkdownDescription: "Bytes of each of the 3 cutouts of a synthetic alert. Default 26400, which gives ~80 KB alerts; 0 gives small ones."},
					"parallel": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(1),
						Validators:          []validator.Int64{int64validator.Between(1, 256)},
						MarkdownDescription: "Concurrent senders splitting each visit. Default 1."},
					"seed": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(1),
						MarkdownDescription: "Seed of the synthetic alerts. Default 1."},
					"replay_files": schema.ListAttribute{Optional: true, ElementType: types.StringType,
						MarkdownDescription: "Local Avro container files of real alerts (e.g. Rubin's `fakeAlert.avro`, " +
							"each at most 500 KB) sent in turn instead of synthetic alerts; they reach the node as Swarm configs."},
				},
			},
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
				MarkdownDescription: "Service ids of the hub and the producer, by service name.",
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
