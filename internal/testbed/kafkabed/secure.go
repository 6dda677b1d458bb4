package kafkabed

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
)

// AdminUser is the super user a secured broker is started with.
const AdminUser = "admin"

// WithSecurity starts the broker secured as the swarm's brokers are:
// SASL/SCRAM-SHA-512 on its client listener (SASL_SSL with a certificate
// from ca for 127.0.0.1 and localhost, or SASL_PLAINTEXT when tls is
// false) and the StandardAuthorizer. The admin user logs in with
// SASL/PLAIN and adminPassword (random when empty), as the swarm's do.
// Share one CA and admin password between the brokers of a test (NewCA),
// as a swarm does.
func WithSecurity(ca pki.Pair, tls bool, adminPassword string) Option {
	return func(c *brokerConfig) { c.ca, c.tls, c.secure, c.adminPassword = ca, tls, true, adminPassword }
}

// NewCA returns a fresh certificate authority for secured brokers.
func NewCA() (pki.Pair, error) {
	return pki.NewCA("kafkabed CA", time.Now(), time.Hour*24)
}

// brokerSecurity prepares a secured broker's files in dir: its keystore,
// the CA file clients use and the admin password.
func (b *Broker) prepareSecurity(cfg brokerConfig) (*kafkaconf.BrokerSecurity, error) {
	b.adminPassword = cfg.adminPassword
	if b.adminPassword == "" {
		pw := make([]byte, 16)
		if _, err := rand.Read(pw); err != nil {
			return nil, err
		}
		b.adminPassword = hex.EncodeToString(pw)
	}
	b.tls = cfg.tls
	sec := &kafkaconf.BrokerSecurity{AdminUser: AdminUser, AdminPassword: b.adminPassword, InternalTLS: cfg.tls}
	if !cfg.tls {
		return sec, nil
	}
	sans := []string{"127.0.0.1", "localhost"}
	if cfg.listenHost != "" {
		sans = append(sans, cfg.listenHost)
	}
	cert, err := pki.Issue(cfg.ca, "kafkabed broker", sans, time.Now(), 24*time.Hour)
	if err != nil {
		return nil, err
	}
	sec.KeystorePath = filepath.Join(b.dir, "keystore.pem")
	b.caPath = filepath.Join(b.dir, "ca.pem")
	if err := os.WriteFile(sec.KeystorePath, []byte(cert.KeystorePEM()), 0o600); err != nil {
		return nil, fmt.Errorf("kafkabed: write keystore: %w", err)
	}
	if err := os.WriteFile(b.caPath, []byte(cfg.ca.CertPEM), 0o644); err != nil {
		return nil, fmt.Errorf("kafkabed: write CA: %w", err)
	}
	return sec, nil
}

// Secure reports whether the broker requires authentication.
func (b *Broker) Secure() bool { return b.adminPassword != "" }

// CAPath is the CA file clients of a SASL_SSL broker trust ("" otherwise).
func (b *Broker) CAPath() string { return b.caPath }

// ClientSettings returns the librdkafka settings of a client that
// authenticates as user (what `minibroker --config` reads); nil for a
// broker without security.
func (b *Broker) ClientSettings(user, password string) map[string]string {
	if !b.Secure() {
		return nil
	}
	return kafkaconf.LibrdkafkaProperties(kafkaconf.ClientAuth{Username: user, Password: password, TLS: b.tls, CAPath: b.caPath})
}

// ClientAuth is ClientSettings for Java clients and MirrorMaker 2.
func (b *Broker) ClientAuth(user, password string) *kafkaconf.ClientAuth {
	if !b.Secure() {
		return nil
	}
	return &kafkaconf.ClientAuth{Username: user, Password: password, TLS: b.tls, CAPath: b.caPath}
}

// AdminAuth is how the admin user logs in (SASL/PLAIN).
func (b *Broker) AdminAuth() *kafkaconf.ClientAuth {
	a := b.ClientAuth(AdminUser, b.adminPassword)
	if a != nil {
		a.Mechanism = kafkaconf.AdminMechanism
	}
	return a
}

// AdminSettings are the librdkafka settings of the admin user.
func (b *Broker) AdminSettings() map[string]string {
	if !b.Secure() {
		return nil
	}
	return kafkaconf.LibrdkafkaProperties(*b.AdminAuth())
}
