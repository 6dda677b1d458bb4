package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/defaults"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// This file holds what the three resources share: timeouts, the markers
// they keep in state, the settings label codec and import, plan helpers,
// value conversions and validators.

// Default timeouts.
const (
	swarmCreateTimeout = 15 * time.Minute
	swarmUpdateTimeout = 15 * time.Minute
	swarmDeleteTimeout = 10 * time.Minute
	swarmReadTimeout   = 2 * time.Minute

	// Mirrors and filter groups.
	componentCreateTimeout = 10 * time.Minute
	componentUpdateTimeout = 10 * time.Minute
	componentDeleteTimeout = 5 * time.Minute
	componentReadTimeout   = time.Minute
)

// withTimeout bounds ctx by a timeout from the resource's timeouts block
// (get is e.g. plan.Timeouts.Create) or def.
func withTimeout(ctx context.Context, get func(context.Context, time.Duration) (time.Duration, diag.Diagnostics),
	def time.Duration) (context.Context, context.CancelFunc, diag.Diagnostics) {
	d, diags := get(ctx, def)
	ctx, cancel := context.WithTimeout(ctx, d)
	return ctx, cancel, diags
}

// driftedID marks, in a resource's id maps (services, nodes, network), an
// object that was removed or changed outside Terraform; the next plan then
// shows the map changing and apply puts the object back. swarmctl reports
// such objects with an empty id.
const driftedID = "(changed outside Terraform)"

// idMap turns ids by name from swarmctl into a state map, "" into driftedID.
func idMap(ids map[string]string) types.Map {
	out := make(map[string]string, len(ids))
	for k, v := range ids {
		out[k] = idValue(v).ValueString()
	}
	return stringMap(out)
}

// idValue is one id from swarmctl as state keeps it, "" as driftedID.
func idValue(id string) types.String {
	if id == "" {
		return types.StringValue(driftedID)
	}
	return types.StringValue(id)
}

// idsOf reads a state map of ids for swarmctl, driftedID as "".
func idsOf(m types.Map) map[string]string {
	out := map[string]string{}
	for k, v := range m.Elements() {
		if s := v.(types.String).ValueString(); s != driftedID {
			out[k] = s
		} else {
			out[k] = ""
		}
	}
	return out
}

func hasDrift(m types.Map) bool {
	for _, v := range m.Elements() {
		if s, ok := v.(types.String); ok && s.ValueString() == driftedID {
			return true
		}
	}
	return false
}

// allGone reports whether every id is empty: each of a resource's services
// is missing or changed, i.e. the resource no longer exists.
func allGone(ids map[string]string) bool {
	for _, id := range ids {
		if id != "" {
			return false
		}
	}
	return true
}

// settingsCodec carries a resource's settings, its configurable attributes,
// as JSON in the swarmspec.LabelSettings label of its services, so that
// `terraform import` restores every attribute from the swarm. It is derived
// from the resource's schema: a new attribute is carried with no change
// here.
type settingsCodec struct {
	attrTypes map[string]attr.Type // every attribute of the resource
	carried   []string             // the Required and Optional ones, less skip
}

// newSettingsCodec carries the resource's configurable attributes but
// those in skip: values that belong to the workstation (local paths,
// timeouts) or that an import id gives.
func newSettingsCodec(s schema.Schema, skip ...string) settingsCodec {
	c := settingsCodec{attrTypes: s.Type().(types.ObjectType).AttrTypes}
	for name, a := range s.Attributes {
		if (a.IsRequired() || a.IsOptional()) && !contains(skip, name) {
			c.carried = append(c.carried, name)
		}
	}
	return c
}

