package dockerssh

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// bastionEnv is a fake bastion in front of fake hosts, all on loopback.
type bastionEnv struct {
	node    *env // first host; its client key is used everywhere
	hostKey ssh.Signer
	ssh     *fakeSSH
}

func newBastionEnv(t *testing.T) *bastionEnv {
	t.Helper()
	node := newEnv(t)
	hostKey, _ := newEd25519(t)
	return &bastionEnv{node: node, hostKey: hostKey, ssh: newFakeSSH(t, node.clientKey.PublicKey(), hostKey)}
}

// sibling adds another host that accepts the same client key.
func (b *bastionEnv) sibling(t *testing.T, name string) *env {
	t.Helper()
	hostKey, _ := newEd25519(t)
	e := &env{hostKey: hostKey, clientKey: b.node.clientKey, keyPEM: b.node.keyPEM}
	e.docker = newFakeDocker(t, name)
	e.ssh = newFakeSSH(t, e.clientKey.PublicKey(), hostKey)
	return e
}

func (b *bastionEnv) fingerprint() string { return ssh.FingerprintSHA256(b.hostKey.PublicKey()) }

// pool returns a trust-on-first-use pool going through the bastion.
func (b *bastionEnv) pool(t *testing.T, mutate ...func(*Config)) *Pool {
	t.Helper()
	viaBastion := func(c *Config) { c.Bastion = &Bastion{Address: b.ssh.addr} }
	return b.node.pool(t, append([]func(*Config){viaBastion}, mutate...)...)
}

// label is how errors name a host reached through the bastion.
func (b *bastionEnv) label(e *env) string {
	return "ssh root@" + e.ssh.addr + " via bastion root@" + b.ssh.addr
}

func TestBastionReachesHost(t *testing.T) {
	b := newBastionEnv(t)
	p := b.pool(t, func(c *Config) { c.Bastion.User = "jump" })
	ctx := ctxT(t)

	if _, ok := p.BastionHostKey(); ok {
		t.Error("BastionHostKey reported a key before any connection")
	}
	cli, key, err := p.Docker(ctx, b.node.target())
	if err != nil {
		t.Fatal(err)
	}
	if key.Fingerprint != b.node.fingerprint() {
		t.Errorf("Docker reported host key %s, want the host's %s (bastion's is %s)", key.Fingerprint, b.node.fingerprint(), b.fingerprint())
	}
	if bk, ok := p.BastionHostKey(); !ok || bk.Fingerprint != b.fingerprint() {
		t.Errorf("BastionHostKey() = %+v, %v; want %s", bk, ok, b.fingerprint())
	}
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "node-1" {
		t.Errorf("Info().Name = %q", info.Name)
	}

	// A large upload crosses both hops intact.
	const size = 8 << 20
	resp, err := cli.ImageLoad(ctx, io.LimitReader(zeroReader{}, size))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || !bytes.Contains(body, []byte("Loaded image")) || b.node.docker.loaded.Load() != size {
		t.Errorf("ImageLoad through the bastion: engine got %d bytes, response %q, %v", b.node.docker.loaded.Load(), body, err)
	}

	if n := b.ssh.tunnels.Load(); n != 1 {
		t.Errorf("bastion opened %d direct-tcpip channels, want 1", n)
	}
	if n := b.node.ssh.accepted.Load(); n != 1 {
		t.Errorf("host accepted %d connections, want 1 (through the bastion)", n)
	}
	if n := b.ssh.channels.Load(); n != 0 {
		t.Errorf("bastion served %d docker socket channels, want 0", n)
	}
	if u := b.ssh.sawUsers(); len(u) != 1 || u[0] != "jump" {
		t.Errorf("bastion saw users %q, want [jump]", u)
	}
	if u := b.node.ssh.sawUsers(); len(u) != 1 || u[0] != "root" {
		t.Errorf("host saw users %q, want [root]", u)
	}

	// Without Bastion.User the hosts' user logs in to the bastion.
	if err := b.pool(t).Ping(ctx, b.node.target()); err != nil {
		t.Fatal(err)
	}
	if u := b.ssh.sawUsers(); len(u) != 2 || u[1] != "root" {
		t.Errorf("bastion saw users %q, want [jump root]", u)
	}
}

