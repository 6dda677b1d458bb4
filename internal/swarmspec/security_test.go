package swarmspec

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
)

func testSecurity(t *testing.T) *Security {
	t.Helper()
	ca, err := pki.NewCA("test", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &Security{CA: ca, Seed: "a-seed-for-tests", InternalTLS: true}
}

// securedSwarm is every service of a secured swarm with one mirror (with
// an external listener) and a shared and an isolated group on it; both
// the producer and the upstream relay, which never run together, so that
// each is checked.
func securedSwarm(t *testing.T, sec *Security) []Desired {
	t.Helper()
	k := hub()
	k.Security = sec
	reg := Registry{Image: "w:1", Network: "net", Host: "198.51.100.1", Security: sec, Ingest: true}
	out := []Desired{HubSpec(k), RegistrySpec(reg), ProducerSpec(Producer{Image: "w:1", Network: "net", Security: sec, Registry: &reg}),
		IngestSpec(Ingest{Image: "w:1", Network: "net", Upstream: testUpstream(), Security: sec, Registry: reg}),
		SwarmAccessSpec("w:1", "net", sec, true)}
	mk := hub()
	mk.Security, mk.External = sec, &External{Host: "198.51.100.7", Port: 9095}
	out = append(out, MirrorSpecs(Mirror{Name: "m1", NodeIndex: 0, Kafka: mk, AccessImage: "w:1"})...)
	for _, mode := range []string{ModeIsolated, ModeShared} {
		g, err := FilterGroupSpecs(FilterGroup{Name: "g" + mode[:1], Mode: mode, Image: "w:1", Network: "net", Mirror: "m1",
			Filters:  []Filter{{Name: "Bright", Expression: "true", Readers: []string{"alice"}}, {Name: "Faint", Expression: "false", NoConsumer: true}},
			Security: sec})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g...)
	}
	return out
}

// No password, key or seed appears where `docker service inspect` shows
// it (labels, args, env, command); every workload reads its own
// properties file from a secret; every password is in some secret.
func TestSecuredSpecsKeepSecretsInSecrets(t *testing.T) {
	sec := testSecurity(t)
	all := securedSwarm(t, sec)
	var users []string
	for _, d := range all {
		cs := d.Spec.TaskTemplate.ContainerSpec
		visible, _ := json.Marshal(struct {
			Labels, ContainerLabels map[string]string
			Command, Args, Env      []string
		}{d.Spec.Labels, cs.Labels, cs.Command, cs.Args, cs.Env})
		for _, c := range d.Configs {
			visible = append(visible, c.Data...) // configs are readable with docker config inspect
		}
		for _, secret := range []string{sec.Seed, strings.Split(sec.CA.KeyPEM, "\n")[1], sec.Password(AdminUser),
			sec.RegistryPassword(RegistryWriter), sec.RegistryPassword(RegistryReader), sec.RegistryPassword(RegistryIngester),
			testUpstream().Password, testUpstream().RegistryPassword} {
			if strings.Contains(string(visible), secret) {
				t.Errorf("%s shows a secret outside its secrets", d.Name())
			}
		}
		if d.Name() == HubService || d.Name() == MirrorKafkaService("m1") || strings.HasSuffix(d.Name(), "-mm2") {
			continue
		}
		if !slices.Contains(cs.Args, "--config") {
			t.Errorf("%s: no --config in %v", d.Name(), cs.Args)
		}
		for _, s := range d.Secrets {
			if s.Target == accessPlanFile {
				var p access.Plan
				if err := json.Unmarshal(s.Data, &p); err != nil {
					t.Fatal(err)
				}
				for _, c := range p.Clusters {
					for _, u := range c.Users {
						users = append(users, u.Name)
						if strings.Contains(string(visible), u.Password) {
							t.Errorf("%s shows %s's password", d.Name(), u.Name)
						}
					}
				}
			}
		}
	}
	for _, want := range []string{ProducerUser, ReportUser, RegistryUser, IngestUser, MirrorMakerUser("m1"), FilterUser("gi", "Bright"), FilterUser("gi", "Faint"),
		SharedFiltersUser("gs"), ConsumerUser("gi", "Bright"), ReaderUser("gi", "Bright"), ReaderUser("gs", "Faint"),
		NamedReaderUser("gi", "Bright", "alice")} {
		if !slices.Contains(users, want) {
			t.Errorf("no access plan creates %s (plans: %v)", want, users)
		}
	}
	if slices.Contains(users, ConsumerUser("gi", "Faint")) {
		t.Error("a filter without a consumer has a consumer user")
	}
}

