package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// sshAttemptTimeout bounds one attempt to reach a new node's Docker Engine.
const sshAttemptTimeout = 15 * time.Second

// newSwarmID returns the id of a swarm provisioned on EC2, known before
// anything is created so that everything can be tagged with it.
func newSwarmID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "mb-" + hex.EncodeToString(b)
}

// fleetClient builds an EC2/SSM client the SDK's standard way, with the
// block's region and profile when set.
func fleetClient(ctx context.Context, a awsModel) (*awsfleet.Client, error) {
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
	return awsfleet.New(cfg, awsfleet.WithPollInterval(awsPollInterval)), nil
}

// awsPollInterval is how often EC2 waiters poll.
var awsPollInterval = 2 * time.Second

// slot is a node the aws block asks for.
type slot struct {
	Role  string
	Index int
}

func (a awsModel) slots() []slot {
	out := []slot{{swarmspec.RoleManager, 0}}
	for _, rc := range []struct {
		role string
		n    types.Int64
	}{{swarmspec.RoleProducer, a.ProducerNodes}, {swarmspec.RoleFilter, a.FilterNodes}, {swarmspec.RoleConsumer, a.ConsumerNodes}} {
		for i := 0; i < int(rc.n.ValueInt64()); i++ {
			out = append(out, slot{rc.role, i})
		}
	}
	return out
}

// provisioned is what provision leaves for converge to finish: instances
// that are no longer wanted, to terminate once they have left the swarm.
type provisioned struct {
	fleet   *awsfleet.Client
	surplus []string
}