// encode renders the carried attributes of model (a resource model
// struct) as JSON with sorted keys: equal settings give equal labels.
func (c settingsCodec) encode(ctx context.Context, model any) (string, error) {
	attrs, err := c.terraformAttrs(ctx, model)
	if err != nil {
		return "", err
	}
	out := map[string]any{}
	for _, name := range c.carried {
		out[name] = jsonValue(attrs[name])
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// decode sets the carried attributes of model from a label encode wrote.
// Attributes the label lacks become null; ones it has that the schema does
// not are ignored.
func (c settingsCodec) decode(ctx context.Context, label string, model any) error {
	types := map[string]tftypes.Type{}
	for _, name := range c.carried {
		types[name] = c.attrTypes[name].TerraformType(ctx)
	}
	tv, err := tftypes.ValueFromJSONWithOpts([]byte(label), tftypes.Object{AttributeTypes: types},
		tftypes.ValueFromJSONOpts{IgnoreUndefinedAttributes: true})
	if err != nil {
		return fmt.Errorf("settings label: %w", err)
	}
	var got map[string]tftypes.Value
	if err := tv.As(&got); err != nil {
		return fmt.Errorf("settings label: %w", err)
	}
	cur, diags := basetypes.NewObjectValueFrom(ctx, c.attrTypes, model)
	if diags.HasError() {
		return diagError(diags)
	}
	vals := cur.Attributes()
	for _, name := range c.carried {
		if vals[name], err = c.attrTypes[name].ValueFromTerraform(ctx, got[name]); err != nil {
			return fmt.Errorf("settings label, %s: %w", name, err)
		}
	}
	obj, diags := basetypes.NewObjectValue(c.attrTypes, vals)
	diags.Append(obj.As(ctx, model, basetypes.ObjectAsOptions{})...)
	if diags.HasError() {
		return diagError(diags)
	}
	return nil
}

// terraformAttrs converts a model struct into Terraform values by
// attribute name.
func (c settingsCodec) terraformAttrs(ctx context.Context, model any) (map[string]tftypes.Value, error) {
	obj, diags := basetypes.NewObjectValueFrom(ctx, c.attrTypes, model)
	if diags.HasError() {
		return nil, diagError(diags)
	}
	tv, err := obj.ToTerraformValue(ctx)
	if err != nil {
		return nil, err
	}
	var attrs map[string]tftypes.Value
	return attrs, tv.As(&attrs)
}

// jsonValue is a known Terraform value as encoding/json renders it.
func jsonValue(v tftypes.Value) any {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	switch t := v.Type(); {
	case t.Is(tftypes.String):
		var s string
		_ = v.As(&s)
		return s
	case t.Is(tftypes.Bool):
		var b bool
		_ = v.As(&b)
		return b
	case t.Is(tftypes.Number):
		var f big.Float
		_ = v.As(&f)
		if f.IsInt() {
			return json.Number(f.Text('f', 0))
		}
		return json.Number(f.Text('g', -1))
	case t.Is(tftypes.List{}), t.Is(tftypes.Set{}), t.Is(tftypes.Tuple{}):
		var elems []tftypes.Value
		_ = v.As(&elems)
		out := make([]any, 0, len(elems))
		for _, e := range elems {
			out = append(out, jsonValue(e))
		}
		return out
	default: // map or object
		var attrs map[string]tftypes.Value
		_ = v.As(&attrs)
		out := make(map[string]any, len(attrs))
		for k, e := range attrs {
			out[k] = jsonValue(e)
		}
		return out
	}
}

// importPending marks a swarm state that Read must fill from the swarm.
const importPending = "(importing)"

// importByName starts the import of a mirror or filter group from an id
// MANAGER_ADDRESS/NAME; Read fills in the rest from the swarm.
func importByName(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse, what string) {
	manager, name, ok := splitImportID(req.ID)
	if !ok {
		resp.Diagnostics.AddError("Invalid import id", "want MANAGER_ADDRESS/"+what+", e.g. 10.0.0.5/m1; got "+req.ID)
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("manager_address"), manager)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), name)...)
}

func splitImportID(id string) (manager, name string, ok bool) {
	i := strings.LastIndex(id, "/")
	if i <= 0 || i == len(id)-1 {
		return "", "", false
	}
	return id[:i], id[i+1:], true
}

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

// objectDefault is the value of a nested object whose attributes all take
// their own defaults (null where they have none): the Default of an
// optional object, so that leaving the object out means its defaults.
func objectDefault(attrs map[string]schema.Attribute) types.Object {
	ctx := context.Background()
	attrTypes := map[string]attr.Type{}
	vals := map[string]attr.Value{}
	for name, a := range attrs {
		attrTypes[name] = a.GetType()
		switch a := a.(type) {
		case schema.Int64Attribute:
			if a.Default != nil {
				var resp defaults.Int64Response
				a.Default.DefaultInt64(ctx, defaults.Int64Request{}, &resp)
				vals[name] = resp.PlanValue
				continue
			}
		case schema.StringAttribute:
			if a.Default != nil {
				var resp defaults.StringResponse
				a.Default.DefaultString(ctx, defaults.StringRequest{}, &resp)
				vals[name] = resp.PlanValue
				continue
			}
		case schema.BoolAttribute:
			if a.Default != nil {
				var resp defaults.BoolResponse
				a.Default.DefaultBool(ctx, defaults.BoolRequest{}, &resp)
				vals[name] = resp.PlanValue
				continue
			}
		}
		null, err := a.GetType().ValueFromTerraform(ctx, tftypes.NewValue(a.GetType().TerraformType(ctx), nil))
		if err != nil {
			panic(fmt.Sprintf("null %s: %v", name, err)) // a schema bug, found by any test
		}
		vals[name] = null
	}
	return types.ObjectValueMust(attrTypes, vals)
}

