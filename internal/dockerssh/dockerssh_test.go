package dockerssh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// env is one fake host: SSH server + Docker API behind it.
type env struct {
	hostKey   ssh.Signer
	clientKey ssh.Signer
	keyPEM    string
	ssh       *fakeSSH
	docker    *fakeDocker
}

func newEnv(t *testing.T, extraHostKeys ...ssh.Signer) *env {
	t.Helper()
	hostKey, _ := newEd25519(t)
	clientKey, keyPEM := newEd25519(t)
	e := &env{hostKey: hostKey, clientKey: clientKey, keyPEM: keyPEM}
	e.docker = newFakeDocker(t, "node-1")
	e.ssh = newFakeSSH(t, clientKey.PublicKey(), append([]ssh.Signer{hostKey}, extraHostKeys...)...)
	return e
}

func (e *env) target() Target {
	return Target{Address: e.ssh.addr, DockerSocket: e.docker.sock}
}

func (e *env) fingerprint() string { return ssh.FingerprintSHA256(e.hostKey.PublicKey()) }

func (e *env) pool(t *testing.T, mutate ...func(*Config)) *Pool {
	t.Helper()
	cfg := Config{User: "root", PrivateKeyPEM: e.keyPEM, Policy: TrustOnFirstUse, DialTimeout: 5 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustContain(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error containing %q, got nil", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

func TestDockerInfoAndVersionNegotiation(t *testing.T) {
	// The Docker client must ignore the environment.
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	t.Setenv("DOCKER_API_VERSION", "1.12")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("http_proxy", "http://127.0.0.1:1")

	e := newEnv(t)
	p := e.pool(t)
	ctx := ctxT(t)

	cli, key, err := p.Docker(ctx, e.target())
	if err != nil {
		t.Fatal(err)
	}
	if key.Fingerprint != e.fingerprint() || key.Type != ssh.KeyAlgoED25519 {
		t.Errorf("host key = %+v, want %s", key, e.fingerprint())
	}
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "node-1" {
		t.Errorf("Info().Name = %q", info.Name)
	}
	if v := cli.ClientVersion(); v != "1.41" {
		t.Errorf("negotiated API version %q, want 1.41", v)
	}
	reqs := e.docker.requests()
	if !contains(reqs, "GET /v1.41/info") {
		t.Errorf("engine saw %q, want GET /v1.41/info", reqs)
	}
	if err := p.Ping(ctx, e.target()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestOneConnectionPerHost(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t)
	ctx := ctxT(t)

	cli1, _, err := p.Docker(ctx, e.target())
	if err != nil {
		t.Fatal(err)
	}
	cli2, _, err := p.Docker(ctx, Target{Address: e.ssh.addr, DockerSocket: "unix://" + e.docker.sock})
	if err != nil {
		t.Fatal(err)
	}
	if cli1 != cli2 {
		t.Error("expected the cached Docker client for the same host and socket")
	}

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
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
	if n := e.ssh.accepted.Load(); n != 1 {
		t.Errorf("server accepted %d TCP connections, want 1", n)
	}
	if n := e.ssh.channels.Load(); n < 1 {
		t.Errorf("no streamlocal channels opened")
	}
}

func TestConcurrentFirstUse(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Ping(ctx, e.target()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := e.ssh.accepted.Load(); n != 1 {
		t.Errorf("server accepted %d TCP connections, want 1", n)
	}
}

func TestRedialAfterServerRestart(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t)
	ctx := ctxT(t)

	cli, _, err := p.Docker(ctx, e.target())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Info(ctx); err != nil {
		t.Fatal(err)
	}

	e.ssh.restart(t)
	cli2, _, err := p.Docker(ctx, e.target())
	if err != nil {
		t.Fatalf("Docker after restart: %v", err)
	}
	if _, err := cli2.Info(ctx); err != nil {
		t.Fatalf("Info after restart: %v", err)
	}
	if n := e.ssh.accepted.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2", n)
	}

	// A client obtained earlier redials by itself.
	e.ssh.restart(t)
	if _, err := cli2.Info(ctx); err != nil {
		t.Fatalf("Info with an old client after restart: %v", err)
	}
	if n := e.ssh.accepted.Load(); n != 3 {
		t.Errorf("server accepted %d connections, want 3", n)
	}

	// Server gone: the error names the SSH hop, not a local Docker daemon.
	e.ssh.stop()
	_, err = cli2.Info(ctx)
	mustContain(t, err, "ssh root@"+e.ssh.addr, "cannot connect")
	if strings.Contains(err.Error(), "Cannot connect to the Docker daemon at http://docker") {
		t.Errorf("SSH error replaced by the SDK's generic message: %v", err)
	}
}

func TestKeepAliveClosesUnresponsiveConnection(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t, func(c *Config) { c.KeepAlive = 20 * time.Millisecond })
	ctx := ctxT(t)
	if err := p.Ping(ctx, e.target()); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	h := p.hosts[e.ssh.addr]
	p.mu.Unlock()
	c := h.current()

	time.Sleep(100 * time.Millisecond) // answered keepalives keep it open
	if !c.alive() {
		t.Fatal("healthy connection was closed by keepalive")
	}
	e.ssh.frozen.Store(true)
	for deadline := time.Now().Add(5 * time.Second); c.alive(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("unresponsive connection was not closed")
		}
	}
	e.ssh.frozen.Store(false)
	if err := p.Ping(ctx, e.target()); err != nil {
		t.Fatal(err)
	}
	if n := e.ssh.accepted.Load(); n != 2 {
		t.Errorf("server accepted %d connections, want 2", n)
	}
}

func TestStreamingAndHijack(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t)
	ctx := ctxT(t)
	cli, _, err := p.Docker(ctx, e.target())
	if err != nil {
		t.Fatal(err)
	}

	const size = 24 << 20
	resp, err := cli.ImageLoad(ctx, io.LimitReader(zeroReader{}, size))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte("Loaded image")) || e.docker.loaded.Load() != size {
		t.Errorf("ImageLoad: engine got %d bytes, response %q", e.docker.loaded.Load(), body)
	}

	hj, err := cli.ContainerAttach(ctx, "abc", container.AttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer hj.Close()
	msg := strings.Repeat("hello over ssh ", 10000)
	go func() {
		_, _ = io.WriteString(hj.Conn, msg)
		_ = hj.CloseWrite()
	}()
	got, err := io.ReadAll(hj.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Errorf("attach echoed %d bytes, want %d", len(got), len(msg))
	}
}

