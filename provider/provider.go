// Package provider implements the minibroker Terraform provider: resources
// that place the mini-broker's Kafka hub, producer, mirrors, filters and
// consumers on a Docker Swarm reached over SSH.
package provider

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"

	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Address is the provider's registry address.
const Address = "registry.terraform.io/minibroker/minibroker"

// Host key policies.
const (
	policyKnownHosts = "known_hosts"
	policyTOFU       = "trust_on_first_use"
)

// The framework interfaces the provider and its resources implement,
// checked by the compiler.
var (
	_ provider.Provider                   = (*minibrokerProvider)(nil)
	_ resource.ResourceWithConfigure      = (*swarmResource)(nil)
	_ resource.ResourceWithImportState    = (*swarmResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*swarmResource)(nil)
	_ resource.ResourceWithValidateConfig = (*swarmResource)(nil)
	_ resource.ResourceWithConfigure      = (*mirrorResource)(nil)
	_ resource.ResourceWithImportState    = (*mirrorResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*mirrorResource)(nil)
	_ resource.ResourceWithConfigure      = (*filterGroupResource)(nil)
	_ resource.ResourceWithImportState    = (*filterGroupResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*filterGroupResource)(nil)
	_ resource.ResourceWithValidateConfig = (*filterGroupResource)(nil)
)

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
	Bastion        types.Object `tfsdk:"bastion"` // bastionModel
	KafkaImage     types.String `tfsdk:"kafka_image"`
	WorkloadsImage types.String `tfsdk:"workloads_image"`
}

// bastionModel is the provider's bastion block.
type bastionModel struct {
	Address types.String `tfsdk:"address"`
	User    types.String `tfsdk:"user"`
	HostKey types.String `tfsdk:"host_key_fingerprint"`
}

// reFingerprint matches an OpenSSH SHA256 key fingerprint.
var reFingerprint = regexp.MustCompile(`^SHA256:[A-Za-z0-9+/]{43}$`)

// envBastion names the environment variable that sets the bastion's address
// when the provider block has no bastion.
const envBastion = "MINIBROKER_SSH_BASTION"

// providerData is what resources receive in Configure.
type providerData struct {
	ctl            *swarmctl.Client
	sshUser        string // the nodes' SSH user, whom new EC2 instances let use Docker
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
				Optional: true,
				MarkdownDescription: "known_hosts file for the `known_hosts` policy; a leading `~/` is the user's home. Default `~/.ssh/known_hosts`. " +
					"With `trust_on_first_use` it is used only for the `bastion`'s host key, when set.",
			},
			"bastion": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "SSH jump host, for nodes whose addresses (e.g. private IPs in a VPC) are reachable only through it, like `ssh -J`. " +
					"The provider keeps one SSH connection to the bastion, authenticated with `ssh_private_key`, and reaches each node's sshd " +
					"through it, so the bastion's sshd must allow TCP forwarding (`AllowTcpForwarding yes`, no `restrict` or " +
					"`no-port-forwarding` on the key's authorized_keys line) to port 22 of the nodes. Node host keys are checked as without a bastion. " +
					"The bastion's host key must be known: it must match `host_key_fingerprint` when that is set, and be in `known_hosts_file` " +
					"with the `known_hosts` policy; with `trust_on_first_use` (which no state could pin it with: the bastion belongs to no " +
					"resource) one of `host_key_fingerprint` and `known_hosts_file` is required. Default: none, or the address in `" + envBastion + "`.",
				Attributes: map[string]schema.Attribute{
					"address": schema.StringAttribute{
						Required:            true,
						MarkdownDescription: "`host` or `host:port` (port 22 by default) of the bastion's sshd, e.g. its public IP.",
					},
					"user": schema.StringAttribute{
						Optional:            true,
						MarkdownDescription: "SSH user on the bastion, e.g. `ec2-user`. Default: the nodes' user (`ssh_user`).",
					},
					"host_key_fingerprint": schema.StringAttribute{
						Optional: true,
						MarkdownDescription: "SHA256 fingerprint of the bastion's SSH host key, `SHA256:...` as `ssh-keygen -lf` prints it " +
							"(run on the bastion's `/etc/ssh/ssh_host_ed25519_key.pub`, or on `ssh-keyscan` output you have checked).",
						Validators: []validator.String{stringvalidator.RegexMatches(reFingerprint, "a fingerprint such as SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s")},
					},
				},
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
	cfg, known, diags := poolConfig(ctx, m)
	resp.Diagnostics.Append(diags...)
	if !known || resp.Diagnostics.HasError() {
		// Values known only during apply: resources are configured again then.
		return
	}
	ctl, err := swarmctl.New(cfg, terraformLog)
	if err != nil {
		resp.Diagnostics.AddError("Invalid SSH settings", err.Error())
		return
	}
	data := &providerData{
		ctl:            ctl,
		sshUser:        cfg.User,
		kafkaImage:     stringOr(m.KafkaImage, swarmspec.DefaultKafkaImage),
		workloadsImage: stringOr(m.WorkloadsImage, swarmspec.DefaultWorkloadsImage),
	}
	resp.ResourceData = data
	resp.DataSourceData = data
}

