package swarmctl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Spec is the swarm Form makes of the hosts.
type Spec struct {
	// Hosts as swarmspec.NumberHosts returns them: exactly one manager.
	Hosts []swarmspec.Host
	// AddressPool is the CIDR overlay networks are cut from when the swarm
	// is created; DefaultAddressPool when empty. An adopted swarm keeps its
	// own.
	AddressPool string
	// IDLabel, when set, labels a swarm Form creates (swarmspec.LabelSwarmID).
	IDLabel string
	// ClusterID, when set, is the swarm the manager must already run (an
	// update of a swarm formed earlier); another one fails Form before any
	// host joins it.
	ClusterID string
	// Archives are `docker save` files, each loaded onto the nodes whose
	// services run one of its images (KafkaImage, WorkloadsImage) and lack
	// it.
	Archives                   []string
	KafkaImage, WorkloadsImage string
	// RemoveUnlisted removes nodes with a role label that are no host's
	// node: on EC2, the nodes of instances that are gone.
	RemoveUnlisted bool
}

// Prior is what an earlier Form of the same swarm left, from which Form
// finds the hosts that have left the configuration.
type Prior struct {
	Hosts    []swarmspec.Host
	NodeIDs  map[string]string // by SSH address, as Formed.NodeIDs
	HostKeys map[string]string // by SSH address, as Formed.HostKeys
}

// Formed is what Form learned; on failure, as much as it got to.
type Formed struct {
	ClusterID string            // set once the manager runs the expected swarm
	NodeIDs   map[string]string // by SSH address, set once every node is labelled
	HostKeys  map[string]string // fingerprints to keep (trust on first use), by SSH address
}

// Record is what Forms of a swarm did that its destroy must undo. Callers
// keep it between runs (the provider in its private state) and pass it to
// every Form and to Destroy.
type Record struct {
	// CreatedSwarm is true when Form initialised the swarm; false when it
	// adopted one the manager already ran, which destroy keeps.
	CreatedSwarm bool `json:"created_swarm"`
	// Joined lists the SSH addresses of hosts Form joined.
	Joined []string `json:"joined"`
	// Loaded lists image ids loaded from archives, by SSH address.
	Loaded map[string][]string `json:"loaded"`
}

var errNoManager = errors.New("no host has the role manager")

func (r *Record) joined(addr string) bool { return slices.Contains(r.Joined, addr) }

