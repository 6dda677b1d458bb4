package dockerssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/client"
	"golang.org/x/crypto/ssh"
)

// ErrPoolClosed is returned by a Pool, and by Docker clients it handed out,
// once Pool.Close has been called.
var ErrPoolClosed = errors.New("dockerssh: pool is closed")

const keepAliveRequest = "keepalive@openssh.com"

// Pool caches one SSH connection per host address and builds Docker clients
// on top of it. It is safe for concurrent use. A connection found dead (by
// keepalives, a liveness probe, or a failed channel open) is redialled on
// next use; the host must present the same key again. With a bastion, the
// Pool also keeps one connection to the bastion, shared by all hosts and
// redialled the same way.
type Pool struct {
	cfg     Config
	signer  ssh.Signer
	keys    *hostKeyChecker
	bastion *host // nil without Config.Bastion; not in hosts

	mu     sync.Mutex
	hosts  map[string]*host // by host:port
	closed bool
}

// NewPool validates cfg (user, private key, host key policy, known_hosts
// files and bastion) and returns an empty pool; connections are made on
// demand.
func NewPool(cfg Config) (*Pool, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	signer, err := parseSigner(cfg.PrivateKeyPEM, cfg.Passphrase)
	if err != nil {
		return nil, err
	}
	keys, err := newHostKeyChecker(cfg.Policy, cfg.KnownHostsFile)
	if err != nil {
		return nil, err
	}
	bs, err := cfg.bastionSettings(keys)
	if err != nil {
		return nil, err
	}
	p := &Pool{cfg: cfg, signer: signer, keys: keys, hosts: map[string]*host{}}
	if bs != nil {
		p.bastion = &host{
			pool: p, addr: bs.addr, user: bs.user, keys: bs.keys, expected: bs.expected, isBastion: true,
			label: "bastion " + bs.user + "@" + bs.addr, dialing: make(chan struct{}, 1),
		}
	}
	return p, nil
}

// BastionHostKey reports the host key the bastion presented on the Pool's
// current or most recent connection to it; ok is false without a bastion or
// before the first successful connection. With TrustOnFirstUse this is the
// key to record (as Bastion.ExpectedHostKey) to pin the bastion across runs.
func (p *Pool) BastionHostKey() (info HostKeyInfo, ok bool) {
	b := p.bastion
	if b == nil {
		return HostKeyInfo{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		return HostKeyInfo{}, false
	}
	return b.conn.key, true
}

// Close closes every SSH connection (interrupting streams in flight) and
// makes the pool and the Docker clients it returned unusable.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	hosts := p.hosts
	p.hosts = map[string]*host{}
	p.mu.Unlock()

	if b := p.bastion; b != nil {
		b.mu.Lock()
		if b.conn != nil {
			b.conn.kill() // ends every tunnelled connection too
		}
		b.mu.Unlock()
	}
	for _, h := range hosts {
		h.mu.Lock()
		if h.conn != nil {
			h.conn.kill()
		}
		for _, cli := range h.dockers {
			_ = cli.Close()
		}
		h.dockers = nil
		h.mu.Unlock()
	}
	return nil
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// host returns the cache entry for a normalized host:port address.
func (p *Pool) host(addr string) (*host, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrPoolClosed
	}
	h := p.hosts[addr]
	if h == nil {
		h = &host{pool: p, addr: addr, user: p.cfg.User, keys: p.keys, via: p.bastion,
			label: p.cfg.User + "@" + addr, dialing: make(chan struct{}, 1)}
		if p.bastion != nil {
			h.label += " via " + p.bastion.label
		}
		p.hosts[addr] = h
	}
	return h, nil
}

// host is the per-address state of a Pool: a Docker host, or the bastion.
type host struct {
	pool      *Pool
	addr      string          // host:port
	user      string          // SSH login user
	label     string          // user@host:port (via bastion user@host:port), for messages
	keys      *hostKeyChecker // verifies the host's key
	via       *host           // bastion to tunnel through; nil: dial directly
	isBastion bool
	expected  string        // bastion only: fingerprint it must present
	dialing   chan struct{} // one-slot semaphore serialising (re)dials

	mu      sync.Mutex
	conn    *conn                     // current connection, possibly dead
	pinned  string                    // TrustOnFirstUse: first fingerprint accepted
	dockers map[string]*client.Client // by socket path, for conn
}

