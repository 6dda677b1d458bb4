package swarmctl

import (
	"context"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// sshAttemptTimeout bounds one attempt to reach a new node's Docker Engine.
const sshAttemptTimeout = 15 * time.Second

// WaitDocker waits until the host's Docker Engine answers over SSH, trying
// every poll, and returns the last attempt's error once ctx is done. Each
// attempt uses a fresh SSH connection: on a machine that is still booting,
// cloud-init adds the SSH user to the docker group, and a session opened
// before that would never be let in.
func (c *Client) WaitDocker(ctx context.Context, h swarmspec.Host, poll time.Duration) error {
	for {
		err := c.pingOnce(ctx, h)
		if err == nil {
			return nil
		}
		c.log.DebugContext(ctx, "waiting for Docker over SSH", "host", h.Address, "error", err.Error())
		if !sleep(ctx, poll) {
			return err
		}
	}
}

func (c *Client) pingOnce(ctx context.Context, h swarmspec.Host) error {
	pool, err := dockerssh.NewPool(c.ssh)
	if err != nil {
		return err
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(ctx, sshAttemptTimeout)
	defer cancel()
	return pool.Ping(ctx, dockerssh.Target{Address: h.Address, DockerSocket: h.Socket})
}
