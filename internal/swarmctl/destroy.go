package swarmctl

import (
	"context"

	"github.com/docker/docker/client"

	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Teardown is the swarm Destroy takes down.
type Teardown struct {
	Hosts    []swarmspec.Host
	Network  string
	NodeIDs  map[string]string // by SSH address, as Formed.NodeIDs
	HostKeys map[string]string // by SSH address, as Formed.HostKeys
}

// Destroy undoes what the Forms recorded in rec did: it removes the swarm's
// own services, configs and volumes and its network, makes the hosts it
// joined leave (and removes their nodes and the volumes of ours left on
// them) or, on hosts it adopted, removes the role labels, removes the
// images it loaded, and makes the manager leave when it created the
// swarm. A host other than the manager that cannot be reached is only
// removed from the node list.
func (c *Client) Destroy(ctx context.Context, t Teardown, rec Record) error {
	mgrHost := swarmspec.ManagerOf(t.Hosts)
	if mgrHost.Address == "" {
		return errNoManager
	}
	clients := map[string]*client.Client{}
	for _, h := range t.Hosts {
		e, err := c.connect(ctx, []swarmspec.Host{h}, t.HostKeys)
		if err != nil {
			if h.Role == swarmspec.RoleManager {
				return err
			}
			c.log.WarnContext(ctx, "host unreachable; it will only be removed from the node list", "host", h.Address, "error", err.Error())
			continue
		}
		clients[h.Address] = e.clients[h.Address]
	}
	mgr := &Manager{cli: clients[mgrHost.Address], log: c.log, Address: mgrHost.Address, reach: c.nodeEngines(t.HostKeys)}
	if err := mgr.RemoveOwner(ctx, swarmspec.OwnerSwarm); err != nil {
		return err
	}
	if err := mgr.removeNetwork(ctx, t.Network); err != nil {
		return err
	}
	err := parallel.ForEach(ctx, maxParallel, t.Hosts, func(ctx context.Context, h swarmspec.Host) error {
		if h.Role == swarmspec.RoleManager {
			return nil
		}
		id := t.NodeIDs[h.Address]
		if !rec.CreatedSwarm && !rec.joined(h.Address) {
			return unlabelNode(ctx, mgr.cli, id)
		}
		if cli := clients[h.Address]; cli != nil {
			if err := leaveSwarm(ctx, c.log, cli, h.Address); err != nil {
				return err
			}
			sweepVolumes(ctx, c.log, cli, h.Address)
		}
		if rec.CreatedSwarm {
			return nil // the swarm goes with its manager
		}
		return removeNode(ctx, mgr.cli, id)
	})
	if err != nil {
		return err
	}
	for _, h := range t.Hosts {
		if cli := clients[h.Address]; cli != nil && h.Role != swarmspec.RoleManager {
			removeImages(ctx, c.log, cli, h.Address, rec.Loaded[h.Address])
		}
	}
	if rec.CreatedSwarm {
		if err := leaveSwarm(ctx, c.log, mgr.cli, mgrHost.Address); err != nil {
			return err
		}
		sweepVolumes(ctx, c.log, mgr.cli, mgrHost.Address)
	} else if err := unlabelNode(ctx, mgr.cli, t.NodeIDs[mgrHost.Address]); err != nil {
		return err
	}
	removeImages(ctx, c.log, mgr.cli, mgrHost.Address, rec.Loaded[mgrHost.Address])
	return nil
}
