package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// labelSettings holds, on the hub service, the resource's settings as JSON,
// so that `terraform import` can restore them.
const labelSettings = "minibroker.settings"

type swarmSettings struct {
	Network        string            `json:"network"`
	AddressPool    string            `json:"address_pool,omitempty"`
	KafkaImage     string            `json:"kafka_image"`
	WorkloadsImage string            `json:"workloads_image"`
	HeapMB         int64             `json:"heap_mb"`
	Partitions     int64             `json:"partitions"`
	Retention      int64             `json:"retention_minutes"`
	Properties     map[string]string `json:"properties,omitempty"`
	Enabled        bool              `json:"enabled"`
	AlertsPerVisit int64             `json:"alerts_per_visit"`
	Interval       string            `json:"interval"`
	Visits         int64             `json:"visits"`
	CutoutBytes    int64             `json:"cutout_bytes"`
	Parallel       int64             `json:"parallel"`
	Seed           int64             `json:"seed"`
	ReplayFiles    []string          `json:"replay_files,omitempty"`
	Hosts          []hostSettings    `json:"hosts"`
	AWS            *awsSettings      `json:"aws,omitempty"`
}

// awsSettings is the aws block as the settings label carries it.
type awsSettings struct {
	Region, Profile, InstanceType             string
	ProducerNodes, FilterNodes, ConsumerNodes int64
	AMI, AMISSMParameter, SubnetID, KeyName   string
	PublicKey                                 string
	AdminCIDRBlocks                           []string
	RootVolumeSize                            int64
	RootVolumeType                            string
	Tags                                      map[string]string
	ConnectVia, NamePrefix, ReadyTimeout      string
}

func toAWSSettings(a awsModel) *awsSettings {
	s := &awsSettings{
		Region: a.Region.ValueString(), Profile: a.Profile.ValueString(), InstanceType: a.InstanceType.ValueString(),
		ProducerNodes: a.ProducerNodes.ValueInt64(), FilterNodes: a.FilterNodes.ValueInt64(), ConsumerNodes: a.ConsumerNodes.ValueInt64(),
		AMI: a.AMI.ValueString(), AMISSMParameter: a.AMISSMParameter.ValueString(), SubnetID: a.SubnetID.ValueString(),
		KeyName: a.KeyName.ValueString(), PublicKey: a.PublicKey.ValueString(),
		RootVolumeSize: a.RootVolumeSize.ValueInt64(), RootVolumeType: a.RootVolumeType.ValueString(),
		ConnectVia: a.ConnectVia.ValueString(), NamePrefix: a.NamePrefix.ValueString(), ReadyTimeout: a.ReadyTimeout.ValueString(),
	}
	a.AdminCIDRBlocks.ElementsAs(context.Background(), &s.AdminCIDRBlocks, false)
	a.Tags.ElementsAs(context.Background(), &s.Tags, false)
	return s
}

func (s awsSettings) model() awsModel {
	cidrs, _ := types.ListValueFrom(context.Background(), types.StringType, s.AdminCIDRBlocks)
	tags := types.MapNull(types.StringType)
	if len(s.Tags) > 0 {
		tags = stringMap(s.Tags)
	}
	return awsModel{
		Region: optString(s.Region), Profile: optString(s.Profile), InstanceType: types.StringValue(s.InstanceType),
		ProducerNodes: types.Int64Value(s.ProducerNodes), FilterNodes: types.Int64Value(s.FilterNodes),
		ConsumerNodes: types.Int64Value(s.ConsumerNodes), AMI: types.StringValue(s.AMI),
		AMISSMParameter: types.StringValue(s.AMISSMParameter), SubnetID: types.StringValue(s.SubnetID),
		KeyName: types.StringValue(s.KeyName), PublicKey: optString(s.PublicKey), AdminCIDRBlocks: cidrs,
		RootVolumeSize: types.Int64Value(s.RootVolumeSize), RootVolumeType: types.StringValue(s.RootVolumeType),
		Tags: tags, ConnectVia: types.StringValue(s.ConnectVia), NamePrefix: types.StringValue(s.NamePrefix),
		ReadyTimeout: types.StringValue(s.ReadyTimeout),
	}
}

type hostSettings struct {
	Address, Role, Socket, Advertise string
}

