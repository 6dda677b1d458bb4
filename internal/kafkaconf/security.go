package kafkaconf

import (
	"fmt"
	"strings"
)

// Security names shared by brokers, MirrorMaker 2 and every client.
const (
	// SASLMechanism is the only mechanism the brokers enable: passwords
	// never cross the wire and Kafka keeps only salted hashes.
	SASLMechanism = "SCRAM-SHA-512"
	// StandardAuthorizer is KRaft's ACL authorizer. With it, a request that
	// no ACL allows is denied (allow.everyone.if.no.acl.found=false).
	StandardAuthorizer = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	// LoopbackPrincipal is who the loopback BROKER and CONTROLLER listeners
	// see (PLAINTEXT yields ANONYMOUS). It is a super user: only processes
	// inside the broker's own network namespace can reach those listeners,
	// which is the broker itself and the start script that creates the
	// admin user.
	LoopbackPrincipal = "User:ANONYMOUS"
	// DefaultExternalPort is the external listener's port on a mirror's node.
	DefaultExternalPort = 9095

	// Listener names of a secured broker.
	InternalListener = "INTERNAL"
	ExternalListener = "EXTERNAL"

	scramLoginModule = "org.apache.kafka.common.security.scram.ScramLoginModule"
)

// BrokerSecurity turns on authentication and authorization for a broker:
// every client listener requires SASL/SCRAM-SHA-512, and Kafka's
// StandardAuthorizer denies whatever no ACL allows.
type BrokerSecurity struct {
	// AdminUser is the super user that creates users and ACLs.
	AdminUser string
	// KeystorePath is a PEM file with the broker's private key (PKCS#8,
	// unencrypted) followed by its certificate chain. Required when
	// InternalTLS is set or an external listener exists.
	KeystorePath string
	// InternalTLS makes the overlay listener SASL_SSL; without it,
	// SASL_PLAINTEXT (for an overlay network that IPsec already encrypts).
	InternalTLS bool
	// ExternalPort, when non-zero, adds the EXTERNAL listener (always
	// SASL_SSL) on all interfaces, advertised at ExternalHost:ExternalPort.
	ExternalPort int
	ExternalHost string
}

// internalProtocol is the security protocol of the INTERNAL listener.
func (s BrokerSecurity) internalProtocol() string {
	if s.InternalTLS {
		return "SASL_SSL"
	}
	return "SASL_PLAINTEXT"
}

// Check refuses a configuration Kafka would refuse at start-up, in terms
// of these fields.
func (s BrokerSecurity) Check() error {
	if s.AdminUser == "" {
		return fmt.Errorf("broker security: an admin user is required")
	}
	if (s.InternalTLS || s.ExternalPort != 0) && s.KeystorePath == "" {
		return fmt.Errorf("broker security: TLS needs a keystore (PEM key and certificate chain)")
	}
	if s.ExternalPort != 0 && s.ExternalHost == "" {
		return fmt.Errorf("broker security: the external listener needs the address users dial")
	}
	return nil
}

