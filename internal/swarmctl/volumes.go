package swarmctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// The brokers keep their data on named local volumes (swarmspec's
// dataVolume), which the node's engine creates when a task first mounts
// them and which Swarm never removes: removing a service leaves them on
// the node that ran its tasks. Only that node's own engine can remove them
// (the Volume API of a manager is its own engine's), so removeServices
// notes, before it removes services, which volumes their tasks mounted on
// which nodes, and removes them there once the tasks are gone.

// volumeInUseTimeout bounds how long a volume removal is retried while the
// engine says the volume is in use: a task's container is removed a moment
// after the manager forgets the task, and a broker takes a few seconds to
// shut down.
const volumeInUseTimeout = time.Minute

// nodeEngine reaches the engine of a swarm node; where says where, for
// messages.
type nodeEngine func(ctx context.Context, n swarm.Node) (cli *client.Client, where string, err error)

// nodeEngines reaches a node's engine over SSH where its labels say
// (swarmspec.LabelSSHAddress, LabelDockerSocket); a node labelled by an
// older provider, at its Swarm address. known holds host key fingerprints
// by SSH address (trust on first use), as Prior.HostKeys.
func (c *Client) nodeEngines(known map[string]string) nodeEngine {
	return func(ctx context.Context, n swarm.Node) (*client.Client, string, error) {
		addr := n.Spec.Labels[swarmspec.LabelSSHAddress]
		if addr == "" {
			addr = n.Status.Addr
		}
		cli, _, err := c.pool.Docker(ctx, dockerssh.Target{Address: addr,
			DockerSocket: n.Spec.Labels[swarmspec.LabelDockerSocket], ExpectedHostKey: known[addr]})
		return cli, addr, err
	}
}

// ReachNodes tells a Manager made with NewManager how to reach the engines
// of the other nodes, where the volumes of the services it removes are
// removed; without it, those volumes are left (with a warning) and only
// the manager's own are removed.
func (m *Manager) ReachNodes(engine func(context.Context, swarm.Node) (*client.Client, error)) {
	m.reach = func(ctx context.Context, n swarm.Node) (*client.Client, string, error) {
		cli, err := engine(ctx, n)
		return cli, n.Status.Addr, err
	}
}

// nodeVolume is a volume that a service's task mounted on a node.
type nodeVolume struct {
	node, name, owner string
}