func TestBastionOneConnection(t *testing.T) {
	b := newBastionEnv(t)
	nodes := []*env{b.node, b.sibling(t, "node-2")}
	p := b.pool(t)
	ctx := ctxT(t)

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := nodes[i%len(nodes)]
			cli, _, err := p.Docker(ctx, e.target())
			if err == nil {
				_, err = cli.Info(ctx)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := b.ssh.accepted.Load(); n != 1 {
		t.Errorf("bastion accepted %d TCP connections, want 1", n)
	}
	if n := b.ssh.tunnels.Load(); n != 2 {
		t.Errorf("bastion opened %d direct-tcpip channels, want 2 (one per host)", n)
	}
	for _, e := range nodes {
		if n := e.ssh.accepted.Load(); n != 1 {
			t.Errorf("host %s accepted %d connections, want 1", e.ssh.addr, n)
		}
	}
}

func TestBastionRedial(t *testing.T) {
	b := newBastionEnv(t)
	p := b.pool(t)
	ctx := ctxT(t)
	cli, _, err := p.Docker(ctx, b.node.target())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Info(ctx); err != nil {
		t.Fatal(err)
	}

	// The bastion connection breaks: it and the host connection inside it
	// are redialled by the next call, even through a client got earlier.
	b.ssh.dropConns()
	if _, err := cli.Info(ctx); err != nil {
		t.Fatalf("Info after the bastion connection broke: %v", err)
	}
	if n := b.ssh.accepted.Load(); n != 2 {
		t.Errorf("bastion accepted %d connections, want 2", n)
	}
	if n := b.node.ssh.accepted.Load(); n != 2 {
		t.Errorf("host accepted %d connections, want 2", n)
	}

	// Only the host's sshd restarts: the bastion connection is reused.
	b.node.ssh.restart(t)
	if _, err := cli.Info(ctx); err != nil {
		t.Fatalf("Info after the host restarted: %v", err)
	}
	if n := b.ssh.accepted.Load(); n != 2 {
		t.Errorf("bastion accepted %d connections, want still 2", n)
	}
	if n := b.node.ssh.accepted.Load(); n != 3 {
		t.Errorf("host accepted %d connections, want 3", n)
	}

	// Bastion gone: the error names the bastion, not a local Docker daemon.
	b.ssh.stop()
	_, err = cli.Info(ctx)
	mustContain(t, err, "ssh bastion root@"+b.ssh.addr, "cannot connect", "is the bastion up")
	if strings.Contains(err.Error(), "Cannot connect to the Docker daemon at http://docker") {
		t.Errorf("SSH error replaced by the SDK's generic message: %v", err)
	}
}

func TestBastionKeepAlive(t *testing.T) {
	b := newBastionEnv(t)
	p := b.pool(t, func(c *Config) { c.KeepAlive = 20 * time.Millisecond })
	ctx := ctxT(t)
	if err := p.Ping(ctx, b.node.target()); err != nil {
		t.Fatal(err)
	}
	bc := p.bastion.current()
	time.Sleep(100 * time.Millisecond)
	if !bc.alive() {
		t.Fatal("healthy bastion connection was closed by keepalive")
	}
	b.ssh.frozen.Store(true)
	for deadline := time.Now().Add(5 * time.Second); bc.alive(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("unresponsive bastion connection was not closed")
		}
	}
	b.ssh.frozen.Store(false)
	if err := p.Ping(ctx, b.node.target()); err != nil {
		t.Fatal(err)
	}
	if n := b.ssh.accepted.Load(); n != 2 {
		t.Errorf("bastion accepted %d connections, want 2", n)
	}
}