func (m swarmModel) settings(ctx context.Context) string {
	var h hubModel
	var p producerModel
	m.Hub.As(ctx, &h, objectAsOptions)
	m.Producer.As(ctx, &p, objectAsOptions)
	s := swarmSettings{
		Network: m.Network.ValueString(), AddressPool: m.AddressPool.ValueString(),
		KafkaImage: m.KafkaImage.ValueString(), WorkloadsImage: m.WorkloadsImage.ValueString(),
		HeapMB: h.HeapMB.ValueInt64(), Partitions: h.Partitions.ValueInt64(), Retention: h.RetentionMinutes.ValueInt64(),
		Enabled: p.Enabled.ValueBool(), AlertsPerVisit: p.AlertsPerVisit.ValueInt64(), Interval: p.Interval.ValueString(),
		Visits: p.Visits.ValueInt64(), CutoutBytes: p.CutoutBytes.ValueInt64(), Parallel: p.Parallel.ValueInt64(),
		Seed: p.Seed.ValueInt64(),
	}
	h.Properties.ElementsAs(ctx, &s.Properties, false)
	p.ReplayFiles.ElementsAs(ctx, &s.ReplayFiles, false)
	for _, hm := range m.hostModels() {
		s.Hosts = append(s.Hosts, hostSettings{hm.Address.ValueString(), hm.Role.ValueString(),
			hm.DockerSocket.ValueString(), hm.AdvertiseAddress.ValueString()})
	}
	if m.awsMode() {
		s.AWS = toAWSSettings(m.awsConfig())
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// restore fills the model from settings read off the hub (import).
func (m *swarmModel) restore(s swarmSettings) {
	m.Network = types.StringValue(s.Network)
	m.AddressPool = optString(s.AddressPool)
	m.KafkaImage = types.StringValue(s.KafkaImage)
	m.WorkloadsImage = types.StringValue(s.WorkloadsImage)
	props := types.MapNull(types.StringType)
	if len(s.Properties) > 0 {
		props = stringMap(s.Properties)
	}
	m.Hub = types.ObjectValueMust(hubAttrTypes, map[string]attr.Value{
		"heap_mb": types.Int64Value(s.HeapMB), "partitions": types.Int64Value(s.Partitions),
		"retention_minutes": types.Int64Value(s.Retention), "properties": props,
	})
	replay := types.ListNull(types.StringType)
	if len(s.ReplayFiles) > 0 {
		replay, _ = types.ListValueFrom(context.Background(), types.StringType, s.ReplayFiles)
	}
	m.Producer = types.ObjectValueMust(producerAttrTypes, map[string]attr.Value{
		"enabled": types.BoolValue(s.Enabled), "alerts_per_visit": types.Int64Value(s.AlertsPerVisit),
		"interval": types.StringValue(s.Interval), "visits": types.Int64Value(s.Visits),
		"cutout_bytes": types.Int64Value(s.CutoutBytes), "parallel": types.Int64Value(s.Parallel),
		"seed": types.Int64Value(s.Seed), "replay_files": replay,
	})
	var hosts []hostModel
	for _, h := range s.Hosts {
		hosts = append(hosts, hostModel{Address: types.StringValue(h.Address), Role: types.StringValue(h.Role),
			DockerSocket: types.StringValue(h.Socket), AdvertiseAddress: optString(h.Advertise)})
	}
	m.Hosts = hostList(hosts)
	m.ImageArchives = types.ListNull(types.StringType)
	m.AWS = types.ObjectNull(awsAttrTypes)
	m.Instances = types.ListNull(types.ObjectType{AttrTypes: instanceAttrTypes})
	m.SecurityGroup = types.StringNull()
	if s.AWS != nil {
		m.AWS = awsObject(s.AWS.model())
	}
}

func optString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

func (r *swarmResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state swarmModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.Timeouts.Read(ctx, swarmReadTimeout)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

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
	}
	mgrAddr := state.ManagerAddress.ValueString()
	knownKey := ""
	if v, ok := state.HostKeys.Elements()[mgrAddr]; ok {
		knownKey = v.(types.String).ValueString()
	}
	mcli, fp, err := connectManager(ctx, r.pd, mgrAddr, knownKey)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read swarm", err.Error())
		return
	}
	sw, err := mcli.SwarmInspect(ctx)
	if err != nil {
		if importing {
			resp.Diagnostics.AddError("Cannot import swarm", fmt.Sprintf("%s is not a swarm manager: %v", mgrAddr, err))
			return
		}
		tflog.Warn(ctx, "the manager is no longer in a swarm; planning to create it again", map[string]any{"manager": mgrAddr})
		resp.State.RemoveResource(ctx)
		return
	}
	if importing {
		if err := r.restoreFromSwarm(ctx, mcli, &state, fp); err != nil {
			resp.Diagnostics.AddError("Cannot import swarm", err.Error())
			return
		}
		state.ID = types.StringValue(sw.ID)
		if state.awsMode() {
			// The instances are found by the id they are tagged with.
			state.ID = types.StringValue(sw.Spec.Labels[labelSwarmID])
			if _, _, err := readFleet(ctx, &state); err != nil {
				resp.Diagnostics.AddError("Cannot import swarm", err.Error())
				return
			}
			if state.SecurityGroup.ValueString() == "" {
				resp.Diagnostics.AddError("Cannot import swarm", fmt.Sprintf(
					"swarm %s needs exactly one security group tagged %s=%s", state.ID.ValueString(), awsfleet.TagSwarm, state.ID.ValueString()))
				return
			}
		}
	} else if !swarmMatches(sw, state.ID.ValueString()) {
		tflog.Warn(ctx, "the manager runs another swarm; planning to create it again", map[string]any{"swarm": sw.ID})
		resp.State.RemoveResource(ctx)
		return
	}

	if err := readNodes(ctx, mcli, &state); err != nil {
		resp.Diagnostics.AddError("Cannot read swarm nodes", err.Error())
		return
	}
	net, err := mcli.NetworkInspect(ctx, state.Network.ValueString(), network.InspectOptions{})
	switch {
	case errdefs.IsNotFound(err):
		state.NetworkID = types.StringValue(driftedID)
	case err != nil:
		resp.Diagnostics.AddError("Cannot read network", err.Error())
		return
	default:
		state.NetworkID = types.StringValue(net.ID)
	}
	desired, diags := state.desired(ctx)
	if diags.HasError() {
		// Replay files may have moved on the workstation: compare names only.
		resp.Diagnostics.Append(diags...)
		return
	}
	svc, err := observeServices(ctx, mcli, swarmspec.OwnerSwarm, desired)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read services", err.Error())
		return
	}
	state.Services = stringMap(svc)
	resp.Diagnostics.Append(resp.State.Set(ctx, &state)...)
}

