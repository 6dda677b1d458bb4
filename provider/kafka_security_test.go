package provider

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
)

// Credentials made with a CA of the user's own carry that CA (the
// brokers' certificates are then signed by it), a new seed each time;
// without one, a new CA each time.
func TestKafkaCredentials(t *testing.T) {
	ca, err := pki.NewCA("observatory", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newKafkaCredentials(1, true, &ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newKafkaCredentials(1, true, &ca)
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := security(a)
	sb, _ := security(b)
	if sa.CA != ca || sb.CA != ca || sa.Seed == sb.Seed || !sa.InternalTLS {
		t.Errorf("with the user's CA: CA kept %v, seeds differ %v", sa.CA == ca, sa.Seed != sb.Seed)
	}
	c, _ := newKafkaCredentials(2, false, nil)
	sc, _ := security(c)
	if sc.CA == ca || sc.InternalTLS || !strings.Contains(c, `"generation":2`) {
		t.Errorf("without a CA: %+v", sc)
	}
	if _, err := newKafkaCredentials(1, true, &pki.Pair{CertPEM: ca.CertPEM, KeyPEM: sc.CA.KeyPEM}); err == nil {
		t.Error("a CA certificate with another key was accepted")
	}
	if _, err := security(`{"ca_cert":""}`); err == nil || !strings.Contains(err.Error(), "minibroker_swarm.NAME.kafka_credentials") {
		t.Errorf("bad credentials: %v", err)
	}
}

// A CA whose key is not its own fails the plan, naming the attribute.
func TestAccUsersCAChecked(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Terraform; skipped under -short")
	}
	useTerraform(t)
	ca, _ := pki.NewCA("observatory", time.Now(), time.Hour)
	other, _ := pki.NewCA("other", time.Now(), time.Hour)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		Steps: []resource.TestStep{{
			Config: `
resource "minibroker_swarm" "s" {
  hosts = [{ address = "127.0.0.1", role = "manager" }, { address = "127.0.0.2", role = "producer" }]
  ca = {
    certificate = <<-EOT
` + ca.CertPEM + `EOT
    private_key = <<-EOT
` + other.KeyPEM + `EOT
  }
}`,
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)Invalid CA.*does not match its certificate`),
		}},
	})
}

// Every attribute that holds a Kafka credential is Sensitive, so plans,
// `terraform show` and outputs never print it in clear; the CA
// certificate, public, is not.
func TestCredentialAttributesAreSensitive(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		schema    schema.Schema
		sensitive []string
		public    []string
	}{
		{swarmSchema(ctx), []string{"kafka_credentials", "report_properties", "ca"}, []string{"ca_certificate"}},
		{mirrorSchema(ctx), []string{"kafka_credentials"}, []string{"external_bootstrap"}},
		{filterGroupSchema(ctx), []string{"kafka_credentials", "readers"}, nil},
	} {
		for _, name := range tc.sensitive {
			if !tc.schema.Attributes[name].IsSensitive() {
				t.Errorf("%s is not Sensitive", name)
			}
		}
		for _, name := range tc.public {
			if tc.schema.Attributes[name].IsSensitive() {
				t.Errorf("%s is Sensitive, but public", name)
			}
		}
	}
	readers := filterGroupSchema(ctx).Attributes["readers"].(schema.MapNestedAttribute).NestedObject.Attributes
	for _, name := range []string{"password", "properties"} {
		if !readers[name].IsSensitive() {
			t.Errorf("readers.%s is not Sensitive", name)
		}
	}
	ca := swarmSchema(ctx).Attributes["ca"].(schema.SingleNestedAttribute).Attributes
	if !ca["private_key"].IsSensitive() {
		t.Error("ca.private_key is not Sensitive")
	}
}
