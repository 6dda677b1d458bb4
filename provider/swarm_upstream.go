package provider

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// minibroker_swarm.upstream: the hub fed from an upstream alert stream by
// the relay (swarmspec.IngestSpec, `minibroker ingest`) instead of by the
// producer.

func upstreamSchema() schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{
		Optional: true,
		MarkdownDescription: "Feed the hub from an upstream alert stream (e.g. Rubin's) instead of the synthetic producer: " +
			"the relay `mb-ingest` (`minibroker ingest`), on the producer node in the producer's place, copies `topic` into " +
			"the hub's `" + stream.AlertsTopic + "` topic exactly once, and imports every schema id it meets from the upstream's " +
			"schema registry into the swarm's, keeping the id. The producer does not run meanwhile: leave `producer` out, or " +
			"set `producer = { enabled = false }` (its other settings are kept for when `upstream` is removed); a `producer` " +
			"that would run is refused at plan. Credentials and CAs reach the relay as Swarm secrets. Changing anything here " +
			"updates `mb-ingest`; removing `upstream` removes it and starts the producer again if it is enabled. Filters close " +
			"the visits of a stream without the producer's headers once every partition has delivered a later visit's alert, or " +
			"`minibroker_filter_group.visit_quiet_time` after a visit's last. More in the repository's `docs/upstream.md`.",
		Attributes: map[string]schema.Attribute{
			"bootstrap": schema.StringAttribute{Required: true,
				Validators:          []validator.String{bootstrapValidator()},
				MarkdownDescription: "The upstream's bootstrap servers, `HOST:PORT` separated by commas."},
			"topic": schema.StringAttribute{Required: true,
				Validators:          []validator.String{topicValidator()},
				MarkdownDescription: "The upstream topic to relay."},
			"username": schema.StringAttribute{Optional: true,
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
				MarkdownDescription: "SASL/SCRAM-SHA-512 user on the upstream; with `password`, or neither for an upstream without authentication."},
			"password": schema.StringAttribute{Optional: true, Sensitive: true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
				MarkdownDescription: "Its password. Sensitive: not kept in the swarm's labels, so an import leaves it unset until " +
					"the next apply."},
			"tls": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
				MarkdownDescription: "Connect with TLS (`SASL_SSL`, or `SSL` without a user); false for `SASL_PLAINTEXT` or " +
					"`PLAINTEXT`. Default true."},
			"ca_certificate": schema.StringAttribute{Optional: true,
				Validators: []validator.String{certificatesValidator()},
				MarkdownDescription: "PEM certificate(s) of the CA that signed the upstream brokers' certificates, checked at plan. " +
					"Without it the relay trusts the public CAs of its image's bundle (Debian's `ca-certificates`, as on the " +
					"machine that built the image), which is right for an upstream whose certificates come from a public CA. " +
					"Only with `tls`."},
			"schema_registry_url": schema.StringAttribute{Required: true,
				Validators: []validator.String{registryURLValidator()},
				MarkdownDescription: "The upstream's schema registry (Confluent's API), `http://` or `https://`, without " +
					"credentials (they go in `schema_registry_username` and `schema_registry_password`)."},
			"schema_registry_username": schema.StringAttribute{Optional: true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1),
					stringvalidator.RegexMatches(regexp.MustCompile(`^[^:]*$`), "without ':' (HTTP Basic separates user and password with it)")},
				MarkdownDescription: "HTTP Basic user of the upstream's registry; with `schema_registry_password`, or neither."},
			"schema_registry_password": schema.StringAttribute{Optional: true, Sensitive: true,
				Validators: []validator.String{stringvalidator.LengthAtLeast(1)},
				MarkdownDescription: "Its password. Sensitive: not kept in the swarm's labels, so an import leaves it unset until " +
					"the next apply."},
			"schema_registry_ca_certificate": schema.StringAttribute{Optional: true,
				Validators:          []validator.String{certificatesValidator()},
				MarkdownDescription: "PEM certificate(s) of the CA of the registry's HTTPS certificate. Default: `ca_certificate`."},
			"from_beginning": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "The first time the relay runs (before it has saved where it is, in the hub's `" +
					stream.IngestStateTopic + "`), start at the beginning of the upstream topic rather than its end. Later " +
					"runs resume where the relay stopped whatever this says. The backlog reaches the filters that run then (an upstream " +
					"added to a swarm whose filter groups exist): a filter created later starts at the stream's end, as always. " +
					"Default false."},
		},
	}
}

