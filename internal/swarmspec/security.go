package swarmspec

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
)

// Security is how a swarm's Kafka is secured: every listener requires
// SASL/SCRAM-SHA-512 and the authorizer allows each component only its
// grants (package access). A nil *Security leaves Kafka PLAINTEXT and open
// (kafka_auth = false).
type Security struct {
	// CA signs the brokers' certificates. Its key is needed only where a
	// certificate is issued (the hub, a mirror).
	CA pki.Pair
	// Seed derives every user's password (Password), so that no password
	// is stored per user and changing the seed rotates them all.
	Seed string
	// InternalTLS makes the overlay listeners SASL_SSL (else
	// SASL_PLAINTEXT, for an overlay network IPsec encrypts).
	InternalTLS bool
}

// CAFingerprint identifies the CA: the SHA-256 of its certificate, hex.
func (s *Security) CAFingerprint() string {
	sum := sha256.Sum256([]byte(s.CA.CertPEM))
	return fmt.Sprintf("%x", sum[:])
}

// External is a mirror's listener for users outside the swarm: SASL_SSL
// on Port of its node, published there (host mode) and advertised at
// Host, the address users dial.
type External struct {
	Host string
	Port int
}

// Bootstrap is the address users give their clients.
func (e *External) Bootstrap() string { return fmt.Sprintf("%s:%d", e.Host, e.Port) }

// Secret files, under /run/secrets in a container.
const (
	SecretsDir = "/run/secrets"
	// ClientPropertiesFile is a workload's librdkafka properties
	// (`minibroker --config`): its user, password and CA.
	ClientPropertiesFile = "kafka.properties"
	keystoreFile         = "keystore.pem"
	serverPropertiesFile = "server.properties"
	mirrorMakerFile      = "mm2.properties"
	accessPlanFile       = "access-plan.json"
	adminPropertiesFile  = "admin.properties"
	// CAFile is the CA certificate, a Swarm config (it is public).
	CAFile = ConfigDir + "/ca.pem"
)

// AdminUser is the super user that applies access plans; it logs in with
// SASL/PLAIN (kafkaconf.AdminMechanism), its password in the brokers'
// server.properties.
const AdminUser = "admin"

// Owners of Kafka users (access.Plan.Owner): the prefix of every user
// name of the swarm, a mirror or a filter group.
const swarmUsers = "swarm" + access.UserSeparator

func mirrorUsers(mirror string) string {
	return "mirror" + access.UserSeparator + mirror + access.UserSeparator
}
func groupUsers(group string) string {
	return "group" + access.UserSeparator + group + access.UserSeparator
}

// Kafka user names, declared once.
var (
	ProducerUser = access.UserName(swarmUsers, "producer")
	ReportUser   = access.UserName(swarmUsers, "report")
	RegistryUser = access.UserName(swarmUsers, "registry")
	// IngestUser is the upstream relay's, in a swarm fed from upstream.
	IngestUser = access.UserName(swarmUsers, "ingest")
)

// MirrorMakerUser is the user of a mirror's MirrorMaker 2.
func MirrorMakerUser(mirror string) string { return access.UserName(mirrorUsers(mirror), "mm2") }

// FilterUser is the user of one filter's process (isolated mode).
func FilterUser(group, filter string) string {
	return access.UserName(groupUsers(group), "filter", FilterSlug(filter))
}

// SharedFiltersUser is the user of a shared group's process.
func SharedFiltersUser(group string) string { return access.UserName(groupUsers(group), "filters") }

// ConsumerUser is the user of a filter's consumer in the swarm.
func ConsumerUser(group, filter string) string {
	return access.UserName(groupUsers(group), "consumer", FilterSlug(filter))
}

// ReaderUser is the user a filter's owner reads its stream with from
// outside the swarm.
func ReaderUser(group, filter string) string {
	return access.UserName(groupUsers(group), "reader", FilterSlug(filter))
}

