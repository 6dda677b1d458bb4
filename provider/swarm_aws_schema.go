package provider

import (
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
)

// Defaults of the aws block: the original deployment's fleet.
const (
	defaultInstanceType   = "m4.4xlarge"
	defaultFilterNodes    = 5
	defaultConsumerNodes  = 5
	defaultRootVolumeGiB  = 100
	defaultRootVolumeType = "gp3"
	defaultNamePrefix     = "minibroker"
	defaultReadyTimeout   = "10m"
	connectPublic         = "public_ip"
	connectPrivate        = "private_ip"
)

type awsModel struct {
	Region          types.String `tfsdk:"region"`
	Profile         types.String `tfsdk:"profile"`
	InstanceType    types.String `tfsdk:"instance_type"`
	ProducerNodes   types.Int64  `tfsdk:"producer_nodes"`
	FilterNodes     types.Int64  `tfsdk:"filter_nodes"`
	ConsumerNodes   types.Int64  `tfsdk:"consumer_nodes"`
	AMI             types.String `tfsdk:"ami"`
	AMISSMParameter types.String `tfsdk:"ami_ssm_parameter"`
	SubnetID        types.String `tfsdk:"subnet_id"`
	KeyName         types.String `tfsdk:"key_name"`
	PublicKey       types.String `tfsdk:"public_key"`
	AdminCIDRBlocks types.List   `tfsdk:"admin_cidr_blocks"`
	RootVolumeSize  types.Int64  `tfsdk:"root_volume_size"`
	RootVolumeType  types.String `tfsdk:"root_volume_type"`
	Tags            types.Map    `tfsdk:"tags"`
	ConnectVia      types.String `tfsdk:"connect_via"`
	NamePrefix      types.String `tfsdk:"name_prefix"`
	ReadyTimeout    types.String `tfsdk:"ready_timeout"`
}

type instanceModel struct {
	ID        types.String `tfsdk:"id"`
	Role      types.String `tfsdk:"role"`
	Index     types.Int64  `tfsdk:"index"`
	PrivateIP types.String `tfsdk:"private_ip"`
	PublicIP  types.String `tfsdk:"public_ip"`
}

var instanceAttrTypes = map[string]attr.Type{
	"id": types.StringType, "role": types.StringType, "index": types.Int64Type,
	"private_ip": types.StringType, "public_ip": types.StringType,
}

var hostAttrTypes = map[string]attr.Type{
	"address": types.StringType, "role": types.StringType,
	"docker_socket": types.StringType, "advertise_address": types.StringType,
}