// checkKey verifies the key a server presented for h; see
// hostKeyChecker.check.
func (h *host) checkKey(remote net.Addr, key ssh.PublicKey, expected []string) error {
	err := h.keys.check(h.label, h.addr, remote, key, expected)
	var hk *HostKeyError
	if errors.As(err, &hk) {
		h.describe(hk)
	}
	return err
}

// describe fills in the hop details of a HostKeyError about h.
func (h *host) describe(hk *HostKeyError) {
	hk.Bastion = h.isBastion
	if h.via != nil {
		hk.Via = h.via.addr
	}
}

// conn is one SSH connection.
type conn struct {
	client *ssh.Client
	key    HostKeyInfo
	done   chan struct{} // closed when the connection has ended
	dead   atomic.Bool

	probing chan struct{} // one-slot semaphore for liveness probes
	lastOK  atomic.Int64  // UnixNano of the last answered keepalive
}

// keepAlive sends one keepalive request and waits for the answer (any
// answer, even a refusal, proves the connection works).
func (c *conn) keepAlive() error {
	_, _, err := c.client.SendRequest(keepAliveRequest, true, nil)
	if err == nil {
		c.lastOK.Store(time.Now().UnixNano())
	}
	return err
}

func (c *conn) fresh() bool {
	return time.Since(time.Unix(0, c.lastOK.Load())) < probeFreshness
}

func (c *conn) alive() bool {
	if c.dead.Load() {
		return false
	}
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *conn) kill() {
	c.dead.Store(true)
	_ = c.client.Close()
}

func (h *host) current() *conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil && h.conn.alive() {
		return h.conn
	}
	return nil
}

// connect returns a live connection to h, dialling one if needed. expected
// is a fingerprint the key must match when dialling (empty: none beyond
// the policy and pin). With probe, a cached connection is first checked
// for liveness (see probe).
func (h *host) connect(ctx context.Context, expected string, probe bool) (*conn, error) {
	p := h.pool
	if c := h.current(); c != nil && (!probe || p.probe(ctx, c)) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ssh %s: %w", h.label, err)
		}
		return c, nil
	}
	select {
	case h.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("ssh %s: waiting for the connection: %w", h.label, ctx.Err())
	}
	defer func() { <-h.dialing }()
	if c := h.current(); c != nil { // redialled by someone else meanwhile
		return c, nil
	}
	if p.isClosed() {
		return nil, ErrPoolClosed
	}

	h.mu.Lock()
	pinned := h.pinned
	h.mu.Unlock()
	c, err := p.dial(ctx, h, []string{expected, pinned})
	if err != nil {
		return nil, err
	}

	p.mu.Lock() // lock order: p.mu before h.mu
	defer p.mu.Unlock()
	if p.closed {
		c.kill()
		return nil, ErrPoolClosed
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		h.conn.kill()
	}
	h.conn = c
	h.dockers = nil // renegotiate the API version: the engine may have changed
	if p.cfg.Policy == TrustOnFirstUse && h.pinned == "" {
		h.pinned = c.key.Fingerprint
	}
	return c, nil
}

// probeFreshness is how long a keepalive answer vouches for a connection,
// so that bursts of Docker calls do not each cost a round trip.
const probeFreshness = time.Second

