package swarmctl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Client reaches the nodes' Docker Engines over SSH, one multiplexed
// connection per host.
type Client struct {
	pool *dockerssh.Pool
	ssh  dockerssh.Config
	log  *slog.Logger
	// keepKeys: under trust on first use, callers keep the host key
	// fingerprints seen (and pass them back as known keys next time);
	// under known_hosts there is nothing to keep.
	keepKeys bool
	// claims are the topics of the filter groups being placed now
	// (outputs.go).
	claims *topicClaims
}

// New returns a Client for the SSH settings. log receives what the Client
// and its Managers do, with the context of the call (nil: nowhere).
func New(cfg dockerssh.Config, log *slog.Logger) (*Client, error) {
	pool, err := dockerssh.NewPool(cfg)
	if err != nil {
		return nil, err
	}
	return &Client{pool: pool, ssh: cfg, log: orDiscard(log), keepKeys: cfg.Policy == dockerssh.TrustOnFirstUse,
		claims: newTopicClaims()}, nil
}

func orDiscard(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// Close closes every SSH connection.
func (c *Client) Close() error { return c.pool.Close() }

// keep returns the fingerprint to record for a host: the one seen under
// trust on first use, nothing otherwise.
func (c *Client) keep(fingerprint string) string {
	if c.keepKeys {
		return fingerprint
	}
	return ""
}

// engines holds the Docker clients of the hosts being worked on, and the
// host key fingerprints to keep.
type engines struct {
	clients map[string]*client.Client // by SSH address
	keys    map[string]string         // by SSH address; empty unless kept
}

// connect reaches the Docker Engine of every host concurrently. known
// holds fingerprints recorded earlier (trust on first use); a changed key
// fails.
func (c *Client) connect(ctx context.Context, hosts []swarmspec.Host, known map[string]string) (*engines, error) {
	e := &engines{clients: map[string]*client.Client{}, keys: map[string]string{}}
	var mu sync.Mutex
	err := parallel.ForEach(ctx, maxParallel, hosts, func(ctx context.Context, h swarmspec.Host) error {
		cli, info, err := c.pool.Docker(ctx, dockerssh.Target{
			Address: h.Address, DockerSocket: h.Socket, ExpectedHostKey: known[h.Address]})
		if err != nil {
			return fmt.Errorf("host %s (%s): %w", h.Address, h.Role, err)
		}
		mu.Lock()
		defer mu.Unlock()
		e.clients[h.Address] = cli
		if k := c.keep(info.Fingerprint); k != "" {
			e.keys[h.Address] = k
		}
		return nil
	})
	return e, err
}

// Manager is the Docker API of a swarm manager.
type Manager struct {
	cli *client.Client
	log *slog.Logger
	// Address is the manager's SSH address ("" for a local socket).
	Address string
	// HostKey is the manager's host key fingerprint under trust on first
	// use, to keep; empty otherwise.
	HostKey string
	// reach reaches the engine of another node, to remove volumes there
	// (see volumes.go); nil: only the manager's own engine is reached.
	reach nodeEngine
}

// NewManager wraps a Docker client of a swarm manager, e.g. one on its
// unix socket; log as for New. It reaches no other node's engine unless
// told how (ReachNodes).
func NewManager(cli *client.Client, log *slog.Logger) *Manager {
	return &Manager{cli: cli, log: orDiscard(log)}
}

// OpenManager connects to the manager's engine over SSH; knownKey is the
// fingerprint recorded earlier under trust on first use, if any.
func (c *Client) OpenManager(ctx context.Context, address, knownKey string) (*Manager, error) {
	cli, info, err := c.pool.Docker(ctx, dockerssh.Target{Address: address, ExpectedHostKey: knownKey})
	if err != nil {
		return nil, fmt.Errorf("swarm manager %s: %w", address, err)
	}
	return &Manager{cli: cli, log: c.log, Address: address, HostKey: c.keep(info.Fingerprint), reach: c.nodeEngines(nil)}, nil
}

// Info is what identifies a swarm.
type Info struct {
	ClusterID string // Swarm's own id
	IDLabel   string // the swarmspec.LabelSwarmID label of a swarm on EC2, else ""
}

// ID is the id a resource knows the swarm by: the id label of a swarm on
// EC2, else the cluster id.
func (i Info) ID() string {
	if i.IDLabel != "" {
		return i.IDLabel
	}
	return i.ClusterID
}

// Is reports whether the swarm is the one known as id (either id).
func (i Info) Is(id string) bool { return i.ClusterID == id || (id != "" && i.IDLabel == id) }

// Swarm inspects the swarm the manager runs; it fails when the engine is no
// swarm manager.
func (m *Manager) Swarm(ctx context.Context) (Info, error) {
	sw, err := m.cli.SwarmInspect(ctx)
	if err != nil {
		return Info{}, m.whyNoSwarm(ctx, err)
	}
	return Info{ClusterID: sw.ID, IDLabel: sw.Spec.Labels[swarmspec.LabelSwarmID]}, nil
}

// ErrNotInSwarm says that an engine that answers is in no swarm, or in one
// only as a worker: the swarm it managed is gone from it. Any other error
// reading a swarm (an engine restarting, a lost connection) says nothing
// about whether the swarm still exists.
var ErrNotInSwarm = errors.New("not a swarm manager")

// whyNoSwarm tells, after SwarmInspect failed with err, ErrNotInSwarm from
// an engine that cannot say yet (its swarm still starting, or no answer).
func (m *Manager) whyNoSwarm(ctx context.Context, err error) error {
	info, ierr := m.cli.Info(ctx)
	if ierr != nil {
		return err
	}
	switch s := info.Swarm; {
	case s.LocalNodeState == swarm.LocalNodeStateInactive,
		s.LocalNodeState == swarm.LocalNodeStateActive && !s.ControlAvailable:
		return fmt.Errorf("%w (node state %q): %v", ErrNotInSwarm, s.LocalNodeState, err)
	}
	return fmt.Errorf("swarm not readable yet (node state %q): %w", info.Swarm.LocalNodeState, err)
}

// Swarm is a manager of a swarm formed by minibroker_swarm, where mirrors
// and filter groups place their services.
type Swarm struct {
	*Manager
	ID      string       // as Info.ID
	Network string       // the overlay network every service joins
	claims  *topicClaims // the Client's; nil: none (ClaimTopics only checks)
}

// OpenSwarm connects to the manager, checks that it runs the swarm known
// as swarmID (any swarm when swarmID is empty, on import) and finds the
// swarm's overlay network.
func (c *Client) OpenSwarm(ctx context.Context, swarmID, address, knownKey string) (*Swarm, error) {
	m, err := c.OpenManager(ctx, address, knownKey)
	if err != nil {
		return nil, err
	}
	info, err := m.Swarm(ctx)
	if err != nil {
		return nil, fmt.Errorf("swarm on %s: %w", address, err)
	}
	if swarmID != "" && !info.Is(swarmID) {
		return nil, fmt.Errorf("%s manages swarm %s, not %s", address, info.ClusterID, swarmID)
	}
	nets, err := m.cli.NetworkList(ctx, network.ListOptions{Filters: ownerFilter(swarmspec.OwnerSwarm)})
	if err != nil {
		return nil, fmt.Errorf("list networks on %s: %w", address, err)
	}
	if len(nets) != 1 {
		return nil, fmt.Errorf("swarm %s has %d minibroker networks, want 1: create it with minibroker_swarm first", info.ClusterID, len(nets))
	}
	return &Swarm{Manager: m, ID: info.ID(), Network: nets[0].Name, claims: c.claims}, nil
}

// ownerFilter selects the objects of one owner.
func ownerFilter(owner string) filters.Args {
	return filters.NewArgs(filters.Arg("label", swarmspec.LabelOwner+"="+owner))
}

// ErrNoMirror says that the swarm has no service of the mirror asked for.
var ErrNoMirror = errors.New("no mirror")

// MirrorNodeIndex finds the filter node a mirror runs on.
func (s *Swarm) MirrorNodeIndex(ctx context.Context, mirror string) (int, error) {
	m, err := s.Mirror(ctx, mirror)
	return m.NodeIndex, err
}

// MirrorInfo is what a filter group learns of its mirror from the
// mirror's Kafka service.
type MirrorInfo struct {
	// ServiceID is the mirror Kafka's service id.
	ServiceID string
	NodeIndex int
	// External is the bootstrap address of the mirror's listener for
	// users outside the swarm ("" when it has none).
	External string
}

// Mirror describes a mirror from its Kafka service's labels.
func (s *Swarm) Mirror(ctx context.Context, mirror string) (MirrorInfo, error) {
	services, err := s.owned(ctx, swarmspec.MirrorOwner(mirror))
	if err != nil {
		return MirrorInfo{}, err
	}
	svc, ok := services[swarmspec.MirrorKafkaService(mirror)]
	if !ok {
		return MirrorInfo{}, fmt.Errorf("%w %q in swarm %s: create it with minibroker_mirror first", ErrNoMirror, mirror, s.ID)
	}
	idx, err := strconv.Atoi(svc.Spec.Labels[swarmspec.LabelIndex])
	if err != nil {
		return MirrorInfo{}, fmt.Errorf("mirror %q: service %s has no node index label", mirror, svc.Spec.Name)
	}
	return MirrorInfo{ServiceID: svc.ID, NodeIndex: idx, External: svc.Spec.Labels[swarmspec.LabelExternal]}, nil
}

// KafkaCA returns the fingerprint of the CA of the swarm's secured Kafka,
// as the hub's label gives it; "" when the swarm's Kafka is not secured.
func (s *Swarm) KafkaCA(ctx context.Context) (string, error) {
	services, err := s.owned(ctx, swarmspec.OwnerSwarm)
	if err != nil {
		return "", err
	}
	hub, ok := services[swarmspec.HubService]
	if !ok {
		return "", fmt.Errorf("swarm %s has no hub service %s: apply minibroker_swarm first", s.ID, swarmspec.HubService)
	}
	return hub.Spec.Labels[swarmspec.LabelKafkaCA], nil
}

// NodeHost returns the host part of the SSH address the provider reaches
// the node of role and index at (its minibroker.ssh-address label).
func (s *Swarm) NodeHost(ctx context.Context, role string, index int) (string, error) {
	nodes, err := s.cli.NodeList(ctx, swarm.NodeListOptions{Filters: filters.NewArgs(
		filters.Arg("node.label", swarmspec.LabelRole+"="+role))})
	if err != nil {
		return "", fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes {
		if n.Spec.Labels[swarmspec.LabelIndex] != strconv.Itoa(index) {
			continue
		}
		addr := n.Spec.Labels[swarmspec.LabelSSHAddress]
		if host, _, err := net.SplitHostPort(addr); err == nil {
			return host, nil
		}
		if addr == "" {
			return "", fmt.Errorf("%s node %d has no %s label", role, index, swarmspec.LabelSSHAddress)
		}
		return addr, nil
	}
	return "", fmt.Errorf("swarm %s has no %s node with index %d", s.ID, role, index)
}

// CheckNode fails, saying what there is, when no node has the role and
// index.
func (s *Swarm) CheckNode(ctx context.Context, role string, index int) error {
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
	return fmt.Errorf("swarm %s has %d %s nodes; there is no %s node with index %d", s.ID, len(nodes), role, role, index)
}
