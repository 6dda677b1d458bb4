package kclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kgoConnOpts translates a command's librdkafka connection settings
// (ConnSettings) into franz-go options, so the franz-go admin client
// reaches a secured cluster exactly as the librdkafka clients do. The
// settings it cannot honour are refused rather than ignored.
func kgoConnOpts(settings map[string]string) ([]kgo.Opt, error) {
	conn := ConnSettings(settings)
	protocol := strings.ToUpper(conn["security.protocol"])
	var opts []kgo.Opt
	switch protocol {
	case "", "PLAINTEXT":
		return nil, nil
	case "SSL", "SASL_SSL":
		cfg, err := kgoTLS(conn)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	case "SASL_PLAINTEXT":
	default:
		return nil, fmt.Errorf("security.protocol %q: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", protocol)
	}
	if !strings.HasPrefix(protocol, "SASL_") {
		return opts, nil
	}
	mech := conn["sasl.mechanism"]
	if mech == "" {
		mech = conn["sasl.mechanisms"]
	}
	user, pass := conn["sasl.username"], conn["sasl.password"]
	switch strings.ToUpper(mech) {
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case "PLAIN", "":
		opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	default:
		return nil, fmt.Errorf("sasl.mechanism %q is not supported by the admin client (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN)", mech)
	}
	return opts, nil
}

// FranzOpts returns the franz-go options that reach bootstrap with a
// command's librdkafka connection settings (ConnSettings), for the clients
// written with franz-go (the admin plans, the schema registry).
func FranzOpts(bootstrap string, conn map[string]string) ([]kgo.Opt, error) {
	opts, err := kgoConnOpts(conn)
	if err != nil {
		return nil, err
	}
	return append(opts, kgo.SeedBrokers(strings.Split(bootstrap, ",")...)), nil
}

// kgoTLS is the TLS configuration librdkafka's ssl.ca.location (a PEM
// file) or ssl.ca.pem describe; neither means the system's roots.
func kgoTLS(conn map[string]string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if strings.EqualFold(conn["enable.ssl.certificate.verification"], "false") {
		return nil, fmt.Errorf("enable.ssl.certificate.verification=false is not supported by the admin client")
	}
	pem := []byte(conn["ssl.ca.pem"])
	if path := conn["ssl.ca.location"]; path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("ssl.ca.location: %w", err)
		}
		pem = b
	}
	if len(pem) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ssl.ca.location: no PEM certificate found")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}
