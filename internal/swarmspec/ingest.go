package swarmspec

import (
	"cmp"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// The upstream relay (`minibroker ingest`, service IngestService): in a
// swarm fed from an upstream alert stream (Rubin's, say) it takes the
// producer's place on the producer node, copies the upstream topic into
// the hub's alerts topic exactly once, and imports every schema id it
// meets from the upstream's schema registry into the swarm's
// (mb-registry), keeping the id.

// RegistryIngester is the relay's user of the swarm's registry API
// (registry.RoleWrite: it registers what it imports). The registry has it
// only in a swarm fed from upstream.
const RegistryIngester = "ingest"

// Files of the relay under SecretsDir, besides its hub client settings
// (ClientPropertiesFile) and its settings for the swarm's registry
// (RegistryPropertiesFile). All are secrets: the properties hold the
// upstream's passwords, and the CAs go with them, so that nothing of the
// upstream's settings is readable with `docker config inspect`.
const (
	UpstreamPropertiesFile         = "upstream.properties"
	UpstreamCAFile                 = "upstream-ca.pem"
	UpstreamRegistryPropertiesFile = "upstream-registry.properties"
	UpstreamRegistryCAFile         = "upstream-registry-ca.pem"
)

// Upstream is an upstream alert stream and its schema registry.
type Upstream struct {
	// Bootstrap is the upstream's bootstrap servers, HOST:PORT,...
	Bootstrap string
	Topic     string
	// Username and Password log in with SASL/SCRAM-SHA-512; an empty
	// Username means no SASL.
	Username, Password string
	// TLS encrypts the connection (SASL_SSL or SSL); CAPEM is the CA to
	// trust there, empty for the public CAs of the image's bundle.
	TLS   bool
	CAPEM string
	// RegistryURL is the upstream's schema registry, http(s)://…;
	// RegistryUsername and RegistryPassword its HTTP Basic user (empty:
	// none); RegistryCAPEM the CA of its HTTPS certificate, empty for
	// CAPEM (the same authority often signs both).
	RegistryURL                        string
	RegistryUsername, RegistryPassword string
	RegistryCAPEM                      string
	// FromBeginning starts the relay at the upstream's beginning rather
	// than its end, the first time only: once it has saved state it
	// resumes from there.
	FromBeginning bool
}

// registryCA is the CA the relay trusts for the upstream registry.
func (u Upstream) registryCA() string {
	if u.RegistryCAPEM != "" {
		return u.RegistryCAPEM
	}
	return u.CAPEM
}

// Ingest describes the upstream relay service.
type Ingest struct {
	Image    string
	Network  string
	Upstream Upstream
	// Partitions of the hub's alert topic, when the relay creates it;
	// 0: stream.DefaultPartitions.
	Partitions int
	// Resources of the relay's task; zero fields take IngestResources.
	Resources Resources
	// Security, when set, is how the relay authenticates to the hub, as
	// the producer would.
	Security *Security
	// Registry is the swarm's registry, which the relay imports the
	// upstream's schemas into; it must have Ingest set.
	Registry Registry
}

// IngestSpec is the upstream relay service, on the producer node.
// Everything about the upstream but its address and topic reaches the
// container as secrets: its Kafka properties (user, password, CA), its
// CA and its registry's settings; the hub's and the swarm registry's
// settings as the producer's do.
func IngestSpec(in Ingest) Desired {
	u := in.Upstream
	args := []string{"ingest",
		"--bootstrap", Bootstrap(HubService),
		"--upstream", u.Bootstrap,
		"--upstream-topic", u.Topic,
		"--upstream-config", SecretsDir + "/" + UpstreamPropertiesFile,
		"--upstream-registry", SecretsDir + "/" + UpstreamRegistryPropertiesFile,
		"--partitions", itoa(cmp.Or(in.Partitions, stream.DefaultPartitions)),
	}
	if u.FromBeginning {
		args = append(args, "--from-beginning")
	}
	svc := service{
		name:        IngestService,
		image:       in.Image,
		command:     []string{WorkloadsBinary},
		args:        args,
		labels:      labels(OwnerSwarm, ComponentIngest),
		constraints: NodeConstraints(RoleProducer, -1),
		network:     in.Network,
		resources:   in.Resources,
	}
	// The upstream's passwords are a person's choice: their secrets'
	// names hash them under a key from the swarm's seed (none without
	// kafka_auth, whose swarm keeps no secret of its own).
	var key []byte
	if in.Security != nil {
		key = []byte(in.Security.Password("upstream-secret-names"))
	}
	svc.secrets = append(svc.secrets, newKeyedSecret(key, IngestService+"-upstream", []byte(UpstreamProperties(u)), UpstreamPropertiesFile))
	if u.CAPEM != "" {
		svc.secrets = append(svc.secrets, newSecret(IngestService+"-upstream-ca", []byte(u.CAPEM), UpstreamCAFile))
	}
	if ca := u.registryCA(); ca != "" && ca != u.CAPEM {
		svc.secrets = append(svc.secrets, newSecret(IngestService+"-upstream-registry-ca", []byte(ca), UpstreamRegistryCAFile))
	}
	svc.secrets = append(svc.secrets, newKeyedSecret(key, IngestService+"-upstream-registry",
		[]byte(UpstreamRegistryProperties(u)), UpstreamRegistryPropertiesFile))
	in.Security.secureClient(&svc, IngestUser)
	in.Registry.client(&svc, RegistryIngester, "Schema registry settings of the upstream relay (minibroker ingest --registry).")
	return svc.build()
}

// UpstreamProperties is the relay's librdkafka settings for the upstream
// (`minibroker ingest --upstream-config`): SASL/SCRAM-SHA-512 with a
// user, TLS unless turned off, the CA mounted at UpstreamCAFile when one
// is given (the image's CA bundle otherwise).
func UpstreamProperties(u Upstream) string {
	var p kafkaconf.Properties
	if u.Username != "" {
		p = kafkaconf.LibrdkafkaProperties(kafkaconf.ClientAuth{Username: u.Username, Password: u.Password, TLS: u.TLS})
	} else {
		p = kafkaconf.Properties{"security.protocol": "PLAINTEXT"}
		if u.TLS {
			p["security.protocol"] = "SSL"
		}
	}
	switch {
	case u.TLS && u.CAPEM != "":
		p["ssl.ca.location"] = SecretsDir + "/" + UpstreamCAFile
	case u.TLS:
		// librdkafka's static build knows no system CA path: "probe"
		// finds the image's bundle (images.CABundle).
		p["ssl.ca.location"] = "probe"
	}
	return p.Render("Kafka client settings of the upstream relay for " + u.Bootstrap + " (minibroker ingest --upstream-config).")
}

// UpstreamRegistryProperties is the relay's settings for the upstream's
// schema registry (`minibroker ingest --upstream-registry`), in the
// registry.Setting* keys: its URL, user and the CA to trust (mounted at
// UpstreamCAFile when it is the upstream's Kafka CA, else at
// UpstreamRegistryCAFile).
func UpstreamRegistryProperties(u Upstream) string {
	p := kafkaconf.Properties{registry.SettingURL: u.RegistryURL}
	if u.RegistryUsername != "" {
		p[registry.SettingUserInfo] = u.RegistryUsername + ":" + u.RegistryPassword
	}
	switch ca := u.registryCA(); {
	case ca == "":
	case ca == u.CAPEM:
		p[registry.SettingCA] = SecretsDir + "/" + UpstreamCAFile
	default:
		p[registry.SettingCA] = SecretsDir + "/" + UpstreamRegistryCAFile
	}
	return p.Render("The upstream's schema registry, for the upstream relay (minibroker ingest --upstream-registry).")
}

// ingestUser is the relay's Kafka user on the hub, for the swarm's access
// plan: it creates and writes the alerts and its state topic, in
// transactions of its own id.
func (s *Security) ingestUser() access.User {
	return s.user(IngestUser, access.IngestGrants(stream.AlertsTopic, stream.IngestStateTopic, stream.TimingTopic, stream.IngestTransactionalID))
}

// CheckCertificatesPEM accepts PEM text made only of certificates, at
// least one, each of which parses, that fits in a Swarm secret: what a
// CA attribute may hold. A private key pasted by mistake is refused,
// since the text is kept where anyone reading the swarm's labels sees it.
func CheckCertificatesPEM(text string) error {
	if len(text) > MaxConfigBytes {
		return fmt.Errorf("%d bytes: a Swarm secret holds at most %d; give only the CA that signed the certificates, not a whole bundle", len(text), MaxConfigBytes)
	}
	rest := []byte(text)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %d is a %s: give only certificates (-----BEGIN CERTIFICATE-----)", n+1, b.Type)
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("PEM block %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate (-----BEGIN CERTIFICATE-----) found")
	}
	return nil
}