// upstreamModel is the upstream block.
type upstreamModel struct {
	Bootstrap        types.String `tfsdk:"bootstrap"`
	Topic            types.String `tfsdk:"topic"`
	Username         types.String `tfsdk:"username"`
	Password         types.String `tfsdk:"password"`
	TLS              types.Bool   `tfsdk:"tls"`
	CACertificate    types.String `tfsdk:"ca_certificate"`
	RegistryURL      types.String `tfsdk:"schema_registry_url"`
	RegistryUsername types.String `tfsdk:"schema_registry_username"`
	RegistryPassword types.String `tfsdk:"schema_registry_password"`
	RegistryCA       types.String `tfsdk:"schema_registry_ca_certificate"`
	FromBeginning    types.Bool   `tfsdk:"from_beginning"`
}

// upstream describes the upstream, or is nil when the swarm has none.
func (m swarmServicesModel) upstream(ctx context.Context) *swarmspec.Upstream {
	if m.Upstream.IsNull() || m.Upstream.IsUnknown() {
		return nil
	}
	var u upstreamModel
	m.Upstream.As(ctx, &u, basetypes.ObjectAsOptions{})
	return &swarmspec.Upstream{
		Bootstrap:        u.Bootstrap.ValueString(),
		Topic:            u.Topic.ValueString(),
		Username:         u.Username.ValueString(),
		Password:         u.Password.ValueString(),
		TLS:              u.TLS.IsNull() || u.TLS.ValueBool(), // true by default
		CAPEM:            u.CACertificate.ValueString(),
		RegistryURL:      u.RegistryURL.ValueString(),
		RegistryUsername: u.RegistryUsername.ValueString(),
		RegistryPassword: u.RegistryPassword.ValueString(),
		RegistryCAPEM:    u.RegistryCA.ValueString(),
		FromBeginning:    u.FromBeginning.ValueBool(),
	}
}

// ingest is the relay's description for the upstream u.
func (m swarmServicesModel) ingest(ctx context.Context, u swarmspec.Upstream, sec *swarmspec.Security, reg swarmspec.Registry) swarmspec.Ingest {
	return swarmspec.Ingest{Image: m.WorkloadsImage.ValueString(), Network: m.Network.ValueString(), Upstream: u,
		Partitions: m.hub(ctx).Partitions, Resources: roleResources(ctx, m.Resources, "producer"), Security: sec, Registry: reg}
}

// validateUpstream checks what the upstream's own validators cannot: the
// pairs of user and password, a CA where it can be used, and the
// producer, which must not be asked to run beside the relay. set reports
// whether the configuration has an upstream (false while unknown).
func validateUpstream(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) (set bool) {
	root := path.Root("upstream")
	var obj types.Object
	diags.Append(config.GetAttribute(ctx, root, &obj)...)
	if obj.IsNull() || obj.IsUnknown() {
		return false
	}
	var u upstreamModel
	if d := obj.As(ctx, &u, basetypes.ObjectAsOptions{UnhandledUnknownAsEmpty: true}); d.HasError() {
		diags.Append(d...)
		return true
	}
	pair := func(user, password types.String, userName, passwordName, login, none string) {
		if user.IsUnknown() || password.IsUnknown() || user.IsNull() == password.IsNull() {
			return
		}
		missing, given := passwordName, userName
		if user.IsNull() {
			missing, given = userName, passwordName
		}
		diags.AddAttributeError(root.AtName(missing), "Incomplete upstream credentials",
			fmt.Sprintf("upstream.%s is set without upstream.%s: %s needs both. Set both, or neither for %s.",
				given, missing, login, none))
	}
	pair(u.Username, u.Password, "username", "password",
		"the upstream Kafka's SASL/SCRAM-SHA-512 login", "an upstream without authentication")
	pair(u.RegistryUsername, u.RegistryPassword, "schema_registry_username", "schema_registry_password",
		"the upstream registry's HTTP Basic login", "a registry without authentication")

	tlsOff := !u.TLS.IsNull() && !u.TLS.IsUnknown() && !u.TLS.ValueBool()
	if tlsOff && !u.CACertificate.IsNull() && !u.CACertificate.IsUnknown() {
		diags.AddAttributeError(root.AtName("ca_certificate"), "CA without TLS",
			"upstream.ca_certificate is the CA of the upstream brokers' TLS certificates, but upstream.tls is false: remove it, "+
				"or set tls = true. (A CA for an HTTPS registry goes in upstream.schema_registry_ca_certificate.)")
	}
	plainRegistry := !u.RegistryURL.IsUnknown() && strings.HasPrefix(strings.ToLower(u.RegistryURL.ValueString()), "http://")
	if plainRegistry && !u.RegistryCA.IsNull() && !u.RegistryCA.IsUnknown() {
		diags.AddAttributeError(root.AtName("schema_registry_ca_certificate"), "CA without HTTPS",
			fmt.Sprintf("upstream.schema_registry_url %s is plain HTTP: remove schema_registry_ca_certificate, or give the https:// URL.",
				u.RegistryURL.ValueString()))
	}
	if plainRegistry && !u.RegistryUsername.IsNull() {
		diags.AddAttributeWarning(root.AtName("schema_registry_url"), "Registry password in clear",
			"upstream.schema_registry_url is plain HTTP with a user: HTTP Basic sends schema_registry_password unencrypted "+
				"to "+u.RegistryURL.ValueString()+" each time the relay imports a schema. Use the https:// URL if the registry has one.")
	}
	if tlsOff && !u.Username.IsNull() {
		diags.AddAttributeWarning(root.AtName("tls"), "Upstream stream in clear",
			"upstream.tls is false: SCRAM keeps the password off the wire, but every alert and the user name travel unencrypted.")
	}
	var producer types.Object
	diags.Append(config.GetAttribute(ctx, path.Root("producer"), &producer)...)
	if !producer.IsNull() && !producer.IsUnknown() {
		var enabled types.Bool
		diags.Append(config.GetAttribute(ctx, path.Root("producer").AtName("enabled"), &enabled)...)
		if !enabled.IsUnknown() && (enabled.IsNull() || enabled.ValueBool()) {
			diags.AddAttributeError(path.Root("producer"), "Producer and upstream",
				"With upstream the relay feeds the hub in the producer's place, so the producer cannot run: remove the producer "+
					"block, or set enabled = false in it (its other settings are then kept for when upstream is removed).")
		}
	}
	return true
}

