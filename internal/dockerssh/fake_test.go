package dockerssh

// Test doubles: an in-process SSH server that serves
// direct-streamlocal@openssh.com channels (and direct-tcpip channels to
// loopback addresses, to act as a bastion), and a fake Docker Engine API on
// a unix socket. They exist only for the unit tests; the package itself is
// exercised against real sshd + dockerd by the acceptance tests.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// newEd25519 returns a fresh key as a signer and as OpenSSH PEM text.
func newEd25519(t *testing.T) (ssh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, string(pem.EncodeToMemory(block))
}

func newECDSA(t *testing.T) ssh.Signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// fakeSSH is a minimal SSH server accepting one client public key.
type fakeSSH struct {
	cfg       *ssh.ServerConfig
	addr      string
	accepted  atomic.Int64 // TCP connections accepted
	channels  atomic.Int64 // streamlocal channels opened
	tunnels   atomic.Int64 // direct-tcpip channels opened
	frozen    atomic.Bool  // when set, global requests (keepalives) go unanswered
	refuseTCP atomic.Bool  // when set, direct-tcpip is administratively prohibited

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	users []string // of authenticated connections, in order
}

func newFakeSSH(t *testing.T, authorized ssh.PublicKey, hostKeys ...ssh.Signer) *fakeSSH {
	t.Helper()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("key not authorized")
		},
	}
	for _, k := range hostKeys {
		cfg.AddHostKey(k)
	}
	f := &fakeSSH{cfg: cfg, conns: map[net.Conn]bool{}}
	f.start(t, "127.0.0.1:0")
	t.Cleanup(f.stop)
	return f
}

// start listens on addr (retrying briefly, for restarts on the same port).
func (f *fakeSSH) start(t *testing.T, addr string) {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.ln, f.addr = ln, ln.Addr().String()
	f.mu.Unlock()
	go f.serve(ln)
}

// stop closes the listener and every connection.
func (f *fakeSSH) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		_ = f.ln.Close()
		f.ln = nil
	}
	for c := range f.conns {
		_ = c.Close()
	}
	f.conns = map[net.Conn]bool{}
}

func (f *fakeSSH) restart(t *testing.T) {
	f.stop()
	f.start(t, f.addr)
}

func (f *fakeSSH) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		f.accepted.Add(1)
		f.mu.Lock()
		f.conns[c] = true
		f.mu.Unlock()
		go f.handle(c)
	}
}

func (f *fakeSSH) handle(c net.Conn) {
	defer func() {
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		_ = c.Close()
	}()
	sc, chans, reqs, err := ssh.NewServerConn(c, f.cfg)
	if err != nil {
		return
	}
	defer sc.Close()
	f.mu.Lock()
	f.users = append(f.users, sc.User())
	f.mu.Unlock()
	go func() {
		for r := range reqs {
			if !f.frozen.Load() && r.WantReply {
				_ = r.Reply(false, nil) // like OpenSSH for keepalive@openssh.com
			}
		}
	}()
	for nc := range chans {
		switch nc.ChannelType() {
		case "direct-streamlocal@openssh.com":
			var msg struct {
				SocketPath string
				Reserved0  string
				Reserved1  uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &msg); err != nil {
				_ = nc.Reject(ssh.ConnectionFailed, "malformed request")
				continue
			}
			f.channels.Add(1)
			go forward(nc, "unix", msg.SocketPath)
		case "direct-tcpip": // RFC 4254 section 7.2
			var msg struct {
				DestAddr string
				DestPort uint32
				OrigAddr string
				OrigPort uint32
			}
			if err := ssh.Unmarshal(nc.ExtraData(), &msg); err != nil {
				_ = nc.Reject(ssh.ConnectionFailed, "malformed request")
				continue
			}
			if ip := net.ParseIP(msg.DestAddr); f.refuseTCP.Load() || ip == nil || !ip.IsLoopback() {
				_ = nc.Reject(ssh.Prohibited, "administratively prohibited: open failed")
				continue
			}
			f.tunnels.Add(1)
			go forward(nc, "tcp", net.JoinHostPort(msg.DestAddr, fmt.Sprint(msg.DestPort)))
		default:
			_ = nc.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
}

// dropConns closes every connection but keeps listening, like a network
// failure or an sshd restart that clients notice at once.
func (f *fakeSSH) dropConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for c := range f.conns {
		_ = c.Close()
	}
}

// sawUsers returns the users of the authenticated connections so far.
func (f *fakeSSH) sawUsers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.users...)
}

// forward connects a channel to a unix socket or TCP address, like sshd.
func forward(nc ssh.NewChannel, network, addr string) {
	u, err := net.Dial(network, addr)
	if err != nil {
		_ = nc.Reject(ssh.ConnectionFailed, "connect failed: "+err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		_ = u.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(ch, u)
		_ = ch.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(u, ch)
		_ = u.(interface{ CloseWrite() error }).CloseWrite()
	}()
	wg.Wait()
	_ = ch.Close()
	_ = u.Close()
}

// fakeDocker is a fake Docker Engine API (version 1.41) on a unix socket.
type fakeDocker struct {
	sock   string
	loaded atomic.Int64 // bytes received by /images/load

	mu    sync.Mutex
	paths []string
}

func newFakeDocker(t *testing.T, name string) *fakeDocker {
	t.Helper()
	dir := t.TempDir()
	if len(dir) > 90 { // unix socket paths are limited to ~108 bytes
		var err error
		if dir, err = os.MkdirTemp("", "dssh"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	d := &fakeDocker{sock: filepath.Join(dir, "docker.sock")}
	ln, err := net.Listen("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("API-Version", "1.41")
		w.Header().Set("OSType", "linux")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, "OK")
		}
	})
	mux.HandleFunc("GET /v1.41/info", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"ID": "fake", "Name": name, "ServerVersion": "20.10.24"})
	})
	mux.HandleFunc("POST /v1.41/images/load", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		d.loaded.Add(n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, map[string]string{"stream": fmt.Sprintf("Loaded image: test:latest (%d bytes)\n", n)})
	})
	// Hijacked stream: echo stdin back until the client half-closes.
	mux.HandleFunc("POST /v1.41/containers/{id}/attach", func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		_ = buf.Flush()
		_, _ = io.Copy(conn, buf.Reader)
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.paths = append(d.paths, r.Method+" "+r.URL.Path)
		d.mu.Unlock()
		mux.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return d
}

func (d *fakeDocker) requests() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.paths...)
}