// probe reports whether c answers a keepalive within DialTimeout (or did so
// very recently); a connection that fails it is closed. Concurrent probes
// of one connection share a single request.
func (p *Pool) probe(ctx context.Context, c *conn) bool {
	if c.fresh() {
		return true
	}
	select {
	case c.probing <- struct{}{}:
		defer func() { <-c.probing }()
	case <-c.done:
		return false
	case <-ctx.Done():
		return true // undecided; the caller reports ctx.Err()
	}
	if c.fresh() { // answered while we waited
		return true
	}
	res := make(chan error, 1)
	go func() { res <- c.keepAlive() }()
	t := time.NewTimer(p.cfg.DialTimeout)
	defer t.Stop()
	select {
	case err := <-res:
		if err != nil {
			c.kill()
			return false
		}
		return true
	case <-c.done:
		return false
	case <-t.C:
		c.kill()
		return false
	case <-ctx.Done():
		return true
	}
}

// dial opens and authenticates a new SSH connection to h: over TCP, or
// through the bastion (whose connection is made first if needed, within its
// own DialTimeout).
func (p *Pool) dial(parent context.Context, h *host, expected []string) (*conn, error) {
	var bastion *conn
	if h.via != nil {
		var err error
		if bastion, err = h.via.connect(parent, h.via.expected, true); err != nil {
			return nil, err // names the bastion
		}
	}
	ctx, cancel := context.WithTimeout(parent, p.cfg.DialTimeout)
	defer cancel()

	var nc net.Conn
	var err error
	if bastion == nil {
		nc, err = p.dialTCP(ctx, h)
	} else {
		nc, err = p.dialTunnel(parent, ctx, h, bastion)
	}
	if err != nil {
		return nil, err
	}
	// Bound the handshake by ctx. Channels through a bastion do not
	// support deadlines, so interrupt it by closing the connection.
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })

	var presented ssh.PublicKey
	cc := &ssh.ClientConfig{
		User: h.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(p.signer)},
		HostKeyCallback: func(_ string, remote net.Addr, key ssh.PublicKey) error {
			presented = key
			return h.checkKey(remote, key, expected)
		},
		HostKeyAlgorithms: h.keys.algorithms(h.addr, nc.RemoteAddr()),
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, h.addr, cc)
	if !stop() && err == nil { // ctx ended just as the handshake finished
		_ = sc.Close()
		err = ctx.Err()
	}
	if err != nil {
		_ = nc.Close()
		return nil, p.handshakeError(parent, ctx, h, err)
	}

	c := &conn{client: ssh.NewClient(sc, chans, reqs), key: hostKeyInfo(presented), done: make(chan struct{}), probing: make(chan struct{}, 1)}
	c.lastOK.Store(time.Now().UnixNano()) // just authenticated
	go func() {
		_ = c.client.Wait()
		c.dead.Store(true)
		close(c.done)
	}()
	if p.cfg.KeepAlive > 0 {
		go keepAlive(c, p.cfg.KeepAlive)
	}
	return c, nil
}

// dialTCP opens the TCP connection to h's sshd.
func (p *Pool) dialTCP(ctx context.Context, h *host) (net.Conn, error) {
	d := net.Dialer{KeepAlive: 15 * time.Second}
	tcp, err := d.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		what := "host"
		if h.isBastion {
			what = "bastion"
		}
		return nil, fmt.Errorf("ssh %s: cannot connect: %w (is the %s up and sshd listening on that port?)", h.label, err, what)
	}
	return tcp, nil
}

// dialTunnel opens a direct-tcpip channel from the bastion connection b to
// h's sshd. If b turns out to be dead, the bastion is redialled once.
func (p *Pool) dialTunnel(parent, ctx context.Context, h *host, b *conn) (net.Conn, error) {
	for attempt := 0; ; attempt++ {
		nc, err := b.client.DialContext(ctx, "tcp", h.addr)
		if err == nil {
			return nc, nil
		}
		var oce *ssh.OpenChannelError
		switch {
		case errors.As(err, &oce):
			return nil, fmt.Errorf("ssh %s: the bastion cannot connect to %s: %w (%s)", h.label, h.addr, err, h.tunnelHint(oce))
		case parent.Err() != nil:
			return nil, fmt.Errorf("ssh %s: connecting through the bastion: %w", h.label, parent.Err())
		case ctx.Err() != nil:
			return nil, fmt.Errorf("ssh %s: the bastion did not open a connection to %s within %s: %w", h.label, h.addr, p.cfg.DialTimeout, ctx.Err())
		}
		b.kill() // transport failure: the bastion connection is gone
		if attempt > 0 {
			return nil, fmt.Errorf("ssh %s: the SSH connection to the bastion keeps failing: %w", h.label, err)
		}
		if b, err = h.via.connect(parent, h.via.expected, false); err != nil {
			return nil, err
		}
	}
}