func TestBastionFailuresNameTheHop(t *testing.T) {
	b := newBastionEnv(t)
	ctx := ctxT(t)

	t.Run("forwarding refused", func(t *testing.T) {
		b.ssh.refuseTCP.Store(true)
		defer b.ssh.refuseTCP.Store(false)
		_, _, err := b.pool(t).Docker(ctx, b.node.target())
		mustContain(t, err, b.label(b.node), "administratively prohibited", "AllowTcpForwarding")
		if n := b.node.ssh.accepted.Load(); n != 0 {
			t.Errorf("host accepted %d connections", n)
		}
	})
	t.Run("host unreachable from the bastion", func(t *testing.T) {
		closed := closedPort(t)
		_, _, err := b.pool(t).Docker(ctx, Target{Address: closed})
		mustContain(t, err, "ssh root@"+closed+" via bastion root@"+b.ssh.addr, "the bastion cannot connect to "+closed, "is the host up")
	})
	t.Run("bastion down", func(t *testing.T) {
		closed := closedPort(t)
		p := b.node.pool(t, func(c *Config) { c.Bastion = &Bastion{Address: closed} })
		_, _, err := p.Docker(ctx, b.node.target())
		mustContain(t, err, "ssh bastion root@"+closed, "cannot connect", "is the bastion up")
	})
	t.Run("key not authorized on the bastion", func(t *testing.T) {
		other, _ := newEd25519(t)
		strict := newFakeSSH(t, other.PublicKey(), b.hostKey)
		p := b.node.pool(t, func(c *Config) { c.Bastion = &Bastion{Address: strict.addr, User: "jump"} })
		_, _, err := p.Docker(ctx, b.node.target())
		mustContain(t, err, "ssh bastion jump@"+strict.addr, "handshake failed", "~jump/.ssh/authorized_keys on the bastion")
	})
	t.Run("key not authorized on the host", func(t *testing.T) {
		other, _ := newEd25519(t)
		strict := newFakeSSH(t, other.PublicKey(), b.node.hostKey)
		_, _, err := b.pool(t).Docker(ctx, Target{Address: strict.addr})
		mustContain(t, err, "ssh root@"+strict.addr+" via bastion root@"+b.ssh.addr, "handshake failed", "authorized_keys on the host")
	})
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestBastionHostKey(t *testing.T) {
	b := newBastionEnv(t)
	ctx := ctxT(t)
	dir := t.TempDir()
	other, _ := newEd25519(t)
	bastionLine := knownhosts.Line([]string{b.ssh.addr}, b.hostKey.PublicKey())
	wrongBastionLine := knownhosts.Line([]string{b.ssh.addr}, other.PublicKey())
	nodeLine := knownhosts.Line([]string{b.node.ssh.addr}, b.node.hostKey.PublicKey())
	write := func(lines ...string) string {
		f, err := writeTemp(dir, strings.Join(lines, "\n")+"\n")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	knownHosts := func(path string) func(*Config) {
		return func(c *Config) { c.Policy, c.KnownHostsFile = KnownHosts, path }
	}
	// wantBastionKeyError checks that err is about the bastion's key, and
	// that the host was neither contacted nor reported.
	wantBastionKeyError := func(t *testing.T, err error, got HostKeyInfo, subs ...string) {
		t.Helper()
		mustContain(t, err, append([]string{"ssh bastion root@" + b.ssh.addr, b.fingerprint()}, subs...)...)
		var hk *HostKeyError
		if !errors.As(err, &hk) || !hk.Bastion || hk.Presented.Fingerprint != b.fingerprint() {
			t.Errorf("want a *HostKeyError about the bastion, got %T %+v", err, hk)
		}
		if got != (HostKeyInfo{}) {
			t.Errorf("Docker returned host key %+v for the host along with the bastion's error", got)
		}
		if n := b.node.ssh.accepted.Load(); n != 0 {
			t.Errorf("host accepted %d connections past a refused bastion", n)
		}
	}

	t.Run("known_hosts mismatch", func(t *testing.T) {
		_, got, err := b.pool(t, knownHosts(write(wrongBastionLine, nodeLine))).Docker(ctx, b.node.target())
		wantBastionKeyError(t, err, got, "host key mismatch", ssh.FingerprintSHA256(other.PublicKey()), "man-in-the-middle")
	})
	t.Run("known_hosts without the bastion", func(t *testing.T) {
		path := write(nodeLine)
		_, got, err := b.pool(t, knownHosts(path)).Docker(ctx, b.node.target())
		wantBastionKeyError(t, err, got, "is not in known_hosts file "+path, "ssh-keyscan")
		if strings.Contains(err.Error(), "trust_on_first_use") {
			t.Errorf("error suggests trust_on_first_use, which would not help the bastion: %v", err)
		}
	})
	t.Run("trust on first use, wrong expected key", func(t *testing.T) {
		p := b.pool(t, func(c *Config) { c.Bastion.ExpectedHostKey = ssh.FingerprintSHA256(other.PublicKey()) })
		_, got, err := p.Docker(ctx, b.node.target())
		wantBastionKeyError(t, err, got, "host key changed", ssh.FingerprintSHA256(other.PublicKey()))
	})
	t.Run("trust on first use, bastion known_hosts file", func(t *testing.T) {
		p := b.pool(t, func(c *Config) { c.Bastion.KnownHostsFile = write(wrongBastionLine) })
		_, got, err := p.Docker(ctx, b.node.target())
		wantBastionKeyError(t, err, got, "host key mismatch")
	})
	t.Run("host not in known_hosts", func(t *testing.T) {
		path := write(bastionLine)
		_, _, err := b.pool(t, knownHosts(path)).Docker(ctx, b.node.target())
		mustContain(t, err, b.label(b.node), "is not in known_hosts file", "on the bastion "+b.ssh.addr)
		var hk *HostKeyError
		if !errors.As(err, &hk) || hk.Bastion || hk.Via != b.ssh.addr {
			t.Errorf("want a *HostKeyError about the host via the bastion, got %+v", hk)
		}
	})
	t.Run("accepted", func(t *testing.T) {
		for name, p := range map[string]*Pool{
			"known_hosts": b.pool(t, knownHosts(write(bastionLine, nodeLine))),
			"expected key": b.pool(t, func(c *Config) {
				c.Bastion.ExpectedHostKey = strings.TrimPrefix(b.fingerprint(), "SHA256:")
			}),
			"tofu with file": b.pool(t, func(c *Config) { c.Bastion.KnownHostsFile = write(bastionLine) }),
		} {
			if err := p.Ping(ctx, b.node.target()); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})

	// Within a pool the bastion's first key is pinned.
	t.Run("pinned", func(t *testing.T) {
		p := b.pool(t)
		cli, _, err := p.Docker(ctx, b.node.target())
		if err != nil {
			t.Fatal(err)
		}
		b.ssh.stop()
		newKey, _ := newEd25519(t)
		b.ssh.cfg = &ssh.ServerConfig{PublicKeyCallback: b.ssh.cfg.PublicKeyCallback}
		b.ssh.cfg.AddHostKey(newKey)
		b.ssh.start(t, b.ssh.addr)
		_, err = cli.Info(ctx)
		mustContain(t, err, "ssh bastion root@"+b.ssh.addr, "host key changed", b.fingerprint(), ssh.FingerprintSHA256(newKey.PublicKey()))
	})
}

func writeTemp(dir, content string) (string, error) {
	f, err := os.CreateTemp(dir, "known_hosts")
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.WriteString(content)
	return f.Name(), err
}

func TestBastionValidation(t *testing.T) {
	_, keyPEM := newEd25519(t)
	base := func(b Bastion) Config {
		return Config{User: "root", PrivateKeyPEM: keyPEM, Policy: TrustOnFirstUse, Bastion: &b}
	}
	for name, tc := range map[string]struct {
		b    Bastion
		want []string
	}{
		"empty address":   {Bastion{}, []string{"bastion", "empty host address"}},
		"user in address": {Bastion{Address: "ec2-user@203.0.113.5"}, []string{"bastion", "must be host or host:port"}},
		"bad fingerprint": {Bastion{Address: "203.0.113.5", ExpectedHostKey: "SHA256:short"}, []string{"bastion", "malformed"}},
		"missing file":    {Bastion{Address: "203.0.113.5", KnownHostsFile: filepath.Join(t.TempDir(), "nope")}, []string{"bastion known_hosts file", "nope"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewPool(base(tc.b))
			mustContain(t, err, tc.want...)
		})
	}
	p, err := NewPool(base(Bastion{Address: "203.0.113.5"}))
	if err != nil {
		t.Fatal(err)
	}
	if p.bastion.addr != "203.0.113.5:22" || p.bastion.user != "root" {
		t.Errorf("bastion %s@%s, want root@203.0.113.5:22", p.bastion.user, p.bastion.addr)
	}
	_ = p.Close()

	p, err = NewPool(Config{User: "root", PrivateKeyPEM: keyPEM, Policy: TrustOnFirstUse})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, ok := p.BastionHostKey(); ok {
		t.Error("BastionHostKey reported a key without a bastion")
	}
}
