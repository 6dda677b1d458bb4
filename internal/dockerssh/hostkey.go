package dockerssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// HostKeyInfo describes the host key an SSH server presented.
type HostKeyInfo struct {
	// Fingerprint is the key's SHA256 fingerprint as printed by
	// ssh-keygen -l, e.g. "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s".
	Fingerprint string
	// Type is the key type, e.g. "ssh-ed25519".
	Type string
	// PublicKey is the key in authorized_keys format ("ssh-ed25519 AAAA..."),
	// usable to build a known_hosts line.
	PublicKey string
}

func hostKeyInfo(k ssh.PublicKey) HostKeyInfo {
	return HostKeyInfo{
		Fingerprint: ssh.FingerprintSHA256(k),
		Type:        k.Type(),
		PublicKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))),
	}
}

// NormalizeFingerprint accepts a SHA256 host key fingerprint as printed by
// ssh-keygen -l ("SHA256:base64", with or without the prefix and trailing
// '=' padding) and returns it in the canonical form of ssh.FingerprintSHA256.
// An empty string stays empty.
func NormalizeFingerprint(fp string) (string, error) {
	fp = strings.TrimSpace(fp)
	if fp == "" {
		return "", nil
	}
	body, ok := strings.CutPrefix(fp, "SHA256:")
	if !ok && strings.Contains(fp, ":") {
		return "", fmt.Errorf("dockerssh: host key fingerprint %q is not a SHA256 fingerprint (expected \"SHA256:...\" as printed by ssh-keygen -lf)", fp)
	}
	body = strings.TrimRight(body, "=")
	if len(body) != 43 { // base64 (unpadded) of 32 bytes
		return "", fmt.Errorf("dockerssh: host key fingerprint %q is malformed (expected \"SHA256:\" and 43 base64 characters, as printed by ssh-keygen -lf)", fp)
	}
	return "SHA256:" + body, nil
}

// HostKeyError reports a host key that failed verification. It may mean a
// man-in-the-middle attack, or that the host was rebuilt.
type HostKeyError struct {
	Host      string      // user@host:port (and the bastion used), for messages
	Addr      string      // host:port
	Presented HostKeyInfo // key the server presented
	// Expected lists the fingerprints that would have been accepted; empty
	// when a known_hosts file has no entry for the host.
	Expected []string
	// KnownHostsFile is set when the known_hosts file rejected the key.
	KnownHostsFile string
	// Revoked is set when the key is marked @revoked in the known_hosts file.
	Revoked bool
	// Bastion is set when the key is the bastion's (Config.Bastion), not
	// that of the host the caller asked for.
	Bastion bool
	// Via is the bastion (host:port) through which Addr was reached, if any.
	Via string
}

func (e *HostKeyError) Error() string {
	host, port, _ := net.SplitHostPort(e.Addr)
	presented := fmt.Sprintf("%s (%s)", e.Presented.Fingerprint, e.Presented.Type)
	switch {
	case e.Revoked:
		return fmt.Sprintf("ssh %s: host key %s is marked @revoked in known_hosts file %s; refusing to connect", e.Host, presented, e.KnownHostsFile)
	case e.KnownHostsFile != "" && len(e.Expected) == 0:
		var how string
		switch {
		case e.Via != "": // ssh-keyscan cannot jump; the address may be private
			how = fmt.Sprintf("e.g. run ssh-keyscan -p %s %s on the bastion %s and append its output to %s", port, host, e.Via, e.KnownHostsFile)
		default:
			how = fmt.Sprintf("e.g. ssh-keyscan -p %s %s >> %s", port, host, e.KnownHostsFile)
		}
		msg := fmt.Sprintf("ssh %s: host key %s is not in known_hosts file %s; verify the fingerprint and add the key (%s)", e.Host, presented, e.KnownHostsFile, how)
		if !e.Bastion {
			msg += ", or use the trust_on_first_use host key policy"
		}
		return msg
	case e.KnownHostsFile != "":
		return fmt.Sprintf("ssh %s: host key mismatch: known_hosts file %s lists %s for this host but the server presented %s; this could be a man-in-the-middle attack. If the host was rebuilt or its host keys regenerated, verify the new fingerprint and replace the entry (ssh-keygen -f %s -R '%s', then add the new key)",
			e.Host, e.KnownHostsFile, strings.Join(e.Expected, ", "), presented, e.KnownHostsFile, knownhosts.Normalize(net.JoinHostPort(host, port)))
	default:
		return fmt.Sprintf("ssh %s: host key changed: expected %s (recorded earlier) but the server presented %s; this could be a man-in-the-middle attack (possible MITM). If the host was rebuilt or its SSH host keys regenerated, verify the new fingerprint out of band (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the host) and replace the recorded fingerprint",
			e.Host, strings.Join(e.Expected, ", "), presented)
	}
}