// Form brings the hosts to spec: the swarm initialised on the manager (or
// the one it runs adopted), every other host joined, images loaded, every
// node labelled with its role and index and ready; then the hosts of prior
// that are no longer in spec drained, made to leave and removed. It
// records what it did in rec and returns the manager, on which the caller
// places the network and services.
func (c *Client) Form(ctx context.Context, spec Spec, prior Prior, rec *Record) (*Manager, Formed, error) {
	var formed Formed
	if rec.Loaded == nil {
		rec.Loaded = map[string][]string{}
	}
	archives, err := readArchives(spec.Archives)
	if err != nil {
		return nil, formed, err
	}
	if err := checkArchivesUsed(archives, spec.KafkaImage, spec.WorkloadsImage); err != nil {
		return nil, formed, err
	}
	host := swarmspec.ManagerOf(spec.Hosts)
	if host.Address == "" {
		return nil, formed, errNoManager
	}
	eng, err := c.connect(ctx, spec.Hosts, prior.HostKeys)
	if err != nil {
		return nil, formed, err
	}
	mcli := eng.clients[host.Address]
	mgr := &Manager{cli: mcli, log: c.log, Address: host.Address, HostKey: eng.keys[host.Address], reach: c.nodeEngines(eng.keys)}

	id, created, err := initSwarm(ctx, c.log, mcli, host, spec.AddressPool, spec.IDLabel)
	if created {
		rec.CreatedSwarm = true
		rec.Joined = append(rec.Joined, host.Address)
	}
	if err != nil {
		return nil, formed, err
	}
	if spec.ClusterID != "" && id != spec.ClusterID {
		return nil, formed, fmt.Errorf("manager %s now runs swarm %s, not %s: the swarm was replaced after it was formed", host.Address, id, spec.ClusterID)
	}
	formed.ClusterID = id

	sw, err := mcli.SwarmInspect(ctx)
	if err != nil {
		return nil, formed, fmt.Errorf("swarm inspect on %s: %w", host.Address, err)
	}
	var mu sync.Mutex
	ids := map[string]string{}
	err = parallel.ForEach(ctx, maxParallel, spec.Hosts, func(ctx context.Context, h swarmspec.Host) error {
		cli := eng.clients[h.Address]
		if h.Role != swarmspec.RoleManager {
			joined, err := joinHost(ctx, c.log, cli, mcli, h, host.Advertise, sw.JoinTokens.Worker)
			if err != nil {
				return err
			}
			if joined {
				mu.Lock()
				rec.Joined = append(rec.Joined, h.Address)
				mu.Unlock()
			}
		}
		id, err := nodeID(ctx, cli)
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Address, err)
		}
		for _, a := range archivesFor(archives, h.Role, spec.KafkaImage, spec.WorkloadsImage) {
			loaded, err := loadArchive(ctx, c.log, cli, h.Address, a)
			if err != nil {
				return err
			}
			mu.Lock()
			rec.Loaded[h.Address] = append(rec.Loaded[h.Address], loaded...)
			mu.Unlock()
		}
		mu.Lock()
		ids[h.Address] = id
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, formed, err
	}
	if err := waitNodesReady(ctx, mcli, valuesOf(ids)); err != nil {
		return nil, formed, err
	}
	if err := parallel.ForEach(ctx, maxParallel, spec.Hosts, func(ctx context.Context, h swarmspec.Host) error {
		return labelNode(ctx, mcli, ids[h.Address], h)
	}); err != nil {
		return nil, formed, err
	}
	formed.NodeIDs, formed.HostKeys = ids, eng.keys

	if err := c.removeDeparted(ctx, mgr, spec.Hosts, prior, rec); err != nil {
		return nil, formed, err
	}
	if spec.RemoveUnlisted {
		if err := removeUnlisted(ctx, c.log, mcli, ids); err != nil {
			return nil, formed, err
		}
	}
	return mgr, formed, nil
}

// removeDeparted drains the hosts of prior that are not in now, makes them
// leave the swarm, removes the images loaded onto them and removes them
// from the node list. A host that cannot be reached is only removed from
// the node list.
func (c *Client) removeDeparted(ctx context.Context, mgr *Manager, now []swarmspec.Host, prior Prior, rec *Record) error {
	for _, h := range prior.Hosts {
		if slices.ContainsFunc(now, func(n swarmspec.Host) bool { return n.Address == h.Address }) {
			continue
		}
		c.log.InfoContext(ctx, "removing host from the swarm", "host", h.Address)
		id := prior.NodeIDs[h.Address]
		if id != "" {
			if err := drainNode(ctx, mgr.cli, id); err != nil {
				return err
			}
		}
		if eng, err := c.connect(ctx, []swarmspec.Host{h}, prior.HostKeys); err == nil {
			cli := eng.clients[h.Address]
			if err := leaveSwarm(ctx, c.log, cli, h.Address); err != nil {
				return err
			}
			sweepVolumes(ctx, c.log, cli, h.Address)
			removeImages(ctx, c.log, cli, h.Address, rec.Loaded[h.Address])
		} else {
			c.log.WarnContext(ctx, "host unreachable; removing it from the node list only", "host", h.Address, "error", err.Error())
		}
		delete(rec.Loaded, h.Address)
		rec.Joined = slices.DeleteFunc(rec.Joined, func(a string) bool { return a == h.Address })
		if id != "" {
			if err := removeNode(ctx, mgr.cli, id); err != nil {
				return err
			}
		}
	}
	return nil
}
