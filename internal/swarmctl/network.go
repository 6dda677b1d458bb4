package swarmctl

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// overlayEncrypted is the overlay driver's option that encrypts the
// traffic between nodes (IPsec ESP, AES-GCM, keys rotated by the managers),
// as `docker network create --opt encrypted`.
const overlayEncrypted = "encrypted"

// EnsureNetwork creates the attachable overlay network every service joins,
// encrypted or not, unless it exists, and returns its id. An existing
// network must be encrypted as asked: that cannot change while services
// use it.
func (m *Manager) EnsureNetwork(ctx context.Context, name string, encrypted bool) (string, error) {
	list, err := m.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil {
		return "", fmt.Errorf("list networks: %w", err)
	}
	for _, n := range list {
		if n.Name == name {
			if n.Driver != "overlay" || n.Scope != "swarm" {
				return "", fmt.Errorf("network %s exists but is a %s/%s network, not a swarm overlay; remove it or choose another name", name, n.Driver, n.Scope)
			}
			if _, enc := n.Options[overlayEncrypted]; enc != encrypted {
				return "", fmt.Errorf("network %s exists with encryption %v, not %v; remove it (with the services on it) or choose another name", name, enc, encrypted)
			}
			return n.ID, nil
		}
	}
	opts := map[string]string{}
	if encrypted {
		opts[overlayEncrypted] = ""
	}
	resp, err := m.cli.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "overlay", Attachable: true, Scope: "swarm", Options: opts,
		Labels: map[string]string{swarmspec.LabelManaged: "true", swarmspec.LabelOwner: swarmspec.OwnerSwarm},
	})
	if err != nil {
		return "", fmt.Errorf("create overlay network %s: %w", name, err)
	}
	return resp.ID, nil
}

// NetworkID returns the id of the network, or "" when there is none.
func (m *Manager) NetworkID(ctx context.Context, name string) (string, error) {
	n, err := m.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	switch {
	case errdefs.IsNotFound(err):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("inspect network %s: %w", name, err)
	}
	return n.ID, nil
}

// removeNetwork removes the overlay network, retrying while the last
// containers detach from it.
func (m *Manager) removeNetwork(ctx context.Context, name string) error {
	for {
		err := m.cli.NetworkRemove(ctx, name)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if !sleep(ctx, pollInterval) {
			return fmt.Errorf("remove network %s: %w", name, err)
		}
	}
}
