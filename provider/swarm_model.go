package provider

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

type swarmModel struct {
	ID             types.String   `tfsdk:"id"`
	Hosts          types.List     `tfsdk:"hosts"`
	AWS            types.Object   `tfsdk:"aws"`
	Instances      types.List     `tfsdk:"instances"`
	SecurityGroup  types.String   `tfsdk:"security_group_id"`
	Network        types.String   `tfsdk:"network"`
	AddressPool    types.String   `tfsdk:"address_pool"`
	KafkaImage     types.String   `tfsdk:"kafka_image"`
	WorkloadsImage types.String   `tfsdk:"workloads_image"`
	ImageArchives  types.List     `tfsdk:"image_archives"`
	Hub            types.Object   `tfsdk:"hub"`
	Producer       types.Object   `tfsdk:"producer"`
	ManagerAddress types.String   `tfsdk:"manager_address"`
	HubBootstrap   types.String   `tfsdk:"hub_bootstrap"`
	NetworkID      types.String   `tfsdk:"network_id"`
	NodeIDs        types.Map      `tfsdk:"node_ids"`
	NodesByRole    types.Map      `tfsdk:"nodes_by_role"`
	Services       types.Map      `tfsdk:"services"`
	HostKeys       types.Map      `tfsdk:"host_keys"`
	Timeouts       timeouts.Value `tfsdk:"timeouts"`
}

type hostModel struct {
	Address          types.String `tfsdk:"address"`
	Role             types.String `tfsdk:"role"`
	DockerSocket     types.String `tfsdk:"docker_socket"`
	AdvertiseAddress types.String `tfsdk:"advertise_address"`
}

type hubModel struct {
	HeapMB           types.Int64 `tfsdk:"heap_mb"`
	Partitions       types.Int64 `tfsdk:"partitions"`
	RetentionMinutes types.Int64 `tfsdk:"retention_minutes"`
	Properties       types.Map   `tfsdk:"properties"`
}

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

var objectAsOptions = basetypes.ObjectAsOptions{}

// hostModels returns the hosts list (empty while unknown).
func (m swarmModel) hostModels() []hostModel {
	var hs []hostModel
	if !m.Hosts.IsNull() && !m.Hosts.IsUnknown() {
		m.Hosts.ElementsAs(context.Background(), &hs, false)
	}
	return hs
}

func hostList(hs []hostModel) types.List {
	l, _ := types.ListValueFrom(context.Background(), types.ObjectType{AttrTypes: hostAttrTypes}, hs)
	return l
}

// awsMode reports whether the resource provisions EC2 instances.
func (m swarmModel) awsMode() bool { return !m.AWS.IsNull() }

func (m swarmModel) awsConfig() awsModel {
	var a awsModel
	m.AWS.As(context.Background(), &a, objectAsOptions)
	return a
}

// host is a validated host of the configuration.
type host struct {
	Address   string // SSH address as configured
	Role      string
	Index     int // among the hosts of its role
	Socket    string
	Advertise string // Swarm advertise address (no port)
}

// hosts validates the hosts list: one manager, at most one producer, and
// unique addresses; it numbers hosts within their role.
func (m swarmModel) hosts() ([]host, error) {
	count := map[string]int{}
	seen := map[string]bool{}
	var out []host
	for i, h := range m.hostModels() {
		addr := h.Address.ValueString()
		if seen[addr] {
			return nil, fmt.Errorf("hosts[%d]: address %q is listed twice", i, addr)
		}
		seen[addr] = true
		adv := h.AdvertiseAddress.ValueString()
		if adv == "" {
			adv = hostPart(addr)
		}
		role := h.Role.ValueString()
		out = append(out, host{Address: addr, Role: role, Index: count[role],
			Socket: h.DockerSocket.ValueString(), Advertise: adv})
		count[role]++
	}
	if m.awsMode() {
		// An instance's index is its tag, even with a gap left by one
		// terminated outside Terraform.
		index := map[string]int{}
		for _, in := range m.instanceModels() {
			index[in.PrivateIP.ValueString()] = int(in.Index.ValueInt64())
		}
		for i := range out {
			if n, ok := index[out[i].Advertise]; ok {
				out[i].Index = n
			}
		}
	}
	switch {
	case count[swarmspec.RoleManager] != 1:
		return nil, fmt.Errorf("hosts: need exactly one host with role %q, found %d", swarmspec.RoleManager, count[swarmspec.RoleManager])
	case count[swarmspec.RoleProducer] > 1:
		return nil, fmt.Errorf("hosts: at most one host may have role %q, found %d", swarmspec.RoleProducer, count[swarmspec.RoleProducer])
	}
	return out, nil
}

