// Package dockerssh reaches Docker Engines on remote hosts through SSH.
//
// A [Pool] keeps one multiplexed SSH connection (golang.org/x/crypto/ssh, no
// ssh subprocess) per host and hands out *client.Client values from the
// Docker SDK whose every HTTP connection is an SSH
// "direct-streamlocal@openssh.com" channel to the engine's unix socket on the
// remote host (the same mechanism as `ssh -L local:/var/run/docker.sock`).
// Many goroutines may use the same connection concurrently; each request or
// hijacked stream gets its own channel.
//
// The remote sshd must allow stream-local forwarding (OpenSSH's default:
// AllowStreamLocalForwarding yes, no "restrict"/"no-port-forwarding" on the
// authorized_keys line) and the SSH user must be allowed to open the Docker
// socket (root or a member of the docker group).
//
// With Config.Bastion set, hosts are reached through an SSH jump host (like
// `ssh -J`): the Pool keeps one SSH connection to the bastion, opens a
// "direct-tcpip" channel through it to each host's sshd, and runs the host's
// SSH handshake inside that channel. The bastion's sshd must allow TCP
// forwarding (AllowTcpForwarding yes) to the hosts' SSH ports.
package dockerssh

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// HostKeyPolicy selects how a [Pool] verifies the SSH host keys of servers.
type HostKeyPolicy int

const (
	// KnownHosts accepts only host keys listed for the host in an OpenSSH
	// known_hosts file (Config.KnownHostsFile). This is the zero value.
	KnownHosts HostKeyPolicy = iota
	// TrustOnFirstUse accepts the key a host presents when no fingerprint
	// has been recorded for it yet (Target.ExpectedHostKey empty) and
	// reports it in HostKeyInfo so the caller can record it; afterwards the
	// host must keep presenting that key. Within one Pool, the first key
	// accepted for an address is also pinned for reconnections.
	TrustOnFirstUse
)

// String returns the policy name as used in error messages.
func (p HostKeyPolicy) String() string {
	switch p {
	case KnownHosts:
		return "known_hosts"
	case TrustOnFirstUse:
		return "trust_on_first_use"
	default:
		return fmt.Sprintf("HostKeyPolicy(%d)", int(p))
	}
}

// Defaults applied by NewPool to zero Config fields.
const (
	DefaultDialTimeout  = 15 * time.Second
	DefaultKeepAlive    = 30 * time.Second
	DefaultDockerSocket = "/var/run/docker.sock"
	DefaultSSHPort      = "22"
)

// keepAliveMaxMissed is how many keepalive intervals may pass without an
// answer before a connection is considered dead (like OpenSSH's
// ServerAliveCountMax).
const keepAliveMaxMissed = 3

// Config holds the SSH settings shared by every host a Pool connects to.
type Config struct {
	// User is the SSH login user (required), e.g. "root".
	User string
	// PrivateKeyPEM is the client private key: OpenSSH ("BEGIN OPENSSH
	// PRIVATE KEY") or PEM (PKCS#1, PKCS#8, SEC1) format; RSA, ECDSA or
	// Ed25519. Required.
	PrivateKeyPEM string
	// Passphrase decrypts PrivateKeyPEM when it is passphrase-protected;
	// ignored for unencrypted keys.
	Passphrase string
	// Policy selects host key verification; the zero value is KnownHosts.
	Policy HostKeyPolicy
	// KnownHostsFile is the OpenSSH known_hosts file used by the KnownHosts
	// policy. It is read once, by NewPool. Entries for a non-default port
	// are written "[host]:port" (as ssh-keyscan -p and ssh do).
	KnownHostsFile string
	// DialTimeout bounds the TCP connect plus SSH handshake and the
	// liveness probe of a cached connection. Zero means DefaultDialTimeout.
	DialTimeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com requests on every
	// connection (the bastion's included); a connection that leaves 3 in a
	// row unanswered is closed (and redialled on next use). Zero means
	// DefaultKeepAlive; negative disables keepalives.
	KeepAlive time.Duration
	// Bastion, when set, is a jump host through which every host is
	// reached; nil means hosts are dialled directly.
	Bastion *Bastion
}

