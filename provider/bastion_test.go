package provider

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"golang.org/x/crypto/ssh"

	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
)

// providerConfig builds a provider configuration from attribute values, the
// others null, checked against the provider's schema.
func bastionTestConfig(t *testing.T, attrs map[string]tftypes.Value) tfsdk.Config {
	t.Helper()
	ctx := context.Background()
	var resp provider.SchemaResponse
	New("test")().Schema(ctx, provider.SchemaRequest{}, &resp)
	typ := resp.Schema.Type().TerraformType(ctx).(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		vals[name] = tftypes.NewValue(at, nil)
	}
	for name, v := range attrs {
		if _, ok := typ.AttributeTypes[name]; !ok {
			t.Fatalf("the provider schema has no attribute %q", name)
		}
		vals[name] = v
	}
	return tfsdk.Config{Schema: resp.Schema, Raw: tftypes.NewValue(typ, vals)}
}

func tfStr(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }

var bastionType = tftypes.Object{AttributeTypes: map[string]tftypes.Type{
	"address": tftypes.String, "user": tftypes.String, "host_key_fingerprint": tftypes.String}}

// bastionBlock is a bastion value; a nil user is left out (null), and
// tftypes.UnknownValue makes the address unknown.
func bastionBlock(address any, user *string) tftypes.Value {
	return bastionWithKey(address, user, "")
}

// bastionWithKey is bastionBlock with a host_key_fingerprint ("": null).
func bastionWithKey(address any, user *string, fingerprint string) tftypes.Value {
	u := tftypes.NewValue(tftypes.String, nil)
	if user != nil {
		u = tfStr(*user)
	}
	fp := tftypes.NewValue(tftypes.String, nil)
	if fingerprint != "" {
		fp = tfStr(fingerprint)
	}
	return tftypes.NewValue(bastionType, map[string]tftypes.Value{"address": tftypes.NewValue(tftypes.String, address),
		"user": u, "host_key_fingerprint": fp})
}

func testKeyPEM(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

// readPoolConfig runs the provider's reading of its configuration.
func readPoolConfig(t *testing.T, attrs map[string]tftypes.Value) (dockerssh.Config, bool) {
	t.Helper()
	cfg, known, d := poolConfigOf(t, attrs)
	if d.HasError() {
		t.Fatalf("poolConfig: %v", d)
	}
	return cfg, known
}

func poolConfigOf(t *testing.T, attrs map[string]tftypes.Value) (dockerssh.Config, bool, diag.Diagnostics) {
	t.Helper()
	ctx := context.Background()
	var m providerModel
	if d := bastionTestConfig(t, attrs).Get(ctx, &m); d.HasError() {
		t.Fatalf("reading the configuration: %v", d)
	}
	return poolConfig(ctx, m)
}

func TestBastionConfigUnit(t *testing.T) {
	t.Setenv(envBastion, "")
	t.Setenv("MINIBROKER_SSH_USER", "")
	key := testKeyPEM(t)
	jump := "ec2-user"
	const fingerprint = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		env   string
		attrs map[string]tftypes.Value
		want  *dockerssh.Bastion // nil: no bastion
	}{
		{"none", "", nil, nil},
		{"address and user", "", map[string]tftypes.Value{"bastion": bastionBlock("203.0.113.5:2222", &jump)},
			&dockerssh.Bastion{Address: "203.0.113.5:2222", User: "ec2-user"}},
		{"user defaults to ssh_user", "", map[string]tftypes.Value{"bastion": bastionBlock("203.0.113.5", nil), "ssh_user": tfStr("ubuntu")},
			&dockerssh.Bastion{Address: "203.0.113.5", User: "ubuntu"}},
		{"user defaults to root", "", map[string]tftypes.Value{"bastion": bastionBlock("203.0.113.5", nil)},
			&dockerssh.Bastion{Address: "203.0.113.5", User: "root"}},
		{"from the environment", "198.51.100.7", map[string]tftypes.Value{"ssh_user": tfStr("ubuntu")},
			&dockerssh.Bastion{Address: "198.51.100.7", User: "ubuntu"}},
		{"block wins over the environment", "198.51.100.7", map[string]tftypes.Value{"bastion": bastionBlock("203.0.113.5", nil)},
			&dockerssh.Bastion{Address: "203.0.113.5", User: "root"}},
		// known_hosts policy: the pool checks the bastion against
		// Config.KnownHostsFile, like the nodes.
		{"known_hosts policy", "", map[string]tftypes.Value{"bastion": bastionBlock("203.0.113.5", nil), "known_hosts_file": tfStr("/etc/kh")},
			&dockerssh.Bastion{Address: "203.0.113.5", User: "root"}},
		// trust_on_first_use: the bastion's key is checked against
		// known_hosts_file or its fingerprint (without either: below).
		{"tofu with known_hosts_file", "", map[string]tftypes.Value{"bastion": bastionBlock("203.0.113.5", nil),
			"host_key_policy": tfStr(policyTOFU), "known_hosts_file": tfStr("~/kh")},
			&dockerssh.Bastion{Address: "203.0.113.5", User: "root", KnownHostsFile: filepath.Join(home, "kh")}},
		{"tofu with a fingerprint", "", map[string]tftypes.Value{"bastion": bastionWithKey("203.0.113.5", nil, fingerprint),
			"host_key_policy": tfStr(policyTOFU)},
			&dockerssh.Bastion{Address: "203.0.113.5", User: "root", ExpectedHostKey: fingerprint}},
		{"known_hosts policy with a fingerprint", "", map[string]tftypes.Value{"bastion": bastionWithKey("203.0.113.5", nil, fingerprint)},
			&dockerssh.Bastion{Address: "203.0.113.5", User: "root", ExpectedHostKey: fingerprint}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(envBastion, tc.env)
			attrs := map[string]tftypes.Value{"ssh_private_key": tfStr(key)}
			for k, v := range tc.attrs {
				attrs[k] = v
			}
			cfg, known := readPoolConfig(t, attrs)
			if !known {
				t.Fatal("configuration reported as not known")
			}
			switch {
			case tc.want == nil && cfg.Bastion != nil:
				t.Errorf("bastion %+v, want none", *cfg.Bastion)
			case tc.want != nil && cfg.Bastion == nil:
				t.Errorf("no bastion, want %+v", *tc.want)
			case tc.want != nil && *cfg.Bastion != *tc.want:
				t.Errorf("bastion %+v, want %+v", *cfg.Bastion, *tc.want)
			}
		})
	}

	// A bastion whose key nobody knows is refused under
	// trust_on_first_use: no state could pin it, so every run would
	// trust whatever answers.
	for name, attrs := range map[string]map[string]tftypes.Value{
		"tofu with neither":                  {"bastion": bastionBlock("203.0.113.5", nil), "host_key_policy": tfStr(policyTOFU)},
		"tofu, bastion from the environment": {"host_key_policy": tfStr(policyTOFU)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(envBastion, "198.51.100.7")
			attrs["ssh_private_key"] = tfStr(key)
			_, _, d := poolConfigOf(t, attrs)
			if !d.HasError() || !strings.Contains(fmt.Sprint(d), "Unknown bastion host key") {
				t.Errorf("diagnostics %v, want Unknown bastion host key", d)
			}
		})
	}

	t.Run("known_hosts file of the nodes", func(t *testing.T) {
		cfg, _ := readPoolConfig(t, map[string]tftypes.Value{"ssh_private_key": tfStr(key), "bastion": bastionBlock("203.0.113.5", nil),
			"known_hosts_file": tfStr("/etc/kh")})
		if cfg.Policy != dockerssh.KnownHosts || cfg.KnownHostsFile != "/etc/kh" {
			t.Errorf("policy %v, known_hosts %q; want known_hosts, /etc/kh", cfg.Policy, cfg.KnownHostsFile)
		}
	})
	t.Run("unknown address", func(t *testing.T) {
		// E.g. the public IP of a bastion instance created in the same plan.
		_, known := readPoolConfig(t, map[string]tftypes.Value{"ssh_private_key": tfStr(key),
			"bastion": bastionBlock(tftypes.UnknownValue, nil)})
		if known {
			t.Error("a bastion with an unknown address was reported known")
		}
	})
}

