package swarmspec

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"

	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"

	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// The schema registry service (`minibroker registry`): the Confluent
// Schema Registry API over the hub's schemas topic, on the manager node,
// published on the manager's address for users outside the swarm.
const (
	RegistryService     = "mb-registry"
	DefaultRegistryPort = registry.DefaultPort
	// RegistryPropertiesFile is a workload's settings for the registry
	// (registry.Setting*: the producer's, the upstream relay's), under
	// SecretsDir.
	RegistryPropertiesFile = "registry.properties"
	registryUsersFile      = "registry-users.json"
)

// Users of the registry's API (HTTP Basic), not Kafka users: the producer
// registers, the readers (users outside the swarm, filters' owners) read;
// in a swarm fed from upstream the relay registers too (RegistryIngester).
const (
	RegistryWriter = "producer"
	RegistryReader = "reader"
)

// Registry describes the schema registry service.
type Registry struct {
	Image   string
	Network string
	// Port is published on the manager node (host mode).
	Port int
	// Host is the manager's address as users dial it; its certificate
	// names it.
	Host string
	// Security, when set, makes the API HTTPS with users; without it the
	// API is plain HTTP and open, as Kafka is then.
	Security *Security
	// Ingest gives the upstream relay its user (RegistryIngester), in a
	// swarm fed from upstream only: no other swarm has a password for it
	// in a secret.
	Ingest bool
}

func (r Registry) port() int {
	if r.Port == 0 {
		return DefaultRegistryPort
	}
	return r.Port
}

// RegistryPassword is the password of a registry user.
func (s *Security) RegistryPassword(user string) string {
	return s.Password("schema-registry/" + user)
}

// URL is the registry's address for users outside the swarm.
func (r Registry) URL() string { return RegistryURL(r.Security != nil, r.Host, r.port()) }

// internalURL is the registry's address on the overlay network.
func (r Registry) internalURL() string {
	return RegistryURL(r.Security != nil, RegistryService, r.port())
}

// RegistryURL is the registry's address at host: HTTPS when the swarm's
// Kafka is secured, plain HTTP otherwise.
func RegistryURL(secured bool, host string, port int) string {
	scheme := "http"
	if secured {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// RegistrySpec is the schema registry service.
func RegistrySpec(r Registry) Desired {
	port := r.port()
	svc := service{
		name:    RegistryService,
		image:   r.Image,
		command: []string{WorkloadsBinary},
		args: []string{"registry", "--bootstrap", Bootstrap(HubService), "--topic", stream.SchemasTopic,
			"--listen", fmt.Sprintf(":%d", port)},
		labels:      labels(OwnerSwarm, ComponentRegistry),
		constraints: NodeConstraints(RoleManager, -1),
		network:     r.Network,
		ports: []swarm.PortConfig{{Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(port),
			PublishedPort: uint32(port), PublishMode: swarm.PortConfigPublishModeHost}},
	}
	if s := r.Security; s != nil {
		list := []registry.User{
			{Name: RegistryWriter, Password: s.RegistryPassword(RegistryWriter), Role: registry.RoleWrite},
			{Name: RegistryReader, Password: s.RegistryPassword(RegistryReader), Role: registry.RoleRead},
		}
		if r.Ingest {
			list = append(list, registry.User{Name: RegistryIngester, Password: s.RegistryPassword(RegistryIngester), Role: registry.RoleWrite})
		}
		users, _ := json.Marshal(list) // strings only: cannot fail
		keystore := s.keystore(RegistryService, CertificateSANs(RegistryService, r.Host))
		svc.secrets = append(svc.secrets, keystore, newSecret(RegistryService+"-users", []byte(users), registryUsersFile))
		svc.args = append(svc.args,
			"--tls-cert", SecretsDir+"/"+keystoreFile, "--tls-key", SecretsDir+"/"+keystoreFile,
			"--users", SecretsDir+"/"+registryUsersFile)
		s.secureClient(&svc, RegistryUser)
	}
	return svc.build()
}

// registryClient mounts the producer's registry settings, as a writer on
// the overlay network, and passes them with --registry.
func (r Registry) registryClient(svc *service) {
	r.client(svc, RegistryWriter, "Schema registry settings of the producer (minibroker produce --registry).")
}

// client mounts a workload's settings for the registry on the overlay
// network, as user (a writer), under header, and passes them with
// --registry.
func (r Registry) client(svc *service, user, header string) {
	props := kafkaconf.Properties{registry.SettingURL: r.internalURL()}
	if s := r.Security; s != nil {
		props[registry.SettingUserInfo] = user + ":" + s.RegistryPassword(user)
		props[registry.SettingCA] = CAFile
	}
	text := props.Render(header)
	svc.secrets = append(svc.secrets, newSecret(svc.name+"-registry", []byte(text), RegistryPropertiesFile))
	svc.args = append(svc.args, "--registry", SecretsDir+"/"+RegistryPropertiesFile)
}

// RegistryReaderProperties are the settings a user outside the swarm gives
// a Confluent client (Python's SchemaRegistryClient takes them as a dict;
// `minibroker produce --registry` as a file) to read schemas: the URL, the
// reader's credentials and, with TLS, the CA saved as caFile.
func RegistryReaderProperties(r Registry, caFile string) string {
	props := kafkaconf.Properties{registry.SettingURL: r.URL()}
	if s := r.Security; s != nil {
		props[registry.SettingUserInfo] = RegistryReader + ":" + s.RegistryPassword(RegistryReader)
		props[registry.SettingCA] = caFile
	}
	return props.Render("The schema registry's read-only user, for Confluent's clients (schema.registry.* without the prefix).")
}
