package swarmspec

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// upstreamCA is a CA certificate for the upstream tests (its key is not
// needed: the relay only trusts it).
var upstreamCA = func() string {
	ca, err := pki.NewCA("upstream", time.Now(), time.Hour)
	if err != nil {
		panic(err)
	}
	return ca.CertPEM
}()

// testUpstream is an upstream as Rubin's: SCRAM over TLS with its own CA,
// a registry with a user.
func testUpstream() Upstream {
	return Upstream{Bootstrap: "alerts.example.org:9094", Topic: "alerts-simulated",
		Username: "observatory-user", Password: "upstream-kafka-password", TLS: true, CAPEM: upstreamCA,
		RegistryURL: "https://registry.example.org", RegistryUsername: "observatory-user", RegistryPassword: "upstream-registry-password"}
}

// secretsOf maps a service's secrets by the file they are mounted at.
func secretsOf(d Desired) map[string]string {
	out := map[string]string{}
	for _, s := range d.Secrets {
		out[s.Target] = string(s.Data)
	}
	return out
}

// propertiesOf parses a rendered properties file whose values need no
// escapes, as those of these tests.
func propertiesOf(t *testing.T, text string) kafkaconf.Properties {
	t.Helper()
	p := kafkaconf.Properties{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("line %q", line)
		}
		p[k] = v
	}
	return p
}

// The relay runs `minibroker ingest` on the producer node with the
// command line of its contract; everything about the upstream but its
// address and topic, and every credential, is in a secret.
func TestIngestSpec(t *testing.T) {
	sec := testSecurity(t)
	reg := Registry{Image: "w:1", Network: "net", Host: "198.51.100.1", Security: sec, Ingest: true}
	u := testUpstream()
	d := IngestSpec(Ingest{Image: "w:1", Network: "net", Upstream: u, Partitions: 6, Security: sec, Registry: reg})

	if d.Name() != IngestService || d.Spec.Labels[LabelComponent] != ComponentIngest || d.Spec.Labels[LabelOwner] != OwnerSwarm {
		t.Errorf("name/labels: %s %v", d.Name(), d.Spec.Labels)
	}
	if got := d.Spec.TaskTemplate.Placement.Constraints; !slices.Equal(got, []string{"node.labels.minibroker.role==producer"}) {
		t.Errorf("constraints %v, want the producer node", got)
	}
	cs := d.Spec.TaskTemplate.ContainerSpec
	want := []string{"ingest", "--bootstrap", "mb-hub:9092",
		"--upstream", "alerts.example.org:9094", "--upstream-topic", "alerts-simulated",
		"--upstream-config", "/run/secrets/upstream.properties",
		"--upstream-registry", "/run/secrets/upstream-registry.properties",
		"--partitions", "6",
		"--config", "/run/secrets/kafka.properties",
		"--registry", "/run/secrets/registry.properties"}
	if !slices.Equal(cs.Args, want) || !slices.Equal(cs.Command, []string{WorkloadsBinary}) {
		t.Errorf("command %v args\n%v, want\n%v", cs.Command, cs.Args, want)
	}
	if d.Spec.TaskTemplate.Networks[0].Target != "net" || cs.Image != "w:1" {
		t.Errorf("network/image: %+v %s", d.Spec.TaskTemplate.Networks, cs.Image)
	}

	secrets := secretsOf(d)
	up := propertiesOf(t, secrets[UpstreamPropertiesFile])
	for k, v := range map[string]string{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
		"sasl.username": u.Username, "sasl.password": u.Password, "ssl.ca.location": "/run/secrets/upstream-ca.pem"} {
		if up[k] != v {
			t.Errorf("upstream.properties %s = %q, want %q", k, up[k], v)
		}
	}
	if len(up) != 5 {
		t.Errorf("upstream.properties has more than the security settings: %v", up)
	}
	if secrets[UpstreamCAFile] != upstreamCA {
		t.Error("the upstream CA is not mounted at upstream-ca.pem")
	}
	if _, ok := secrets[UpstreamRegistryCAFile]; ok {
		t.Error("the registry's CA defaults to the upstream's, mounted once; got a second file")
	}
	ur := propertiesOf(t, secrets[UpstreamRegistryPropertiesFile])
	if ur[registry.SettingURL] != "https://registry.example.org" || ur[registry.SettingUserInfo] != "observatory-user:upstream-registry-password" ||
		ur[registry.SettingCA] != "/run/secrets/upstream-ca.pem" {
		t.Errorf("upstream-registry.properties: %v", ur)
	}
	ours := propertiesOf(t, secrets[RegistryPropertiesFile])
	if ours[registry.SettingURL] != "https://mb-registry:8081" || ours[registry.SettingUserInfo] != "ingest:"+sec.RegistryPassword(RegistryIngester) ||
		ours[registry.SettingCA] != CAFile {
		t.Errorf("the swarm registry's settings: %v", ours)
	}
	hub := propertiesOf(t, secrets[ClientPropertiesFile])
	if hub["sasl.username"] != IngestUser || hub["sasl.password"] != sec.Password(IngestUser) {
		t.Errorf("hub client settings: %v", hub)
	}

	// No credential where `docker service inspect` shows it; the CAs are
	// secrets too, with the rest of the upstream's settings.
	visible, _ := json.Marshal(struct {
		Labels, ContainerLabels map[string]string
		Command, Args, Env      []string
	}{d.Spec.Labels, cs.Labels, cs.Command, cs.Args, cs.Env})
	for _, c := range d.Configs {
		visible = append(visible, c.Data...)
	}
	for _, secret := range []string{u.Password, u.RegistryPassword, u.Username, sec.RegistryPassword(RegistryIngester), sec.Password(IngestUser)} {
		if strings.Contains(string(visible), secret) {
			t.Errorf("%q is visible outside the secrets", secret)
		}
	}
	for _, c := range append(slices.Clone(d.Configs), d.Secrets...) {
		if len(c.Name) > 64 {
			t.Errorf("%s: %d characters", c.Name, len(c.Name))
		}
	}

	// Any change of the upstream is a new spec: the service is updated.
	for name, change := range map[string]func(*Upstream){
		"password":          func(u *Upstream) { u.Password = "rotated" },
		"registry password": func(u *Upstream) { u.RegistryPassword = "rotated" },
		"topic":             func(u *Upstream) { u.Topic = "other" },
		"from beginning":    func(u *Upstream) { u.FromBeginning = true },
		"CA":                func(u *Upstream) { u.CAPEM = "" },
	} {
		u := testUpstream()
		change(&u)
		if IngestSpec(Ingest{Image: "w:1", Network: "net", Upstream: u, Security: sec, Registry: reg}).Spec.Labels[LabelSpecHash] == d.Spec.Labels[LabelSpecHash] {
			t.Errorf("a new %s keeps the spec hash", name)
		}
	}
	u.FromBeginning = true
	if args := IngestSpec(Ingest{Upstream: u, Security: sec, Registry: reg}).Spec.TaskTemplate.ContainerSpec.Args; !slices.Contains(args, "--from-beginning") {
		t.Errorf("from_beginning: args %v", args)
	}
}