func TestBastionConfigureUnit(t *testing.T) {
	t.Setenv(envBastion, "")
	key := testKeyPEM(t)
	// trust_on_first_use needs the bastion's key (TestBastionConfigUnit).
	const fp = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s"
	configure := func(attrs map[string]tftypes.Value) *provider.ConfigureResponse {
		attrs["ssh_private_key"] = tfStr(key)
		attrs["host_key_policy"] = tfStr(policyTOFU)
		var resp provider.ConfigureResponse
		New("test")().Configure(context.Background(), provider.ConfigureRequest{Config: bastionTestConfig(t, attrs)}, &resp)
		return &resp
	}

	resp := configure(map[string]tftypes.Value{"bastion": bastionWithKey("203.0.113.5", nil, fp)})
	if resp.Diagnostics.HasError() {
		t.Fatalf("Configure: %v", resp.Diagnostics)
	}
	pd, ok := resp.ResourceData.(*providerData)
	if !ok || pd.ctl == nil {
		t.Fatalf("Configure gave resources %#v", resp.ResourceData)
	}
	_ = pd.ctl.Close()

	for address, want := range map[string]string{
		"":                 "Missing bastion address",
		"ec2-user@bastion": "bastion",
		"bastion:notaport": "invalid port",
	} {
		resp := configure(map[string]tftypes.Value{"bastion": bastionWithKey(address, nil, fp)})
		var msgs []string
		for _, d := range resp.Diagnostics.Errors() {
			msgs = append(msgs, d.Summary()+": "+d.Detail())
		}
		if got := strings.Join(msgs, "; "); !strings.Contains(got, want) {
			t.Errorf("bastion address %q: diagnostics %q, want %q", address, got, want)
		}
	}

	// An unknown address: no resources yet, and no error.
	resp = configure(map[string]tftypes.Value{"bastion": bastionWithKey(tftypes.UnknownValue, nil, fp)})
	if resp.Diagnostics.HasError() || resp.ResourceData != nil {
		t.Errorf("unknown bastion address: diagnostics %v, data %v", resp.Diagnostics, resp.ResourceData)
	}
}
