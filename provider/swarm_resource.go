package provider

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Default timeouts of the swarm resource.
const (
	swarmCreateTimeout = 15 * time.Minute
	swarmUpdateTimeout = 15 * time.Minute
	swarmDeleteTimeout = 10 * time.Minute
	swarmReadTimeout   = 2 * time.Minute
)

var (
	_ resource.Resource                   = (*swarmResource)(nil)
	_ resource.ResourceWithConfigure      = (*swarmResource)(nil)
	_ resource.ResourceWithImportState    = (*swarmResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*swarmResource)(nil)
	_ resource.ResourceWithValidateConfig = (*swarmResource)(nil)
)

type swarmResource struct{ pd *providerData }

func newSwarmResource() resource.Resource { return &swarmResource{} }

func (r *swarmResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_swarm"
}

func (r *swarmResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = swarmSchema(ctx)
}

func (r *swarmResource) Configure(_ context.Context, req resource.ConfigureRequest, _ *resource.ConfigureResponse) {
	if pd, ok := req.ProviderData.(*providerData); ok {
		r.pd = pd
	}
}

func (r *swarmResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var enabled types.Bool
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("producer").AtName("enabled"), &enabled)...)
	producerOn := enabled.IsNull() || enabled.IsUnknown() || enabled.ValueBool()

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
		var keyName, publicKey types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("aws").AtName("key_name"), &keyName)...)
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("aws").AtName("public_key"), &publicKey)...)
		if !keyName.IsUnknown() && !publicKey.IsUnknown() && keyName.IsNull() == publicKey.IsNull() {
			resp.Diagnostics.AddAttributeError(path.Root("aws").AtName("key_name"), "One key pair",
				"Set exactly one of aws.key_name (an existing EC2 key pair) and aws.public_key (an OpenSSH public key "+
					"imported as a key pair the swarm owns); it must match the provider's ssh_private_key.")
		}
		var n types.Int64
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("aws").AtName("producer_nodes"), &n)...)
		if producerOn && !n.IsNull() && !n.IsUnknown() && n.ValueInt64() == 0 {
			resp.Diagnostics.AddAttributeError(path.Root("aws").AtName("producer_nodes"), "No producer node",
				"The producer is enabled but aws.producer_nodes is 0: set it to 1, or set producer = { enabled = false }.")
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
	if producerOn && !slices.ContainsFunc(hosts, func(h host) bool { return h.Role == swarmspec.RoleProducer }) {
		resp.Diagnostics.AddAttributeError(path.Root("hosts"), "No producer host",
			"The producer is enabled but no host has role \"producer\": add one, or set producer = { enabled = false }.")
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
			plan.ManagerAddress = types.StringValue(managerOf(hosts).Address)
		}
		plan.Instances = types.ListNull(types.ObjectType{AttrTypes: instanceAttrTypes})
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
		servicesChanged := !plan.Hub.Equal(state.Hub) || !plan.Producer.Equal(state.Producer) ||
			!plan.KafkaImage.Equal(state.KafkaImage) || !plan.WorkloadsImage.Equal(state.WorkloadsImage)
		if servicesChanged || hasDrift(state.Services) || hostsChanged {
			plan.Services = types.MapUnknown(types.StringType)
		}
		if state.NetworkID.ValueString() == driftedID {
			plan.NetworkID = types.StringUnknown()
		}
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
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
	have := map[slot]bool{}
	for _, in := range state.instanceModels() {
		s := slot{in.Role.ValueString(), int(in.Index.ValueInt64())}
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
	plan.Hosts = types.ListUnknown(types.ObjectType{AttrTypes: hostAttrTypes})
	plan.Instances = types.ListUnknown(types.ObjectType{AttrTypes: instanceAttrTypes})
	return true, false
}

func hostKeysOf(hs []hostModel) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Address.ValueString()+"|"+h.Role.ValueString()+"|"+h.DockerSocket.ValueString()+"|"+h.AdvertiseAddress.ValueString())
	}
	return out
}

func hasDrift(m types.Map) bool {
	for _, v := range m.Elements() {
		if s, ok := v.(types.String); ok && s.ValueString() == driftedID {
			return true
		}
	}
	return false
}

func (r *swarmResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan swarmModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.Timeouts.Create(ctx, swarmCreateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	priv := unmarshalPrivate(nil)
	if plan.awsMode() {
		// Known before anything is created, to tag it all.
		plan.ID = types.StringValue(newSwarmID())
	}
	err := r.converge(ctx, &plan, nil, &priv)
	if plan.ID.IsUnknown() || (plan.awsMode() && plan.SecurityGroup.IsUnknown()) {
		// Nothing was created: no state.
		resp.Diagnostics.AddError("Cannot create swarm", err.Error())
		return
	}
	// Keep what exists in state even on failure, so destroy removes it.
	fillUnknown(&plan)
	resp.Diagnostics.Append(resp.State.Set(ctx, &plan)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKey, priv.marshal())...)
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
	timeout, diags := plan.Timeouts.Update(ctx, swarmUpdateTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, diags := req.Private.GetKey(ctx, privateKey)
	resp.Diagnostics.Append(diags...)
	priv := unmarshalPrivate(b)

	err := r.converge(ctx, &plan, &state, &priv)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateKey, priv.marshal())...)
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