func (h *host) tunnelHint(oce *ssh.OpenChannelError) string {
	switch oce.Reason {
	case ssh.Prohibited:
		return fmt.Sprintf("the bastion refused TCP forwarding: set AllowTcpForwarding yes (and not DisableForwarding) in its sshd_config, "+
			"and remove restrict/no-port-forwarding (or add permitopen=\"%s\") on the authorized_keys entry of %s on the bastion", h.addr, h.via.user)
	case ssh.UnknownChannelType:
		return "the bastion's SSH server does not support direct-tcpip channels"
	default:
		return "is the host up with sshd listening on that port, and do firewalls or security groups let the bastion reach it?"
	}
}

func (p *Pool) handshakeError(parent, ctx context.Context, h *host, err error) error {
	var hk *HostKeyError
	if errors.As(err, &hk) {
		return hk
	}
	// x/crypto says "ssh: handshake failed: <cause>"; keep just the cause.
	cause := strings.TrimPrefix(err.Error(), "ssh: handshake failed: ")
	var hint string
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("ssh %s: handshake interrupted: %w", h.label, parent.Err())
	case ctx.Err() != nil:
		hint = fmt.Sprintf("no SSH handshake within %s; is an SSH server listening there, is the host overloaded?", p.cfg.DialTimeout)
	case strings.Contains(cause, "unable to authenticate"):
		pub := p.signer.PublicKey()
		where := "host"
		if h.isBastion {
			where = "bastion"
		}
		hint = fmt.Sprintf("is the public key %s (%s) in ~%s/.ssh/authorized_keys on the %s, and is the user right?",
			ssh.FingerprintSHA256(pub), pub.Type(), h.user, where)
	case errors.Is(err, io.EOF):
		hint = "the server closed the connection; is this an SSH server, and does sshd accept this client (AllowUsers, MaxStartups, fail2ban)?"
	}
	msg := fmt.Sprintf("ssh %s: handshake failed: %s", h.label, cause)
	if hint != "" {
		msg += " (" + hint + ")"
	}
	return &wrapError{msg: msg, err: err}
}

// wrapError is an error with its own message that still unwraps to err.
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

// keepAlive sends keepalive requests on c every interval and closes c when
// a request fails or keepAliveMaxMissed intervals pass without an answer.
func keepAlive(c *conn, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		res := make(chan error, 1)
		go func() { res <- c.keepAlive() }()
		for missed := 0; ; {
			select {
			case <-c.done:
				return
			case err := <-res:
				if err != nil {
					c.kill()
					return
				}
			case <-t.C:
				if missed++; missed >= keepAliveMaxMissed {
					c.kill()
					return
				}
				continue
			}
			break
		}
	}
}

// normalizeAddress turns "host", "host:port", "[v6]" or "[v6]:port" into
// host:port with DefaultSSHPort as default.
func normalizeAddress(a string) (string, error) {
	a = strings.TrimSpace(a)
	if a == "" {
		return "", errors.New("dockerssh: empty host address")
	}
	if strings.Contains(a, "@") || strings.Contains(a, "/") {
		return "", fmt.Errorf("dockerssh: host address %q must be host or host:port (the SSH user is configured separately)", a)
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]"), DefaultSSHPort
		if strings.Contains(host, ":") && net.ParseIP(host) == nil {
			return "", fmt.Errorf("dockerssh: invalid host address %q (want host or host:port)", a)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("dockerssh: invalid port in host address %q", a)
	}
	if host == "" {
		return "", fmt.Errorf("dockerssh: host address %q has no host", a)
	}
	return net.JoinHostPort(host, port), nil
}
