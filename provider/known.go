package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// attrGetter is a Config, Plan or State.
type attrGetter interface {
	GetAttribute(ctx context.Context, p path.Path, target interface{}) diag.Diagnostics
}

// fullyKnown reports whether an attribute is known all the way down. Lists
// built from variables or other resources are not during validation and
// early plans; the model structs cannot hold them then.
func fullyKnown(ctx context.Context, g attrGetter, p path.Path, typ attr.Type) bool {
	var v attr.Value
	switch typ.(type) {
	case types.ListType:
		var l types.List
		if g.GetAttribute(ctx, p, &l).HasError() {
			return false
		}
		v = l
	default:
		var o types.Object
		if g.GetAttribute(ctx, p, &o).HasError() {
			return false
		}
		v = o
	}
	tv, err := v.ToTerraformValue(ctx)
	return err == nil && tv.IsFullyKnown()
}

// defaultImage sets an image attribute of the plan to the provider's
// default when the configuration leaves it out.
func defaultImage(ctx context.Context, config attrGetter, plan interface {
	SetAttribute(context.Context, path.Path, interface{}) diag.Diagnostics
}, name, def string) diag.Diagnostics {
	var v types.String
	diags := config.GetAttribute(ctx, path.Root(name), &v)
	if v.IsNull() {
		diags.Append(plan.SetAttribute(ctx, path.Root(name), def)...)
	}
	return diags
}