func managerOf(hosts []host) host {
	for _, h := range hosts {
		if h.Role == swarmspec.RoleManager {
			return h
		}
	}
	return host{}
}

func hostPart(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// hubSpec and producerSpec turn the model into the services' descriptions.
func (m swarmModel) hubSpec(ctx context.Context) (swarmspec.Kafka, diag.Diagnostics) {
	var h hubModel
	diags := m.Hub.As(ctx, &h, objectAsOptions)
	props := map[string]string{}
	diags.Append(h.Properties.ElementsAs(ctx, &props, false)...)
	return swarmspec.Kafka{
		Image:            m.KafkaImage.ValueString(),
		Network:          m.Network.ValueString(),
		HeapMB:           int(h.HeapMB.ValueInt64()),
		Partitions:       int(h.Partitions.ValueInt64()),
		RetentionMinutes: int(h.RetentionMinutes.ValueInt64()),
		Properties:       props,
	}, diags
}

func (m swarmModel) producerSpec(ctx context.Context) (swarmspec.Producer, bool, diag.Diagnostics) {
	var p producerModel
	diags := m.Producer.As(ctx, &p, basetypes.ObjectAsOptions{})
	var h hubModel
	diags.Append(m.Hub.As(ctx, &h, basetypes.ObjectAsOptions{})...)
	interval, err := time.ParseDuration(p.Interval.ValueString())
	if err != nil {
		diags.AddError("Invalid producer interval", err.Error())
	}
	var files []string
	diags.Append(p.ReplayFiles.ElementsAs(ctx, &files, false)...)
	spec := swarmspec.Producer{
		Image:          m.WorkloadsImage.ValueString(),
		Network:        m.Network.ValueString(),
		AlertsPerVisit: int(p.AlertsPerVisit.ValueInt64()),
		Interval:       interval,
		Visits:         int(p.Visits.ValueInt64()),
		CutoutBytes:    int(p.CutoutBytes.ValueInt64()),
		Parallel:       int(p.Parallel.ValueInt64()),
		Seed:           p.Seed.ValueInt64(),
		Partitions:     int(h.Partitions.ValueInt64()),
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			diags.AddError("Cannot read replay file", err.Error())
			continue
		}
		if len(data) > 500*1024 {
			diags.AddError("Replay file too large", fmt.Sprintf("%s is %d bytes; Swarm configs hold at most 500 KB", f, len(data)))
		}
		spec.Replay = append(spec.Replay, swarmspec.ReplayFile{Name: f, Data: data})
	}
	return spec, p.Enabled.ValueBool(), diags
}

// desired returns the swarm's own services.
func (m swarmModel) desired(ctx context.Context) ([]swarmspec.Desired, diag.Diagnostics) {
	hub, diags := m.hubSpec(ctx)
	prod, enabled, d := m.producerSpec(ctx)
	diags.Append(d...)
	if diags.HasError() {
		return nil, diags
	}
	hubSvc := swarmspec.HubSpec(hub)
	// The settings ride on the hub as a label, for import. A label change
	// updates the service without restarting its task.
	hubSvc.Spec.Labels[labelSettings] = m.settings(ctx)
	hubSvc.Spec.Labels[swarmspec.LabelSpecHash] = swarmspec.Hash(hubSvc.Spec, hubSvc.Configs)
	out := []swarmspec.Desired{hubSvc}
	if enabled {
		out = append(out, swarmspec.ProducerSpec(prod))
	}
	return out, diags
}
