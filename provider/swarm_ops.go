package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// swarmPrivate is the swarm resource's private state: what it must undo on
// destroy and nothing a user configures.
type swarmPrivate struct {
	// CreatedSwarm is true when this resource initialised the swarm; false
	// when it adopted one the manager already ran, which destroy keeps.
	CreatedSwarm bool `json:"created_swarm"`
	// Joined lists the SSH addresses of hosts this resource joined.
	Joined []string `json:"joined"`
	// Loaded lists image ids loaded from archives, by SSH address.
	Loaded map[string][]string `json:"loaded"`
}

const privateKey = "minibroker"

// labelSwarmID labels a swarm provisioned on EC2 with the resource's id,
// which mirrors and filter groups name it by.
const labelSwarmID = "minibroker.id"

// swarmMatches reports whether sw is the swarm a resource knows as id: its
// cluster id, or the id label of a swarm on EC2.
func swarmMatches(sw swarm.Swarm, id string) bool {
	return sw.ID == id || (id != "" && sw.Spec.Labels[labelSwarmID] == id)
}

// Overlay address space when the swarm is created: Docker's own default
// pool, cut into /20 networks (4094 addresses each).
const (
	defaultAddressPool = "10.0.0.0/8"
	overlaySubnetBits  = 20
)

func (p swarmPrivate) marshal() []byte { b, _ := json.Marshal(p); return b }

func unmarshalPrivate(b []byte) swarmPrivate {
	var p swarmPrivate
	if len(b) > 0 {
		_ = json.Unmarshal(b, &p)
	}
	if p.Loaded == nil {
		p.Loaded = map[string][]string{}
	}
	return p
}

func (p *swarmPrivate) joined(addr string) bool {
	for _, a := range p.Joined {
		if a == addr {
			return true
		}
	}
	return false
}

// initSwarm makes the manager host a swarm manager: it initialises a swarm
// or adopts the one the host already manages. It returns the cluster id.
// A non-empty idLabel is set as the swarm's labelSwarmID label.
func initSwarm(ctx context.Context, cli *client.Client, m host, addressPool, idLabel string, priv *swarmPrivate) (string, error) {
	info, err := cli.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("manager %s: docker info: %w", m.Address, err)
	}
	switch info.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if !info.Swarm.ControlAvailable {
			return "", fmt.Errorf("manager %s is a worker of swarm %s; give the role manager to one of that swarm's managers, or make it leave (docker swarm leave)", m.Address, info.Swarm.Cluster.ID)
		}
		tflog.Info(ctx, "adopting the swarm the manager already runs", map[string]any{"swarm": info.Swarm.Cluster.ID})
		return info.Swarm.Cluster.ID, nil
	case swarm.LocalNodeStateInactive:
	default:
		return "", fmt.Errorf("manager %s: swarm state is %q; wait or run docker swarm leave --force on it", m.Address, info.Swarm.LocalNodeState)
	}
	// Docker's default gives each overlay network a /24, which 200 tasks
	// and their replacements can exhaust; take /20s from the pool.
	if addressPool == "" {
		addressPool = defaultAddressPool
	}
	req := swarm.InitRequest{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: m.Advertise,
		DefaultAddrPool: []string{addressPool}, SubnetSize: overlaySubnetBits}
	if idLabel != "" {
		req.Spec.Annotations.Labels = map[string]string{labelSwarmID: idLabel}
	}
	tflog.Info(ctx, "initialising swarm", map[string]any{"manager": m.Address})
	id, err := cli.SwarmInit(ctx, req)
	if err != nil {
		return "", fmt.Errorf("swarm init on %s: %w", m.Address, err)
	}
	priv.CreatedSwarm = true
	priv.Joined = append(priv.Joined, m.Address)
	sw, err := cli.SwarmInspect(ctx)
	if err != nil {
		return id, fmt.Errorf("swarm inspect on %s: %w", m.Address, err)
	}
	return sw.ID, nil
}

