package provider

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// swarmHandle is what a mirror or filter group needs of its swarm: the
// manager's engine and the overlay network.
type swarmHandle struct {
	cli     *client.Client
	hostKey string // fingerprint, kept with trust on first use
	network string
	swarmID string
	manager string
}

// openSwarm connects to the manager, checks it runs the expected swarm
// (any when swarmID is empty, on import) and finds the swarm's network.
func openSwarm(ctx context.Context, pd *providerData, swarmID, manager, knownKey string) (*swarmHandle, error) {
	cli, fp, err := connectManager(ctx, pd, manager, knownKey)
	if err != nil {
		return nil, err
	}
	sw, err := cli.SwarmInspect(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s is not a swarm manager: %w", manager, err)
	}
	if swarmID != "" && !swarmMatches(sw, swarmID) {
		return nil, fmt.Errorf("%s manages swarm %s, not %s", manager, sw.ID, swarmID)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", swarmspec.LabelOwner+"="+swarmspec.OwnerSwarm))})
	if err != nil {
		return nil, fmt.Errorf("list networks on %s: %w", manager, err)
	}
	if len(nets) != 1 {
		return nil, fmt.Errorf("swarm %s has %d minibroker networks, want 1: create it with minibroker_swarm first", sw.ID, len(nets))
	}
	if !pd.tofu {
		fp = ""
	}
	id := sw.ID
	if l := sw.Spec.Labels[labelSwarmID]; l != "" {
		id = l // a swarm on EC2 goes by its resource's id
	}
	return &swarmHandle{cli: cli, hostKey: fp, network: nets[0].Name, swarmID: id, manager: manager}, nil
}

// mirrorNodeIndex finds the filter node a mirror runs on.
func (s *swarmHandle) mirrorNodeIndex(ctx context.Context, mirror string) (int, error) {
	services, err := listOwned(ctx, s.cli, swarmspec.MirrorOwner(mirror))
	if err != nil {
		return 0, err
	}
	svc, ok := services[swarmspec.MirrorKafkaService(mirror)]
	if !ok {
		return 0, fmt.Errorf("no mirror %q in swarm %s: create it with minibroker_mirror first", mirror, s.swarmID)
	}
	idx, err := strconv.Atoi(svc.Spec.Labels[swarmspec.LabelIndex])
	if err != nil {
		return 0, fmt.Errorf("mirror %q: service %s has no node index label", mirror, svc.Spec.Name)
	}
	return idx, nil
}

// checkNodeExists fails clearly when no node has the role and index.
func checkNodeExists(ctx context.Context, s *swarmHandle, role string, index int) error {
	nodes, err := s.cli.NodeList(ctx, swarm.NodeListOptions{Filters: filters.NewArgs(
		filters.Arg("node.label", swarmspec.LabelRole+"="+role))})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes {
		if n.Spec.Labels[swarmspec.LabelIndex] == strconv.Itoa(index) {
			return nil
		}
	}
	return fmt.Errorf("swarm %s has %d %s nodes; there is no %s node with index %d", s.swarmID, len(nodes), role, role, index)
}

// deploy makes owner's services the desired ones and waits until they run.
// services receives their ids as soon as they exist, so that state keeps
// them even when the wait fails.
func (s *swarmHandle) deploy(ctx context.Context, owner string, desired []swarmspec.Desired, services *types.Map) error {
	ids, err := applyServices(ctx, s.cli, owner, desired)
	if len(ids) > 0 || err == nil {
		*services = stringMap(ids)
	}
	if err != nil {
		return err
	}
	return waitServices(ctx, s.cli, ids)
}

// deleteOwned removes everything of owner from the swarm the manager runs.
func deleteOwned(ctx context.Context, pd *providerData, swarmID, manager, knownKey, owner string) error {
	sw, err := openSwarm(ctx, pd, swarmID, manager, knownKey)
	if err != nil {
		return err
	}
	return removeOwner(ctx, sw.cli, owner)
}

// importByName starts the import of a mirror or filter group from an id
// MANAGER_ADDRESS/NAME; Read fills in the rest from the swarm.
func importByName(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse, what string) {
	manager, name, ok := splitImportID(req.ID)
	if !ok {
		resp.Diagnostics.AddError("Invalid import id", "want MANAGER_ADDRESS/"+what+", e.g. 10.0.0.5/m1; got "+req.ID)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("manager_address"), manager)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), name)...)
}