// poolConfig turns the provider configuration (and the MINIBROKER_SSH_*
// environment variables) into SSH settings. known is false when a value it
// needs is not known yet, e.g. a key or bastion address computed by another
// resource during plan.
func poolConfig(ctx context.Context, m providerModel) (cfg dockerssh.Config, known bool, diags diag.Diagnostics) {
	cfg = dockerssh.Config{
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
				diags.AddError("Cannot read SSH private key", err.Error())
				return cfg, true, diags
			}
			cfg.PrivateKeyPEM = string(b)
		}
	}
	if m.SSHPrivateKey.IsUnknown() {
		return cfg, false, diags
	}
	if cfg.PrivateKeyPEM == "" {
		diags.AddAttributeError(path.Root("ssh_private_key"), "Missing SSH private key",
			"Set ssh_private_key in the provider block or MINIBROKER_SSH_PRIVATE_KEY_FILE.")
		return cfg, true, diags
	}

	// known_hosts_file as configured, "~/" expanded; empty when not set.
	knownHostsFile, err := expandHome(stringOr(m.KnownHostsFile, ""))
	if err != nil {
		diags.AddAttributeError(path.Root("known_hosts_file"), "Cannot find the home directory", err.Error())
		return cfg, true, diags
	}
	switch {
	case m.HostKeyPolicy.ValueString() == policyTOFU:
		cfg.Policy = dockerssh.TrustOnFirstUse
	case knownHostsFile != "":
		cfg.KnownHostsFile = knownHostsFile
	default:
		if cfg.KnownHostsFile, err = expandHome("~/.ssh/known_hosts"); err != nil {
			diags.AddAttributeError(path.Root("known_hosts_file"), "Cannot find the home directory", err.Error())
			return cfg, true, diags
		}
	}

	bastion, known, d := bastionConfig(ctx, m.Bastion, cfg.User)
	diags.Append(d...)
	if !known || diags.HasError() {
		return cfg, known, diags
	}
	if bastion != nil && cfg.Policy == dockerssh.TrustOnFirstUse {
		// No resource state keeps the bastion's fingerprint, so trusting
		// it on first use would trust it afresh on every run.
		if knownHostsFile == "" && bastion.ExpectedHostKey == "" {
			diags.AddAttributeError(path.Root("bastion"), "Unknown bastion host key",
				"With host_key_policy = \"trust_on_first_use\" the bastion's host key must still be known: set "+
					"bastion.host_key_fingerprint (SHA256:..., from `ssh-keygen -lf` on its host key), or known_hosts_file "+
					"listing the bastion (the nodes' keys are still trusted on first use).")
			return cfg, true, diags
		}
		bastion.KnownHostsFile = knownHostsFile
	}
	cfg.Bastion = bastion
	return cfg, true, diags
}

// bastionConfig reads the bastion block, or MINIBROKER_SSH_BASTION when
// there is none; nil means no bastion. user is the nodes' SSH user, the
// default for the bastion's.
func bastionConfig(ctx context.Context, o types.Object, user string) (b *dockerssh.Bastion, known bool, diags diag.Diagnostics) {
	if o.IsUnknown() {
		return nil, false, diags
	}
	if o.IsNull() {
		if addr := strings.TrimSpace(os.Getenv(envBastion)); addr != "" {
			return &dockerssh.Bastion{Address: addr, User: user}, true, diags
		}
		return nil, true, diags
	}
	var m bastionModel
	diags.Append(o.As(ctx, &m, basetypes.ObjectAsOptions{})...)
	if diags.HasError() {
		return nil, true, diags
	}
	if m.Address.IsUnknown() || m.User.IsUnknown() {
		return nil, false, diags
	}
	if strings.TrimSpace(m.Address.ValueString()) == "" {
		diags.AddAttributeError(path.Root("bastion").AtName("address"), "Missing bastion address",
			"Set bastion.address to host or host:port of the bastion, or remove the bastion block.")
		return nil, true, diags
	}
	if m.HostKey.IsUnknown() {
		return nil, false, diags
	}
	return &dockerssh.Bastion{Address: m.Address.ValueString(), User: stringOr(m.User, user),
		ExpectedHostKey: m.HostKey.ValueString()}, true, diags
}

// expandHome replaces a leading "~/" with the user's home directory.
func expandHome(p string) (string, error) {
	rest, ok := strings.CutPrefix(p, "~/")
	if !ok {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, rest), nil
}

func (p *minibrokerProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{newSwarmResource, newMirrorResource, newFilterGroupResource}
}

func (p *minibrokerProvider) DataSources(context.Context) []func() datasource.DataSource { return nil }
