package kafkaconf

import (
	"fmt"
	"strings"
)

// Security names shared by brokers, MirrorMaker 2 and every client.
const (
	// SASLMechanism is the mechanism of every user: passwords never cross
	// the wire and Kafka keeps only salted hashes.
	SASLMechanism = "SCRAM-SHA-512"
	// AdminMechanism is the admin user's alone, on the overlay listener
	// only: its password is in the broker's configuration (a secret), so
	// the admin exists from the broker's first start, before any SCRAM
	// user, without a tool run that would show the password.
	AdminMechanism = "PLAIN"
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
	plainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule"
)

// BrokerSecurity turns on authentication and authorization for a broker:
// every client listener requires SASL/SCRAM-SHA-512, and Kafka's
// StandardAuthorizer denies whatever no ACL allows.
type BrokerSecurity struct {
	// AdminUser is the super user that creates users and ACLs, with
	// AdminPassword (SASL/PLAIN on the overlay listener). The rendered
	// server.properties then holds the password: deliver it as a secret.
	AdminUser, AdminPassword string
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
	if s.AdminUser == "" || s.AdminPassword == "" {
		return fmt.Errorf("broker security: an admin user and password are required")
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
		"sasl.enabled.mechanisms":                                                          SASLMechanism + "," + AdminMechanism,
		"listener.name." + in + ".sasl.enabled.mechanisms":                                 SASLMechanism + "," + AdminMechanism,
		"listener.name." + in + "." + strings.ToLower(SASLMechanism) + ".sasl.jaas.config": scramLoginModule + " required;",
		"listener.name." + in + "." + strings.ToLower(AdminMechanism) + ".sasl.jaas.config": fmt.Sprintf(`%s required user_%s="%s";`,
			plainLoginModule, s.AdminUser, jaasQuote(s.AdminPassword)),
		"authorizer.class.name":          StandardAuthorizer,
		"allow.everyone.if.no.acl.found": "false",
		"super.users":                    LoopbackPrincipal + ";User:" + s.AdminUser,
		"ssl.client.auth":                "none",
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
	// Mechanism is SASLMechanism unless set (AdminMechanism for the admin).
	Mechanism string
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
		"sasl.mechanism":    a.mechanism(),
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
	module := scramLoginModule
	if a.mechanism() == AdminMechanism {
		module = plainLoginModule
	}
	p := Properties{
		"security.protocol": a.protocol(),
		"sasl.mechanism":    a.mechanism(),
		"sasl.jaas.config":  fmt.Sprintf(`%s required username="%s" password="%s";`, module, jaasQuote(a.Username), jaasQuote(a.Password)),
	}
	if a.TLS && a.CAPath != "" {
		p["ssl.truststore.type"] = "PEM"
		p["ssl.truststore.location"] = a.CAPath
	}
	return p
}

func (a ClientAuth) mechanism() string {
	if a.Mechanism == "" {
		return SASLMechanism
	}
	return a.Mechanism
}

// jaasQuote escapes quotes and backslashes as a JAAS string requires.
func jaasQuote(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
