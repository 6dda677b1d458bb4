package kafkaconf

import (
	"strings"
	"testing"
)

// A secured broker: SCRAM on every client listener, TLS where asked, the
// authorizer denying by default, the loopback listeners plaintext and
// their principal a super user with the admin.
func TestSecuredBrokerProperties(t *testing.T) {
	for _, tc := range []struct {
		name string
		sec  BrokerSecurity
		want map[string]string
		gone []string
	}{
		{
			name: "encrypted overlay: SASL_PLAINTEXT inside, no keystore",
			sec:  BrokerSecurity{AdminUser: "admin", AdminPassword: `pa"ss`},
			want: map[string]string{
				"listeners":                      "INTERNAL://0.0.0.0:9092,BROKER://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093",
				"advertised.listeners":           "INTERNAL://mb-hub:9092,BROKER://127.0.0.1:9094",
				"listener.security.protocol.map": "INTERNAL:SASL_PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
				"sasl.enabled.mechanisms":        "SCRAM-SHA-512,PLAIN",
				// The admin alone logs in with PLAIN, on the overlay listener.
				"listener.name.internal.plain.sasl.jaas.config":         `org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="pa\"ss";`,
				"listener.name.internal.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
				"authorizer.class.name":                                 StandardAuthorizer,
				"allow.everyone.if.no.acl.found":                        "false",
				"super.users":                                           "User:ANONYMOUS;User:admin",
				"inter.broker.listener.name":                            "BROKER",
			},
			gone: []string{"ssl.keystore.location"},
		},
		{
			name: "TLS inside and an external listener",
			sec: BrokerSecurity{AdminUser: "admin", AdminPassword: "pw", KeystorePath: "/run/secrets/keystore.pem", InternalTLS: true,
				ExternalPort: 9095, ExternalHost: "203.0.113.7"},
			want: map[string]string{
				"listeners":                      "INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9095,BROKER://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093",
				"advertised.listeners":           "INTERNAL://mb-hub:9092,EXTERNAL://203.0.113.7:9095,BROKER://127.0.0.1:9094",
				"listener.security.protocol.map": "INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
				"ssl.keystore.type":              "PEM",
				"ssl.keystore.location":          "/run/secrets/keystore.pem",
				"listener.name.external.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
				"listener.name.external.sasl.enabled.mechanisms":        "SCRAM-SHA-512",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.sec.Check(); err != nil {
				t.Fatal(err)
			}
			sec := tc.sec
			got := parse(t, BrokerProperties(BrokerOptions{ListenerHost: "0.0.0.0", AdvertisedHost: "mb-hub", Security: &sec}))
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			for _, k := range tc.gone {
				if _, ok := got[k]; ok {
					t.Errorf("%s is set", k)
				}
			}
			if strings.Contains(got["listeners"], "PLAINTEXT://0.0.0.0") {
				t.Errorf("a plaintext listener on all interfaces: %s", got["listeners"])
			}
		})
	}
}

func TestBrokerSecurityCheck(t *testing.T) {
	for _, s := range []BrokerSecurity{
		{},
		{AdminUser: "admin"},
		{AdminUser: "admin", AdminPassword: "pw", InternalTLS: true},
		{AdminUser: "admin", AdminPassword: "pw", ExternalPort: 9095, KeystorePath: "k.pem"},
	} {
		if s.Check() == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}

// Clients: librdkafka and Java settings for the same credentials; JAAS
// quoting survives a password with quotes and backslashes.
func TestClientProperties(t *testing.T) {
	a := ClientAuth{Username: "group.g.reader.f", Password: `p"a\ss`, TLS: true, CAPath: "/ca.pem"}
	lib := LibrdkafkaProperties(a)
	if lib["security.protocol"] != "SASL_SSL" || lib["sasl.mechanism"] != SASLMechanism || lib["sasl.password"] != `p"a\ss` || lib["ssl.ca.location"] != "/ca.pem" {
		t.Errorf("librdkafka: %v", lib)
	}
	java := JavaClientProperties(a)
	if want := `org.apache.kafka.common.security.scram.ScramLoginModule required username="group.g.reader.f" password="p\"a\\ss";`; java["sasl.jaas.config"] != want {
		t.Errorf("jaas %s, want %s", java["sasl.jaas.config"], want)
	}
	admin := ClientAuth{Username: "admin", Password: "pw", Mechanism: AdminMechanism}
	if p := LibrdkafkaProperties(admin); p["sasl.mechanism"] != "PLAIN" {
		t.Errorf("admin: %v", p)
	}
	if p := JavaClientProperties(admin); !strings.HasPrefix(p["sasl.jaas.config"], "org.apache.kafka.common.security.plain.PlainLoginModule") {
		t.Errorf("admin jaas: %v", p)
	}
	if java["ssl.truststore.type"] != "PEM" || java["ssl.truststore.location"] != "/ca.pem" {
		t.Errorf("java: %v", java)
	}
	a.TLS = false
	if p := LibrdkafkaProperties(a); p["security.protocol"] != "SASL_PLAINTEXT" || p["ssl.ca.location"] != "" {
		t.Errorf("plaintext SASL: %v", p)
	}
	mm := MirrorMakerProperties(MirrorOptions{SourceBootstrap: "mb-hub:9092", TargetBootstrap: "mb-mirror-a:9092",
		SourceAuth: &ClientAuth{Username: "mirror.a.mm2", Password: "pw", TLS: true, CAPath: "/ca.pem"}})
	if !strings.Contains(mm, "hub.security.protocol=SASL_SSL\n") || !strings.Contains(mm, "hub.ssl.truststore.location=/ca.pem\n") ||
		strings.Contains(mm, "mirror.security.protocol") {
		t.Errorf("mm2.properties:\n%s", mm)
	}
}
