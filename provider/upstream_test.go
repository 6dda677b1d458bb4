package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
)

// testCAPEM is a CA certificate for the upstream's attributes.
func testCAPEM(t *testing.T) pki.Pair {
	t.Helper()
	ca, err := pki.NewCA("upstream", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// swarmAttrType is the Terraform type of a nested part of
// minibroker_swarm's schema, by attribute names from the top.
func swarmAttrType(t *testing.T, names ...string) tftypes.Type {
	t.Helper()
	ctx := context.Background()
	typ := swarmSchema(ctx).Type().TerraformType(ctx)
	for _, n := range names {
		switch tt := typ.(type) {
		case tftypes.Object:
			typ = tt.AttributeTypes[n]
		case tftypes.List:
			typ = tt.ElementType.(tftypes.Object).AttributeTypes[n]
		}
		if typ == nil {
			t.Fatalf("no attribute %s", strings.Join(names, "."))
		}
	}
	return typ
}

// objectOf is an object of type typ with the given attributes, the others
// null; strings and bools are taken as they are.
func objectOf(t *testing.T, typ tftypes.Type, vals map[string]any) tftypes.Value {
	t.Helper()
	ot := typ.(tftypes.Object)
	out := map[string]tftypes.Value{}
	for name, at := range ot.AttributeTypes {
		out[name] = tftypes.NewValue(at, nil)
	}
	for name, v := range vals {
		at, ok := ot.AttributeTypes[name]
		if !ok {
			t.Fatalf("no attribute %q", name)
		}
		if tv, ok := v.(tftypes.Value); ok {
			out[name] = tv
			continue
		}
		out[name] = tftypes.NewValue(at, v)
	}
	return tftypes.NewValue(ot, out)
}

// hostsOf is a hosts list with one host per role given.
func hostsOf(t *testing.T, roles ...string) tftypes.Value {
	t.Helper()
	typ := swarmAttrType(t, "hosts").(tftypes.List)
	var hosts []tftypes.Value
	for i, r := range roles {
		hosts = append(hosts, objectOf(t, typ.ElementType, map[string]any{"address": fmt.Sprintf("192.0.2.%d", i+1), "role": r}))
	}
	return tftypes.NewValue(typ, hosts)
}

// validateSwarm runs the provider's whole validation of a swarm's
// configuration, attribute validators included, as Terraform's validate
// and plan do, without the CLI.
func validateSwarm(t *testing.T, attrs map[string]tftypes.Value) []*tfprotov6.Diagnostic {
	t.Helper()
	ctx := context.Background()
	srv, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	cfg := resourceConfig(t, newSwarmResource(), attrs)
	dv, err := tfprotov6.NewDynamicValue(cfg.Raw.Type(), cfg.Raw)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.ValidateResourceConfig(ctx, &tfprotov6.ValidateResourceConfigRequest{TypeName: "minibroker_swarm", Config: &dv})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Diagnostics
}

// The upstream's mistakes fail the plan naming the attribute; credentials
// or alerts that would travel in clear are a warning.
func TestUpstreamValidation(t *testing.T) {
	ca := testCAPEM(t)
	upType := swarmAttrType(t, "upstream")
	rubin := func() map[string]any {
		return map[string]any{"bootstrap": "alerts.example.org:9094,alerts2.example.org:9094", "topic": "alerts-simulated",
			"username": "me", "password": "pw", "ca_certificate": ca.CertPEM,
			"schema_registry_url": "https://registry.example.org", "schema_registry_username": "me", "schema_registry_password": "rpw"}
	}
	with := func(change map[string]any) map[string]any {
		u := rubin()
		for k, v := range change {
			if v == nil {
				delete(u, k)
			} else {
				u[k] = v
			}
		}
		return u
	}
	producerType := swarmAttrType(t, "producer")
	awsType := swarmAttrType(t, "aws")
	cidrs := tftypes.NewValue(swarmAttrType(t, "aws", "admin_cidr_blocks"), []tftypes.Value{tftypes.NewValue(tftypes.String, "203.0.113.0/24")})
	noProducerNode := objectOf(t, awsType, map[string]any{"key_name": "k", "admin_cidr_blocks": cidrs, "producer_nodes": tftypes.NewValue(tftypes.Number, 0)})

	type want struct {
		severity tfprotov6.DiagnosticSeverity
		at       string // attribute path, dotted
		text     string // in summary or detail
	}
	errAt := func(at, text string) *want { return &want{tfprotov6.DiagnosticSeverityError, at, text} }
	for _, c := range []struct {
		name     string
		upstream map[string]any
		extra    map[string]tftypes.Value
		want     *want // nil: no diagnostic at all
	}{
		{"Rubin-like", rubin(), nil, nil},
		{"no authentication, no TLS, plain registry", map[string]any{"bootstrap": "up:9092", "topic": "alerts", "tls": false,
			"schema_registry_url": "http://up:8081"}, nil, nil},
		{"the producer disabled, its settings kept", rubin(), map[string]tftypes.Value{
			"producer": objectOf(t, producerType, map[string]any{"enabled": false, "alerts_per_visit": tftypes.NewValue(tftypes.Number, 500)})}, nil},
		{"user without password", with(map[string]any{"password": nil}), nil, errAt("upstream.password", "upstream.username is set without upstream.password")},
		{"password without user", with(map[string]any{"username": nil}), nil, errAt("upstream.username", "upstream.password is set without upstream.username")},
		{"registry user without password", with(map[string]any{"schema_registry_password": nil}), nil,
			errAt("upstream.schema_registry_password", "schema_registry_username is set without upstream.schema_registry_password")},
		{"registry user with a colon", with(map[string]any{"schema_registry_username": "a:b"}), nil, errAt("upstream.schema_registry_username", "without ':'")},
		{"CA not PEM", with(map[string]any{"ca_certificate": "hello"}), nil, errAt("upstream.ca_certificate", "no PEM certificate")},
		{"a private key in the CA", with(map[string]any{"ca_certificate": ca.CertPEM + ca.KeyPEM}), nil,
			errAt("upstream.ca_certificate", "give only certificates")},
		{"bad registry CA", with(map[string]any{"schema_registry_ca_certificate": "x"}), nil, errAt("upstream.schema_registry_ca_certificate", "no PEM certificate")},
		{"CA without TLS", with(map[string]any{"tls": false}), nil, errAt("upstream.ca_certificate", "upstream.tls is false")},
		{"registry CA over HTTP", with(map[string]any{"schema_registry_url": "http://r:8081", "schema_registry_ca_certificate": ca.CertPEM}), nil,
			errAt("upstream.schema_registry_ca_certificate", "plain HTTP")},
		{"credentials in the registry URL", with(map[string]any{"schema_registry_url": "https://me:secret@registry.example.org"}), nil,
			errAt("upstream.schema_registry_url", "carries credentials")},
		{"registry URL not http", with(map[string]any{"schema_registry_url": "ftp://r"}), nil, errAt("upstream.schema_registry_url", "want http://HOST")},
		{"bootstrap without port", with(map[string]any{"bootstrap": "alerts.example.org"}), nil, errAt("upstream.bootstrap", "HOST:PORT")},
		{"bad topic", with(map[string]any{"topic": "my topic"}), nil, errAt("upstream.topic", "not a Kafka topic name")},
		{"a producer that would run", rubin(), map[string]tftypes.Value{
			"producer": objectOf(t, producerType, map[string]any{"alerts_per_visit": tftypes.NewValue(tftypes.Number, 500)})},
			errAt("producer", "remove the producer block, or set enabled = false")},
		{"no CA given: the image's public CAs", with(map[string]any{"ca_certificate": nil}), nil, nil},
		{"registry password over HTTP", with(map[string]any{"schema_registry_url": "http://r:8081", "schema_registry_ca_certificate": nil}), nil,
			&want{tfprotov6.DiagnosticSeverityWarning, "upstream.schema_registry_url", "sends schema_registry_password unencrypted"}},
		{"SCRAM without TLS", with(map[string]any{"tls": false, "ca_certificate": nil}), nil,
			&want{tfprotov6.DiagnosticSeverityWarning, "upstream.tls", "travel unencrypted"}},
		{"no producer host", rubin(), map[string]tftypes.Value{"hosts": hostsOf(t, "manager", "filter"),
			"producer": objectOf(t, producerType, map[string]any{"enabled": false})},
			errAt("hosts", "upstream is set and its relay (mb-ingest) runs on the producer node but no host has role \"producer\"")},
		{"no producer instance", rubin(), map[string]tftypes.Value{"hosts": tftypes.NewValue(swarmAttrType(t, "hosts"), nil), "aws": noProducerNode,
			"producer": objectOf(t, producerType, map[string]any{"enabled": false})},
			errAt("aws.producer_nodes", "upstream is set and its relay (mb-ingest) runs on the producer node but aws.producer_nodes is 0")},
	} {
		t.Run(c.name, func(t *testing.T) {
			attrs := map[string]tftypes.Value{"hosts": hostsOf(t, "manager", "producer"), "upstream": objectOf(t, upType, c.upstream)}
			for k, v := range c.extra {
				attrs[k] = v
			}
			diags := validateSwarm(t, attrs)
			if c.want == nil {
				for _, d := range diags {
					t.Errorf("%s at %v: %s: %s", d.Severity, d.Attribute, d.Summary, d.Detail)
				}
				return
			}
			found := false
			for _, d := range diags {
				at := ""
				if d.Attribute != nil {
					var parts []string
					for _, s := range d.Attribute.Steps() {
						parts = append(parts, fmt.Sprint(s))
					}
					at = strings.Join(parts, ".")
				}
				if d.Severity == c.want.severity && at == c.want.at && strings.Contains(d.Summary+": "+d.Detail, c.want.text) {
					found = true
				} else if d.Severity == tfprotov6.DiagnosticSeverityError {
					t.Errorf("another error at %q: %s: %s", at, d.Summary, d.Detail)
				}
				if strings.Contains(d.Summary+d.Detail, ":secret@") {
					t.Errorf("the diagnostic shows the password: %s", d.Detail)
				}
			}
			if !found {
				t.Errorf("no %v at %s with %q; got %v", c.want.severity, c.want.at, c.want.text, diagsText(diags))
			}
		})
	}
}

func diagsText(diags []*tfprotov6.Diagnostic) string {
	var out []string
	for _, d := range diags {
		out = append(out, fmt.Sprintf("%s at %v: %s: %s", d.Severity, d.Attribute, d.Summary, d.Detail))
	}
	return strings.Join(out, "\n")
}

// upstreamObject is an upstream attribute value as a plan has it (the
// defaults applied).
func upstreamObject(t *testing.T, vals map[string]attr.Value) types.Object {
	t.Helper()
	typ := upstreamSchema().GetType().(types.ObjectType)
	all := map[string]attr.Value{}
	for name, at := range typ.AttrTypes {
		switch at {
		case types.BoolType:
			all[name] = types.BoolNull()
		default:
			all[name] = types.StringNull()
		}
	}
	all["tls"], all["from_beginning"] = types.BoolValue(true), types.BoolValue(false)
	for k, v := range vals {
		all[k] = v
	}
	return types.ObjectValueMust(typ.AttrTypes, all)
}

// securedSwarmModel is a planned swarm with kafka_auth and its
// credentials, its other attributes at their defaults.
func securedSwarmModel(t *testing.T, r *swarmResource) swarmModel {
	t.Helper()
	var m swarmModel
	nullModel(t, r.settings, &m)
	m.Hosts = hostList(hostModelsOf("manager", "producer", "filter"))
	m.Network, m.WorkloadsImage, m.KafkaImage = types.StringValue("minibroker"), types.StringValue("w:1"), types.StringValue("k:1")
	m.KafkaAuth, m.EncryptNetwork = types.BoolValue(true), types.BoolValue(true)
	m.RegistryPort = types.Int64Value(swarmspec.DefaultRegistryPort)
	m.Hub = objectDefault(hubSchema().Attributes)
	m.Producer = objectDefault(producerSchema().Attributes)
	m.Resources = objectDefault(resourcesSchema("", swarmRoles...).Attributes)
	creds, err := newKafkaCredentials(1, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.KafkaCredentials = types.StringValue(creds)
	return m
}

// With an upstream the swarm runs the relay instead of the producer, and
// its users exist in the registry and the access plan; the upstream's
// passwords reach no label.
func TestSwarmWithUpstream(t *testing.T) {
	ctx := context.Background()
	r := newSwarmResource().(*swarmResource)
	m := securedSwarmModel(t, r)
	ca := testCAPEM(t)

	serviceNames := func(ds []swarmspec.Desired) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Name())
		}
		return out
	}
	plain, err := r.desired(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if names := serviceNames(plain); !slices.Contains(names, swarmspec.ProducerService) || slices.Contains(names, swarmspec.IngestService) {
		t.Errorf("without upstream: %v", names)
	}

	m.Upstream = upstreamObject(t, map[string]attr.Value{
		"bootstrap": types.StringValue("alerts.example.org:9094"), "topic": types.StringValue("alerts-simulated"),
		"username": types.StringValue("me"), "password": types.StringValue("kafka-hunter2"),
		"ca_certificate":           types.StringValue(ca.CertPEM),
		"schema_registry_url":      types.StringValue("https://registry.example.org"),
		"schema_registry_username": types.StringValue("me"), "schema_registry_password": types.StringValue("registry-hunter2"),
	})
	fed, err := r.desired(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	names := serviceNames(fed)
	if slices.Contains(names, swarmspec.ProducerService) || !slices.Contains(names, swarmspec.IngestService) {
		t.Errorf("with upstream: %v, want %s instead of %s", names, swarmspec.IngestService, swarmspec.ProducerService)
	}
	sec, _ := security(m.KafkaCredentials.ValueString())
	for _, d := range fed {
		for _, l := range d.Spec.Labels {
			if strings.Contains(l, "hunter2") {
				t.Errorf("%s: a label carries an upstream password", d.Name())
			}
		}
		switch d.Name() {
		case swarmspec.HubService:
			settings := d.Spec.Labels[swarmspec.LabelSettings]
			if !strings.Contains(settings, `"schema_registry_url":"https://registry.example.org"`) || !strings.Contains(settings, `"password":null`) {
				t.Errorf("the settings label does not carry the upstream without its passwords: %s", settings)
			}
		case swarmspec.IngestService:
			if got := d.Spec.TaskTemplate.ContainerSpec.Args; !slices.Contains(got, "alerts.example.org:9094") || slices.Contains(got, "--from-beginning") {
				t.Errorf("relay args %v", got)
			}
			if res := d.Spec.TaskTemplate.Resources; res.Limits.MemoryBytes != int64(swarmspec.ProducerResources.MemoryMB)<<20 {
				t.Errorf("the relay does not take resources.producer: %+v", res.Limits)
			}
		case swarmspec.RegistryService:
			if !slices.ContainsFunc(d.Secrets, func(s swarmspec.Config) bool {
				return strings.Contains(string(s.Data), `"name":"`+swarmspec.RegistryIngester+`"`)
			}) {
				t.Error("the registry has no user for the relay")
			}
		case swarmspec.SwarmAccessService:
			var plan access.Plan
			for _, s := range d.Secrets {
				_ = json.Unmarshal(s.Data, &plan)
			}
			if !slices.ContainsFunc(plan.Clusters[0].Users, func(u access.User) bool {
				return u.Name == swarmspec.IngestUser && u.Password == sec.Password(swarmspec.IngestUser)
			}) {
				t.Errorf("the access plan has no %s: %+v", swarmspec.IngestUser, plan)
			}
		}
	}

	// Import gives back the upstream but its passwords (which are in no
	// label): the next plan sets them again.
	label, err := r.settings.encode(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	var got swarmModel
	nullModel(t, r.settings, &got)
	if err := r.settings.decode(ctx, label, &got); err != nil {
		t.Fatal(err)
	}
	want := m.Upstream.Attributes()
	for name, v := range got.Upstream.Attributes() {
		switch name {
		case "password", "schema_registry_password":
			if !v.IsNull() {
				t.Errorf("upstream.%s read back from the label: %v", name, v)
			}
		default:
			if !v.Equal(want[name]) {
				t.Errorf("upstream.%s: wrote %v, read back %v", name, want[name], v)
			}
		}
	}
	// The imported state still gives specs (a drift shown, not an
	// error), once it has credentials (Read takes the services as they
	// run until the next apply makes them).
	got.KafkaCredentials = m.KafkaCredentials
	if _, err := r.desired(ctx, got); err != nil {
		t.Errorf("specs of an imported upstream: %v", err)
	}
}

// The schema keeps the upstream's passwords Sensitive, which is what
// keeps them out of the settings label.
func TestUpstreamPasswordsSensitive(t *testing.T) {
	up := swarmSchema(context.Background()).Attributes["upstream"]
	if up.IsSensitive() {
		t.Error("upstream is Sensitive as a whole: import could restore none of it")
	}
	attrs := upstreamSchema().Attributes
	for name, a := range attrs {
		if sensitive := strings.HasSuffix(name, "password"); a.IsSensitive() != sensitive {
			t.Errorf("upstream.%s: Sensitive %v, want %v", name, a.IsSensitive(), sensitive)
		}
	}
	r := newSwarmResource().(*swarmResource)
	if w := r.settings.withheld["upstream"]; !slices.Contains(w, "password") || !slices.Contains(w, "schema_registry_password") || len(w) != 2 {
		t.Errorf("withheld from the label: %v", w)
	}
}

func TestVisitQuietValidator(t *testing.T) {
	v := visitQuietValidator()
	for s, ok := range map[string]bool{"10s": true, "1m30s": true, "1h": true, "250ms": true,
		"0s": false, "-5s": false, "1h0m1s": false, "2h": false, "ten seconds": false, "": false} {
		if err := v.check(s); (err == nil) != ok {
			t.Errorf("%q: %v", s, err)
		}
	}
	def := filterGroupSchema(context.Background()).Attributes["visit_quiet_time"]
	if !def.IsOptional() || !def.IsComputed() {
		t.Error("visit_quiet_time is not Optional and Computed")
	}
}

// TestUpstreamPlan plans with the Terraform CLI (no Docker): the nested
// defaults apply, the passwords show as sensitive, and a producer that
// would run beside the relay fails the plan.
func TestUpstreamPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Terraform CLI; skipped under -short")
	}
	useTerraform(t)
	ca := testCAPEM(t)
	swarm := func(extra string) string {
		return `
provider "minibroker" {
  ssh_private_key = <<EOT
` + testKeyPEM(t) + `EOT
  host_key_policy = "trust_on_first_use"
}
resource "minibroker_swarm" "s" {
  hosts = [
    { address = "192.0.2.1", role = "manager" },
    { address = "192.0.2.2", role = "producer" },
  ]
  upstream = {
    bootstrap           = "alerts.example.org:9094"
    topic               = "alerts-simulated"
    username            = "me"
    password            = "hunter2"
    ca_certificate      = <<EOT
` + ca.CertPEM + `EOT
    schema_registry_url = "https://registry.example.org"
  }
` + extra + `
}
`
	}
	at := func(name string) tfjsonpath.Path { return tfjsonpath.New("upstream").AtMapKey(name) }
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: factories,
		Steps: []tfresource.TestStep{
			{
				Config: swarm(""), PlanOnly: true, ExpectNonEmptyPlan: true,
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PostApplyPreRefresh: []plancheck.PlanCheck{
					plancheck.ExpectKnownValue("minibroker_swarm.s", at("tls"), knownvalue.Bool(true)),
					plancheck.ExpectKnownValue("minibroker_swarm.s", at("from_beginning"), knownvalue.Bool(false)),
					plancheck.ExpectKnownValue("minibroker_swarm.s", at("schema_registry_password"), knownvalue.Null()),
					plancheck.ExpectSensitiveValue("minibroker_swarm.s", at("password")),
				}},
			},
			{
				Config:      swarm(`  producer = { alerts_per_visit = 500 }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Producer and upstream.*remove the producer block, or set enabled = false`),
			},
		},
	})
}