// The schema registry serves HTTPS on the manager, published there, with
// a certificate for its service name and the manager's address and its two
// users; the producer registers through it, over the overlay network, as
// the writer. Without Kafka security the API is plain HTTP and open.
func TestRegistrySpec(t *testing.T) {
	sec := testSecurity(t)
	reg := Registry{Image: "w:1", Network: "net", Host: "198.51.100.1", Security: sec}
	d := RegistrySpec(reg)
	if reg.URL() != "https://198.51.100.1:8081" {
		t.Errorf("URL %s", reg.URL())
	}
	ports := d.Spec.EndpointSpec.Ports
	if len(ports) != 1 || ports[0].PublishedPort != 8081 || ports[0].PublishMode != "host" {
		t.Errorf("published ports %+v", ports)
	}
	if c := d.Spec.TaskTemplate.Placement.Constraints; !slices.Contains(c, "node.labels."+LabelRole+"=="+RoleManager) {
		t.Errorf("placement %v", c)
	}
	secrets := map[string]Config{}
	for _, s := range d.Secrets {
		secrets[s.Target] = s
	}
	users, err := registry.ParseUsers(secrets[registryUsersFile].Data)
	if err != nil || len(users) != 2 || users[0].Role != registry.RoleWrite || users[1].Role != registry.RoleRead ||
		users[1].Password != sec.RegistryPassword(RegistryReader) {
		t.Errorf("users file: %+v, %v", users, err)
	}
	ks := secrets[keystoreFile]
	if ks.Generate == nil {
		t.Fatal("no keystore to generate")
	}
	pem, err := ks.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cert := string(pem[strings.Index(string(pem), "-----BEGIN CERTIFICATE"):]) // the keystore: key, then certificate
	if !pki.Covers(sec.CA, cert, []string{RegistryService, "198.51.100.1"}) {
		t.Error("the registry's certificate does not name mb-registry and the manager's address")
	}
	args := strings.Join(d.Spec.TaskTemplate.ContainerSpec.Args, " ")
	for _, want := range []string{"registry --bootstrap mb-hub:9092", "--tls-cert /run/secrets/keystore.pem", "--users /run/secrets/" + registryUsersFile, "--config"} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}

	prod := ProducerSpec(Producer{Image: "w:1", Network: "net", Security: sec, Registry: &reg})
	var props string
	for _, s := range prod.Secrets {
		if s.Target == RegistryPropertiesFile {
			props = string(s.Data)
		}
	}
	for _, want := range []string{"url=https://mb-registry:8081", "basic.auth.user.info=producer:" + sec.RegistryPassword(RegistryWriter), "ssl.ca.location=" + CAFile} {
		if !strings.Contains(props, want) {
			t.Errorf("producer's registry settings %q lack %q", props, want)
		}
	}
	if !slices.Contains(prod.Spec.TaskTemplate.ContainerSpec.Args, "--registry") {
		t.Error("the producer is not given --registry")
	}

	open := Registry{Image: "w:1", Network: "net", Host: "198.51.100.1"}
	if open.URL() != "http://198.51.100.1:8081" || len(RegistrySpec(open).Secrets) != 0 {
		t.Errorf("unsecured registry: %s, secrets %v", open.URL(), RegistrySpec(open).Secrets)
	}
	if p := RegistryReaderProperties(open, "ca.pem"); strings.Contains(p, "basic.auth") || strings.Contains(p, "ssl.ca") {
		t.Errorf("unsecured reader properties %q", p)
	}
}

