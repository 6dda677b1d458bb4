// Package provider implements the minibroker Terraform provider: resources
// that place the mini-broker's Kafka hub, producer, mirrors, filters and
// consumers on a Docker Swarm reached over SSH.
package provider

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/minibroker/minibroker"

// Host key policies.
const (
	policyKnownHosts = "known_hosts"
	policyTOFU       = "trust_on_first_use"
)

var _ provider.Provider = (*minibrokerProvider)(nil)

type minibrokerProvider struct{ version string }

// New returns a constructor of the provider, as providerserver wants.
func New(version string) func() provider.Provider {
	return func() provider.Provider { return &minibrokerProvider{version: version} }
}

type providerModel struct {
	SSHUser        types.String `tfsdk:"ssh_user"`
	SSHPrivateKey  types.String `tfsdk:"ssh_private_key"`
	SSHPassphrase  types.String `tfsdk:"ssh_private_key_passphrase"`
	HostKeyPolicy  types.String `tfsdk:"host_key_policy"`
	KnownHostsFile types.String `tfsdk:"known_hosts_file"`
	KafkaImage     types.String `tfsdk:"kafka_image"`
	WorkloadsImage types.String `tfsdk:"workloads_image"`
}

// providerData is what resources receive in Configure.
type providerData struct {
	pool           *dockerssh.Pool
	tofu           bool
	kafkaImage     string
	workloadsImage string
}

func (p *minibrokerProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "minibroker"
	resp.Version = p.version
}

func (p *minibrokerProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Deploys an astronomical alert mini-broker (Kafka hub, alert producer, " +
			"Kafka mirrors fed by MirrorMaker 2, CEL filters and their consumers) on a Docker Swarm. " +
			"Docker Engines are reached over SSH: one multiplexed connection per node, dialling the " +
			"engine's unix socket; no `ssh` program is run.",
		Attributes: map[string]schema.Attribute{
			"ssh_user": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "SSH user on every node; it must be allowed to use the Docker socket. Default `root`, or `MINIBROKER_SSH_USER`.",
			},
			"ssh_private_key": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: "Private key (OpenSSH or PEM) for every node, e.g. `file(\"~/.ssh/id_ed25519\")`. Required unless `MINIBROKER_SSH_PRIVATE_KEY_FILE` names a key file.",
			},
			"ssh_private_key_passphrase": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: "Passphrase of `ssh_private_key`, if it has one.",
			},
			"host_key_policy": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "How nodes' SSH host keys are checked: `known_hosts` (default) verifies them " +
					"against `known_hosts_file`; `trust_on_first_use` accepts a node's key the first time and keeps its " +
					"fingerprint in the resource's state (`host_keys`), refusing a changed key afterwards.",
				Validators: []validator.String{stringvalidator.OneOf(policyKnownHosts, policyTOFU)},
			},
			"known_hosts_file": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "known_hosts file for the `known_hosts` policy; a leading `~/` is the user's home. Default `~/.ssh/known_hosts`.",
			},
			"kafka_image": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Default Kafka image of the hub and the mirrors (default `" + swarmspec.DefaultKafkaImage +
					"`). Any image honouring the apache/kafka layout works (`/opt/kafka/bin/*.sh`, `/bin/sh`).",
			},
			"workloads_image": schema.StringAttribute{
				Optional:            true,
				MarkdownDescription: "Default image of the producer, filters and consumers (default `" + swarmspec.DefaultWorkloadsImage + "`, built by `make image`).",
			},
		},
	}
}

func (p *minibrokerProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	cfg := dockerssh.Config{
		User:          stringOr(m.SSHUser, envOr("MINIBROKER_SSH_USER", "root")),
		PrivateKeyPEM: m.SSHPrivateKey.ValueString(),
		Passphrase:    m.SSHPassphrase.ValueString(),
		Policy:        dockerssh.KnownHosts,
		DialTimeout:   20 * time.Second,
		KeepAlive:     15 * time.Second,
	}
	if cfg.PrivateKeyPEM == "" {
		if path := os.Getenv("MINIBROKER_SSH_PRIVATE_KEY_FILE"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				resp.Diagnostics.AddError("Cannot read SSH private key", err.Error())
				return
			}
			cfg.PrivateKeyPEM = string(b)
		}
	}
	if m.SSHPrivateKey.IsUnknown() {
		// Known only during apply; resources are configured again then.
		return
	}
	if cfg.PrivateKeyPEM == "" {
		resp.Diagnostics.AddAttributeError(path.Root("ssh_private_key"), "Missing SSH private key",
			"Set ssh_private_key in the provider block or MINIBROKER_SSH_PRIVATE_KEY_FILE.")
		return
	}
	tofu := m.HostKeyPolicy.ValueString() == policyTOFU
	if tofu {
		cfg.Policy = dockerssh.TrustOnFirstUse
	} else {
		cfg.KnownHostsFile = stringOr(m.KnownHostsFile, "~/.ssh/known_hosts")
		if rest, ok := strings.CutPrefix(cfg.KnownHostsFile, "~/"); ok {
			home, err := os.UserHomeDir()
			if err != nil {
				resp.Diagnostics.AddAttributeError(path.Root("known_hosts_file"), "Cannot find the home directory", err.Error())
				return
			}
			cfg.KnownHostsFile = filepath.Join(home, rest)
		}
	}
	pool, err := dockerssh.NewPool(cfg)
	if err != nil {
		resp.Diagnostics.AddError("Invalid SSH settings", err.Error())
		return
	}
	data := &providerData{
		pool:           pool,
		tofu:           tofu,
		kafkaImage:     stringOr(m.KafkaImage, swarmspec.DefaultKafkaImage),
		workloadsImage: stringOr(m.WorkloadsImage, swarmspec.DefaultWorkloadsImage),
	}
	resp.ResourceData = data
	resp.DataSourceData = data
}

func (p *minibrokerProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newSwarmResource, newMirrorResource, newFilterGroupResource}
}

func (p *minibrokerProvider) DataSources(context.Context) []func() datasource.DataSource { return nil }

func stringOr(v types.String, def string) string {
	if v.IsNull() || v.IsUnknown() || v.ValueString() == "" {
		return def
	}
	return v.ValueString()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