// joinHost makes a host a worker of the swarm, unless it already is one.
func joinHost(ctx context.Context, cli, mgr *client.Client, h host, managerAddr, token string) (joined bool, err error) {
	info, err := cli.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("host %s: docker info: %w", h.Address, err)
	}
	if info.Swarm.LocalNodeState == swarm.LocalNodeStateActive {
		// A worker does not know its cluster id; the manager knows its nodes.
		if _, _, err := mgr.NodeInspectWithRaw(ctx, info.Swarm.NodeID); err == nil {
			return false, nil
		}
		return false, fmt.Errorf("host %s already belongs to another swarm (node %s); run docker swarm leave on it or remove it from hosts", h.Address, info.Swarm.NodeID)
	}
	tflog.Info(ctx, "joining host", map[string]any{"host": h.Address, "role": h.Role})
	err = cli.SwarmJoin(ctx, swarm.JoinRequest{
		ListenAddr:    "0.0.0.0:2377",
		AdvertiseAddr: h.Advertise,
		RemoteAddrs:   []string{managerAddr + ":2377"},
		JoinToken:     token,
	})
	if err != nil {
		return false, fmt.Errorf("host %s: swarm join via %s:2377: %w (are 2377/tcp, 7946/tcp+udp and 4789/udp open between the hosts?)", h.Address, managerAddr, err)
	}
	return true, nil
}

// nodeID returns the swarm node id of the engine.
func nodeID(ctx context.Context, cli *client.Client) (string, error) {
	info, err := cli.Info(ctx)
	if err != nil {
		return "", err
	}
	return info.Swarm.NodeID, nil
}

