package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
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