// The mirror publishes its external listener on its node only, advertises
// it at the address users dial, and names it in a label for the filter
// groups; its keystore is generated once, named by CA and names.
func TestSecuredMirror(t *testing.T) {
	sec := testSecurity(t)
	mk := hub()
	mk.Security, mk.External = sec, &External{Host: "198.51.100.7", Port: 9095}
	ds := MirrorSpecs(Mirror{Name: "m1", Kafka: mk, AccessImage: "w:1"})
	broker := ds[0]
	ports := broker.Spec.EndpointSpec.Ports
	if len(ports) != 1 || ports[0].PublishMode != swarm.PortConfigPublishModeHost || ports[0].PublishedPort != 9095 {
		t.Errorf("ports %+v", ports)
	}
	if broker.Spec.Labels[LabelExternal] != "198.51.100.7:9095" {
		t.Errorf("external label %q", broker.Spec.Labels[LabelExternal])
	}
	var server string
	for _, c := range broker.Secrets {
		if c.Target == serverPropertiesFile {
			server = string(c.Data) // it holds the admin's password: a secret, not a config
		}
	}
	for _, c := range broker.Configs {
		if strings.Contains(string(c.Data), "listeners") {
			t.Errorf("server.properties of a secured broker in a readable config %s", c.Name)
		}
	}
	for _, want := range []string{"EXTERNAL://198.51.100.7:9095", "authorizer.class.name="} {
		if !strings.Contains(server, want) {
			t.Errorf("server.properties lacks %q:\n%s", want, server)
		}
	}
	var keystore Config
	for _, s := range broker.Secrets {
		if s.Target == keystoreFile {
			keystore = s
		}
	}
	pem, err := keystore.Generate()
	if err != nil {
		t.Fatal(err)
	}
	cert := string(pem[strings.Index(string(pem), "-----BEGIN CERTIFICATE"):])
	if !pki.Covers(sec.CA, cert, []string{MirrorKafkaService("m1"), "198.51.100.7"}) {
		t.Error("the keystore's certificate does not cover the mirror's names")
	}
	again := MirrorSpecs(Mirror{Name: "m1", Kafka: mk, AccessImage: "w:1"})
	if again[0].Spec.Labels[LabelSpecHash] != broker.Spec.Labels[LabelSpecHash] {
		t.Error("the same mirror hashes differently: every apply would restart it")
	}
	mm := ds[1]
	if len(mm.Secrets) != 1 || !strings.Contains(string(mm.Secrets[0].Data), "hub.sasl.jaas.config") ||
		strings.Contains(strings.Join(mm.Spec.TaskTemplate.ContainerSpec.Command, " "), "password") {
		t.Errorf("MirrorMaker 2: secrets %d, command %v", len(mm.Secrets), mm.Spec.TaskTemplate.ContainerSpec.Command)
	}
	if ds[2].Spec.Mode.ReplicatedJob == nil {
		t.Error("the access service is not a job")
	}
	if rm := MirrorRemovalSpecs(Mirror{Name: "m1", Kafka: mk, AccessImage: "w:1"}); len(rm) != 1 {
		t.Errorf("removal specs: %d", len(rm))
	}
}

// Every config and secret name fits Swarm's 64 characters, with the
// longest names the schema allows.
func TestObjectNamesFit(t *testing.T) {
	sec := testSecurity(t)
	long30, long20 := strings.Repeat("m", MaxMirrorNameLen), strings.Repeat("g", MaxGroupNameLen)
	k := hub()
	k.Security, k.External = sec, &External{Host: "h", Port: 9095}
	all := MirrorSpecs(Mirror{Name: long30, Kafka: k, AccessImage: "w"})
	all = append(all, MirrorRemovalSpecs(Mirror{Name: long30, Kafka: k, AccessImage: "w"})...)
	for _, mode := range []string{ModeIsolated, ModeShared} {
		g, err := FilterGroupSpecs(FilterGroup{Name: long20, Mode: mode, Image: "w", Mirror: long30, Security: sec,
			Filters: []Filter{{Name: strings.Repeat("f", MaxFilterNameLen), Expression: "true"}}})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, g...)
	}
	for _, d := range all {
		if len(d.Name()) > 63 {
			t.Errorf("service %s: %d characters", d.Name(), len(d.Name()))
		}
		for _, c := range append(slices.Clone(d.Configs), d.Secrets...) {
			if len(c.Name) > 64 {
				t.Errorf("%s of %s: %d characters", c.Name, d.Name(), len(c.Name))
			}
		}
	}
}

// Passwords differ per user and per seed, and avoid the Kafka tools'
// reserved characters.
func TestPasswords(t *testing.T) {
	a, b := &Security{Seed: "one"}, &Security{Seed: "two"}
	if a.Password("x") == a.Password("y") || a.Password("x") == b.Password("x") || a.Password("x") != a.Password("x") {
		t.Error("passwords do not follow user and seed")
	}
	if strings.ContainsAny(a.Password(AdminUser), ",]= ") || len(a.Password("x")) < 32 {
		t.Errorf("password %q", a.Password(AdminUser))
	}
}