// labelNode sets the role and index labels on a node, retrying when the
// node object changes under us (its status is updated right after a join).
func labelNode(ctx context.Context, mgr *client.Client, id string, h host) error {
	for attempt := 0; ; attempt++ {
		n, _, err := mgr.NodeInspectWithRaw(ctx, id)
		if err != nil {
			return fmt.Errorf("inspect node %s (%s): %w", id, h.Address, err)
		}
		spec := n.Spec
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		if spec.Labels[swarmspec.LabelRole] == h.Role && spec.Labels[swarmspec.LabelIndex] == fmt.Sprint(h.Index) &&
			spec.Availability == swarm.NodeAvailabilityActive {
			return nil
		}
		spec.Labels[swarmspec.LabelRole] = h.Role
		spec.Labels[swarmspec.LabelIndex] = fmt.Sprint(h.Index)
		spec.Availability = swarm.NodeAvailabilityActive
		err = mgr.NodeUpdate(ctx, id, n.Version, spec)
		if err == nil {
			return nil
		}
		if attempt >= 5 || !strings.Contains(err.Error(), "out of sequence") {
			return fmt.Errorf("label node %s (%s): %w", id, h.Address, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitNodesReady waits until the nodes report Ready to the manager.
func waitNodesReady(ctx context.Context, mgr *client.Client, ids []string) error {
	for {
		nodes, err := mgr.NodeList(ctx, swarm.NodeListOptions{})
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		ready := map[string]bool{}
		for _, n := range nodes {
			ready[n.ID] = n.Status.State == swarm.NodeStateReady
		}
		var waiting []string
		for _, id := range ids {
			if !ready[id] {
				waiting = append(waiting, id)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nodes %v did not become ready: %w", waiting, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// ensureNetwork creates the attachable overlay network unless it exists.
func ensureNetwork(ctx context.Context, mgr *client.Client, name string) (string, error) {
	list, err := mgr.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return "", fmt.Errorf("list networks: %w", err)
	}
	for _, n := range list {
		if n.Name == name {
			if n.Driver != "overlay" || n.Scope != "swarm" {
				return "", fmt.Errorf("network %s exists but is a %s/%s network, not a swarm overlay; remove it or choose another name", name, n.Driver, n.Scope)
			}
			return n.ID, nil
		}
	}
	resp, err := mgr.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "overlay", Attachable: true, Scope: "swarm",
		Labels: map[string]string{swarmspec.LabelManaged: "true", swarmspec.LabelOwner: swarmspec.OwnerSwarm},
	})
	if err != nil {
		return "", fmt.Errorf("create overlay network %s: %w", name, err)
	}
	return resp.ID, nil
}

// removeNetwork removes the overlay network, retrying while the last
// containers detach from it.
func removeNetwork(ctx context.Context, mgr *client.Client, name string) error {
	for {
		err := mgr.NetworkRemove(ctx, name)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove network %s: %w", name, err)
		case <-time.After(pollInterval):
		}
	}
}

// leaveSwarm makes a host leave the swarm and removes what Swarm created
// on it: the docker_gwbridge network. Docker removes the ingress network
// and its sandbox by itself after a leave, asynchronously; touching the
// bridge before that is done can leave the sandbox behind for good, so the
// bridge is removed only once no swarm-scoped network is left.
func leaveSwarm(ctx context.Context, cli *client.Client, addr string) error {
	waitIngressSettled(ctx, cli)
	err := cli.SwarmLeave(ctx, true)
	if err != nil && !strings.Contains(err.Error(), "not part of a swarm") {
		return fmt.Errorf("host %s: swarm leave: %w", addr, err)
	}
	wctx, cancel := context.WithTimeout(ctx, gwbridgeTimeout)
	defer cancel()
	for {
		// Task containers hold on to docker_gwbridge until they are gone.
		tasks, cerr := cli.ContainerList(wctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.task"))})
		if cerr == nil && len(tasks) > 0 {
			select {
			case <-wctx.Done():
				tflog.Warn(ctx, "task containers still stopping after leaving", map[string]any{"host": addr, "containers": len(tasks)})
				return nil
			case <-time.After(pollInterval):
			}
			continue
		}
		nets, err := cli.NetworkList(wctx, network.ListOptions{})
		if err == nil && !slices.ContainsFunc(nets, func(n network.Summary) bool { return n.Scope == "swarm" }) {
			err = cli.NetworkRemove(wctx, gwbridge)
			if err == nil || errdefs.IsNotFound(err) {
				return nil
			}
		}
		select {
		case <-wctx.Done():
			// Docker's own network, recreated on the next join: not worth
			// failing a destroy for.
			tflog.Warn(ctx, "Swarm networks left on host after leaving", map[string]any{"host": addr, "error": fmt.Sprint(err)})
			return nil
		case <-time.After(pollInterval):
		}
	}
}

// waitIngressSettled waits while a newly joined node is still setting up
// its ingress sandbox: leaving in the middle of that leaves the ingress
// network behind on the node for good ("timeout while waiting for ingress
// network removal" in dockerd's log).
func waitIngressSettled(ctx context.Context, cli *client.Client) {
	wctx, cancel := context.WithTimeout(ctx, gwbridgeTimeout/2)
	defer cancel()
	for {
		ingress, err := cli.NetworkInspect(wctx, "ingress", network.InspectOptions{})
		if errdefs.IsNotFound(err) {
			return
		}
		if err == nil {
			if _, sbox := ingress.Containers["ingress-sbox"]; sbox {
				if _, err := cli.NetworkInspect(wctx, gwbridge, network.InspectOptions{}); err == nil {
					return
				}
			}
		}
		select {
		case <-wctx.Done():
			return
		case <-time.After(pollInterval):
		}
	}
}

const (
	gwbridge        = "docker_gwbridge"
	gwbridgeTimeout = 3 * time.Minute
)

// drainMessages reads a Docker JSON message stream to its end and returns
// the first error message in it.
func drainMessages(r io.Reader) error {
	dec := json.NewDecoder(r)
	var first error
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				return first
			}
			_, _ = io.Copy(io.Discard, r)
			return first
		}
		if m.Error != "" && first == nil {
			first = fmt.Errorf("%s", m.Error)
		}
	}
}
