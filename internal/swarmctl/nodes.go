package swarmctl

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Overlay address space when the swarm is created: Docker's own default
// pool, cut into /20 networks (4094 addresses each), because Docker's /24
// default can run out with 200 tasks and their replacements.
const (
	DefaultAddressPool = "10.0.0.0/8"
	overlaySubnetBits  = 20
)

// gwbridge is the bridge Swarm creates on every node for containers'
// traffic outside the overlay.
const gwbridge = "docker_gwbridge"

// initSwarm makes the manager host a swarm manager: it initialises a swarm
// or adopts the one the host already manages, and returns the cluster id.
// created tells which.
func initSwarm(ctx context.Context, log *slog.Logger, cli *client.Client, mgr swarmspec.Host, addressPool, idLabel string) (id string, created bool, err error) {
	info, err := cli.Info(ctx)
	if err != nil {
		return "", false, fmt.Errorf("manager %s: docker info: %w", mgr.Address, err)
	}
	switch info.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if !info.Swarm.ControlAvailable {
			return "", false, fmt.Errorf("manager %s is a worker of swarm %s; give the role manager to one of that swarm's managers, or make it leave (docker swarm leave)", mgr.Address, info.Swarm.Cluster.ID)
		}
		log.InfoContext(ctx, "adopting the swarm the manager already runs", "swarm", info.Swarm.Cluster.ID)
		return info.Swarm.Cluster.ID, false, nil
	case swarm.LocalNodeStateInactive:
	default:
		return "", false, fmt.Errorf("manager %s: swarm state is %q; wait or run docker swarm leave --force on it", mgr.Address, info.Swarm.LocalNodeState)
	}
	if addressPool == "" {
		addressPool = DefaultAddressPool
	}
	req := swarm.InitRequest{ListenAddr: listenAddr(mgr), AdvertiseAddr: mgr.Advertise,
		DefaultAddrPool: []string{addressPool}, SubnetSize: overlaySubnetBits}
	if idLabel != "" {
		req.Spec.Annotations.Labels = map[string]string{swarmspec.LabelSwarmID: idLabel}
	}
	log.InfoContext(ctx, LogInitSwarm, "manager", mgr.Address)
	_, err = cli.SwarmInit(ctx, req)
	if notLocal(err) {
		// The advertise address is not one of the host's own (a NAT or
		// floating IP): listen on every interface, as before.
		log.WarnContext(ctx, "the advertise address is not the manager's own: Swarm listens on every interface",
			"manager", mgr.Address, "advertise", mgr.Advertise)
		req.ListenAddr = anyListenAddr
		_, err = cli.SwarmInit(ctx, req)
	}
	if err != nil {
		return "", false, fmt.Errorf("swarm init on %s: %w", mgr.Address, err)
	}
	sw, err := cli.SwarmInspect(ctx)
	if err != nil {
		return "", true, fmt.Errorf("swarm inspect on %s: %w", mgr.Address, err)
	}
	return sw.ID, true, nil
}

// listenAddr is where a host's engine listens for Swarm's control plane:
// its advertise address when that is an IP (the private address, on EC2),
// so that Swarm does not listen on every interface; all of them when it is
// a name, which Docker does not accept there.
func listenAddr(h swarmspec.Host) string {
	if ip, err := netip.ParseAddr(h.Advertise); err == nil {
		return netip.AddrPortFrom(ip, 2377).String()
	}
	return anyListenAddr
}

// anyListenAddr listens for Swarm on every interface.
const anyListenAddr = "0.0.0.0:2377"

// notLocal tells an init or join refused because the listen address is
// not one of the host's own (the engine cannot bind it).
func notLocal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "cannot assign requested address")
}