// NamedReaderUser is the user of a named reader of a filter's stream
// (readers = ["alice"] on the filter). Not under ReaderUser: a reader's
// consumer groups are the names that start with its user name.
func NamedReaderUser(group, filter, name string) string {
	return access.UserName(groupUsers(group), "named", FilterSlug(filter), name)
}

// Password derives a user's password from the seed: HMAC-SHA256, base64
// URL encoding (43 characters, none of which the Kafka tools' syntax
// reserves).
func (s *Security) Password(user string) string {
	mac := hmac.New(sha256.New, []byte(s.Seed))
	mac.Write([]byte("minibroker/scram/" + user))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// clientAuth is how a workload authenticates as user inside the swarm.
func (s *Security) clientAuth(user string) kafkaconf.ClientAuth {
	return kafkaconf.ClientAuth{Username: user, Password: s.Password(user), TLS: s.InternalTLS, CAPath: CAFile}
}

// ReportProperties are the librdkafka settings of the report's user, for
// a `minibroker report --config -` in a container on the overlay network:
// the hub's bootstrap and, with TLS, the CA inline (ssl.ca.pem).
func ReportProperties(s *Security) string {
	auth := s.clientAuth(ReportUser)
	auth.CAPath = ""
	p := kafkaconf.LibrdkafkaProperties(auth)
	p["bootstrap.servers"] = Bootstrap(HubService)
	if s.InternalTLS {
		p["ssl.ca.pem"] = s.CA.CertPEM
	}
	return p.Render("minibroker report's Kafka user: minibroker report --config -")
}

// CertificateSANs are the names a broker's certificate must carry: its
// service name and the addresses users dial (a mirror's external host).
func CertificateSANs(service string, external ...string) []string {
	return append([]string{service}, external...)
}

// caConfig is the CA certificate as the Swarm config a secured service
// mounts at CAFile (Swarm config names are global: one per service).
func (s *Security) caConfig(service string) Config {
	c := newSecret(service+"-ca", []byte(s.CA.CertPEM), "")
	c.Target = CAFile
	return c
}

// newSecret is a Swarm secret mounted at /run/secrets/file; its name
// carries a hash of its content, as configs' do.
func newSecret(base string, data []byte, file string) Config {
	sum := sha256.Sum256(append([]byte(base+"\x00"), data...))
	return Config{Name: secretName(base, sum[:5]), Data: data, Target: file}
}

// newKeyedSecret is newSecret for data a person chose (an upstream's
// password): the name's hash is an HMAC under key, so that its 40 bits,
// which `docker secret ls` shows, cannot confirm a guessed password
// offline. An empty key (no swarm seed) falls back to newSecret.
func newKeyedSecret(key []byte, base string, data []byte, file string) Config {
	if len(key) == 0 {
		return newSecret(base, data, file)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(base + "\x00"))
	mac.Write(data)
	return Config{Name: secretName(base, mac.Sum(nil)[:5]), Data: data, Target: file}
}

// secretName keeps a secret's name within Swarm's 64 characters: the
// base (a service name and what the secret is), cut to 40, and a hash
// that tells apart whatever the cut made alike.
func secretName(base string, hash []byte) string {
	if len(base) > 40 {
		base = base[:40]
	}
	return fmt.Sprintf("%s-%x", base, hash)
}

// secureClient mounts a workload's credentials: the CA and its
// properties file, and passes that file with --config.
func (s *Security) secureClient(svc *service, user string) {
	if s == nil {
		return
	}
	props := kafkaconf.LibrdkafkaProperties(s.clientAuth(user)).Render("Kafka client settings of " + user + ".")
	svc.configs = append(svc.configs, s.caConfig(svc.name))
	svc.secrets = append(svc.secrets, newSecret(svc.name+"-kafka", []byte(props), ClientPropertiesFile))
	svc.args = append(svc.args, "--config", SecretsDir+"/"+ClientPropertiesFile)
}

// brokerSecurity is a secured broker's server.properties security (it
// holds the admin's password: server.properties is then a secret) and
// the keystore it mounts.
func (s *Security) brokerSecurity(service string, external *External) (*kafkaconf.BrokerSecurity, []Config) {
	sec := &kafkaconf.BrokerSecurity{AdminUser: AdminUser, AdminPassword: s.Password(AdminUser), InternalTLS: s.InternalTLS,
		KeystorePath: SecretsDir + "/" + keystoreFile}
	var sans []string
	if external != nil {
		sec.ExternalPort, sec.ExternalHost = external.Port, external.Host
		sans = append(sans, external.Host)
	}
	return sec, []Config{s.keystore(service, CertificateSANs(service, sans...))}
}

// keystore is a broker's key and certificate for sans, signed by the CA.
// The secret is named after the CA and the names, and generated only when
// no such secret exists: applying again keeps the key, a new CA or a new
// name issues a new one.
func (s *Security) keystore(service string, sans []string) Config {
	id := sha256.Sum256([]byte(service + "\x00" + s.CA.CertPEM + "\x00" + strings.Join(sans, "\x00")))
	return Config{
		Name:   secretName(service+"-keystore", id[:5]),
		Target: keystoreFile,
		Generate: func() ([]byte, error) {
			cert, err := pki.Issue(s.CA, service, sans, time.Now(), pki.DefaultValidity)
			if err != nil {
				return nil, fmt.Errorf("certificate of %s: %w", service, err)
			}
			return []byte(cert.KeystorePEM()), nil
		},
	}
}

// Access job services, one per owner of Kafka users. Names of mirrors
// and groups never start with a dash, so "mb--" is no other service's
// prefix (Swarm names must be DNS labels: no dots).
const SwarmAccessService = "mb--access-swarm"

func MirrorAccessService(mirror string) string     { return "mb--access-mirror-" + mirror }
func FilterGroupAccessService(group string) string { return "mb--access-group-" + group }

// accessJob is the one-shot service that applies plan as the admin
// (`minibroker admin`); it runs again whenever the plan changes. The plan
// and the admin's settings are secrets.
//
// brokers identify the brokers the plan is for as they run now (their
// service ids): a broker replaced with an empty volume has none of the
// users, and a new id in the job's spec runs the job again.
func (s *Security) accessJob(name, image, network string, owner string, plan access.Plan, brokers ...string) Desired {
	data, _ := json.Marshal(plan) // plain strings: cannot fail
	auth := s.clientAuth(AdminUser)
	auth.Mechanism = kafkaconf.AdminMechanism
	admin := kafkaconf.LibrdkafkaProperties(auth).Render("Kafka admin settings.")
	svc := service{
		name:    name,
		image:   image,
		command: []string{WorkloadsBinary},
		args: []string{"admin", "--plan", SecretsDir + "/" + accessPlanFile,
			"--config", SecretsDir + "/" + adminPropertiesFile},
		labels:      labels(owner, ComponentAccess),
		env:         []string{"MINIBROKER_ACCESS_BROKERS=" + strings.Join(brokers, ",")},
		constraints: NodeConstraints(RoleManager, -1),
		network:     network,
		configs:     []Config{s.caConfig(name)},
		secrets: []Config{
			newSecret(name+"-plan", data, accessPlanFile),
			newSecret(name+"-admin", []byte(admin), adminPropertiesFile),
		},
		job: true,
	}
	return svc.build()
}

// cluster is the plan of one cluster with the given users.
func cluster(bootstrap string, users ...access.User) access.ClusterPlan {
	return access.ClusterPlan{Bootstrap: bootstrap, Users: users}
}

// user is a plan's user with its derived password.
func (s *Security) user(name string, grants ...[]access.Grant) access.User {
	var all []access.Grant
	for _, g := range grants {
		all = append(all, g...)
	}
	return access.User{Name: name, Password: s.Password(name), Grants: all}
}