// restoreFromSwarm rebuilds an imported state from the hub's settings
// label and the nodes' role labels.
func (r *swarmResource) restoreFromSwarm(ctx context.Context, mcli *client.Client, m *swarmModel, fp string) error {
	services, err := listOwned(ctx, mcli, swarmspec.OwnerSwarm)
	if err != nil {
		return err
	}
	hub, ok := services[swarmspec.HubService]
	if !ok {
		return fmt.Errorf("no %s service on %s: this swarm was not created by minibroker_swarm", swarmspec.HubService, m.ManagerAddress.ValueString())
	}
	var s swarmSettings
	if err := json.Unmarshal([]byte(hub.Spec.Labels[labelSettings]), &s); err != nil {
		return fmt.Errorf("service %s has no readable %s label: %w", swarmspec.HubService, labelSettings, err)
	}
	m.restore(s)
	keys := map[string]string{}
	if r.pd.tofu {
		keys[m.ManagerAddress.ValueString()] = fp
	}
	m.HostKeys = stringMap(keys)
	m.HubBootstrap = types.StringValue(swarmspec.Bootstrap(swarmspec.HubService))
	m.NodeIDs = types.MapValueMust(types.StringType, map[string]attr.Value{})
	return nil
}

// readNodes checks every host's node: present, ready and labelled as
// configured. A node that is not is marked drifted, so the plan rejoins or
// relabels it.
func readNodes(ctx context.Context, mcli *client.Client, m *swarmModel) error {
	hosts, err := m.hosts()
	if err != nil {
		return err
	}
	nodes, err := mcli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	ids := map[string]string{}
	for addr, v := range m.NodeIDs.Elements() {
		ids[addr] = v.(types.String).ValueString()
	}
	byID := map[string]swarm.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	for _, h := range hosts {
		id := ids[h.Address]
		if id == "" {
			id = findNode(nodes, h) // import
		}
		n, ok := byID[id]
		switch {
		case !ok:
			id = driftedID
		case n.Status.State != swarm.NodeStateReady,
			n.Spec.Labels[swarmspec.LabelRole] != h.Role,
			n.Spec.Labels[swarmspec.LabelIndex] != strconv.Itoa(h.Index):
			tflog.Warn(ctx, "node drifted", map[string]any{"host": h.Address, "state": string(n.Status.State), "labels": n.Spec.Labels})
			id = driftedID
		}
		ids[h.Address] = id
	}
	for addr := range ids {
		if !slices.ContainsFunc(hosts, func(h host) bool { return h.Address == addr }) {
			delete(ids, addr)
		}
	}
	m.NodeIDs = stringMap(ids)
	m.NodesByRole = nodesByRole(hosts, ids)
	return nil
}

func findNode(nodes []swarm.Node, h host) string {
	for _, n := range nodes {
		if n.Status.Addr == h.Advertise || strings.HasPrefix(h.Address, n.Status.Addr) {
			return n.ID
		}
	}
	return ""
}