// Bastion describes an SSH jump host. The Pool authenticates to it with the
// same private key as to the hosts and checks its host key with the same
// Policy (see KnownHostsFile for the details).
type Bastion struct {
	// Address is "host" or "host:port" (IPv6 in brackets) of the bastion's
	// sshd; port 22 by default.
	Address string
	// User is the SSH login user on the bastion; Config.User when empty.
	User string
	// ExpectedHostKey is the SHA256 fingerprint ("SHA256:...") the bastion
	// must present, e.g. a Pool.BastionHostKey fingerprint recorded on an
	// earlier run. Empty means no expectation beyond the policy. Checked
	// with either policy.
	ExpectedHostKey string
	// KnownHostsFile, when set, is an OpenSSH known_hosts file that must
	// list the bastion's key, whatever Config.Policy. When empty, the
	// KnownHosts policy checks the bastion against Config.KnownHostsFile,
	// and TrustOnFirstUse accepts the key the bastion presents first (unless
	// ExpectedHostKey is set) and pins it for the life of the Pool; read it
	// with Pool.BastionHostKey.
	KnownHostsFile string
}

// withDefaults returns cfg with zero durations replaced by defaults.
func (cfg Config) withDefaults() Config {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	return cfg
}

// parseSigner parses the configured private key, explaining the usual
// mistakes (public key pasted, missing or wrong passphrase).
func parseSigner(keyPEM, passphrase string) (ssh.Signer, error) {
	if strings.TrimSpace(keyPEM) == "" {
		return nil, errors.New("dockerssh: no SSH private key configured (the private key is empty)")
	}
	data := []byte(keyPEM)
	signer, err := ssh.ParsePrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if passphrase == "" {
			return nil, errors.New("dockerssh: the SSH private key is passphrase-protected; configure its passphrase (or use an unencrypted key)")
		}
		signer, err = ssh.ParsePrivateKeyWithPassphrase(data, []byte(passphrase))
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, errors.New("dockerssh: cannot decrypt the SSH private key: the passphrase is incorrect")
		}
	}
	if err != nil {
		if _, _, _, _, perr := ssh.ParseAuthorizedKey(data); perr == nil {
			return nil, errors.New("dockerssh: the configured SSH private key is a public key (the .pub file); configure the private key instead")
		}
		return nil, fmt.Errorf("dockerssh: cannot parse the SSH private key (expected an OpenSSH or PEM private key, e.g. the contents of ~/.ssh/id_ed25519): %w", err)
	}
	return signer, nil
}

// validate checks the parts of cfg that do not depend on the key material.
func (cfg Config) validate() error {
	if strings.TrimSpace(cfg.User) == "" {
		return errors.New("dockerssh: no SSH user configured")
	}
	switch cfg.Policy {
	case KnownHosts:
		if cfg.KnownHostsFile == "" {
			return errors.New("dockerssh: host key policy known_hosts needs a known_hosts file; set one or use trust_on_first_use")
		}
		if _, err := os.Stat(cfg.KnownHostsFile); err != nil {
			return fmt.Errorf("dockerssh: known_hosts file: %w (create it, e.g. with ssh-keyscan, or use the trust_on_first_use host key policy)", err)
		}
	case TrustOnFirstUse:
	default:
		return fmt.Errorf("dockerssh: unknown host key policy %d", int(cfg.Policy))
	}
	if b := cfg.Bastion; b != nil && b.KnownHostsFile != "" {
		if _, err := os.Stat(b.KnownHostsFile); err != nil {
			return fmt.Errorf("dockerssh: bastion known_hosts file: %w (create it, e.g. with ssh-keyscan)", err)
		}
	}
	return nil
}

// bastionSettings is a validated Bastion.
type bastionSettings struct {
	addr     string // host:port
	user     string
	expected string // normalized fingerprint, or empty
	keys     *hostKeyChecker
}

// bastionSettings validates cfg.Bastion (nil: none); nodeKeys is the host
// key checker of the nodes, reused when the bastion uses the same file.
func (cfg Config) bastionSettings(nodeKeys *hostKeyChecker) (*bastionSettings, error) {
	b := cfg.Bastion
	if b == nil {
		return nil, nil
	}
	addr, err := normalizeAddress(b.Address)
	if err != nil {
		return nil, fmt.Errorf("dockerssh: bastion: %w", err)
	}
	expected, err := NormalizeFingerprint(b.ExpectedHostKey)
	if err != nil {
		return nil, fmt.Errorf("dockerssh: bastion: %w", err)
	}
	user := strings.TrimSpace(b.User)
	if user == "" {
		user = cfg.User
	}
	keys := nodeKeys
	if b.KnownHostsFile != "" && (cfg.Policy != KnownHosts || b.KnownHostsFile != cfg.KnownHostsFile) {
		if keys, err = newHostKeyChecker(KnownHosts, b.KnownHostsFile); err != nil {
			return nil, fmt.Errorf("dockerssh: bastion: %w", err)
		}
	}
	return &bastionSettings{addr: addr, user: user, expected: expected, keys: keys}, nil
}