func TestMissingSocket(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t)
	ctx := ctxT(t)
	cli, _, err := p.Docker(ctx, Target{Address: e.ssh.addr, DockerSocket: "/nonexistent/docker.sock"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cli.Info(ctx)
	mustContain(t, err, "/nonexistent/docker.sock", "is dockerd running")
	err = p.Ping(ctx, Target{Address: e.ssh.addr, DockerSocket: "/nonexistent/docker.sock"})
	mustContain(t, err, "/nonexistent/docker.sock")
}

func TestTrustOnFirstUse(t *testing.T) {
	e := newEnv(t)
	p := e.pool(t)
	ctx := ctxT(t)

	cli, key, err := p.Docker(ctx, e.target())
	if err != nil {
		t.Fatal(err)
	}
	if key.Fingerprint != e.fingerprint() {
		t.Fatalf("first use fingerprint %q, want %q", key.Fingerprint, e.fingerprint())
	}

	other, _ := newEd25519(t)
	wrong := ssh.FingerprintSHA256(other.PublicKey())
	bad := e.target()
	bad.ExpectedHostKey = wrong

	// Cached connection, then a fresh pool that has to handshake.
	for name, pool := range map[string]*Pool{"cached": p, "fresh": e.pool(t)} {
		_, got, err := pool.Docker(ctx, bad)
		mustContain(t, err, wrong, e.fingerprint(), "host key changed", "possible MITM", "rebuilt")
		var hk *HostKeyError
		if !errors.As(err, &hk) || got.Fingerprint != e.fingerprint() {
			t.Errorf("%s: want *HostKeyError and the presented key, got %T %+v", name, err, got)
		}
	}

	good := e.target()
	good.ExpectedHostKey = strings.TrimPrefix(e.fingerprint(), "SHA256:") // prefix optional
	if _, _, err := e.pool(t).Docker(ctx, good); err != nil {
		t.Errorf("matching ExpectedHostKey: %v", err)
	}

	// Within a pool the first key is pinned: a host that comes back with a
	// new key is refused even without ExpectedHostKey.
	e.ssh.stop()
	newKey, _ := newEd25519(t)
	e.ssh.cfg = &ssh.ServerConfig{PublicKeyCallback: e.ssh.cfg.PublicKeyCallback}
	e.ssh.cfg.AddHostKey(newKey)
	e.ssh.start(t, e.ssh.addr)
	_, err = cli.Info(ctx) // the client redials by itself and must refuse
	mustContain(t, err, "host key changed", e.fingerprint(), ssh.FingerprintSHA256(newKey.PublicKey()))
	var hk *HostKeyError
	if !errors.As(err, &hk) {
		t.Errorf("Info error %T does not unwrap to *HostKeyError", err)
	}
	_, _, err = p.Docker(ctx, e.target())
	mustContain(t, err, "host key changed", e.fingerprint(), ssh.FingerprintSHA256(newKey.PublicKey()))
}

func TestKnownHosts(t *testing.T) {
	ecKey := newECDSA(t)
	e := newEnv(t, ecKey)
	ctx := ctxT(t)
	dir := t.TempDir()
	write := func(name string, lines ...string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	withFile := func(path string) func(*Config) {
		return func(c *Config) { c.Policy, c.KnownHostsFile = KnownHosts, path }
	}

	t.Run("match", func(t *testing.T) {
		// Only the ed25519 key is listed while the server also has ECDSA,
		// which x/crypto would otherwise prefer.
		path := write("good", "# comment", knownhosts.Line([]string{e.ssh.addr}, e.hostKey.PublicKey()))
		cli, key, err := e.pool(t, withFile(path)).Docker(ctx, e.target())
		if err != nil {
			t.Fatal(err)
		}
		if key.Fingerprint != e.fingerprint() {
			t.Errorf("fingerprint %q", key.Fingerprint)
		}
		if _, err := cli.Info(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mismatch", func(t *testing.T) {
		other, _ := newEd25519(t)
		path := write("wrong", knownhosts.Line([]string{e.ssh.addr}, other.PublicKey()))
		_, _, err := e.pool(t, withFile(path)).Docker(ctx, e.target())
		mustContain(t, err, "host key mismatch", path, ssh.FingerprintSHA256(other.PublicKey()), e.fingerprint(), "man-in-the-middle")
	})
	t.Run("unknown host", func(t *testing.T) {
		path := write("unknown", knownhosts.Line([]string{"192.0.2.1:22"}, e.hostKey.PublicKey()))
		_, _, err := e.pool(t, withFile(path)).Docker(ctx, e.target())
		mustContain(t, err, "is not in known_hosts file", path, "ssh-keyscan")
	})
	t.Run("host added to the file later", func(t *testing.T) {
		// A host created during a run (an EC2 instance) is added to
		// known_hosts after the pool was made; the pool reads it again.
		path := write("later", "# nothing yet")
		p := e.pool(t, withFile(path))
		_, _, err := p.Docker(ctx, e.target())
		mustContain(t, err, "is not in known_hosts file")
		time.Sleep(10 * time.Millisecond) // a new mtime even on coarse clocks
		write("later", knownhosts.Line([]string{e.ssh.addr}, e.hostKey.PublicKey()))
		if _, _, err := p.Docker(ctx, e.target()); err != nil {
			t.Fatalf("after adding the host: %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := NewPool(Config{User: "root", PrivateKeyPEM: e.keyPEM, Policy: KnownHosts, KnownHostsFile: filepath.Join(dir, "nope")})
		mustContain(t, err, "known_hosts", "nope", "no such file")
		_, err = NewPool(Config{User: "root", PrivateKeyPEM: e.keyPEM})
		mustContain(t, err, "known_hosts file")
	})
}

func TestWrongClientKey(t *testing.T) {
	e := newEnv(t)
	otherSigner, otherPEM := newEd25519(t)
	p := e.pool(t, func(c *Config) { c.PrivateKeyPEM = otherPEM })
	_, _, err := p.Docker(ctxT(t), e.target())
	mustContain(t, err, "ssh root@"+e.ssh.addr, "handshake failed", "authorized_keys", ssh.FingerprintSHA256(otherSigner.PublicKey()))
}

func TestNewPoolValidation(t *testing.T) {
	signer, keyPEM := newEd25519(t)
	base := Config{User: "root", Policy: TrustOnFirstUse}
	cases := []struct {
		name string
		cfg  func(Config) Config
		want []string // empty: success
	}{
		{"valid", func(c Config) Config { c.PrivateKeyPEM = keyPEM; return c }, nil},
		{"garbage", func(c Config) Config { c.PrivateKeyPEM = "not a key"; return c }, []string{"cannot parse the SSH private key"}},
		{"empty", func(c Config) Config { return c }, []string{"no SSH private key"}},
		{"public key", func(c Config) Config {
			c.PrivateKeyPEM = string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
			return c
		}, []string{"is a public key"}},
		{"encrypted without passphrase", func(c Config) Config { c.PrivateKeyPEM = encryptedTestKey; return c }, []string{"passphrase-protected"}},
		{"wrong passphrase", func(c Config) Config {
			c.PrivateKeyPEM, c.Passphrase = encryptedTestKey, "nope"
			return c
		}, []string{"passphrase is incorrect"}},
		{"right passphrase", func(c Config) Config {
			c.PrivateKeyPEM, c.Passphrase = encryptedTestKey, "s3cret"
			return c
		}, nil},
		{"no user", func(c Config) Config { c.PrivateKeyPEM, c.User = keyPEM, ""; return c }, []string{"no SSH user"}},
		{"bad policy", func(c Config) Config { c.PrivateKeyPEM, c.Policy = keyPEM, 7; return c }, []string{"unknown host key policy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPool(tc.cfg(base))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				_ = p.Close()
				return
			}
			mustContain(t, err, tc.want...)
		})
	}
}

func TestTargetValidation(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.5":         "10.0.0.5:22",
		"10.0.0.5:2222":    "10.0.0.5:2222",
		"node-1":           "node-1:22",
		"[2001:db8::1]":    "[2001:db8::1]:22",
		"2001:db8::1":      "[2001:db8::1]:22",
		"[2001:db8::1]:23": "[2001:db8::1]:23",
	} {
		if got, err := normalizeAddress(in); err != nil || got != want {
			t.Errorf("normalizeAddress(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "root@host", "host:0", "host:http", "ssh://host"} {
		if got, err := normalizeAddress(in); err == nil {
			t.Errorf("normalizeAddress(%q) = %q, want error", in, got)
		}
	}
	if _, err := NormalizeFingerprint("MD5:aa:bb"); err == nil {
		t.Error("MD5 fingerprint accepted")
	}
	if _, err := normalizeSocket("docker.sock"); err == nil {
		t.Error("relative socket accepted")
	}

	_, keyPEM := newEd25519(t)
	p, err := NewPool(Config{User: "root", PrivateKeyPEM: keyPEM, Policy: TrustOnFirstUse})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	_, _, err = p.Docker(context.Background(), Target{Address: "127.0.0.1"})
	if !errors.Is(err, ErrPoolClosed) {
		t.Errorf("Docker after Close: %v, want ErrPoolClosed", err)
	}
}

// encryptedTestKey is a throwaway ed25519 key (ssh-keygen -t ed25519 -a 1
// -N s3cret), used only here; one bcrypt round keeps the test fast.
const encryptedTestKey = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABAJRDXEmC
wI2D3W8Jqd6tU5AAAAAQAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIKQqgPFZ0S/un+V3
sQO5jkW3Em4t0rZJriFzsAJWiCXjAAAAoN61M1R1Fi/xoifoTthHlmEFC1Tsr4MqVGMOVJ
ek4YMn5PIvsC4obIVHdMXlZB5fL4CVPHbvKbL48HouGHetQajjYnxcHVTMkZbZ6tg+Icon
1os8IE4etVhEOuElL/PUFTqo8XhWQW44bLmky7Onm+uAIAV7dPG/zt46vqWMYKGl9SBWrt
1jQjSbJujIN3OTLF2/JhXQsNJzU4yp6IIE94c=
-----END OPENSSH PRIVATE KEY-----
`

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}