// hostKeyChecker verifies presented host keys according to the policy.
type hostKeyChecker struct {
	policy   HostKeyPolicy
	file     string
	probeKey ssh.PublicKey // never a real host key; used to list known key types

	mu      sync.Mutex
	cb      ssh.HostKeyCallback // KnownHosts only
	version string              // the file's size and mtime when cb was read
}

// known returns the known_hosts callback (nil with another policy),
// reading the file again when it has changed: hosts created during a run
// (new EC2 instances, a lab's nodes) may be added to it meanwhile.
func (c *hostKeyChecker) known() ssh.HostKeyCallback {
	if c.policy != KnownHosts {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if fi, err := os.Stat(c.file); err == nil {
		if v := fmt.Sprint(fi.Size(), fi.ModTime().UnixNano()); v != c.version {
			if cb, err := knownhosts.New(c.file); err == nil {
				c.cb, c.version = cb, v
			}
		}
	}
	return c.cb
}

func newHostKeyChecker(policy HostKeyPolicy, knownHostsFile string) (*hostKeyChecker, error) {
	c := &hostKeyChecker{policy: policy, file: knownHostsFile}
	if policy != KnownHosts {
		return c, nil
	}
	fi, err := os.Stat(knownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("dockerssh: known_hosts file %s: %w", knownHostsFile, err)
	}
	cb, err := knownhosts.New(knownHostsFile)
	if err != nil {
		return nil, fmt.Errorf("dockerssh: known_hosts file %s: %w", knownHostsFile, err)
	}
	c.version = fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	c.cb, c.probeKey = cb, probe
	return c, nil
}

// algorithms returns the host key algorithms to offer for addr so that the
// server presents a key type that known_hosts lists for it (nil: no
// preference). Without this, a server could pick e.g. ed25519 while only its
// RSA key is listed, and the check would fail spuriously.
func (c *hostKeyChecker) algorithms(addr string, remote net.Addr) []string {
	known := c.known()
	if known == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if err := known(addr, remote, c.probeKey); !errors.As(err, &ke) || len(ke.Want) == 0 {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a ...string) {
		for _, s := range a {
			if !seen[s] {
				seen[s] = true
				algos = append(algos, s)
			}
		}
	}
	for _, k := range ke.Want {
		if t := k.Key.Type(); t == ssh.KeyAlgoRSA {
			add(ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA)
		} else {
			add(t)
		}
	}
	return algos
}

// check verifies key for the host; label is user@host:port for messages and
// expected the fingerprints the key must match (empty: no pin).
func (c *hostKeyChecker) check(label, addr string, remote net.Addr, key ssh.PublicKey, expected []string) error {
	info := hostKeyInfo(key)
	if known := c.known(); known != nil {
		err := known(addr, remote, key)
		var ke *knownhosts.KeyError
		var re *knownhosts.RevokedError
		switch {
		case errors.As(err, &re):
			return &HostKeyError{Host: label, Addr: addr, Presented: info, KnownHostsFile: c.file, Revoked: true}
		case errors.As(err, &ke):
			var want []string
			for _, k := range ke.Want {
				want = append(want, fmt.Sprintf("%s (%s, line %d)", ssh.FingerprintSHA256(k.Key), k.Key.Type(), k.Line))
			}
			return &HostKeyError{Host: label, Addr: addr, Presented: info, Expected: want, KnownHostsFile: c.file}
		case err != nil:
			return fmt.Errorf("ssh %s: checking host key against %s: %w", label, c.file, err)
		}
	}
	for _, want := range expected {
		if want != "" && want != info.Fingerprint {
			return &HostKeyError{Host: label, Addr: addr, Presented: info, Expected: []string{want}}
		}
	}
	return nil
}
