package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// A broker certificate verifies against its CA for each SAN, DNS name or
// IP, and for nothing else; its keystore is the key then the certificate,
// and the key is PKCS#8, as Kafka's PEM keystore requires.
func TestIssueVerifies(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test CA", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sans := []string{"mb-mirror-a", "203.0.113.7", "mirror.example.org"}
	cert, err := Issue(ca, "mb-mirror-a", sans, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca.CertPEM)) {
		t.Fatal("CA PEM not parsed")
	}
	block, _ := pem.Decode([]byte(cert.CertPEM))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sans {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "mb-hub", Roots: pool}); err == nil {
		t.Error("the certificate verifies for a name it does not carry")
	}
	if !strings.HasPrefix(cert.KeystorePEM(), "-----BEGIN PRIVATE KEY-----") || !strings.Contains(cert.KeystorePEM(), "-----BEGIN CERTIFICATE-----") {
		t.Errorf("keystore:\n%s", cert.KeystorePEM())
	}
	if _, err := tls.X509KeyPair([]byte(cert.CertPEM), []byte(cert.KeyPEM)); err != nil {
		t.Errorf("key and certificate do not pair: %v", err)
	}
	if !Covers(ca, cert.CertPEM, sans) || Covers(ca, cert.CertPEM, append(sans, "other")) {
		t.Error("Covers does not follow the SANs")
	}
	other, _ := NewCA("other", now, time.Hour)
	if Covers(other, cert.CertPEM, sans) {
		t.Error("Covers accepts a certificate of another CA")
	}
}

// A CA of the user's own, RSA with a PKCS#1 key as openssl writes one,
// signs the brokers' certificates; a key of another certificate, or a
// certificate that is no CA's, is refused with the reason.
func TestUsersOwnCA(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "observatory CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := Pair{
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
	}
	if err := CheckCA(ca); err != nil {
		t.Fatal(err)
	}
	cert, err := Issue(ca, "mb-hub", []string{"mb-hub"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !Covers(ca, cert.CertPEM, []string{"mb-hub"}) {
		t.Error("a certificate the user's CA signed is not covered")
	}
	ours, _ := NewCA("ours", now, time.Hour)
	if err := CheckCA(Pair{CertPEM: ca.CertPEM, KeyPEM: ours.KeyPEM}); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("another key: %v", err)
	}
	if err := CheckCA(Pair{CertPEM: cert.CertPEM, KeyPEM: cert.KeyPEM}); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("a leaf certificate as CA: %v", err)
	}
}