// joinHost makes a host a worker of the swarm, unless it already is one.
func joinHost(ctx context.Context, log *slog.Logger, cli, mgr *client.Client, h swarmspec.Host, managerAddr, token string) (joined bool, err error) {
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
	log.InfoContext(ctx, "joining host", "host", h.Address, "role", h.Role)
	req := swarm.JoinRequest{
		ListenAddr:    listenAddr(h),
		AdvertiseAddr: h.Advertise,
		RemoteAddrs:   []string{managerAddr + ":2377"},
		JoinToken:     token,
	}
	err = cli.SwarmJoin(ctx, req)
	if notLocal(err) {
		req.ListenAddr = anyListenAddr
		err = cli.SwarmJoin(ctx, req)
	}
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

// labelNode sets the role and index labels on a node, and where its engine
// is reached (see nodeEngine), and makes it active, retrying when the node
// object changes under us (its status is updated right after a join).
func labelNode(ctx context.Context, mgr *client.Client, id string, h swarmspec.Host) error {
	for attempt := 0; ; attempt++ {
		n, _, err := mgr.NodeInspectWithRaw(ctx, id)
		if err != nil {
			return fmt.Errorf("inspect node %s (%s): %w", id, h.Address, err)
		}
		spec := n.Spec
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		index := strconv.Itoa(h.Index)
		if spec.Labels[swarmspec.LabelRole] == h.Role && spec.Labels[swarmspec.LabelIndex] == index &&
			spec.Labels[swarmspec.LabelSSHAddress] == h.Address && spec.Labels[swarmspec.LabelDockerSocket] == h.Socket &&
			spec.Availability == swarm.NodeAvailabilityActive {
			return nil
		}
		spec.Labels[swarmspec.LabelRole] = h.Role
		spec.Labels[swarmspec.LabelIndex] = index
		spec.Labels[swarmspec.LabelSSHAddress] = h.Address
		if h.Socket != "" {
			spec.Labels[swarmspec.LabelDockerSocket] = h.Socket
		} else {
			delete(spec.Labels, swarmspec.LabelDockerSocket)
		}
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

// unlabelNode removes the role and index labels of a node the swarm
// adopted rather than joined.
func unlabelNode(ctx context.Context, mgr *client.Client, id string) error {
	n, _, err := mgr.NodeInspectWithRaw(ctx, id)
	if err != nil {
		return nil
	}
	delete(n.Spec.Labels, swarmspec.LabelRole)
	delete(n.Spec.Labels, swarmspec.LabelIndex)
	delete(n.Spec.Labels, swarmspec.LabelSSHAddress)
	delete(n.Spec.Labels, swarmspec.LabelDockerSocket)
	if err := mgr.NodeUpdate(ctx, id, n.Version, n.Spec); err != nil {
		return fmt.Errorf("remove labels of node %s: %w", id, err)
	}
	return nil
}

// waitNodesReady waits until the nodes report Ready to the manager.
func waitNodesReady(ctx context.Context, mgr *client.Client, ids []string) error {
	for {
		nodes, err := mgr.NodeList(ctx, swarm.NodeListOptions{})
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		var waiting []string
		for _, id := range ids {
			if !slices.ContainsFunc(nodes, func(n swarm.Node) bool { return n.ID == id && n.Status.State == swarm.NodeStateReady }) {
				waiting = append(waiting, id)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		if !sleep(ctx, pollInterval) {
			return fmt.Errorf("nodes %v did not become ready: %w", waiting, ctx.Err())
		}
	}
}

// drainNode drains a node and waits until no task runs on it.
func drainNode(ctx context.Context, mgr *client.Client, id string) error {
	n, _, err := mgr.NodeInspectWithRaw(ctx, id)
	if err != nil {
		return nil // already gone
	}
	n.Spec.Availability = swarm.NodeAvailabilityDrain
	if err := mgr.NodeUpdate(ctx, id, n.Version, n.Spec); err != nil {
		return fmt.Errorf("drain node %s: %w", id, err)
	}
	for {
		tasks, err := mgr.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
			filters.Arg("node", id), filters.Arg("desired-state", "running"))})
		if err != nil || len(tasks) == 0 {
			// The node reworks its ingress attachment after a drain; a leave
			// in the middle of that strands the ingress network on it.
			sleep(ctx, settleTime)
			return nil
		}
		if !sleep(ctx, pollInterval) {
			return fmt.Errorf("drain node %s: %d tasks still running: %w", id, len(tasks), ctx.Err())
		}
	}
}

// removeNode removes a node from the swarm's node list, retrying until the
// manager lets it go. An empty id (a node already gone) is nothing to do.
func removeNode(ctx context.Context, mgr *client.Client, id string) error {
	if id == "" {
		return nil
	}
	for {
		err := mgr.NodeRemove(ctx, id, swarm.NodeRemoveOptions{Force: true})
		if err == nil || client.IsErrNotFound(err) {
			return nil
		}
		if !sleep(ctx, pollInterval) {
			return fmt.Errorf("remove node %s: %w", id, err)
		}
	}
}

// removeUnlisted removes the nodes that carry a role label but are no
// host's node (ids: node ids by host): on EC2, the nodes of instances
// terminated by someone else. A node someone joined by hand has no role
// label and stays.
func removeUnlisted(ctx context.Context, log *slog.Logger, mgr *client.Client, ids map[string]string) error {
	nodes, err := mgr.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes {
		if n.Spec.Labels[swarmspec.LabelRole] == "" || slices.Contains(valuesOf(ids), n.ID) {
			continue
		}
		log.InfoContext(ctx, "removing the node of an instance that is gone",
			"node", n.ID, "address", n.Status.Addr, "state", string(n.Status.State))
		if err := removeNode(ctx, mgr, n.ID); err != nil {
			return err
		}
	}
	return nil
}

// leaveSwarm makes a host leave the swarm and removes what Swarm created
// on it: the docker_gwbridge network. Docker removes the task containers,
// the ingress network and its sandbox by itself after a leave,
// asynchronously; touching the bridge before that is done can leave the
// sandbox behind for good, so the bridge is removed only once no task
// container and no swarm-scoped network is left. A busy engine can give up
// half-way ("timeout while waiting for ingress network removal" in its
// log): once what is left has not changed for staleEndpointGrace, the
// leftovers are removed by force, as `docker rm -f` and
// `docker network disconnect -f` would: the task containers of the node
// that left, then (once no swarm network is left) the bridge's endpoints
// that no running container holds, then the bridge. An engine whose count
// of the bridge's endpoints has gone stale keeps the bridge until it
// restarts; that is logged and not waited for.
func leaveSwarm(ctx context.Context, log *slog.Logger, cli *client.Client, addr string) error {
	waitIngressSettled(ctx, cli)
	info, err := cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("host %s: %w", addr, err)
	}
	nodeID := info.Swarm.NodeID // "" when the host is in no swarm
	err = cli.SwarmLeave(ctx, true)
	if err != nil && !strings.Contains(err.Error(), "not part of a swarm") {
		return fmt.Errorf("host %s: swarm leave: %w", addr, err)
	}
	wctx, cancel := context.WithTimeout(ctx, gwbridgeTimeout)
	defer cancel()
	var (
		last      leftovers
		since     = time.Now() // when last was first seen, or last acted on
		bridgeErr string       // why removing docker_gwbridge last failed
	)
	for {
		left, err := listLeftovers(wctx, cli, nodeID)
		if err == nil {
			stuck := left == last && time.Since(since) >= staleEndpointGrace
			if left != last || stuck {
				last, since = left, time.Now()
			}
			switch {
			case left.containers > 0 && stuck:
				removeTaskContainers(wctx, log, cli, addr, nodeID)
			case left.containers > 0, left.networks != "":
				// Task containers hold on to docker_gwbridge until they are
				// gone; the ingress sandbox, until the ingress network is.
			default:
				disconnected := 0
				if stuck {
					disconnected = disconnectStale(wctx, log, cli, addr)
				}
				err := cli.NetworkRemove(wctx, gwbridge)
				if err == nil || errdefs.IsNotFound(err) {
					return nil
				}
				bridgeErr = err.Error()
				if stuck && disconnected == 0 && strings.Contains(bridgeErr, "has active endpoints") {
					// Nothing uses the bridge, yet the engine counts
					// endpoints on it: its count is stale, and only a
					// restart of the engine recounts. Waiting changes nothing.
					log.WarnContext(ctx, gwbridge+" left on host after leaving: the engine counts endpoints on it that "+
						"no container holds; it is reused on the next join, and restarting dockerd removes it",
						"host", addr, "error", bridgeErr)
					return nil
				}
			}
		}
		if !sleep(wctx, pollInterval) {
			// Docker's own network, recreated on the next join: not worth
			// failing a destroy for.
			log.WarnContext(ctx, "Swarm networks left on host after leaving", "host", addr,
				"task_containers", last.containers, "swarm_networks", last.networks, "error", bridgeErr)
			return nil
		}
	}
}

// staleEndpointGrace is how long what Swarm left on a host after a leave
// may stay unchanged before it counts as stuck and is removed by force.
const staleEndpointGrace = 15 * time.Second

// leftovers is what Swarm still has on a host after it left: comparable, so
// that a wait can tell progress from a stall.
type leftovers struct {
	containers int    // task containers of the node that left
	networks   string // swarm-scoped networks, by name
}

// listLeftovers lists the task containers of node nodeID (none when it is
// "") and the swarm-scoped networks on a host.
func listLeftovers(ctx context.Context, cli *client.Client, nodeID string) (leftovers, error) {
	var left leftovers
	tasks, err := taskContainers(ctx, cli, nodeID)
	if err != nil {
		return left, err
	}
	left.containers = len(tasks)
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return left, err
	}
	var names []string
	for _, n := range nets {
		if n.Scope == "swarm" {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	left.networks = strings.Join(names, ",")
	return left, nil
}

// taskContainers lists, running or not, the containers Swarm created for
// the tasks of node nodeID; none when nodeID is "".
func taskContainers(ctx context.Context, cli *client.Client, nodeID string) ([]container.Summary, error) {
	if nodeID == "" {
		return nil, nil
	}
	return cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", labelTaskNode+"="+nodeID))})
}

// labelTaskNode is the label Swarm puts on a task's container: the id of
// the node it runs on.
const labelTaskNode = "com.docker.swarm.node.id"

// removeTaskContainers removes, by force, the task containers left on a
// host after its node nodeID left the swarm.
func removeTaskContainers(ctx context.Context, log *slog.Logger, cli *client.Client, addr, nodeID string) {
	tasks, err := taskContainers(ctx, cli, nodeID)
	if err != nil {
		return
	}
	for _, c := range tasks {
		log.InfoContext(ctx, "removing a task container left after leaving the swarm", "host", addr, "container", strings.Join(c.Names, ","), "state", c.State)
		if err := cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			log.WarnContext(ctx, "could not remove a task container", "host", addr, "container", c.ID, "error", err.Error())
		}
	}
}

// disconnectStale disconnects from docker_gwbridge, by force, every
// endpoint that no running container holds, and returns how many it tried
// (-1 when the bridge could not be inspected).
func disconnectStale(ctx context.Context, log *slog.Logger, cli *client.Client, addr string) int {
	bridge, err := cli.NetworkInspect(ctx, gwbridge, network.InspectOptions{})
	if err != nil {
		return -1
	}
	tried := 0
	for id, ep := range bridge.Containers {
		if c, err := cli.ContainerInspect(ctx, id); err == nil && c.State != nil && c.State.Running {
			continue
		}
		tried++
		log.InfoContext(ctx, "disconnecting a stale endpoint from "+gwbridge, "host", addr, "endpoint", ep.Name)
		if err := cli.NetworkDisconnect(ctx, gwbridge, ep.Name, true); err != nil {
			log.WarnContext(ctx, "could not disconnect a stale endpoint", "host", addr, "endpoint", ep.Name, "error", err.Error())
		}
	}
	return tried
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
		if !sleep(wctx, pollInterval) {
			return
		}
	}
}