// converge brings the hosts to the plan: swarm formed, nodes joined and
// labelled, images loaded, network and services in place. It fills the
// plan's computed attributes with what it learned, also on failure.
func (r *swarmResource) converge(ctx context.Context, plan, prior *swarmModel, priv *swarmPrivate) error {
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
	mgr := managerOf(hosts)
	known := map[string]string{}
	if prior != nil {
		for addr, v := range prior.HostKeys.Elements() {
			known[addr] = v.(types.String).ValueString()
		}
	}
	var archivePaths []string
	plan.ImageArchives.ElementsAs(ctx, &archivePaths, false)
	archives, err := readArchives(archivePaths)
	if err != nil {
		return err
	}
	kafka, workloads := plan.KafkaImage.ValueString(), plan.WorkloadsImage.ValueString()
	if err := checkArchivesUsed(archives, kafka, workloads); err != nil {
		return err
	}
	desired, diags := plan.desired(ctx)
	if diags.HasError() {
		return diagError(diags)
	}

	eng, err := connect(ctx, r.pd, hosts, known)
	if err != nil {
		return err
	}
	if !r.pd.tofu {
		eng.keys = map[string]string{} // verified against known_hosts; nothing to keep
	}
	mcli := eng.clients[mgr.Address]

	idLabel := ""
	if plan.awsMode() {
		idLabel = plan.ID.ValueString()
	}
	swarmID, err := initSwarm(ctx, mcli, mgr, plan.AddressPool.ValueString(), idLabel, priv)
	if err != nil {
		return err
	}
	if !plan.awsMode() {
		if prior != nil && prior.ID.ValueString() != swarmID {
			return fmt.Errorf("manager %s now runs swarm %s, not %s; the swarm was replaced outside Terraform", mgr.Address, swarmID, prior.ID.ValueString())
		}
		plan.ID = types.StringValue(swarmID)
	}
	plan.ManagerAddress = types.StringValue(mgr.Address)
	plan.HubBootstrap = types.StringValue(swarmspec.Bootstrap(swarmspec.HubService))
	fillUnknown(plan)

	sw, err := mcli.SwarmInspect(ctx)
	if err != nil {
		return fmt.Errorf("swarm inspect on %s: %w", mgr.Address, err)
	}
	var mu sync.Mutex
	ids := map[string]string{}
	err = forEach(ctx, hosts, func(ctx context.Context, h host) error {
		cli := eng.clients[h.Address]
		if h.Role != swarmspec.RoleManager {
			joined, err := joinHost(ctx, cli, mcli, h, mgr.Advertise, sw.JoinTokens.Worker)
			if err != nil {
				return err
			}
			if joined {
				mu.Lock()
				priv.Joined = append(priv.Joined, h.Address)
				mu.Unlock()
			}
		}
		id, err := nodeID(ctx, cli)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Address, err)
		}
		for _, a := range archivesFor(archives, h.Role, kafka, workloads) {
			loaded, err := loadArchive(ctx, cli, h.Address, a)
			if err != nil {
				return err
			}
			mu.Lock()
			priv.Loaded[h.Address] = append(priv.Loaded[h.Address], loaded...)
			mu.Unlock()
		}
		mu.Lock()
		ids[h.Address] = id
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	if err := waitNodesReady(ctx, mcli, mapValues(ids)); err != nil {
		return err
	}
	if err := forEach(ctx, hosts, func(ctx context.Context, h host) error {
		return labelNode(ctx, mcli, ids[h.Address], h)
	}); err != nil {
		return err
	}
	plan.NodeIDs = stringMap(ids)
	plan.NodesByRole = nodesByRole(hosts, ids)
	plan.HostKeys = stringMap(eng.keys)

	if prior != nil {
		if err := r.removeHosts(ctx, mcli, prior, hosts, known, priv); err != nil {
			return err
		}
	}
	if fleet != nil {
		// Instances terminated outside Terraform left their nodes behind.
		if err := removeStaleNodes(ctx, mcli, ids); err != nil {
			return err
		}
	}
	if fleet != nil && len(fleet.surplus) > 0 {
		tflog.Info(ctx, "terminating instances that left the swarm", map[string]any{"instances": fleet.surplus})
		if err := fleet.fleet.Terminate(ctx, fleet.surplus); err != nil {
			return err
		}
	}

	netID, err := ensureNetwork(ctx, mcli, plan.Network.ValueString())
	if err != nil {
		return err
	}
	plan.NetworkID = types.StringValue(netID)

	svcIDs, err := applyServices(ctx, mcli, swarmspec.OwnerSwarm, desired)
	plan.Services = stringMap(svcIDs)
	if err != nil {
		return err
	}
	return waitServices(ctx, mcli, svcIDs)
}

