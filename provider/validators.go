package provider

import (
	"context"
	"net/netip"
	"regexp"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// durationValidator accepts a positive Go duration such as "39s".
type durationValidator struct{}

var _ validator.String = durationValidator{}

func (durationValidator) Description(context.Context) string {
	return "a positive duration such as 39s or 1m30s"
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	if err != nil || d <= 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			"want a positive duration such as 39s or 1m30s, got "+req.ConfigValue.String())
	}
}

// objectNameValidator checks a mirror or filter group name.
type objectNameValidator struct{ max int }

var _ validator.String = objectNameValidator{}

func (v objectNameValidator) Description(context.Context) string {
	return "lower-case letters, digits and inner dashes"
}

func (v objectNameValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v objectNameValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := swarmspec.ValidObjectName(req.ConfigValue.ValueString(), v.max); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid name", err.Error())
	}
}

// cidrValidator accepts an IPv4 CIDR block such as 203.0.113.0/24.
type cidrValidator struct{}

var _ validator.String = cidrValidator{}

func (cidrValidator) Description(context.Context) string {
	return "an IPv4 CIDR block such as 203.0.113.0/24"
}

func (v cidrValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (cidrValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	p, err := netip.ParsePrefix(req.ConfigValue.ValueString())
	if err != nil || !p.Addr().Is4() || p.Masked() != p {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid CIDR block",
			"want an IPv4 CIDR block with no host bits set, such as 203.0.113.0/24 or 203.0.113.7/32, got "+req.ConfigValue.String())
	}
}

var reNamePrefix = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{0,31}$`)