// securedListeners returns listeners, advertised.listeners and the
// protocol map of a secured broker, and the settings that go with them.
func securedListeners(o BrokerOptions, self, ctrl string) Properties {
	s := *o.Security
	in := strings.ToLower(InternalListener)
	listeners := []string{InternalListener + "://" + hostPort(o.ListenerHost, o.ListenerPort)}
	advertised := []string{InternalListener + "://" + hostPort(o.AdvertisedHost, o.AdvertisedPort)}
	protocols := []string{InternalListener + ":" + s.internalProtocol()}
	p := Properties{
		"sasl.enabled.mechanisms":                                                          SASLMechanism,
		"listener.name." + in + ".sasl.enabled.mechanisms":                                 SASLMechanism,
		"listener.name." + in + "." + strings.ToLower(SASLMechanism) + ".sasl.jaas.config": scramLoginModule + " required;",
		"authorizer.class.name":                                                            StandardAuthorizer,
		"allow.everyone.if.no.acl.found":                                                   "false",
		"super.users":                                                                      LoopbackPrincipal + ";User:" + s.AdminUser,
		"ssl.client.auth":                                                                  "none",
	}
	if s.KeystorePath != "" {
		p["ssl.keystore.type"] = "PEM"
		p["ssl.keystore.location"] = s.KeystorePath
	}
	if s.ExternalPort != 0 {
		ex := strings.ToLower(ExternalListener)
		listeners = append(listeners, ExternalListener+"://"+hostPort("0.0.0.0", s.ExternalPort))
		advertised = append(advertised, ExternalListener+"://"+hostPort(s.ExternalHost, s.ExternalPort))
		protocols = append(protocols, ExternalListener+":SASL_SSL")
		p["listener.name."+ex+".sasl.enabled.mechanisms"] = SASLMechanism
		p["listener.name."+ex+"."+strings.ToLower(SASLMechanism)+".sasl.jaas.config"] = scramLoginModule + " required;"
	}
	p["listeners"] = strings.Join(append(listeners, "BROKER://"+self, "CONTROLLER://"+ctrl), ",")
	p["advertised.listeners"] = strings.Join(append(advertised, "BROKER://"+self), ",")
	p["listener.security.protocol.map"] = strings.Join(append(protocols, "BROKER:PLAINTEXT", "CONTROLLER:PLAINTEXT"), ",")
	return p
}

// ClientAuth is how a client authenticates to a secured broker.
type ClientAuth struct {
	Username, Password string
	// TLS selects SASL_SSL (else SASL_PLAINTEXT).
	TLS bool
	// CAPath is the PEM file of the CA that signed the brokers'
	// certificates (librdkafka's ssl.ca.location, Java's PEM truststore).
	CAPath string
}

// protocol is the client's security.protocol.
func (a ClientAuth) protocol() string {
	if a.TLS {
		return "SASL_SSL"
	}
	return "SASL_PLAINTEXT"
}

// LibrdkafkaProperties returns the librdkafka settings of a client
// authenticating as a: what `minibroker --config FILE` and librdkafka-based
// clients (confluent-kafka in Python, Go, C#) read.
func LibrdkafkaProperties(a ClientAuth) Properties {
	p := Properties{
		"security.protocol": a.protocol(),
		"sasl.mechanism":    SASLMechanism,
		"sasl.username":     a.Username,
		"sasl.password":     a.Password,
	}
	if a.TLS && a.CAPath != "" {
		p["ssl.ca.location"] = a.CAPath
	}
	return p
}

// JavaClientProperties returns the settings of a Java Kafka client (and of
// MirrorMaker 2's clients, under a cluster alias) authenticating as a.
func JavaClientProperties(a ClientAuth) Properties {
	p := Properties{
		"security.protocol": a.protocol(),
		"sasl.mechanism":    SASLMechanism,
		"sasl.jaas.config":  JAASConfig(a.Username, a.Password),
	}
	if a.TLS && a.CAPath != "" {
		p["ssl.truststore.type"] = "PEM"
		p["ssl.truststore.location"] = a.CAPath
	}
	return p
}

// JAASConfig is a SCRAM login line for Java clients; quotes and
// backslashes in the credentials are escaped as JAAS requires.
func JAASConfig(username, password string) string {
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return fmt.Sprintf(`%s required username="%s" password="%s";`, scramLoginModule, q.Replace(username), q.Replace(password))
}

// ConfigCommandClass is Kafka's kafka-configs tool (main class; the
// minibroker/kafka image has no kafka-configs.sh, both images have
// kafka-run-class.sh).
const ConfigCommandClass = "kafka.admin.ConfigCommand"

// SetScramArgs are ConfigCommandClass's arguments that set user's
// SCRAM-SHA-512 password through the broker at bootstrap: run against a
// broker's loopback BROKER listener (whose principal is a super user),
// they create the admin user before any SCRAM user exists. The password
// must not contain ',' or ']' (the tool's syntax), which generated
// passwords never do.
func SetScramArgs(bootstrap, user, password string) []string {
	return []string{"--bootstrap-server", bootstrap, "--alter", "--entity-type", "users", "--entity-name", user,
		"--add-config", SASLMechanism + "=[iterations=8192,password=" + password + "]"}
}