func diagError(d diag.Diagnostics) error {
	var msgs []string
	for _, e := range d.Errors() {
		msgs = append(msgs, e.Summary()+": "+e.Detail())
	}
	return fmt.Errorf("%v", msgs)
}

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

func optString(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// stringMap is a known map, empty for a nil one.
func stringMap(m map[string]string) types.Map {
	vals := map[string]types.String{}
	for k, v := range m {
		vals[k] = types.StringValue(v)
	}
	out, _ := types.MapValueFrom(context.Background(), types.StringType, vals)
	return out
}

// optMap is a map attribute left out when empty.
func optMap(m map[string]string) types.Map {
	if len(m) == 0 {
		return types.MapNull(types.StringType)
	}
	return stringMap(m)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

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

// --- mirrors and filter groups --------------------------------------------

// componentModel holds the attributes a mirror and a filter group share:
// both are services of one owner on a swarm formed by minibroker_swarm,
// reached through its manager.
type componentModel struct {
	ID             types.String   `tfsdk:"id"`
	SwarmID        types.String   `tfsdk:"swarm_id"`
	ManagerAddress types.String   `tfsdk:"manager_address"`
	Name           types.String   `tfsdk:"name"`
	Services       types.Map      `tfsdk:"services"`
	ManagerHostKey types.String   `tfsdk:"manager_host_key"`
	Timeouts       timeouts.Value `tfsdk:"timeouts"`
}

// componentAttributes are the schema of componentModel; what is "mirror"
// or "group", name's validator and description are the resource's own.
func componentAttributes(ctx context.Context, what string, name schema.StringAttribute) map[string]schema.Attribute {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	name.Required, name.PlanModifiers = true, replace
	return map[string]schema.Attribute{
		"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The " + what + "'s name.",
			PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
		"swarm_id": schema.StringAttribute{Required: true, PlanModifiers: replace,
			MarkdownDescription: "Id of the swarm (`minibroker_swarm.X.id`); the manager must run this swarm. Changing it replaces the " + what + "."},
		"manager_address": schema.StringAttribute{Required: true,
			MarkdownDescription: "SSH address of the swarm's manager (`minibroker_swarm.X.manager_address`), where the Swarm API is reached."},
		"name": name,
		"services": schema.MapAttribute{Computed: true, ElementType: types.StringType,
			MarkdownDescription: "Service ids by service name.",
			PlanModifiers:       []planmodifier.Map{mapplanmodifier.UseStateForUnknown()}},
		"manager_host_key": schema.StringAttribute{Computed: true,
			MarkdownDescription: "SSH host key fingerprint of the manager (kept with `trust_on_first_use`).",
			PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
		"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true, Read: true}),
	}
}

// newComponentCodec carries a mirror's or filter group's settings; the
// swarm and the manager's address are the import id's and the swarm's.
func newComponentCodec(s schema.Schema) settingsCodec {
	return newSettingsCodec(s, "swarm_id", "manager_address", "timeouts")
}

// openSwarm reaches the swarm a component belongs to; knownKey is the
// manager's host key recorded in state ("" on create).
func (c *componentModel) openSwarm(ctx context.Context, pd *providerData, knownKey string) (*swarmctl.Swarm, error) {
	sw, err := pd.ctl.OpenSwarm(ctx, c.SwarmID.ValueString(), c.ManagerAddress.ValueString(), knownKey)
	if err != nil {
		return nil, err
	}
	c.ManagerHostKey = types.StringValue(sw.HostKey)
	return sw, nil
}

// deploy makes owner's services the desired ones and waits until they run;
// Services holds their ids as soon as they exist, so that state keeps them
// even when the wait fails.
func (c *componentModel) deploy(ctx context.Context, sw *swarmctl.Swarm, owner string, desired []swarmspec.Desired) error {
	ids, err := sw.Deploy(ctx, owner, desired)
	if len(ids) > 0 || err == nil {
		c.Services = idMap(ids)
	}
	return err
}

// createComponent runs a mirror's or filter group's apply on create and
// saves its state, also after a failure once services exist (the resource
// is then tainted, and destroy removes them).
func createComponent(ctx context.Context, what string, c *componentModel, model any, resp *resource.CreateResponse,
	apply func(context.Context) error) {
	ctx, cancel, diags := withTimeout(ctx, c.Timeouts.Create, componentCreateTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	err := apply(ctx)
	if c.Services.IsUnknown() {
		resp.Diagnostics.AddError("Cannot create "+what, err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, model)...)
	if err != nil {
		resp.Diagnostics.AddError("Cannot create "+what, err.Error())
	}
}

// updateComponent runs a mirror's or filter group's apply on update.
func updateComponent(ctx context.Context, what string, c *componentModel, model any, resp *resource.UpdateResponse,
	apply func(context.Context) error) {
	ctx, cancel, diags := withTimeout(ctx, c.Timeouts.Update, componentUpdateTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	if err := apply(ctx); err != nil {
		resp.Diagnostics.AddError("Cannot update "+what, err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, model)...)
}

// errComponentGone tells readComponent that what the component depends on
// is gone, and with it the component.
var errComponentGone = errors.New("gone")

// readComponent refreshes a mirror or filter group: on import (no swarm id
// yet) it first restores the settings from the label on owner's services
// (on service, or any when service is ""); then it compares the services
// desired returns with what runs. A component whose services are all gone,
// or whose desired says errComponentGone, is removed from state.
func readComponent(ctx context.Context, pd *providerData, what string, codec settingsCodec, c *componentModel, model any,
	owner, service string, resp *resource.ReadResponse, desired func(context.Context, *swarmctl.Swarm) ([]swarmspec.Desired, error)) {
	ctx, cancel, diags := withTimeout(ctx, c.Timeouts.Read, componentReadTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	sw, err := pd.ctl.OpenSwarm(ctx, c.SwarmID.ValueString(), c.ManagerAddress.ValueString(), c.ManagerHostKey.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot read "+what, err.Error())
		return
	}
	if c.SwarmID.ValueString() == "" { // import
		if err := restoreComponent(ctx, sw, codec, c, model, owner, service); err != nil {
			resp.Diagnostics.AddError("Cannot import "+what, err.Error())
			return
		}
	}
	want, err := desired(ctx, sw)
	if errors.Is(err, errComponentGone) {
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read "+what, err.Error())
		return
	}
	ids, err := sw.Observe(ctx, owner, want)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read "+what, err.Error())
		return
	}
	if allGone(ids) {
		resp.State.RemoveResource(ctx)
		return
	}
	c.Services = idMap(ids)
	resp.Diagnostics.Append(resp.State.Set(ctx, model)...)
}

// restoreComponent fills an imported mirror or filter group from the
// settings label on its services.
func restoreComponent(ctx context.Context, sw *swarmctl.Swarm, codec settingsCodec, c *componentModel, model any, owner, service string) error {
	label, ok, err := sw.Settings(ctx, owner, service)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no %s in swarm %s", owner, sw.ID)
	}
	// The label sets the model's attributes; the ones below are not in it.
	if err := codec.decode(ctx, label, model); err != nil {
		return fmt.Errorf("%s: %w", owner, err)
	}
	c.SwarmID = types.StringValue(sw.ID)
	c.ManagerHostKey = types.StringValue(sw.HostKey)
	return nil
}

// deleteComponent removes everything of owner from its swarm.
func deleteComponent(ctx context.Context, pd *providerData, what string, c *componentModel, owner string, resp *resource.DeleteResponse) {
	ctx, cancel, diags := withTimeout(ctx, c.Timeouts.Delete, componentDeleteTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	sw, err := pd.ctl.OpenSwarm(ctx, c.SwarmID.ValueString(), c.ManagerAddress.ValueString(), c.ManagerHostKey.ValueString())
	if err == nil {
		err = sw.RemoveOwner(ctx, owner)
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot delete "+what, err.Error())
	}
}
