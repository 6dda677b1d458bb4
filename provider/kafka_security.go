package provider

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/pki"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// kafkaCredentials is minibroker_swarm.kafka_credentials (JSON, Sensitive):
// what a mirror or filter group needs to join the swarm's secured Kafka.
// The seed derives every user's password (swarmspec.Security.Password);
// the CA signs the brokers' certificates.
type kafkaCredentials struct {
	Generation  int64  `json:"generation"`
	CACert      string `json:"ca_cert"`
	CAKey       string `json:"ca_key"`
	Seed        string `json:"seed"`
	InternalTLS bool   `json:"internal_tls"`
}

// newKafkaCredentials makes a new seed and, unless the user gave their
// own (userCA), a new CA. internalTLS is whether the overlay listeners
// need TLS (an unencrypted overlay network).
func newKafkaCredentials(generation int64, internalTLS bool, userCA *pki.Pair) (string, error) {
	var ca pki.Pair
	var err error
	if userCA != nil {
		ca, err = *userCA, pki.CheckCA(*userCA)
	} else {
		ca, err = pki.NewCA(fmt.Sprintf("minibroker CA %d", generation), time.Now(), pki.DefaultValidity)
	}
	if err != nil {
		return "", err
	}
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return "", err
	}
	b, err := json.Marshal(kafkaCredentials{Generation: generation, CACert: ca.CertPEM, CAKey: ca.KeyPEM,
		Seed: base64.RawURLEncoding.EncodeToString(seed), InternalTLS: internalTLS})
	return string(b), err
}

// security turns credentials (kafka_credentials) into the specs' Security.
func security(credentials string) (*swarmspec.Security, error) {
	var c kafkaCredentials
	if err := json.Unmarshal([]byte(credentials), &c); err != nil || c.CACert == "" || c.Seed == "" {
		return nil, fmt.Errorf("kafka_credentials is not a minibroker_swarm's kafka_credentials: give it minibroker_swarm.NAME.kafka_credentials")
	}
	return &swarmspec.Security{CA: pki.Pair{CertPEM: c.CACert, KeyPEM: c.CAKey}, Seed: c.Seed, InternalTLS: c.InternalTLS}, nil
}

// componentSecurity is the Security of a mirror or filter group: nil when
// the swarm's Kafka is open, the credentials it was given when they are
// the swarm's, an error naming what to do otherwise.
func componentSecurity(ctx context.Context, sw *swarmctl.Swarm, credentials types.String) (*swarmspec.Security, error) {
	ca, err := sw.KafkaCA(ctx)
	if err != nil {
		return nil, err
	}
	given := credentials.ValueString()
	switch {
	case ca == "" && given == "":
		return nil, nil
	case ca == "":
		return nil, fmt.Errorf("%w: swarm %s runs Kafka without authentication (kafka_auth = false): leave kafka_credentials unset", errCredentials, sw.ID)
	case given == "":
		return nil, fmt.Errorf("%w: swarm %s requires authentication on Kafka: set kafka_credentials = minibroker_swarm.NAME.kafka_credentials", errNoCredentials, sw.ID)
	}
	sec, err := security(given)
	if err != nil {
		return nil, err
	}
	if sec.CAFingerprint() != ca {
		return nil, fmt.Errorf("%w: kafka_credentials are not those swarm %s runs with (its CA differs: were they rotated and the swarm not applied yet?)", errCredentials, sw.ID)
	}
	return sec, nil
}

// errCredentials: a component's credentials are not what its swarm runs
// with (rotated, turned on or off); errNoCredentials, one of them: the
// swarm's Kafka is secured and the component has none, as after an import
// (they are in no label) or an upgrade.
var (
	errCredentials   = errors.New("kafka_credentials do not match the swarm")
	errNoCredentials = fmt.Errorf("%w: no kafka_credentials", errCredentials)
)

// kafkaCredentialsAttribute is the components' input.
func kafkaCredentialsAttribute() schema.StringAttribute {
	return schema.StringAttribute{Optional: true, Sensitive: true,
		MarkdownDescription: "The swarm's `kafka_credentials` (`minibroker_swarm.NAME.kafka_credentials`), required when the swarm runs Kafka " +
			"with authentication (`kafka_auth`, the default): every service gets its own Kafka user from it. Sensitive."}
}