// removeHosts drains the hosts that left the configuration, makes them
// leave the swarm and removes them from the node list.
func (r *swarmResource) removeHosts(ctx context.Context, mcli *client.Client, prior *swarmModel, now []host, known map[string]string, priv *swarmPrivate) error {
	keep := map[string]bool{}
	for _, h := range now {
		keep[h.Address] = true
	}
	priorIDs := map[string]string{}
	for addr, v := range prior.NodeIDs.Elements() {
		priorIDs[addr] = v.(types.String).ValueString()
	}
	for _, h := range prior.hostModels() {
		addr := h.Address.ValueString()
		if keep[addr] {
			continue
		}
		tflog.Info(ctx, "removing host from the swarm", map[string]any{"host": addr})
		old := host{Address: addr, Role: h.Role.ValueString(), Socket: h.DockerSocket.ValueString()}
		id := priorIDs[addr]
		if id != "" && id != driftedID {
			if err := drainNode(ctx, mcli, id); err != nil {
				return err
			}
		}
		eng, err := connect(ctx, r.pd, []host{old}, known)
		if err == nil {
			cli := eng.clients[addr]
			if err := leaveSwarm(ctx, cli, addr); err != nil {
				return err
			}
			removeLoadedImages(ctx, cli, addr, priv.Loaded[addr])
		} else {
			tflog.Warn(ctx, "host unreachable; removing it from the node list only", map[string]any{"host": addr, "error": err.Error()})
		}
		delete(priv.Loaded, addr)
		priv.Joined = slices.DeleteFunc(priv.Joined, func(a string) bool { return a == addr })
		if id != "" && id != driftedID {
			if err := removeNode(ctx, mcli, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeStaleNodes removes the nodes of instances that are gone: nodes
// that carry a role label but are no host's node (ids: node ids by host).
// Only for a swarm on EC2, which the resource alone fills with nodes; a
// node someone joined by hand has no role label and stays.
func removeStaleNodes(ctx context.Context, mcli *client.Client, ids map[string]string) error {
	nodes, err := mcli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	current := mapValues(ids)
	for _, n := range nodes {
		if n.Spec.Labels[swarmspec.LabelRole] == "" || slices.Contains(current, n.ID) {
			continue
		}
		tflog.Info(ctx, "removing the node of an instance that is gone", map[string]any{
			"node": n.ID, "address": n.Status.Addr, "state": string(n.Status.State)})
		if err := removeNode(ctx, mcli, n.ID); err != nil {
			return err
		}
	}
	return nil
}

func drainNode(ctx context.Context, mcli *client.Client, id string) error {
	n, _, err := mcli.NodeInspectWithRaw(ctx, id)
	if err != nil {
		return nil // already gone
	}
	n.Spec.Availability = swarm.NodeAvailabilityDrain
	if err := mcli.NodeUpdate(ctx, id, n.Version, n.Spec); err != nil {
		return fmt.Errorf("drain node %s: %w", id, err)
	}
	for {
		tasks, err := mcli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
			filters.Arg("node", id), filters.Arg("desired-state", "running"))})
		if err != nil || len(tasks) == 0 {
			// The node reworks its ingress attachment after a drain; a leave
			// in the middle of that strands the ingress network on it.
			select {
			case <-ctx.Done():
			case <-time.After(settleTime):
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain node %s: %d tasks still running: %w", id, len(tasks), ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

func removeNode(ctx context.Context, mcli *client.Client, id string) error {
	for {
		err := mcli.NodeRemove(ctx, id, swarm.NodeRemoveOptions{Force: true})
		if err == nil || client.IsErrNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove node %s: %w", id, err)
		case <-time.After(pollInterval):
		}
	}
}

func removeLoadedImages(ctx context.Context, cli *client.Client, addr string, ids []string) {
	for _, id := range ids {
		if _, err := cli.ImageRemove(ctx, id, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
			tflog.Warn(ctx, "could not remove loaded image", map[string]any{"host": addr, "image": id, "error": err.Error()})
		}
	}
}

func (r *swarmResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state swarmModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Delete(ctx, swarmDeleteTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	b, diags := req.Private.GetKey(ctx, privateKey)
	resp.Diagnostics.Append(diags...)
	priv := unmarshalPrivate(b)
	if state.awsMode() {
		// The swarm goes with its instances.
		if err := destroyFleet(ctx, &state); err != nil {
			resp.Diagnostics.AddError("Cannot destroy swarm", err.Error())
		}
		return
	}
	if err := r.destroy(ctx, &state, &priv); err != nil {
		resp.Diagnostics.AddError("Cannot destroy swarm", err.Error())
	}
}

func (r *swarmResource) destroy(ctx context.Context, state *swarmModel, priv *swarmPrivate) error {
	hosts, err := state.hosts()
	if err != nil {
		return err
	}
	mgr := managerOf(hosts)
	known := map[string]string{}
	for addr, v := range state.HostKeys.Elements() {
		known[addr] = v.(types.String).ValueString()
	}
	eng := &engines{clients: map[string]*client.Client{}}
	for _, h := range hosts {
		e, err := connect(ctx, r.pd, []host{h}, known)
		if err != nil {
			if h.Role == swarmspec.RoleManager {
				return err
			}
			tflog.Warn(ctx, "host unreachable; it will only be removed from the node list", map[string]any{"host": h.Address, "error": err.Error()})
			continue
		}
		eng.clients[h.Address] = e.clients[h.Address]
	}
	mcli := eng.clients[mgr.Address]
	if err := removeOwner(ctx, mcli, swarmspec.OwnerSwarm); err != nil {
		return err
	}
	if err := removeNetwork(ctx, mcli, state.Network.ValueString()); err != nil {
		return err
	}
	ids := map[string]string{}
	for addr, v := range state.NodeIDs.Elements() {
		ids[addr] = v.(types.String).ValueString()
	}
	err = forEach(ctx, hosts, func(ctx context.Context, h host) error {
		if h.Role == swarmspec.RoleManager {
			return nil
		}
		cli := eng.clients[h.Address]
		if priv.CreatedSwarm || priv.joined(h.Address) {
			if cli != nil {
				if err := leaveSwarm(ctx, cli, h.Address); err != nil {
					return err
				}
			}
			if !priv.CreatedSwarm {
				return removeNode(ctx, mcli, ids[h.Address])
			}
		} else {
			return unlabelNode(ctx, mcli, ids[h.Address])
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if cli := eng.clients[h.Address]; cli != nil && h.Role != swarmspec.RoleManager {
			removeLoadedImages(ctx, cli, h.Address, priv.Loaded[h.Address])
		}
	}
	if priv.CreatedSwarm {
		if err := leaveSwarm(ctx, mcli, mgr.Address); err != nil {
			return err
		}
	} else if err := unlabelNode(ctx, mcli, ids[mgr.Address]); err != nil {
		return err
	}
	removeLoadedImages(ctx, mcli, mgr.Address, priv.Loaded[mgr.Address])
	return nil
}

func unlabelNode(ctx context.Context, mcli *client.Client, id string) error {
	n, _, err := mcli.NodeInspectWithRaw(ctx, id)
	if err != nil {
		return nil
	}
	delete(n.Spec.Labels, swarmspec.LabelRole)
	delete(n.Spec.Labels, swarmspec.LabelIndex)
	if err := mcli.NodeUpdate(ctx, id, n.Version, n.Spec); err != nil {
		return fmt.Errorf("remove labels of node %s: %w", id, err)
	}
	return nil
}

func (r *swarmResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	// The import id is the manager's SSH address; Read fills in the rest.
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("manager_address"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), importPending)...)
}

// importPending marks a state that Read must fill from the swarm.
const importPending = "(importing)"

func diagError(d diag.Diagnostics) error {
	var msgs []string
	for _, e := range d.Errors() {
		msgs = append(msgs, e.Summary()+": "+e.Detail())
	}
	return fmt.Errorf("%v", msgs)
}

func stringMap(m map[string]string) types.Map {
	vals := map[string]types.String{}
	for k, v := range m {
		vals[k] = types.StringValue(v)
	}
	out, _ := types.MapValueFrom(context.Background(), types.StringType, vals)
	return out
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func nodesByRole(hosts []host, ids map[string]string) types.Map {
	by := map[string][]string{}
	for _, h := range hosts {
		by[h.Role] = append(by[h.Role], ids[h.Address])
	}
	out, _ := types.MapValueFrom(context.Background(), types.ListType{ElemType: types.StringType}, by)
	return out
}

// fillUnknown replaces still-unknown computed values with empty ones, so a
// partly created swarm can be saved in state.
func fillUnknown(m *swarmModel) {
	for _, s := range []*types.String{&m.NetworkID, &m.ManagerAddress, &m.SecurityGroup} {
		if s.IsUnknown() {
			*s = types.StringValue("")
		}
	}
	if m.Hosts.IsUnknown() {
		m.Hosts = hostList(nil)
	}
	if m.Instances.IsUnknown() {
		m.Instances = instanceList(nil)
	}
	if !m.awsMode() {
		m.Instances = types.ListNull(types.ObjectType{AttrTypes: instanceAttrTypes})
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