func awsSchema() schema.SingleNestedAttribute {
	replaceString := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	keepString := []planmodifier.String{stringplanmodifier.UseStateForUnknown(), stringplanmodifier.RequiresReplace()}
	return schema.SingleNestedAttribute{
		Optional: true,
		MarkdownDescription: "Provision the nodes as EC2 instances instead of listing `hosts`: one manager, " +
			"`producer_nodes` producer, `filter_nodes` filter and `consumer_nodes` consumer instances, with a " +
			"security group of their own (SSH from `admin_cidr_blocks` only; Swarm's 2377/tcp, 7946/tcp+udp, " +
			"4789/udp and Kafka's 9092-9093/tcp only between members), IMDSv2 required, encrypted root " +
			"volumes, and cloud-init user data that installs and starts Docker and adds the provider's " +
			"`ssh_user` to the `docker` group. The provider waits for the instances to run and for Docker to " +
			"answer over SSH, then forms the swarm as with `hosts` (the computed `hosts` lists the instances).\n\n" +
			"Credentials and endpoints come the AWS SDK's standard way: environment, shared config and " +
			"profiles, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_EC2` / `AWS_ENDPOINT_URL_SSM`. Everything created " +
			"is tagged `minibroker:swarm = <id>`; destroy terminates the instances and deletes the security " +
			"group and an imported key pair, including leftovers of an interrupted apply found by that tag. " +
			"Changing the node counts, `admin_cidr_blocks`, `tags` or `ready_timeout` updates in place (new " +
			"nodes join; removed nodes are drained, leave and are terminated); other changes replace the swarm. " +
			"New instances present SSH host keys nobody has seen: use `host_key_policy = \"trust_on_first_use\"` " +
			"unless your known_hosts file already has them.",
		Attributes: map[string]schema.Attribute{
			"region": schema.StringAttribute{Optional: true, PlanModifiers: replaceString,
				MarkdownDescription: "AWS region. Default: the SDK's (`AWS_REGION`, the profile's region)."},
			"profile": schema.StringAttribute{Optional: true,
				MarkdownDescription: "Shared-config profile to take credentials and region from. Default: the SDK's (`AWS_PROFILE`)."},
			"instance_type": schema.StringAttribute{Optional: true, Computed: true,
				Default: stringdefault.StaticString(defaultInstanceType), PlanModifiers: replaceString,
				MarkdownDescription: "Instance type of every node. Default `m4.4xlarge` (16 vCPU, 64 GiB), as the original deployment."},
			"producer_nodes": schema.Int64Attribute{Optional: true, Computed: true,
				Default: int64default.StaticInt64(1), Validators: []validator.Int64{int64validator.Between(0, 1)},
				MarkdownDescription: "Producer instances, 0 or 1. Default 1; 0 needs `producer = { enabled = false }`."},
			"filter_nodes": schema.Int64Attribute{Optional: true, Computed: true,
				Default: int64default.StaticInt64(defaultFilterNodes), Validators: []validator.Int64{int64validator.Between(0, 100)},
				MarkdownDescription: "Filter instances (each can hold a mirror and its filter groups). Default 5."},
			"consumer_nodes": schema.Int64Attribute{Optional: true, Computed: true,
				Default: int64default.StaticInt64(defaultConsumerNodes), Validators: []validator.Int64{int64validator.Between(0, 100)},
				MarkdownDescription: "Consumer instances. Default 5."},
			"ami": schema.StringAttribute{Optional: true, Computed: true, PlanModifiers: keepString,
				MarkdownDescription: "AMI of every node. Default: read from `ami_ssm_parameter` when the swarm is " +
					"created, then kept. The AMI must have cloud-init, apt and sshd (Ubuntu does)."},
			"ami_ssm_parameter": schema.StringAttribute{Optional: true, Computed: true,
				Default: stringdefault.StaticString(awsfleet.DefaultAMIParameter),
				MarkdownDescription: "Public SSM parameter holding the default AMI id. Default Canonical's current " +
					"Ubuntu 24.04 LTS: `" + awsfleet.DefaultAMIParameter + "`."},
			"subnet_id": schema.StringAttribute{Optional: true, Computed: true, PlanModifiers: keepString,
				MarkdownDescription: "Subnet of every node (the security group goes into its VPC). Default: the default VPC's default subnet in the first availability zone."},
			"key_name": schema.StringAttribute{Optional: true, Computed: true, PlanModifiers: keepString,
				MarkdownDescription: "Existing EC2 key pair of the nodes. Exactly one of `key_name` and `public_key`; with `public_key` this is the name of the imported pair."},
			"public_key": schema.StringAttribute{Optional: true, PlanModifiers: replaceString,
				MarkdownDescription: "OpenSSH public key imported as a key pair `<name_prefix>-<id>` that the swarm owns and deletes on destroy. It must match the provider's `ssh_private_key`."},
			"admin_cidr_blocks": schema.ListAttribute{Required: true, ElementType: types.StringType,
				Validators:          []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(cidrValidator{})},
				MarkdownDescription: "IPv4 CIDR blocks allowed to reach the nodes' SSH port, e.g. your workstation's `203.0.113.7/32` or your VPN's range. Updates in place."},
			"root_volume_size": schema.Int64Attribute{Optional: true, Computed: true,
				Default: int64default.StaticInt64(defaultRootVolumeGiB), Validators: []validator.Int64{int64validator.Between(8, 16384)},
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()},
				MarkdownDescription: "Root volume size in GiB (encrypted, deleted with the instance). Default 100."},
			"root_volume_type": schema.StringAttribute{Optional: true, Computed: true,
				Default: stringdefault.StaticString(defaultRootVolumeType), PlanModifiers: replaceString,
				Validators:          []validator.String{stringvalidator.OneOf("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")},
				MarkdownDescription: "Root volume type. Default `gp3`."},
			"tags": schema.MapAttribute{Optional: true, ElementType: types.StringType,
				MarkdownDescription: "Extra tags on every instance, volume, security group and key pair. Updates in place."},
			"connect_via": schema.StringAttribute{Optional: true, Computed: true,
				Default: stringdefault.StaticString(connectPublic), PlanModifiers: replaceString,
				Validators: []validator.String{stringvalidator.OneOf(connectPublic, connectPrivate)},
				MarkdownDescription: "Which address the provider (and `hosts`, `manager_address`) use for SSH: " +
					"`public_ip` (default; instances get public IPs) or `private_ip` for a workstation inside the " +
					"VPC, on a VPN, or behind the provider's `bastion`. Swarm traffic always uses private IPs."},
			"name_prefix": schema.StringAttribute{Optional: true, Computed: true,
				Default: stringdefault.StaticString(defaultNamePrefix), PlanModifiers: replaceString,
				Validators: []validator.String{stringvalidator.RegexMatches(reNamePrefix,
					"letters, digits and dashes, starting with a letter, at most 32 characters")},
				MarkdownDescription: "Prefix of the `Name` tags (`<prefix>-filter-3`) and the security group's name. Default `minibroker`."},
			"ready_timeout": schema.StringAttribute{Optional: true, Computed: true,
				Default: stringdefault.StaticString(defaultReadyTimeout), Validators: []validator.String{durationValidator{}},
				MarkdownDescription: "How long to wait for new instances to run and for Docker to answer on them over SSH (cloud-init installs it on first boot). Default `10m`."},
		},
	}
}

func instancesSchema() schema.ListNestedAttribute {
	return schema.ListNestedAttribute{
		Computed:            true,
		MarkdownDescription: "With `aws`: the EC2 instances, by role and index.",
		NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
			"id":         schema.StringAttribute{Computed: true, MarkdownDescription: "Instance id."},
			"role":       schema.StringAttribute{Computed: true, MarkdownDescription: "`manager`, `producer`, `filter` or `consumer`."},
			"index":      schema.Int64Attribute{Computed: true, MarkdownDescription: "Number within the role."},
			"private_ip": schema.StringAttribute{Computed: true, MarkdownDescription: "Private IPv4 address."},
			"public_ip":  schema.StringAttribute{Computed: true, MarkdownDescription: "Public IPv4 address, if any."},
		}},
	}
}