// provision makes the fleet match the aws block: security group, key pair
// and one running instance per slot whose Docker Engine answers over SSH.
// It fills the plan's aws-derived attributes (hosts, instances, ...) as it
// goes, so that a failure keeps everything created in state.
func (r *swarmResource) provision(ctx context.Context, plan, prior *swarmModel) (*provisioned, error) {
	a := plan.awsConfig()
	fleet, err := fleetClient(ctx, a)
	if err != nil {
		return nil, err
	}
	id := plan.ID.ValueString()
	var tags map[string]string
	a.Tags.ElementsAs(ctx, &tags, false)
	var admin []string
	a.AdminCIDRBlocks.ElementsAs(ctx, &admin, false)
	readyTimeout, err := time.ParseDuration(a.ReadyTimeout.ValueString())
	if err != nil {
		return nil, fmt.Errorf("aws.ready_timeout: %w", err)
	}

	subnet, err := fleet.FindSubnet(ctx, a.SubnetID.ValueString())
	if err != nil {
		return nil, err
	}
	a.SubnetID = types.StringValue(subnet.ID)
	// From here on something may exist on EC2 even if a call fails midway
	// (e.g. interrupted): a known value makes Create keep the state, and
	// destroy then finds everything by tag.
	if plan.SecurityGroup.IsUnknown() {
		plan.SecurityGroup = types.StringValue("")
	}
	sg, err := fleet.EnsureSecurityGroup(ctx, id, a.NamePrefix.ValueString(), subnet.VpcID, admin, tags)
	if sg != "" {
		plan.SecurityGroup = types.StringValue(sg)
	}
	if err != nil {
		return nil, err
	}
	if a.AMI.IsUnknown() || a.AMI.IsNull() {
		ami, err := fleet.ResolveAMI(ctx, a.AMISSMParameter.ValueString())
		if err != nil {
			return nil, err
		}
		a.AMI = types.StringValue(ami)
	}
	if pub := a.PublicKey.ValueString(); pub != "" {
		name := a.NamePrefix.ValueString() + "-" + id
		if err := fleet.ImportKeyPair(ctx, id, name, pub, tags); err != nil {
			return nil, err
		}
		a.KeyName = types.StringValue(name)
	}
	plan.AWS = awsObject(a)
	if prior != nil && prior.awsMode() {
		var old map[string]string
		prior.awsConfig().Tags.ElementsAs(ctx, &old, false)
		if err := fleet.Retag(ctx, id, old, tags); err != nil {
			return nil, err
		}
	}

	// Instances: keep the live ones whose slot is still wanted, start the
	// missing ones, hand the rest to converge for removal.
	existing, err := fleet.FindInstances(ctx, id)
	if err != nil {
		return nil, err
	}
	wanted := map[slot]bool{}
	for _, s := range a.slots() {
		wanted[s] = true
	}
	have := map[slot]awsfleet.Instance{}
	out := &provisioned{fleet: fleet}
	for _, in := range existing {
		s := slot{in.Role, in.Index}
		if _, dup := have[s]; in.Alive() && wanted[s] && !dup {
			have[s] = in
		} else {
			out.surplus = append(out.surplus, in.ID)
		}
	}
	spec := awsfleet.Spec{
		SwarmID: id, NamePrefix: a.NamePrefix.ValueString(), InstanceType: a.InstanceType.ValueString(),
		AMI: a.AMI.ValueString(), SubnetID: subnet.ID, SecurityGroup: sg, KeyName: a.KeyName.ValueString(),
		RootVolumeSize: int32(a.RootVolumeSize.ValueInt64()), RootVolumeType: a.RootVolumeType.ValueString(),
		PublicIP: a.ConnectVia.ValueString() == connectPublic, UserData: awsfleet.UserData(r.pd.sshConfig.User),
		Tags: tags, Attempt: strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	var mu sync.Mutex
	var missing []slot
	for _, s := range a.slots() {
		if _, ok := have[s]; !ok {
			missing = append(missing, s)
		}
	}
	record := func() { // what exists so far, into the plan
		var all []awsfleet.Instance
		for _, in := range have {
			all = append(all, in)
		}
		awsfleet.SortInstances(all)
		plan.Instances = instanceList(all)
	}
	err = forEach(ctx, missing, func(ctx context.Context, s slot) error {
		in, err := fleet.RunInstance(ctx, spec, s.Role, s.Index)
		if err != nil {
			return err
		}
		tflog.Info(ctx, "instance started", map[string]any{"instance": in.ID, "role": s.Role, "index": s.Index})
		mu.Lock()
		have[s] = in
		mu.Unlock()
		return nil
	})
	record()
	if err != nil {
		return out, err
	}

	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	var ids []string
	for _, in := range have {
		ids = append(ids, in.ID)
	}
	running, err := fleet.WaitRunning(readyCtx, ids)
	if err != nil {
		return out, fmt.Errorf("%w (aws.ready_timeout is %s)", err, readyTimeout)
	}
	for _, in := range running {
		have[slot{in.Role, in.Index}] = in
	}
	record()
	plan.Hosts = hostsOfInstances(running, a.ConnectVia.ValueString())
	if err := r.waitDocker(readyCtx, plan, running, readyTimeout); err != nil {
		return out, err
	}
	return out, nil
}

// hostsOfInstances lists the instances as hosts: SSH at the address
// connect_via names, Swarm traffic on the private address.
func hostsOfInstances(ins []awsfleet.Instance, connectVia string) types.List {
	sorted := slices.Clone(ins)
	awsfleet.SortInstances(sorted)
	var hs []hostModel
	for _, in := range sorted {
		addr := in.PrivateIP
		if connectVia == connectPublic {
			addr = in.PublicIP
		}
		hs = append(hs, hostModel{Address: types.StringValue(addr), Role: types.StringValue(in.Role),
			DockerSocket: types.StringValue("/var/run/docker.sock"), AdvertiseAddress: types.StringValue(in.PrivateIP)})
	}
	return hostList(hs)
}

func instanceList(ins []awsfleet.Instance) types.List {
	var ms []instanceModel
	for _, in := range ins {
		ms = append(ms, instanceModel{ID: types.StringValue(in.ID), Role: types.StringValue(in.Role),
			Index: types.Int64Value(int64(in.Index)), PrivateIP: types.StringValue(in.PrivateIP),
			PublicIP: types.StringValue(in.PublicIP)})
	}
	l, _ := types.ListValueFrom(context.Background(), types.ObjectType{AttrTypes: instanceAttrTypes}, ms)
	return l
}

func (m swarmModel) instanceModels() []instanceModel {
	var ms []instanceModel
	if !m.Instances.IsNull() && !m.Instances.IsUnknown() {
		m.Instances.ElementsAs(context.Background(), &ms, false)
	}
	return ms
}

func awsObject(a awsModel) types.Object {
	o, _ := types.ObjectValueFrom(context.Background(), awsAttrTypes, a)
	return o
}

// awsAttrTypes are the aws block's attribute types, as its schema says.
var awsAttrTypes = awsSchema().GetType().(types.ObjectType).AttrTypes

// waitDocker waits until every instance's Docker Engine answers over SSH.
// Each attempt uses a fresh SSH connection: cloud-init adds the SSH user to
// the docker group while the node boots, and a session opened before that
// would never be let in.
func (r *swarmResource) waitDocker(ctx context.Context, plan *swarmModel, ins []awsfleet.Instance, timeout time.Duration) error {
	hosts, err := plan.hosts()
	if err != nil {
		return err
	}
	byIP := map[string]awsfleet.Instance{} // hosts advertise the private IP
	for _, in := range ins {
		byIP[in.PrivateIP] = in
	}
	return forEach(ctx, hosts, func(ctx context.Context, h host) error {
		var last error
		for {
			last = r.pingOnce(ctx, h)
			if last == nil {
				return nil
			}
			tflog.Debug(ctx, "waiting for Docker over SSH", map[string]any{"host": h.Address, "error": last.Error()})
			select {
			case <-ctx.Done():
				in := byIP[h.Advertise]
				return fmt.Errorf("instance %s: Docker did not answer over SSH at %s within aws.ready_timeout (%s); last error: %v",
					in.Label(), h.Address, timeout, last)
			case <-time.After(awsPollInterval):
			}
		}
	})
}

func (r *swarmResource) pingOnce(ctx context.Context, h host) error {
	pool, err := dockerssh.NewPool(r.pd.sshConfig)
	if err != nil {
		return err
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(ctx, sshAttemptTimeout)
	defer cancel()
	return pool.Ping(ctx, dockerssh.Target{Address: h.Address, DockerSocket: h.Socket})
}

// readFleet refreshes the instances from EC2. Instances terminated outside
// Terraform drop out of hosts and instances, and the node counts show what
// is left, so the next plan puts them back. It reports whether the manager
// instance still runs, and whether anything of the fleet is left at all.
func readFleet(ctx context.Context, m *swarmModel) (managerAlive, anything bool, err error) {
	a := m.awsConfig()
	fleet, err := fleetClient(ctx, a)
	if err != nil {
		return false, false, err
	}
	var ids []string
	for _, in := range m.instanceModels() {
		ids = append(ids, in.ID.ValueString())
	}
	known, err := fleet.Instances(ctx, ids)
	if err != nil {
		return false, false, err
	}
	tagged, err := fleet.FindInstances(ctx, m.ID.ValueString())
	if err != nil {
		return false, false, err
	}
	groups, err := fleet.FindSecurityGroups(ctx, m.ID.ValueString())
	if err != nil {
		return false, false, err
	}
	seen := map[string]bool{}
	var alive []awsfleet.Instance
	count := map[string]int64{}
	for _, in := range append(known, tagged...) {
		if seen[in.ID] || !in.Alive() {
			continue
		}
		seen[in.ID] = true
		alive = append(alive, in)
		count[in.Role]++
	}
	awsfleet.SortInstances(alive)
	m.Instances = instanceList(alive)
	m.Hosts = hostsOfInstances(alive, a.ConnectVia.ValueString())
	if hs := m.hostModels(); len(hs) > 0 && hs[0].Role.ValueString() == swarmspec.RoleManager {
		// A stopped and started instance has a new public IP.
		m.ManagerAddress = hs[0].Address
	}
	a.ProducerNodes = types.Int64Value(count[swarmspec.RoleProducer])
	a.FilterNodes = types.Int64Value(count[swarmspec.RoleFilter])
	a.ConsumerNodes = types.Int64Value(count[swarmspec.RoleConsumer])
	m.AWS = awsObject(a)
	switch len(groups) {
	case 0:
		m.SecurityGroup = types.StringValue("")
	case 1:
		m.SecurityGroup = types.StringValue(groups[0])
	}
	return count[swarmspec.RoleManager] == 1, len(alive) > 0 || len(groups) > 0, nil
}

// destroyFleet removes everything the swarm created on EC2; the swarm goes
// with its instances.
func destroyFleet(ctx context.Context, m *swarmModel) error {
	fleet, err := fleetClient(ctx, m.awsConfig())
	if err != nil {
		return err
	}
	var ids []string
	for _, in := range m.instanceModels() {
		ids = append(ids, in.ID.ValueString())
	}
	return fleet.Sweep(ctx, m.ID.ValueString(), ids)
}
