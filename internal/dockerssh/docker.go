package dockerssh

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"golang.org/x/crypto/ssh"
)

// Target identifies one Docker Engine reachable over SSH.
type Target struct {
	// Address is "host" or "host:port" (IPv6 in brackets); port 22 by default.
	Address string
	// DockerSocket is the engine's unix socket on the host;
	// DefaultDockerSocket when empty. A "unix://" prefix is accepted.
	DockerSocket string
	// ExpectedHostKey is the SHA256 fingerprint ("SHA256:...") the host must
	// present, typically the HostKeyInfo.Fingerprint recorded on first use.
	// Empty means no expectation beyond the pool's policy. Checked with
	// either policy.
	ExpectedHostKey string
}

// Docker returns a Docker client for the engine at t, connecting over SSH
// first if the pool has no live connection to t.Address (a cached
// connection is checked with a keepalive round trip unless one was answered
// within the last second), and reports the host key of that connection.
//
// The client negotiates the API version with the engine on first use, does
// not read DOCKER_* environment variables or proxy settings, and opens one
// SSH channel per HTTP connection (hijacked and streaming calls included).
// Clients are cached per address and socket, so Close on it is optional; it
// stays usable until Pool.Close and transparently redials a dead SSH
// connection (the host must present the same key).
//
// If the host key does not match t.ExpectedHostKey the error is a
// *HostKeyError naming both fingerprints, and the HostKeyInfo of the
// presented key is returned alongside it when known.
//
// With a bastion (Config.Bastion), the connection to t.Address is tunnelled
// through the Pool's connection to the bastion, dialled first if needed.
// Errors name the hop that failed ("ssh bastion user@host:port: ..." or
// "ssh user@host:port via bastion user@host:port: ..."); a bastion whose key
// fails verification gives a *HostKeyError with Bastion set, and no
// HostKeyInfo is returned for t then.
func (p *Pool) Docker(ctx context.Context, t Target) (*client.Client, HostKeyInfo, error) {
	addr, err := normalizeAddress(t.Address)
	if err != nil {
		return nil, HostKeyInfo{}, err
	}
	socket, err := normalizeSocket(t.DockerSocket)
	if err != nil {
		return nil, HostKeyInfo{}, err
	}
	expected, err := NormalizeFingerprint(t.ExpectedHostKey)
	if err != nil {
		return nil, HostKeyInfo{}, err
	}
	h, err := p.host(addr)
	if err != nil {
		return nil, HostKeyInfo{}, err
	}
	c, err := h.connect(ctx, expected, true)
	if err != nil {
		var hk *HostKeyError
		if errors.As(err, &hk) && !hk.Bastion {
			return nil, hk.Presented, err
		}
		return nil, HostKeyInfo{}, err
	}
	if expected != "" && expected != c.key.Fingerprint {
		hk := &HostKeyError{Host: h.label, Addr: h.addr, Presented: c.key, Expected: []string{expected}}
		h.describe(hk)
		return nil, c.key, hk
	}
	cli, err := h.docker(c, socket)
	if err != nil {
		return nil, c.key, err
	}
	return cli, c.key, nil
}

// Ping checks that the Docker Engine at t answers, over SSH.
func (p *Pool) Ping(ctx context.Context, t Target) error {
	cli, _, err := p.Docker(ctx, t)
	if err != nil {
		return err
	}
	if _, err := cli.Ping(ctx); err != nil {
		return fmt.Errorf("ping docker engine at %s: %w", t.Address, err)
	}
	return nil
}

func normalizeSocket(s string) (string, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "unix://")
	if s == "" {
		return DefaultDockerSocket, nil
	}
	if !strings.HasPrefix(s, "/") {
		return "", fmt.Errorf("dockerssh: docker socket %q must be an absolute path on the host, e.g. %s", s, DefaultDockerSocket)
	}
	return s, nil
}