// producerNodeUse says what needs the producer node, and how else to do
// without one; why is "" when nothing runs there.
func producerNodeUse(producerOn, upstream bool) (why, otherwise string) {
	switch {
	case upstream:
		return "upstream is set and its relay (mb-ingest) runs on the producer node", ", or remove upstream"
	case producerOn:
		return "The producer is enabled", ", or set producer = { enabled = false }"
	}
	return "", ""
}

// bootstrapValidator accepts HOST:PORT,… as librdkafka's bootstrap.servers.
func bootstrapValidator() stringCheck {
	return stringCheck{"HOST:PORT, separated by commas", "Invalid bootstrap servers", func(s string) error {
		for _, hp := range strings.Split(s, ",") {
			host, port, err := net.SplitHostPort(strings.TrimSpace(hp))
			if n, perr := strconv.Atoi(port); err != nil || perr != nil || host == "" || n < 1 || n > 65535 {
				return fmt.Errorf("want HOST:PORT separated by commas, e.g. alerts.example.org:9094; %q in %q is not", strings.TrimSpace(hp), s)
			}
		}
		return nil
	}}
}

// kafkaTopic is a legal Kafka topic name.
var kafkaTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// topicValidator accepts a Kafka topic name.
func topicValidator() stringCheck {
	return stringCheck{"a Kafka topic name", "Invalid topic", func(s string) error {
		if !kafkaTopic.MatchString(s) || s == "." || s == ".." {
			return fmt.Errorf("%q is not a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-'", s)
		}
		return nil
	}}
}

// certificatesValidator accepts PEM certificates, and nothing else: the
// text is kept in the swarm's labels.
func certificatesValidator() stringCheck {
	return stringCheck{"PEM certificates", "Invalid CA certificate", swarmspec.CheckCertificatesPEM}
}

// registryURLValidator accepts an http(s) URL with a host and without
// credentials, which would end up in the swarm's labels.
func registryURLValidator() stringCheck {
	return stringCheck{"an http:// or https:// URL", "Invalid schema registry URL", func(s string) error {
		u, err := url.Parse(s)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			return fmt.Errorf("want http://HOST[:PORT] or https://HOST[:PORT], got %q", s)
		case u.User != nil:
			return fmt.Errorf("%s carries credentials: give them as schema_registry_username and schema_registry_password "+
				"(Sensitive), which stay out of the swarm's labels", u.Redacted())
		}
		return nil
	}}
}
