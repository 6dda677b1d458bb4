package provider

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// This file is minibroker_swarm's aws block: its schema and model, and its
// translation to internal/awsfleet (the instances become the swarm's
// hosts) and back.

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

var reNamePrefix = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{0,31}$`)

// awsModel is the aws block: the instances to run (awsInstancesModel),
// where they go and how they are reached (awsAccessModel), and how they
// are named and waited for.
type awsModel struct {
	awsInstancesModel
	awsAccessModel
	Tags         types.Map    `tfsdk:"tags"`
	NamePrefix   types.String `tfsdk:"name_prefix"`
	ReadyTimeout types.String `tfsdk:"ready_timeout"`
}

// awsConfig reads the aws block (zero when there is none).
func (m swarmModel) awsConfig() awsModel {
	var a awsModel
	m.AWS.As(context.Background(), &a, basetypes.ObjectAsOptions{})
	return a
}

func awsObject(a awsModel) types.Object {
	o, _ := types.ObjectValueFrom(context.Background(), awsAttrTypes, a)
	return o
}

// awsInstancesModel is what instances the block asks for.
type awsInstancesModel struct {
	InstanceType    types.String `tfsdk:"instance_type"`
	ProducerNodes   types.Int64  `tfsdk:"producer_nodes"`
	FilterNodes     types.Int64  `tfsdk:"filter_nodes"`
	ConsumerNodes   types.Int64  `tfsdk:"consumer_nodes"`
	AMI             types.String `tfsdk:"ami"`
	AMISSMParameter types.String `tfsdk:"ami_ssm_parameter"`
	RootVolumeSize  types.Int64  `tfsdk:"root_volume_size"`
	RootVolumeType  types.String `tfsdk:"root_volume_type"`
}

// slots lists the nodes the block asks for.
func (a awsInstancesModel) slots() []awsfleet.Slot {
	out := []awsfleet.Slot{{Role: swarmspec.RoleManager}}
	for _, rc := range []struct {
		role string
		n    types.Int64
	}{{swarmspec.RoleProducer, a.ProducerNodes}, {swarmspec.RoleFilter, a.FilterNodes}, {swarmspec.RoleConsumer, a.ConsumerNodes}} {
		for i := range int(rc.n.ValueInt64()) {
			out = append(out, awsfleet.Slot{Role: rc.role, Index: i})
		}
	}
	return out
}

// awsAccessModel is where the instances go and how they are reached.
type awsAccessModel struct {
	Region          types.String `tfsdk:"region"`
	Profile         types.String `tfsdk:"profile"`
	SubnetID        types.String `tfsdk:"subnet_id"`
	KeyName         types.String `tfsdk:"key_name"`
	PublicKey       types.String `tfsdk:"public_key"`
	AdminCIDRBlocks types.List   `tfsdk:"admin_cidr_blocks"`
	AdminAnywhere   types.Bool   `tfsdk:"allow_admin_from_anywhere"`
	ConsumerCIDRs   types.List   `tfsdk:"consumer_cidr_blocks"`
	ConnectVia      types.String `tfsdk:"connect_via"`
}

// client builds an EC2/SSM client the SDK's standard way, with the block's
// region and profile when set.
func (a awsAccessModel) client(ctx context.Context) (*awsfleet.Client, error) {
	var opts []func(*config.LoadOptions) error
	if r := a.Region.ValueString(); r != "" {
		opts = append(opts, config.WithRegion(r))
	}
	if p := a.Profile.ValueString(); p != "" {
		opts = append(opts, config.WithSharedConfigProfile(p))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("no AWS region: set aws.region, AWS_REGION or a profile's region")
	}
	return awsfleet.New(cfg, awsfleet.WithPollInterval(awsPollInterval), awsfleet.WithLogger(terraformLog)), nil
}

// instanceModel is one element of instances.
type instanceModel struct {
	ID        types.String `tfsdk:"id"`
	Role      types.String `tfsdk:"role"`
	Index     types.Int64  `tfsdk:"index"`
	PrivateIP types.String `tfsdk:"private_ip"`
	PublicIP  types.String `tfsdk:"public_ip"`
}

// instanceType is the type of one element of instances.
var instanceType = instancesSchema().NestedObject.Type()

func (m swarmModel) instanceModels() []instanceModel {
	var ms []instanceModel
	if !m.Instances.IsNull() && !m.Instances.IsUnknown() {
		m.Instances.ElementsAs(context.Background(), &ms, false)
	}
	return ms
}

// instanceList is the instances as state keeps them.
func instanceList(ins []awsfleet.Instance) types.List {
	var ms []instanceModel
	for _, in := range ins {
		ms = append(ms, instanceModel{ID: types.StringValue(in.ID), Role: types.StringValue(in.Role),
			Index: types.Int64Value(int64(in.Index)), PrivateIP: types.StringValue(in.PrivateIP),
			PublicIP: types.StringValue(in.PublicIP)})
	}
	l, _ := types.ListValueFrom(context.Background(), instanceType, ms)
	return l
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
			"is tagged `minibroker:swarm = <id>`, an id derived from the subnet and `name_prefix`: an apply interrupted " +
			"at any point (even killed) leaves nothing the next one does not find, as the next create adopts what " +
			"carries that id, and destroy removes it. A create that finds a swarm of that id whose create finished " +
			"refuses it (it belongs to a Terraform state, maybe another one): give each swarm of a subnet its own " +
			"`name_prefix`. Destroy terminates the instances and deletes the security group and an imported key pair. " +
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
				MarkdownDescription: "Producer instances, 0 or 1. Default 1; 0 needs `producer = { enabled = false }` and no `upstream` (its relay runs there)."},
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
				Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(cidrValidator())},
				MarkdownDescription: "IPv4 CIDR blocks allowed to reach the nodes' SSH port, e.g. your workstation's `203.0.113.7/32` or your VPN's range. " +
					"`0.0.0.0/0` (the whole Internet) is refused unless `allow_admin_from_anywhere` is true. Updates in place."},
			"allow_admin_from_anywhere": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Accept `0.0.0.0/0` in `admin_cidr_blocks`, opening the nodes' SSH port to the whole Internet " +
					"(key authentication only). Default false. Updates in place."},
			"consumer_cidr_blocks": schema.ListAttribute{Optional: true, ElementType: types.StringType,
				Validators: []validator.List{listvalidator.ValueStringsAre(cidrValidator())},
				MarkdownDescription: fmt.Sprintf("IPv4 CIDR blocks allowed to reach the mirrors' external Kafka listener (%d/tcp, SASL_SSL: "+
					"each filter's owner reads their stream there with the credentials in `minibroker_filter_group.readers`) and the schema "+
					"registry (%d/tcp, HTTPS). Default none: nobody outside the swarm reaches Kafka. Mirrors and the registry on EC2 keep "+
					"their default ports. Updates in place.", awsfleet.ConsumerPort, awsfleet.RegistryPort)},
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
				MarkdownDescription: "Prefix of the `Name` tags (`<prefix>-filter-3`) and the security group's name, and with the " +
					"subnet the swarm's identity (its `id`). Two swarms in one subnet need distinct prefixes, e.g. " +
					"`\"mb-${terraform.workspace}\"` for one per workspace. Default `minibroker`."},
			"ready_timeout": schema.StringAttribute{Optional: true, Computed: true,
				Default: stringdefault.StaticString(defaultReadyTimeout), Validators: []validator.String{durationValidator()},
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

// awsAttrTypes are the aws block's attribute types, as its schema says.
var awsAttrTypes = awsSchema().GetType().(types.ObjectType).AttrTypes

// validateAWS checks what the aws block's own validators cannot: one key
// pair, and a producer node while something runs there (producerNodeUse:
// why, and how else to do without it; why is "" when nothing does).
func validateAWS(ctx context.Context, config tfsdk.Config, why, otherwise string, diags *diag.Diagnostics) {
	var keyName, publicKey types.String
	diags.Append(config.GetAttribute(ctx, path.Root("aws").AtName("key_name"), &keyName)...)
	diags.Append(config.GetAttribute(ctx, path.Root("aws").AtName("public_key"), &publicKey)...)
	if !keyName.IsUnknown() && !publicKey.IsUnknown() && keyName.IsNull() == publicKey.IsNull() {
		diags.AddAttributeError(path.Root("aws").AtName("key_name"), "One key pair",
			"Set exactly one of aws.key_name (an existing EC2 key pair) and aws.public_key (an OpenSSH public key "+
				"imported as a key pair the swarm owns); it must match the provider's ssh_private_key.")
	}
	validateAdminCIDRs(ctx, config, diags)
	var n types.Int64
	diags.Append(config.GetAttribute(ctx, path.Root("aws").AtName("producer_nodes"), &n)...)
	if why != "" && !n.IsNull() && !n.IsUnknown() && n.ValueInt64() == 0 {
		diags.AddAttributeError(path.Root("aws").AtName("producer_nodes"), "No producer node",
			fmt.Sprintf("%s but aws.producer_nodes is 0: set it to 1%s.", why, otherwise))
	}
}

// validateAdminCIDRs refuses a block of admin_cidr_blocks that admits
// every address, unless allow_admin_from_anywhere says so.
func validateAdminCIDRs(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) {
	var blocks []types.String
	var anywhere types.Bool
	p := path.Root("aws").AtName("admin_cidr_blocks")
	diags.Append(config.GetAttribute(ctx, path.Root("aws").AtName("allow_admin_from_anywhere"), &anywhere)...)
	if d := config.GetAttribute(ctx, p, &blocks); d.HasError() || anywhere.IsUnknown() || anywhere.ValueBool() {
		return // unknown yet, or allowed
	}
	for i, b := range blocks {
		if pfx, err := netip.ParsePrefix(b.ValueString()); err == nil && pfx.Bits() == 0 {
			diags.AddAttributeError(p.AtListIndex(i), "SSH open to the whole Internet",
				fmt.Sprintf("%s lets every address reach the nodes' SSH port. List your own addresses (e.g. your "+
					"workstation's /32 or your VPN's range), or set aws.allow_admin_from_anywhere = true to accept it.", b.ValueString()))
		}
	}
}

// planFleet plans an update of an EC2 swarm: hosts and instances stay as
// they are when the instances in state are exactly the ones the aws block
// asks for, and become unknown otherwise (nodes to start or remove). A
// swarm that moves onto EC2, or whose manager instance is gone, is
// replaced.
func planFleet(plan, state *swarmModel) (hostsChanged, replace bool) {
	if !state.awsMode() {
		return true, true
	}
	var haveManager bool
	have := map[awsfleet.Slot]bool{}
	for _, in := range state.instanceModels() {
		s := awsfleet.Slot{Role: in.Role.ValueString(), Index: int(in.Index.ValueInt64())}
		have[s] = true
		haveManager = haveManager || s.Role == swarmspec.RoleManager
	}
	if !haveManager {
		return true, true
	}
	plan.ManagerAddress = state.ManagerAddress
	plan.SecurityGroup = state.SecurityGroup
	want := plan.awsConfig().slots()
	same := len(want) == len(have)
	for _, s := range want {
		same = same && have[s]
	}
	if same {
		plan.Hosts = state.Hosts
		plan.Instances = state.Instances
		return false, false
	}
	plan.Hosts = types.ListUnknown(hostType)
	plan.Instances = types.ListUnknown(instanceType)
	return true, false
}

const (
	// awsPollInterval is how often EC2 waiters, and the wait for Docker on
	// new instances, poll.
	awsPollInterval = 2 * time.Second
	// readyParallel bounds the instances waited for at once: each attempt
	// is a new SSH connection (through the bastion, if any, whose sshd
	// refuses bursts of new connections).
	readyParallel = 8
)

// want is the fleet the block asks for; prior is the state before an
// update (nil on create), whose tags are replaced.
func (a awsModel) want(ctx context.Context, swarmID, sshUser string, prior *swarmModel) awsfleet.Want {
	w := awsfleet.Want{
		Spec: awsfleet.Spec{
			SwarmID: swarmID, NamePrefix: a.NamePrefix.ValueString(), InstanceType: a.InstanceType.ValueString(),
			AMI: a.AMI.ValueString(), SubnetID: a.SubnetID.ValueString(), KeyName: a.KeyName.ValueString(),
			RootVolumeSize: int32(a.RootVolumeSize.ValueInt64()), RootVolumeType: a.RootVolumeType.ValueString(),
			PublicIP: a.ConnectVia.ValueString() == connectPublic, UserData: awsfleet.UserData(sshUser),
		},
		AMIParameter: a.AMISSMParameter.ValueString(),
		PublicKey:    a.PublicKey.ValueString(),
		Slots:        a.slots(),
		Fresh:        prior == nil,
	}
	a.Tags.ElementsAs(ctx, &w.Tags, false)
	a.AdminCIDRBlocks.ElementsAs(ctx, &w.AdminCIDRs, false)
	a.ConsumerCIDRs.ElementsAs(ctx, &w.ConsumerCIDRs, false)
	if prior != nil && prior.awsMode() {
		w.OldTags = map[string]string{}
		prior.awsConfig().Tags.ElementsAs(ctx, &w.OldTags, false)
	}
	return w
}

// createOnEC2 creates a swarm on EC2. Its id is the fleet's identity
// (awsfleet.Identity of the subnet and aws.name_prefix), known before
// anything is created: what an earlier create of the same configuration
// left, killed before Terraform saved it, is found by that tag and
// adopted. Once the swarm runs, the fleet is marked created, and a create
// in another state finding it is refused (awsfleet.TakenError).
func (r *swarmResource) createOnEC2(ctx context.Context, plan *swarmModel, rec *swarmctl.Record) error {
	a := plan.awsConfig()
	fleet, err := a.client(ctx)
	if err != nil {
		return err
	}
	subnet, err := fleet.FindSubnet(ctx, a.SubnetID.ValueString())
	if err != nil {
		return err
	}
	id := awsfleet.Identity(subnet.ID, a.NamePrefix.ValueString())
	release, err := claimIdentity(id, subnet.ID, a.NamePrefix.ValueString())
	if err != nil {
		return err
	}
	defer release()
	plan.ID = types.StringValue(id)
	if err := r.converge(ctx, plan, nil, rec); err != nil {
		return err
	}
	return fleet.MarkCreated(ctx, id)
}

// creating holds the identities of the swarms this provider process is
// creating, so that two resources of one configuration with the same
// subnet and name prefix (say, count = 2) are refused, not one fleet
// adopted by both.
var creating sync.Map

func claimIdentity(id, subnet, name string) (release func(), err error) {
	if _, busy := creating.LoadOrStore(id, true); busy {
		return nil, fmt.Errorf("another minibroker_swarm of this configuration is creating swarm %s, in the same subnet (%s) "+
			"with the same aws.name_prefix (%q): give each swarm its own aws.name_prefix", id, subnet, name)
	}
	return func() { creating.Delete(id) }, nil
}

// formed reports whether a swarm was formed on the nodes: not after a
// create that stopped before (its resource is tainted and replaced).
func (m swarmModel) formed() bool {
	return !m.NodeIDs.IsNull() && !m.NodeIDs.IsUnknown() && len(m.NodeIDs.Elements()) > 0
}

// provisioned is what provision leaves for converge to finish: instances
// that are no longer wanted, to terminate once they have left the swarm.
type provisioned struct {
	client  *awsfleet.Client
	surplus []string
}

// provision makes the fleet match the aws block (awsfleet.Provision), then
// waits, within aws.ready_timeout, until every instance runs and its Docker
// Engine answers over SSH. It fills the plan's aws-derived attributes
// (hosts, instances, ...) as it goes, so that a failure keeps everything
// created in state.
func (r *swarmResource) provision(ctx context.Context, plan, prior *swarmModel) (*provisioned, error) {
	a := plan.awsConfig()
	fleet, err := a.client(ctx)
	if err != nil {
		return nil, err
	}
	readyTimeout, err := time.ParseDuration(a.ReadyTimeout.ValueString())
	if err != nil {
		return nil, fmt.Errorf("aws.ready_timeout: %w", err)
	}
	got, err := fleet.Provision(ctx, a.want(ctx, plan.ID.ValueString(), r.pd.sshUser, prior))
	if got.Touched && plan.SecurityGroup.IsUnknown() {
		// Something may exist on EC2 now: a known value makes Create keep
		// the state, and destroy then finds everything by tag.
		plan.SecurityGroup = types.StringValue("")
	}
	known := func(attr *types.String, v string) {
		if v != "" {
			*attr = types.StringValue(v)
		}
	}
	known(&a.SubnetID, got.SubnetID)
	known(&a.AMI, got.AMI)
	known(&a.KeyName, got.KeyName)
	known(&plan.SecurityGroup, got.SecurityGroup)
	plan.AWS = awsObject(a)
	if got.Listed {
		plan.Instances = instanceList(got.Instances)
	}
	if err != nil {
		return nil, err
	}

	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	running, err := fleet.WaitRunning(readyCtx, awsfleet.IDs(got.Instances))
	if err != nil {
		return nil, fmt.Errorf("%w (aws.ready_timeout is %s)", err, readyTimeout)
	}
	awsfleet.SortInstances(running)
	plan.Instances = instanceList(running)
	plan.Hosts = hostsOfInstances(running, a.ConnectVia.ValueString())
	hosts, err := plan.hosts()
	if err != nil {
		return nil, err
	}
	byIP := map[string]awsfleet.Instance{} // hosts advertise the private IP
	for _, in := range running {
		byIP[in.PrivateIP] = in
	}
	err = parallel.ForEach(readyCtx, readyParallel, hosts, func(ctx context.Context, h swarmspec.Host) error {
		if err := r.pd.ctl.WaitDocker(ctx, h, awsPollInterval); err != nil {
			return fmt.Errorf("instance %s: Docker did not answer over SSH at %s within aws.ready_timeout (%s); last error: %v",
				byIP[h.Advertise].Label(), h.Address, readyTimeout, err)
		}
		return nil
	})
	return &provisioned{client: fleet, surplus: got.Surplus}, err
}

// hostsOfInstances lists the instances as hosts: SSH at the address
// connect_via names, Swarm traffic on the private address.
func hostsOfInstances(ins []awsfleet.Instance, connectVia string) types.List {
	var hs []hostModel
	for _, in := range ins {
		addr := in.PrivateIP
		if connectVia == connectPublic {
			addr = in.PublicIP
		}
		hs = append(hs, hostModel{Address: types.StringValue(addr), Role: types.StringValue(in.Role),
			DockerSocket: types.StringValue(dockerssh.DefaultDockerSocket), AdvertiseAddress: types.StringValue(in.PrivateIP)})
	}
	return hostList(hs)
}

// instanceIDs lists the ids of the instances in state.
func (m swarmModel) instanceIDs() []string {
	var ids []string
	for _, in := range m.instanceModels() {
		ids = append(ids, in.ID.ValueString())
	}
	return ids
}

// readFleet refreshes the instances from EC2. Instances terminated outside
// Terraform drop out of hosts and instances, and the node counts show what
// is left, so the next plan puts them back. It reports whether the manager
// instance still runs, and whether anything of the fleet is left at all.
func readFleet(ctx context.Context, m *swarmModel) (managerAlive, anything bool, err error) {
	a := m.awsConfig()
	fleet, err := a.client(ctx)
	if err != nil {
		return false, false, err
	}
	cur, err := fleet.Current(ctx, m.ID.ValueString(), m.instanceIDs())
	if err != nil {
		return false, false, err
	}
	count := map[string]int64{}
	for _, in := range cur.Instances {
		count[in.Role]++
	}
	m.Instances = instanceList(cur.Instances)
	m.Hosts = hostsOfInstances(cur.Instances, a.ConnectVia.ValueString())
	if hs := m.hostModels(); len(hs) > 0 && hs[0].Role.ValueString() == swarmspec.RoleManager {
		// A stopped and started instance has a new public IP.
		m.ManagerAddress = hs[0].Address
	}
	a.ProducerNodes = types.Int64Value(count[swarmspec.RoleProducer])
	a.FilterNodes = types.Int64Value(count[swarmspec.RoleFilter])
	a.ConsumerNodes = types.Int64Value(count[swarmspec.RoleConsumer])
	m.AWS = awsObject(a)
	switch len(cur.SecurityGroups) {
	case 0:
		m.SecurityGroup = types.StringValue("")
	case 1:
		m.SecurityGroup = types.StringValue(cur.SecurityGroups[0])
	}
	return count[swarmspec.RoleManager] == 1, len(cur.Instances) > 0 || len(cur.SecurityGroups) > 0, nil
}

// destroyFleet removes everything the swarm created on EC2; the swarm goes
// with its instances.
func destroyFleet(ctx context.Context, m *swarmModel) error {
	fleet, err := m.awsConfig().client(ctx)
	if err != nil {
		return err
	}
	return fleet.Sweep(ctx, m.ID.ValueString(), m.instanceIDs())
}