// The upstream's security protocol follows the user and TLS; the CA file
// is named only when one is given, the registry's own CA only when it
// differs from the upstream's.
func TestUpstreamProperties(t *testing.T) {
	for _, c := range []struct {
		name     string
		user     string
		tls      bool
		ca       string
		protocol string
	}{
		{"SCRAM over TLS", "u", true, upstreamCA, "SASL_SSL"},
		{"SCRAM over TLS, the image's public CAs", "u", true, "", "SASL_SSL"},
		{"SCRAM in clear", "u", false, "", "SASL_PLAINTEXT"},
		{"TLS only", "", true, upstreamCA, "SSL"},
		{"nothing", "", false, "", "PLAINTEXT"},
	} {
		u := Upstream{Bootstrap: "up:9092", Topic: "t", Username: c.user, Password: "pw", TLS: c.tls, CAPEM: c.ca, RegistryURL: "http://up:8081"}
		p := propertiesOf(t, UpstreamProperties(u))
		if p["security.protocol"] != c.protocol {
			t.Errorf("%s: security.protocol %q, want %q", c.name, p["security.protocol"], c.protocol)
		}
		if sasl := p["sasl.mechanism"] == "SCRAM-SHA-512" && p["sasl.username"] == "u" && p["sasl.password"] == "pw"; sasl != (c.user != "") {
			t.Errorf("%s: SASL settings %v", c.name, p)
		}
		wantCA := map[bool]string{true: "probe"}[c.tls] // the image's bundle
		if c.ca != "" {
			wantCA = SecretsDir + "/" + UpstreamCAFile
		}
		if p["ssl.ca.location"] != wantCA {
			t.Errorf("%s: ssl.ca.location %q, want %q", c.name, p["ssl.ca.location"], wantCA)
		}
		secrets := secretsOf(IngestSpec(Ingest{Upstream: u, Registry: Registry{}}))
		if _, mounted := secrets[UpstreamCAFile]; mounted != (c.ca != "") {
			t.Errorf("%s: CA mounted %v", c.name, mounted)
		}
	}

	other, err := pki.NewCA("registry", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u := testUpstream()
	u.RegistryCAPEM = other.CertPEM
	secrets := secretsOf(IngestSpec(Ingest{Upstream: u}))
	if secrets[UpstreamRegistryCAFile] != other.CertPEM || secrets[UpstreamCAFile] != upstreamCA ||
		propertiesOf(t, secrets[UpstreamRegistryPropertiesFile])[registry.SettingCA] != "/run/secrets/upstream-registry-ca.pem" {
		t.Errorf("a registry CA of its own: %v", secrets)
	}
	u = testUpstream()
	u.CAPEM, u.RegistryUsername = "", ""
	p := propertiesOf(t, UpstreamRegistryProperties(u))
	if _, ok := p[registry.SettingCA]; ok || len(p) != 1 {
		t.Errorf("a registry without user or CA: %v", p)
	}
}

// With kafka_auth = false the relay talks to the hub and to the swarm's
// registry as the producer then does (no credentials, plain HTTP); the
// upstream's settings are secrets still.
func TestIngestWithoutSecurity(t *testing.T) {
	reg := Registry{Image: "w:1", Network: "net", Host: "198.51.100.1", Ingest: true}
	d := IngestSpec(Ingest{Image: "w:1", Network: "net", Upstream: testUpstream(), Registry: reg})
	secrets := secretsOf(d)
	if _, ok := secrets[ClientPropertiesFile]; ok || slices.Contains(d.Spec.TaskTemplate.ContainerSpec.Args, "--config") {
		t.Errorf("hub credentials without Kafka security: %v", d.Spec.TaskTemplate.ContainerSpec.Args)
	}
	if p := propertiesOf(t, secrets[RegistryPropertiesFile]); p[registry.SettingURL] != "http://mb-registry:8081" || len(p) != 1 {
		t.Errorf("the swarm registry's settings: %v", p)
	}
	if !strings.Contains(secrets[UpstreamPropertiesFile], "sasl.password=upstream-kafka-password") || secrets[UpstreamCAFile] != upstreamCA {
		t.Error("the upstream's settings are not in the secrets")
	}
	if len(d.Configs) != 0 {
		t.Errorf("configs %v: the upstream's settings belong in secrets", d.Configs)
	}
	if len(RegistrySpec(reg).Secrets) != 0 {
		t.Error("an open registry got a users file")
	}
}

// The registry has the relay's user only in a swarm fed from upstream,
// and the swarm's access plan the relay's Kafka user only then, with
// exactly the relay's grants.
func TestIngestUsers(t *testing.T) {
	sec := testSecurity(t)
	for _, ingest := range []bool{false, true} {
		reg := Registry{Image: "w:1", Network: "net", Host: "198.51.100.1", Security: sec, Ingest: ingest}
		users, err := registry.ParseUsers([]byte(secretsOf(RegistrySpec(reg))[registryUsersFile]))
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(users, func(u registry.User) bool { return u.Name == RegistryIngester })
		switch {
		case ingest && (i < 0 || users[i].Role != registry.RoleWrite || users[i].Password != sec.RegistryPassword(RegistryIngester)):
			t.Errorf("registry users with an upstream: %+v", users)
		case !ingest && i >= 0:
			t.Errorf("registry users without an upstream: %+v", users)
		}

		var plan access.Plan
		if err := json.Unmarshal([]byte(secretsOf(SwarmAccessSpec("w:1", "net", sec, ingest))[accessPlanFile]), &plan); err != nil {
			t.Fatal(err)
		}
		var got *access.User
		for _, c := range plan.Clusters {
			for j, u := range c.Users {
				if u.Name == IngestUser {
					got = &c.Users[j]
				}
			}
		}
		switch {
		case !ingest && got != nil:
			t.Errorf("the access plan has %s without an upstream", IngestUser)
		case ingest && got == nil:
			t.Errorf("the access plan lacks %s", IngestUser)
		case ingest:
			want := access.IngestGrants(stream.AlertsTopic, stream.IngestStateTopic, stream.TimingTopic, stream.IngestTransactionalID)
			gb, _ := json.Marshal(got.Grants)
			wb, _ := json.Marshal(want)
			if string(gb) != string(wb) || got.Password != sec.Password(IngestUser) {
				t.Errorf("%s: grants %s, want %s", IngestUser, gb, wb)
			}
		}
	}
	if IngestUser != "swarm.ingest" {
		t.Errorf("IngestUser %q: the swarm owns names that start with swarm.", IngestUser)
	}
}

func TestCheckCertificatesPEM(t *testing.T) {
	key := testSecurity(t).CA.KeyPEM
	for name, c := range map[string]struct {
		text, want string
	}{
		"one":         {upstreamCA, ""},
		"a bundle":    {upstreamCA + upstreamCA, ""},
		"empty":       {"", "no PEM certificate"},
		"not PEM":     {"hello", "no PEM certificate"},
		"a key":       {upstreamCA + key, "PEM block 2 is a PRIVATE KEY: give only certificates"},
		"bad content": {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "PEM block 1"},
	} {
		err := CheckCertificatesPEM(c.text)
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// A filter group's visit quiet time reaches every filter process as
// --visit-quiet, and only when it is not the default: a group that
// leaves it alone keeps the spec it had before the flag.
func TestVisitQuiet(t *testing.T) {
	for _, mode := range []string{ModeIsolated, ModeShared} {
		base, err := FilterGroupSpecs(group(mode))
		if err != nil {
			t.Fatal(err)
		}
		g := group(mode)
		g.VisitQuiet = stream.DefaultVisitQuiet
		same, _ := FilterGroupSpecs(g)
		g.VisitQuiet = 90 * time.Second
		quiet, _ := FilterGroupSpecs(g)
		for i, d := range quiet {
			args := strings.Join(d.Spec.TaskTemplate.ContainerSpec.Args, " ")
			isFilter := d.Spec.Labels[LabelComponent] != ComponentConsumer
			if strings.Contains(args, "--visit-quiet 1m30s") != isFilter {
				t.Errorf("%s %s: args %q", mode, d.Name(), args)
			}
			if same[i].Spec.Labels[LabelSpecHash] != base[i].Spec.Labels[LabelSpecHash] {
				t.Errorf("%s %s: the default visit quiet time changes the spec", mode, d.Name())
			}
			if strings.Contains(strings.Join(base[i].Spec.TaskTemplate.ContainerSpec.Args, " "), "--visit-quiet") {
				t.Errorf("%s %s: --visit-quiet passed for the default", mode, d.Name())
			}
		}
	}
}

// The names of the secrets holding the upstream's passwords, which
// `docker secret ls` shows, hash them under a key from the swarm's seed:
// without the seed a guessed password cannot be checked against them.
// They still change with the password, so a new one is a new secret.
func TestUpstreamSecretNamesKeyed(t *testing.T) {
	sec := testSecurity(t)
	u := testUpstream()
	names := func(sec *Security, u Upstream) map[string]string {
		out := map[string]string{}
		for _, s := range IngestSpec(Ingest{Upstream: u, Security: sec, Registry: Registry{Security: sec, Ingest: true}}).Secrets {
			out[s.Target] = s.Name
		}
		return out
	}
	keyed := names(sec, u)
	for _, c := range []struct{ file, base, data string }{
		{UpstreamPropertiesFile, IngestService + "-upstream", UpstreamProperties(u)},
		{UpstreamRegistryPropertiesFile, IngestService + "-upstream-registry", UpstreamRegistryProperties(u)},
	} {
		file, unkeyed := c.file, newSecret(c.base, []byte(c.data), c.file).Name
		if !strings.HasPrefix(keyed[file], c.base+"-") || keyed[file] == unkeyed {
			t.Errorf("%s: secret name %q is the content's plain hash", file, keyed[file])
		}
	}
	other := *sec
	other.Seed = "another seed"
	if names(&other, u)[UpstreamPropertiesFile] == keyed[UpstreamPropertiesFile] {
		t.Error("the name does not depend on the swarm's seed")
	}
	u.Password = "another password"
	if names(sec, u)[UpstreamPropertiesFile] == keyed[UpstreamPropertiesFile] {
		t.Error("a new password keeps the secret's name: Swarm would not replace it")
	}
}