// volumesOf lists the named volumes with our labels that the services'
// tasks mounted, by node. Services without such a mount (all but the
// brokers) cost no API call.
func (m *Manager) volumesOf(ctx context.Context, services []swarm.Service) ([]nodeVolume, error) {
	mounts := map[string][]mount.Mount{} // by service id
	for _, s := range services {
		if ms := ownVolumes(s.Spec); len(ms) > 0 {
			mounts[s.ID] = ms
		}
	}
	if len(mounts) == 0 {
		return nil, nil
	}
	tasks, err := m.cli.TaskList(ctx, swarm.TaskListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list tasks of services to remove: %w", err)
	}
	var out []nodeVolume
	for _, t := range tasks {
		if t.NodeID == "" {
			continue // never scheduled: nothing was mounted
		}
		for _, mt := range mounts[t.ServiceID] {
			v := nodeVolume{node: t.NodeID, name: mt.Source, owner: mt.VolumeOptions.Labels[swarmspec.LabelOwner]}
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// ownVolumes returns a spec's mounts of named volumes that carry our
// labels, which the engine gives a volume it creates.
func ownVolumes(spec swarm.ServiceSpec) []mount.Mount {
	cs := spec.TaskTemplate.ContainerSpec
	if cs == nil {
		return nil
	}
	var out []mount.Mount
	for _, mt := range cs.Mounts {
		if mt.Type == mount.TypeVolume && mt.Source != "" && mt.VolumeOptions != nil &&
			mt.VolumeOptions.Labels[swarmspec.LabelManaged] == "true" && mt.VolumeOptions.Labels[swarmspec.LabelOwner] != "" {
			out = append(out, mt)
		}
	}
	return out
}

// removeVolumes removes volumes on the nodes that hold them, the nodes at
// once. A node's engine must say that it is that node before anything is
// removed on it.
func (m *Manager) removeVolumes(ctx context.Context, vols []nodeVolume) error {
	if len(vols) == 0 {
		return nil
	}
	info, err := m.cli.Info(ctx)
	if err != nil {
		return fmt.Errorf("manager %s: docker info: %w", m.Address, err)
	}
	nodes, err := m.cli.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	byNode := map[string][]nodeVolume{}
	for _, v := range vols {
		byNode[v.node] = append(byNode[v.node], v)
	}
	ids := make([]string, 0, len(byNode))
	for id := range byNode {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return parallel.ForEach(ctx, maxParallel, ids, func(ctx context.Context, id string) error {
		names := make([]string, 0, len(byNode[id]))
		for _, v := range byNode[id] {
			names = append(names, v.name)
		}
		i := slices.IndexFunc(nodes, func(n swarm.Node) bool { return n.ID == id })
		if i < 0 {
			m.log.WarnContext(ctx, "volumes left on a node that has left the swarm", "node", id, "volumes", names)
			return nil
		}
		n := nodes[i]
		where := fmt.Sprintf("node %s (%s, %s)", n.Description.Hostname, id, n.Status.Addr)
		cli := m.cli
		if id != info.Swarm.NodeID {
			if m.reach == nil {
				m.log.WarnContext(ctx, "volumes left: no way to reach the node's engine", "node", where, "volumes", names)
				return nil
			}
			c, addr, err := m.reach(ctx, n)
			if err != nil {
				return fmt.Errorf("%s: volumes %s left (remove them there with docker volume rm): %w", where, strings.Join(names, ", "), err)
			}
			where = fmt.Sprintf("node %s (%s, %s)", n.Description.Hostname, id, addr)
			own, err := c.Info(ctx)
			if err != nil {
				return fmt.Errorf("%s: docker info: %w", where, err)
			}
			if own.Swarm.NodeID != id {
				return fmt.Errorf("%s: the engine there is node %q, not %s: volumes %s left", where, own.Swarm.NodeID, id, strings.Join(names, ", "))
			}
			cli = c
		}
		var errs []error
		for _, v := range byNode[id] {
			errs = append(errs, removeVolume(ctx, m.log, cli, where, v.name, v.owner))
		}
		return errors.Join(errs...)
	})
}

// removeVolume removes a volume of owner from an engine, retrying for up
// to volumeInUseTimeout while it is in use. A volume that is gone is
// nothing to do; one without our labels for owner (made by someone else
// under that name) is left alone.
func removeVolume(ctx context.Context, log *slog.Logger, cli *client.Client, where, name, owner string) error {
	deadline := time.Now().Add(volumeInUseTimeout)
	for attempt := 1; ; attempt++ {
		v, err := cli.VolumeInspect(ctx, name)
		if errdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: inspect volume %s: %w", where, name, err)
		}
		if v.Labels[swarmspec.LabelManaged] != "true" || v.Labels[swarmspec.LabelOwner] != owner {
			log.WarnContext(ctx, "volume not created for its service, kept", "node", where, "volume", name, "labels", v.Labels)
			return nil
		}
		err = cli.VolumeRemove(ctx, name, false)
		switch {
		case err == nil:
			log.InfoContext(ctx, "removed volume", "node", where, "volume", name)
			return nil
		case errdefs.IsNotFound(err):
			return nil
		case !inUse(err) || time.Now().After(deadline):
			return fmt.Errorf("%s: remove volume %s (%d attempts): %w", where, name, attempt, err)
		}
		if !sleep(ctx, pollInterval) {
			return fmt.Errorf("%s: remove volume %s: %w (last: %v)", where, name, ctx.Err(), err)
		}
	}
}

// inUse reports whether a volume removal failed because a container still
// mounts the volume.
func inUse(err error) bool {
	return errdefs.IsConflict(err) || strings.Contains(err.Error(), "volume is in use")
}

// sweepVolumes removes, from the engine of a host that has left the swarm,
// every volume with our labels: those of services of any owner that ran
// there (a mirror left behind when the swarm is destroyed). A volume that
// stays is logged, not failed for, as the networks leaveSwarm leaves.
func sweepVolumes(ctx context.Context, log *slog.Logger, cli *client.Client, addr string) {
	list, err := cli.VolumeList(ctx, volume.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", swarmspec.LabelManaged+"=true"))})
	if err != nil {
		log.WarnContext(ctx, "could not list volumes after leaving the swarm", "host", addr, "error", err.Error())
		return
	}
	var wg sync.WaitGroup
	for _, v := range list.Volumes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := removeVolume(ctx, log, cli, "host "+addr, v.Name, v.Labels[swarmspec.LabelOwner]); err != nil {
				log.WarnContext(ctx, "volume left on host after leaving the swarm", "host", addr, "volume", v.Name, "error", err.Error())
			}
		}()
	}
	wg.Wait()
}
