package provider

import (
	"context"
	"fmt"
	"sync"

	"github.com/docker/docker/client"

	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
)

// engines holds Docker clients of the hosts a resource talks to, and the
// host key fingerprints seen on the way.
type engines struct {
	clients map[string]*client.Client // by SSH address
	keys    map[string]string         // fingerprints by SSH address
}

// connect reaches the Docker Engine of every host concurrently. known holds
// fingerprints recorded earlier (trust on first use); a changed key fails.
func connect(ctx context.Context, pd *providerData, hosts []host, known map[string]string) (*engines, error) {
	e := &engines{clients: map[string]*client.Client{}, keys: map[string]string{}}
	var mu sync.Mutex
	err := forEach(ctx, hosts, func(ctx context.Context, h host) error {
		cli, info, err := pd.pool.Docker(ctx, dockerssh.Target{
			Address: h.Address, DockerSocket: h.Socket, ExpectedHostKey: known[h.Address]})
		if err != nil {
			return fmt.Errorf("host %s (%s): %w", h.Address, h.Role, err)
		}
		mu.Lock()
		e.clients[h.Address] = cli
		e.keys[h.Address] = info.Fingerprint
		mu.Unlock()
		return nil
	})
	return e, err
}

// connectManager reaches just the manager, for the mirror and filter group
// resources.
func connectManager(ctx context.Context, pd *providerData, address, knownKey string) (*client.Client, string, error) {
	cli, info, err := pd.pool.Docker(ctx, dockerssh.Target{Address: address, ExpectedHostKey: knownKey})
	if err != nil {
		return nil, "", fmt.Errorf("swarm manager %s: %w", address, err)
	}
	return cli, info.Fingerprint, nil
}