// ReadNodes checks every host's node (ids: node ids by SSH address, as an
// earlier Form or ReadNodes returned them; a host missing from ids is
// looked up by address, as on import): present, ready and labelled with its
// role and index. It returns node ids by address, "" for a node that is
// not (and stays "" until a Form puts it right), so that the next Form
// rejoins or relabels it.
func (m *Manager) ReadNodes(ctx context.Context, hosts []swarmspec.Host, ids map[string]string) (map[string]string, error) {
	nodes, err := m.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	byID := map[string]swarm.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	out := make(map[string]string, len(hosts))
	for _, h := range hosts {
		id, known := ids[h.Address]
		if !known {
			id = findNode(nodes, h)
		}
		n, ok := byID[id]
		switch {
		case !ok:
			id = ""
		case n.Status.State != swarm.NodeStateReady,
			n.Spec.Labels[swarmspec.LabelRole] != h.Role,
			n.Spec.Labels[swarmspec.LabelIndex] != strconv.Itoa(h.Index):
			m.log.WarnContext(ctx, "node drifted", "host", h.Address, "state", string(n.Status.State), "labels", n.Spec.Labels)
			id = ""
		}
		out[h.Address] = id
	}
	return out, nil
}

// findNode finds a host's node by its address.
func findNode(nodes []swarm.Node, h swarmspec.Host) string {
	for _, n := range nodes {
		if n.Status.Addr == h.Advertise || strings.HasPrefix(h.Address, n.Status.Addr) {
			return n.ID
		}
	}
	return ""
}

func valuesOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
