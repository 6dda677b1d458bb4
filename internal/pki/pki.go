// Package pki creates the certificate authority and the broker
// certificates of a secured mini-broker: ECDSA P-256 keys, PEM encoded,
// private keys in PKCS#8 as Kafka's PEM keystores read them. It is pure
// (no network, no files) so the provider keeps the results in state and
// tests make their own.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// DefaultValidity is how long certificates are valid: long enough that a
// deployment never meets an expiry by surprise; rotation is by changing
// the swarm's tls_generation.
const DefaultValidity = 10 * 365 * 24 * time.Hour

// Pair is a PEM certificate and its PEM PKCS#8 private key.
type Pair struct {
	CertPEM, KeyPEM string
}

// KeystorePEM is the key followed by the certificate: the single file a
// Kafka broker's PEM keystore (ssl.keystore.type=PEM) reads.
func (p Pair) KeystorePEM() string { return p.KeyPEM + p.CertPEM }

// NewCA creates a self-signed certificate authority.
func NewCA(commonName string, now time.Time, validity time.Duration) (Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"minibroker"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, tmpl, key, key)
}

// Issue creates a server certificate signed by ca for the given DNS names
// and IP addresses (each SAN is one or the other).
func Issue(ca Pair, commonName string, sans []string, now time.Time, validity time.Duration) (Pair, error) {
	caCert, caKey, err := parse(ca)
	if err != nil {
		return Pair{}, fmt.Errorf("CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Pair{}, fmt.Errorf("certificate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: commonName, Organization: []string{"minibroker"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	return sign(tmpl, caCert, key, caKey)
}

// Covers reports whether cert (PEM) was signed by ca and names every SAN:
// what decides whether a certificate in state can stay.
func Covers(ca Pair, certPEM string, sans []string) bool {
	caCert, _, err := parse(ca)
	if err != nil {
		return false
	}
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || cert.CheckSignatureFrom(caCert) != nil {
		return false
	}
	for _, s := range sans {
		if cert.VerifyHostname(s) != nil {
			return false
		}
	}
	return true
}

func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, parentKey crypto.Signer) (Pair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return Pair{}, fmt.Errorf("sign certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Pair{}, fmt.Errorf("encode key: %w", err)
	}
	return Pair{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})),
	}, nil
}

// parse reads a CA's certificate and key: PKCS#8, PKCS#1 (RSA) or SEC 1
// (EC) PEM, as a CA of the user's own may come.
func parse(p Pair) (*x509.Certificate, crypto.Signer, error) {
	cb, _ := pem.Decode([]byte(p.CertPEM))
	kb, _ := pem.Decode([]byte(p.KeyPEM))
	if cb == nil || kb == nil {
		return nil, nil, errors.New("no PEM certificate or key")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	var k any
	switch kb.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(kb.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("the CA key: %w", err)
	}
	key, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, errors.New("the CA key cannot sign")
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, errors.New("the CA key does not match its certificate")
	}
	if !cert.IsCA {
		return nil, nil, errors.New("the certificate is not a CA's (basic constraints)")
	}
	return cert, key, nil
}

// CheckCA tells why a CA of the user's own cannot sign the brokers'
// certificates, or nil.
func CheckCA(ca Pair) error {
	_, _, err := parse(ca)
	return err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