// docker returns the cached Docker client for socket on connection c, or
// builds one.
func (h *host) docker(c *conn, socket string) (*client.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn == c && h.dockers[socket] != nil {
		return h.dockers[socket], nil
	}
	cli, err := h.newDockerClient(socket)
	if err != nil {
		return nil, err
	}
	if h.conn == c { // else a redial raced us: don't cache for the old conn
		if h.dockers == nil {
			h.dockers = map[string]*client.Client{}
		}
		h.dockers[socket] = cli
	}
	return cli, nil
}

func (h *host) newDockerClient(socket string) (*client.Client, error) {
	tr := &http.Transport{
		// Every connection is a fresh SSH channel to the socket; the
		// address the transport asks for is the placeholder host below.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return h.dialSocket(ctx, socket)
		},
		Proxy:               nil, // never route through HTTP(S)_PROXY
		MaxIdleConns:        8,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true, // as the SDK does for unix sockets
	}
	cli, err := client.NewClientWithOpts(
		// Placeholder URL: it only sets the scheme and Host header; all
		// dialling goes through tr. WithHost must precede WithHTTPClient,
		// since it reconfigures the client's transport for TCP.
		client.WithHost("http://docker"),
		client.WithHTTPClient(&http.Client{Transport: tr, CheckRedirect: client.CheckRedirect}),
		client.WithAPIVersionNegotiation(),
	)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: creating docker client: %w", h.label, err)
	}
	return cli, nil
}

// dialSocket opens an SSH direct-streamlocal channel to socket. If the
// SSH connection turns out to be dead it is redialled once.
func (h *host) dialSocket(ctx context.Context, socket string) (net.Conn, error) {
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		c, err := h.connect(ctx, "", false)
		if err != nil {
			return nil, &dialError{err}
		}
		nc, err := c.client.DialContext(ctx, "unix", socket)
		if err == nil {
			return nc, nil
		}
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			return nil, &dialError{fmt.Errorf("ssh %s: docker socket %s: %w (%s)", h.label, socket, err, h.rejectHint(oce, socket))}
		}
		if ctx.Err() != nil {
			return nil, &dialError{fmt.Errorf("ssh %s: docker socket %s: %w", h.label, socket, ctx.Err())}
		}
		c.kill() // transport failure: the connection is gone
		lastErr = err
	}
	return nil, &dialError{fmt.Errorf("ssh %s: docker socket %s: the SSH connection keeps failing: %w", h.label, socket, lastErr)}
}

func (h *host) rejectHint(oce *ssh.OpenChannelError, socket string) string {
	switch oce.Reason {
	case ssh.Prohibited:
		return "sshd refused stream-local forwarding: set AllowStreamLocalForwarding yes (and not DisableForwarding) in sshd_config and remove restrict/no-port-forwarding from the authorized_keys entry"
	case ssh.UnknownChannelType:
		return "the SSH server does not support direct-streamlocal@openssh.com channels (OpenSSH 6.7 or later is needed)"
	default:
		return fmt.Sprintf("is dockerd running with its socket at %s, and may user %s open it (root or the docker group)?", socket, h.user)
	}
}

// dialError carries a dial failure to the Docker SDK, which replaces
// errors that are net.Error timeouts or whose text mentions "connection
// refused" or "dial unix" with a generic, here misleading, "Cannot connect
// to the Docker daemon at http://docker". dialError hides net.Error causes
// and rewords those phrases, but keeps context errors and everything else
// reachable with errors.Is/As.
type dialError struct{ err error }

var sdkTriggers = strings.NewReplacer("connection refused", "connection was refused", "dial unix", "dial (unix)")

func (e *dialError) Error() string { return sdkTriggers.Replace(e.err.Error()) }

func (e *dialError) Unwrap() error {
	if errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded) {
		return e.err
	}
	var ne net.Error
	if errors.As(e.err, &ne) {
		return nil
	}
	return e.err
}