// clientProperties is the librdkafka properties block of a user outside
// the swarm: everything a client needs but the CA file, which it names
// caFile (written from the CA certificate output).
func clientProperties(bootstrap, user, password, caFile string) string {
	p := kafkaconf.LibrdkafkaProperties(kafkaconf.ClientAuth{Username: user, Password: password, TLS: true, CAPath: caFile})
	p["bootstrap.servers"] = bootstrap
	p["group.id"] = user
	return p.Render("minibroker reader " + user + ": `minibroker consume --config FILE`, or any librdkafka client.\n" +
		"Write the CA certificate to " + caFile + " first. Consumer groups must be named " + user + " or start with " + user + ".")
}

// caModel is the swarm's ca attribute: a CA of the user's own.
type caModel struct {
	Certificate types.String `tfsdk:"certificate"`
	PrivateKey  types.String `tfsdk:"private_key"`
}

// caAttribute is minibroker_swarm.ca.
func caAttribute() schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{Optional: true, Sensitive: true,
		MarkdownDescription: "A CA of your own to sign the brokers' certificates instead of one the swarm makes (e.g. your " +
			"observatory's): PEM `certificate` and its unencrypted `private_key` (PKCS#8, PKCS#1 or SEC 1). Changing it " +
			"re-issues every certificate and password. Sensitive.",
		Attributes: map[string]schema.Attribute{
			"certificate": schema.StringAttribute{Required: true, MarkdownDescription: "PEM certificate of the CA."},
			"private_key": schema.StringAttribute{Required: true, Sensitive: true, MarkdownDescription: "Its PEM private key."},
		}}
}

// userCA reads the ca attribute (nil when unset).
func userCA(ctx context.Context, o types.Object) (*pki.Pair, error) {
	if o.IsNull() || o.IsUnknown() {
		return nil, nil
	}
	var m caModel
	if diags := o.As(ctx, &m, basetypes.ObjectAsOptions{}); diags.HasError() {
		return nil, fmt.Errorf("ca: %v", diags)
	}
	return &pki.Pair{CertPEM: m.Certificate.ValueString(), KeyPEM: m.PrivateKey.ValueString()}, nil
}

// CAFileName is the CA file the properties blocks name.
const CAFileName = "minibroker-ca.pem"

// regenerateOnGeneration plans a credential attribute as unknown (new
// credentials) when the swarm is new or credentials_generation changes,
// and keeps the state's value otherwise.
type regenerateOnGeneration struct{}

func (regenerateOnGeneration) Description(context.Context) string {
	return "New credentials for a new swarm, a new credentials_generation or a new ca; the state's otherwise."
}

func (m regenerateOnGeneration) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (regenerateOnGeneration) PlanModifyString(ctx context.Context, req planmodifier.StringRequest, resp *planmodifier.StringResponse) {
	if req.State.Raw.IsNull() {
		return // a new swarm: unknown, made at apply
	}
	if req.StateValue.IsNull() {
		// A swarm from before the credentials, or imported: new ones, even
		// when nothing else changes.
		resp.PlanValue = types.StringUnknown()
		return
	}
	var planGen, stateGen types.Int64
	var stateCreds types.String
	var planCA, stateCA types.Object
	req.Plan.GetAttribute(ctx, path.Root("credentials_generation"), &planGen)
	req.State.GetAttribute(ctx, path.Root("credentials_generation"), &stateGen)
	req.State.GetAttribute(ctx, path.Root("kafka_credentials"), &stateCreds)
	req.Plan.GetAttribute(ctx, path.Root("ca"), &planCA)
	req.State.GetAttribute(ctx, path.Root("ca"), &stateCA)
	if planGen.IsUnknown() || planGen.ValueInt64() != stateGen.ValueInt64() || stateCreds.IsNull() || !planCA.Equal(stateCA) {
		return // an imported swarm has no credentials in state: new ones
	}
	resp.PlanValue = req.StateValue
}
