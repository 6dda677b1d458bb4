package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/defaults"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/float64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/mapplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// This file holds what the three resources share: timeouts, the markers
// they keep in state, the settings label codec and import, plan helpers,
// value conversions and validators.

// resourceBase is what every resource has: its type name and schema, the
// codec of its settings label, and the provider's data once configured.
type resourceBase struct {
	typeName string // after the provider's name, e.g. "_swarm"
	schema   schema.Schema
	settings settingsCodec
	pd       *providerData
}

// newResourceBase derives the settings codec from the schema; notCarried
// names the configurable attributes the settings label leaves out.
func newResourceBase(typeName string, s schema.Schema, notCarried ...string) resourceBase {
	return resourceBase{typeName: typeName, schema: s, settings: newSettingsCodec(s, notCarried...)}
}

func (r *resourceBase) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + r.typeName
}

func (r *resourceBase) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = r.schema
}

func (r *resourceBase) Configure(_ context.Context, req resource.ConfigureRequest, _ *resource.ConfigureResponse) {
	if pd, ok := req.ProviderData.(*providerData); ok {
		r.pd = pd
	}
}

// terraformLog hands what swarmctl and awsfleet log to Terraform's log
// (TF_LOG_PROVIDER), through the context of the request they serve.
var terraformLog = slog.New(tflogHandler{})

// tflogHandler is a slog.Handler writing to tflog. tflog names this file
// as every record's @caller, so the record's own call site rides along as
// "source".
type tflogHandler struct{ attrs []slog.Attr }

func (h tflogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h tflogHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(map[string]any, len(h.attrs)+r.NumAttrs()+1)
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		fields["source"] = filepath.Base(filepath.Dir(f.File)) + "/" + filepath.Base(f.File) + ":" + strconv.Itoa(f.Line)
	}
	for _, a := range h.attrs {
		fields[a.Key] = a.Value.Any()
	}
	r.Attrs(func(a slog.Attr) bool {
		fields[a.Key] = a.Value.Any()
		return true
	})
	switch {
	case r.Level >= slog.LevelError:
		tflog.Error(ctx, r.Message, fields)
	case r.Level >= slog.LevelWarn:
		tflog.Warn(ctx, r.Message, fields)
	case r.Level >= slog.LevelInfo:
		tflog.Info(ctx, r.Message, fields)
	default:
		tflog.Debug(ctx, r.Message, fields)
	}
	return nil
}

func (h tflogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return tflogHandler{append(slices.Clone(h.attrs), attrs...)}
}

func (h tflogHandler) WithGroup(string) slog.Handler { return h }

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
	out := stringsOf(m)
	for k, v := range out {
		if v == driftedID {
			out[k] = ""
		}
	}
	return out
}

// stringsOf reads a map of strings (empty when null or unknown).
func stringsOf(m types.Map) map[string]string {
	out := map[string]string{}
	for k, v := range m.Elements() {
		out[k] = v.(types.String).ValueString()
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
// is missing or changed.
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
	carried   []string             // the Required and Optional ones, less skip and the Sensitive ones
	// withheld are the Sensitive attributes nested in a carried object,
	// by object: written as null, never into a label anyone can read.
	withheld map[string][]string
}

// settingsFormat marks a settings label written by settingsCodec, under a
// key no attribute can have. Labels without it come from providers older
// than the codec, which wrote each resource's settings in a shape of its
// own.
const (
	settingsFormatKey = "$format"
	settingsFormat    = 1
)

// newSettingsCodec carries the resource's configurable attributes but
// those in skip: values that belong to the workstation (local paths,
// timeouts) or that an import id gives. Sensitive attributes, and those of
// an object attribute, are never carried.
func newSettingsCodec(s schema.Schema, skip ...string) settingsCodec {
	for _, name := range skip {
		if _, ok := s.Attributes[name]; !ok {
			panic("settings codec: no attribute " + name) // a typo would carry a workstation value
		}
	}
	c := settingsCodec{attrTypes: s.Type().(types.ObjectType).AttrTypes, withheld: map[string][]string{}}
	for name, a := range s.Attributes {
		if !(a.IsRequired() || a.IsOptional()) || a.IsSensitive() || contains(skip, name) {
			continue
		}
		c.carried = append(c.carried, name)
		if obj, ok := a.(schema.SingleNestedAttribute); ok {
			for inner, ia := range obj.Attributes {
				if ia.IsSensitive() {
					c.withheld[name] = append(c.withheld[name], inner)
				}
			}
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
	out := map[string]any{settingsFormatKey: settingsFormat}
	for _, name := range c.carried {
		out[name] = jsonValue(attrs[name])
		if obj, ok := out[name].(map[string]any); ok {
			for _, inner := range c.withheld[name] {
				obj[inner] = nil
			}
		}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// decode sets the carried attributes of model from a label encode wrote.
// Attributes the label lacks become null; ones it has that the schema does
// not are ignored.
func (c settingsCodec) decode(ctx context.Context, label string, model any) error {
	var format struct {
		Format int `json:"$format"`
	}
	if err := json.Unmarshal([]byte(label), &format); err != nil {
		return fmt.Errorf("settings label: %w", err)
	}
	if format.Format != settingsFormat {
		return fmt.Errorf("the settings label was written by an older version of the provider: apply the configuration " +
			"once with this version (it rewrites the labels without restarting any task), or import with the older one")
	}
	types := map[string]tftypes.Type{}
	for _, name := range c.carried {
		types[name] = c.attrTypes[name].TerraformType(ctx)
	}
	tv, err := tftypes.ValueFromJSONWithOpts([]byte(label), tftypes.Object{AttributeTypes: types},
		tftypes.ValueFromJSONOpts{IgnoreUndefinedAttributes: true})
	if err == nil {
		tv, err = tftypes.Transform(tv, float64Numbers)
	}
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

// float64Numbers rounds a number that is not whole to float64 precision:
// JSON keeps a number's digits but not the precision of the float they
// came from, and such numbers are Float64 attributes, whose values (0.005
// from a default) must come back equal.
func float64Numbers(_ *tftypes.AttributePath, v tftypes.Value) (tftypes.Value, error) {
	if !v.Type().Is(tftypes.Number) || !v.IsKnown() || v.IsNull() {
		return v, nil
	}
	var f big.Float
	if err := v.As(&f); err != nil || f.IsInt() {
		return v, err
	}
	f64, _ := f.Float64()
	return tftypes.NewValue(tftypes.Number, big.NewFloat(f64)), nil
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
		case schema.Float64Attribute:
			if a.Default != nil {
				var resp defaults.Float64Response
				a.Default.DefaultFloat64(ctx, defaults.Float64Request{}, &resp)
				vals[name] = resp.PlanValue
				continue
			}
		case schema.SingleNestedAttribute:
			if a.Default != nil {
				var resp defaults.ObjectResponse
				a.Default.DefaultObject(ctx, defaults.ObjectRequest{}, &resp)
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

// stringCheck validates a string attribute with check, which says why a
// value is refused; unknown and null values wait for apply.
type stringCheck struct {
	description string // what is wanted, e.g. "a positive duration such as 39s"
	summary     string // the diagnostic's summary, e.g. "Invalid duration"
	check       func(string) error
}

var _ validator.String = stringCheck{}

func (v stringCheck) Description(context.Context) string { return v.description }

func (v stringCheck) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v stringCheck) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := v.check(req.ConfigValue.ValueString()); err != nil {
		// The path in the text too: Terraform does not show it for an
		// attribute nested in a list.
		resp.Diagnostics.AddAttributeError(req.Path, v.summary, req.Path.String()+": "+err.Error())
	}
}

// durationValidator accepts a positive Go duration such as "39s".
func durationValidator() stringCheck {
	return stringCheck{"a positive duration such as 39s or 1m30s", "Invalid duration", func(s string) error {
		if d, err := time.ParseDuration(s); err != nil || d <= 0 {
			return fmt.Errorf("want a positive duration such as 39s or 1m30s, got %q", s)
		}
		return nil
	}}
}

// objectNameValidator checks a mirror or filter group name.
func objectNameValidator(maxLen int) stringCheck {
	return stringCheck{"lower-case letters, digits and inner dashes", "Invalid name", func(s string) error {
		return swarmspec.ValidObjectName(s, maxLen)
	}}
}

// cidrValidator accepts an IPv4 CIDR block such as 203.0.113.0/24.
func cidrValidator() stringCheck {
	return stringCheck{"an IPv4 CIDR block such as 203.0.113.0/24", "Invalid CIDR block", func(s string) error {
		if p, err := netip.ParsePrefix(s); err != nil || !p.Addr().Is4() || p.Masked() != p {
			return fmt.Errorf("want an IPv4 CIDR block with no host bits set, such as 203.0.113.0/24 or 203.0.113.7/32, got %q", s)
		}
		return nil
	}}
}

// --- resources: CPU and memory by role --------------------------------------

// resourceRole is one role of a resource's `resources` attribute: the
// services it covers and their defaults (swarmspec). A JVM role's memory
// limit follows its heap, set at heap (default heapDefault).
type resourceRole struct {
	name, what  string // attribute name, and what it covers, e.g. "the hub Kafka"
	def         swarmspec.Resources
	jvm         bool
	broker      bool      // a Kafka broker, whose limit also holds page cache
	heap        path.Path // the heap's attribute (JVM roles)
	heapDefault int
}

// resourcesModel is one role's object in a resources attribute.
type resourcesModel struct {
	CPUs            types.Float64 `tfsdk:"cpus"`
	MemoryMB        types.Int64   `tfsdk:"memory_mb"`
	ReserveCPUs     types.Float64 `tfsdk:"reserve_cpus"`
	ReserveMemoryMB types.Int64   `tfsdk:"reserve_memory_mb"`
}

func (m resourcesModel) spec() swarmspec.Resources {
	return swarmspec.Resources{CPUs: m.CPUs.ValueFloat64(), MemoryMB: int(m.MemoryMB.ValueInt64()),
		ReserveCPUs: m.ReserveCPUs.ValueFloat64(), ReserveMemoryMB: int(m.ReserveMemoryMB.ValueInt64())}
}

// roleResources reads one role from a resources attribute. Null or
// unknown values are zero, which swarmspec takes as its defaults.
func roleResources(ctx context.Context, res types.Object, role string) swarmspec.Resources {
	if res.IsNull() || res.IsUnknown() {
		return swarmspec.Resources{}
	}
	obj, ok := res.Attributes()[role].(types.Object)
	if !ok || obj.IsNull() || obj.IsUnknown() {
		return swarmspec.Resources{}
	}
	var m resourcesModel
	obj.As(ctx, &m, basetypes.ObjectAsOptions{UnhandledNullAsEmpty: true, UnhandledUnknownAsEmpty: true})
	return m.spec()
}

// resourcesSchema is the optional `resources` attribute: one object per
// role, each field with its default, so that leaving out a role or a field
// means its defaults and the plan shows them. restartNote qualifies the
// restart policy for the resource's services, if needed.
func resourcesSchema(restartNote string, roles ...resourceRole) schema.SingleNestedAttribute {
	attrs := map[string]schema.Attribute{}
	var names []string
	for _, r := range roles {
		attrs[r.name] = roleSchema(r)
		names = append(names, "`"+r.name+"` ("+r.what+")")
	}
	return schema.SingleNestedAttribute{
		Optional: true, Computed: true,
		Default: objectdefault.StaticValue(objectDefault(attrs)),
		MarkdownDescription: "CPU and memory of the services, by role: " + strings.Join(names, ", ") + ". " +
			"Roles and fields left out take their defaults. Limits are enforced by Docker on each container: its CPU " +
			"time is throttled at `cpus`, and it is killed when its memory (the page cache of files it writes included) " +
			"cannot be kept under `memory_mb`. Reservations are what Swarm's scheduler counts: a node takes a task only " +
			"while the reservations of its tasks fit in its CPUs and memory, and a task that fits on no node stays " +
			"pending. A CPU limit above a node's CPUs makes Docker refuse the task. Changing them updates the services " +
			"in place (their tasks restart). " +
			fmt.Sprintf("Tasks restart %s after they end, whatever the cause (a memory limit included), and Swarm never gives up on them%s.",
				swarmspec.RestartDelay, restartNote),
		Attributes: attrs,
	}
}

// roleSchema is one role's object: limits and reservations, validated.
func roleSchema(r resourceRole) schema.SingleNestedAttribute {
	memory := schema.Int64Attribute{Optional: true, Computed: true,
		Default:             int64default.StaticInt64(int64(r.def.MemoryMB)),
		Validators:          []validator.Int64{int64validator.AtLeast(6)},
		MarkdownDescription: fmt.Sprintf("Memory limit in MiB (at least 6, Docker's least). Default %d.", r.def.MemoryMB)}
	if r.jvm {
		// The limit follows the heap: no static default, so a null value
		// is the default and swarmspec derives it.
		extra := fmt.Sprintf("%d for the JVM beyond its heap", swarmspec.JVMOffHeapMB)
		if r.broker {
			extra += fmt.Sprintf(" and %d for the page cache of its log segments", swarmspec.KafkaPageCacheMB)
		}
		memory = schema.Int64Attribute{Optional: true,
			Validators: []validator.Int64{int64validator.AtLeast(6)},
			MarkdownDescription: fmt.Sprintf("Memory limit in MiB, at least `%s` + %d. Default (null): `%s` + %d (%s), %d with the default heap.",
				r.heap, swarmspec.MinJVMOffHeapMB, r.heap, swarmspec.JVMMemoryMB(0, r.broker), extra, swarmspec.JVMMemoryMB(r.heapDefault, r.broker))}
	}
	attrs := map[string]schema.Attribute{
		"cpus": schema.Float64Attribute{Optional: true, Computed: true,
			Default:             float64default.StaticFloat64(r.def.CPUs),
			Validators:          []validator.Float64{float64validator.AtLeast(0.01)},
			MarkdownDescription: fmt.Sprintf("CPU limit, in CPUs (at least 0.01; at most the CPUs of the node). Default %g.", r.def.CPUs)},
		"memory_mb": memory,
		"reserve_cpus": schema.Float64Attribute{Optional: true, Computed: true,
			Default:             float64default.StaticFloat64(r.def.ReserveCPUs),
			Validators:          []validator.Float64{float64validator.AtLeast(0.001)},
			MarkdownDescription: fmt.Sprintf("CPUs reserved (at least 0.001, Swarm's least; at most `cpus`). Default %g.", r.def.ReserveCPUs)},
		"reserve_memory_mb": schema.Int64Attribute{Optional: true, Computed: true,
			Default:             int64default.StaticInt64(int64(r.def.ReserveMemoryMB)),
			Validators:          []validator.Int64{int64validator.AtLeast(4)},
			MarkdownDescription: fmt.Sprintf("Memory reserved in MiB (at least 4, Swarm's least; at most `memory_mb`). Default %d.", r.def.ReserveMemoryMB)},
	}
	return schema.SingleNestedAttribute{
		Optional: true, Computed: true,
		Default:             objectdefault.StaticValue(objectDefault(attrs)),
		Validators:          []validator.Object{reservationCheck{r.def}},
		MarkdownDescription: "Limits and reservations of " + r.what + ".",
		Attributes:          attrs,
	}
}

// reservationCheck refuses a role whose reservations exceed its limits,
// fields left out taking def.
type reservationCheck struct{ def swarmspec.Resources }

var _ validator.Object = reservationCheck{}

func (v reservationCheck) Description(context.Context) string {
	return "reservations at most the limits"
}

func (v reservationCheck) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v reservationCheck) ValidateObject(ctx context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	var m resourcesModel
	if d := req.ConfigValue.As(ctx, &m, basetypes.ObjectAsOptions{}); d.HasError() {
		return
	}
	for _, v := range []attr.Value{m.CPUs, m.MemoryMB, m.ReserveCPUs, m.ReserveMemoryMB} {
		if v.IsUnknown() {
			return // checked again at plan time, once known
		}
	}
	if err := m.spec().Or(v.def).Check(); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Reservation above its limit", err.Error())
	}
}

// validateJVMResources checks the memory of the JVM roles against their
// heaps: a limit must leave the JVM room beyond its heap, and a
// reservation must not exceed the limit, given or derived from the heap.
func validateJVMResources(ctx context.Context, config attrGetter, roles []resourceRole, diags *diag.Diagnostics) {
	for _, r := range roles {
		if !r.jvm {
			continue
		}
		p := path.Root("resources").AtName(r.name)
		var heap, limit, reserve types.Int64
		diags.Append(config.GetAttribute(ctx, r.heap, &heap)...)
		diags.Append(config.GetAttribute(ctx, p.AtName("memory_mb"), &limit)...)
		diags.Append(config.GetAttribute(ctx, p.AtName("reserve_memory_mb"), &reserve)...)
		if heap.IsUnknown() || limit.IsUnknown() || reserve.IsUnknown() {
			continue
		}
		h := r.heapDefault
		if !heap.IsNull() {
			h = int(heap.ValueInt64())
		}
		l := swarmspec.JVMMemoryMB(h, r.broker)
		if !limit.IsNull() {
			l = int(limit.ValueInt64())
			if err := swarmspec.CheckJVMMemory(l, h); err != nil {
				diags.AddAttributeError(p.AtName("memory_mb"), "Memory limit too low for the heap", err.Error())
				continue
			}
		}
		res := swarmspec.Resources{MemoryMB: l, ReserveMemoryMB: r.def.ReserveMemoryMB}
		if !reserve.IsNull() {
			res.ReserveMemoryMB = int(reserve.ValueInt64())
		}
		if err := res.Check(); err != nil {
			diags.AddAttributeError(p.AtName("reserve_memory_mb"), "Reservation above its limit", err.Error())
		}
	}
}

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

// componentSchema is the schema of a mirror or filter group: the
// attributes of componentModel and the resource's own (attrs). what is
// "mirror" or "group"; name's longest length and description are the
// resource's.
func componentSchema(ctx context.Context, what string, nameLen int, nameDoc string, attrs map[string]schema.Attribute) map[string]schema.Attribute {
	replace := []planmodifier.String{stringplanmodifier.RequiresReplace()}
	for name, a := range map[string]schema.Attribute{
		"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The " + what + "'s name.",
			PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
		"swarm_id": schema.StringAttribute{Required: true, PlanModifiers: replace,
			MarkdownDescription: "Id of the swarm (`minibroker_swarm.X.id`); the manager must run this swarm. Changing it replaces the " + what + "."},
		"manager_address": schema.StringAttribute{Required: true,
			MarkdownDescription: "SSH address of the swarm's manager (`minibroker_swarm.X.manager_address`), where the Swarm API is reached."},
		"name": schema.StringAttribute{Required: true, PlanModifiers: replace,
			Validators: []validator.String{objectNameValidator(nameLen)}, MarkdownDescription: nameDoc},
		"services": schema.MapAttribute{Computed: true, ElementType: types.StringType,
			MarkdownDescription: "Service ids by service name.",
			PlanModifiers:       []planmodifier.Map{mapplanmodifier.UseStateForUnknown()}},
		"manager_host_key": schema.StringAttribute{Computed: true,
			MarkdownDescription: "SSH host key fingerprint of the manager (kept with `trust_on_first_use`).",
			PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
		"timeouts": timeouts.Attributes(ctx, timeouts.Opts{Create: true, Update: true, Delete: true, Read: true}),
	} {
		attrs[name] = a
	}
	return attrs
}

// newComponentBase is the resourceBase of a mirror or filter group; its
// settings label leaves out the swarm and the manager's address, which
// import takes from the import id and the swarm.
func newComponentBase(typeName string, s schema.Schema) resourceBase {
	return newResourceBase(typeName, s, "swarm_id", "manager_address", "timeouts")
}

// component is a mirror's or filter group's model.
type component interface {
	base() *componentModel
	owner() string // the swarmspec owner of its services
}

func (c *componentModel) base() *componentModel { return c }

// placeFunc checks that a component's services can be placed on the swarm
// and returns them.
type placeFunc func(context.Context, *swarmctl.Swarm) ([]swarmspec.Desired, error)

// createComponent creates a mirror or filter group: its services where
// place puts them, running. The state is saved also after a failure once
// services exist (the resource is then tainted, and destroy removes them).
func (r *resourceBase) createComponent(ctx context.Context, what string, req resource.CreateRequest, resp *resource.CreateResponse,
	plan component, place placeFunc) {
	if resp.Diagnostics.Append(req.Plan.Get(ctx, plan)...); resp.Diagnostics.HasError() {
		return
	}
	c := plan.base()
	ctx, cancel, diags := withTimeout(ctx, c.Timeouts.Create, componentCreateTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	err := r.applyComponent(ctx, plan, "", place)
	if c.Services.IsUnknown() {
		resp.Diagnostics.AddError("Cannot create "+what, err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	if err != nil {
		resp.Diagnostics.AddError("Cannot create "+what, err.Error())
	}
}

// updateComponent updates a mirror's or filter group's services in place.
func (r *resourceBase) updateComponent(ctx context.Context, what string, req resource.UpdateRequest, resp *resource.UpdateResponse,
	plan component, place placeFunc) {
	var knownKey types.String
	resp.Diagnostics.Append(req.State.GetAttribute(ctx, path.Root("manager_host_key"), &knownKey)...)
	if resp.Diagnostics.Append(req.Plan.Get(ctx, plan)...); resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel, diags := withTimeout(ctx, plan.base().Timeouts.Update, componentUpdateTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	if err := r.applyComponent(ctx, plan, knownKey.ValueString(), place); err != nil {
		resp.Diagnostics.AddError("Cannot update "+what, err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// applyComponent makes the component's services what place returns and
// waits until they run; knownKey is the manager's host key from state (""
// on create). Services holds their ids as soon as they exist, so that state
// keeps them even when the wait fails.
func (r *resourceBase) applyComponent(ctx context.Context, plan component, knownKey string, place placeFunc) error {
	c := plan.base()
	sw, err := r.pd.ctl.OpenSwarm(ctx, c.SwarmID.ValueString(), c.ManagerAddress.ValueString(), knownKey)
	if err != nil {
		return err
	}
	c.ManagerHostKey = types.StringValue(sw.HostKey)
	desired, err := place(ctx, sw)
	if err != nil {
		return err
	}
	ids, err := sw.Deploy(ctx, plan.owner(), desired)
	if len(ids) > 0 || err == nil {
		c.Services = idMap(ids)
	}
	return err
}

// errComponentGone tells readComponent that what the component depends on
// is gone, and with it the component.
var errComponentGone = errors.New("gone")

// readComponent refreshes a mirror or filter group: on import (no swarm id
// yet) it first restores the settings from the label on its services; then
// it compares the services desired returns with what runs. A component
// with no service left, or whose desired says errComponentGone, is removed
// from state; one whose services all changed stays, to be updated.
func (r *resourceBase) readComponent(ctx context.Context, what string, req resource.ReadRequest, resp *resource.ReadResponse,
	state component, desired placeFunc) {
	if resp.Diagnostics.Append(req.State.Get(ctx, state)...); resp.Diagnostics.HasError() {
		return
	}
	c := state.base()
	ctx, cancel, diags := withTimeout(ctx, c.Timeouts.Read, componentReadTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	sw, err := r.pd.ctl.OpenSwarm(ctx, c.SwarmID.ValueString(), c.ManagerAddress.ValueString(), c.ManagerHostKey.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot read "+what, err.Error())
		return
	}
	if c.SwarmID.ValueString() == "" { // import
		if err := r.restoreComponent(ctx, what, sw, state); err != nil {
			resp.Diagnostics.AddError("Cannot import "+what, err.Error())
			return
		}
	}
	want, err := desired(ctx, sw)
	if errors.Is(err, errComponentGone) {
		resp.State.RemoveResource(ctx)
		return
	}
	if errors.Is(err, errCredentials) {
		// Credentials that are not the swarm's (none after an import or an
		// upgrade, older ones after a rotation): the specs cannot be
		// compared. An import takes the services as they run; otherwise
		// they show as changed, and the plan updates them with the
		// configuration's kafka_credentials.
		ids, err := sw.ServiceIDs(ctx, state.owner())
		if err != nil {
			resp.Diagnostics.AddError("Cannot read "+what, err.Error())
			return
		}
		if !c.Services.IsNull() {
			for name := range ids {
				ids[name] = ""
			}
		}
		c.Services = idMap(ids)
		resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
		return
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot read "+what, err.Error())
		return
	}
	ids, err := sw.Observe(ctx, state.owner(), want)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read "+what, err.Error())
		return
	}
	if allGone(ids) {
		// Every service is missing or changed: the component is gone only
		// if none is left at all; changed ones make the plan an update.
		exists, err := sw.HasServices(ctx, state.owner())
		if err != nil {
			resp.Diagnostics.AddError("Cannot read "+what, err.Error())
			return
		}
		if !exists {
			resp.State.RemoveResource(ctx)
			return
		}
	}
	c.Services = idMap(ids)
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// restoreComponent fills an imported mirror or filter group from the
// settings label on its services.
func (r *resourceBase) restoreComponent(ctx context.Context, what string, sw *swarmctl.Swarm, state component) error {
	c := state.base()
	name := c.Name.ValueString()
	label, ok, err := sw.Settings(ctx, state.owner())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no %s %q in swarm %s", what, name, sw.ID)
	}
	if err := r.settings.decode(ctx, label, state); err != nil {
		return fmt.Errorf("%s %q: %w", what, name, err)
	}
	// Not in the label: the swarm, and the manager's key.
	c.SwarmID = types.StringValue(sw.ID)
	c.ManagerHostKey = types.StringValue(sw.HostKey)
	return nil
}

// deleteComponent removes everything of the component from its swarm.
// removal, when it returns services, runs them first (alone: the
// component's other services go) until they complete: the access job that
// removes the component's Kafka users.
func (r *resourceBase) deleteComponent(ctx context.Context, what string, req resource.DeleteRequest, resp *resource.DeleteResponse, state component, removal placeFunc) {
	if resp.Diagnostics.Append(req.State.Get(ctx, state)...); resp.Diagnostics.HasError() {
		return
	}
	c := state.base()
	ctx, cancel, diags := withTimeout(ctx, c.Timeouts.Delete, componentDeleteTimeout)
	defer cancel()
	if resp.Diagnostics.Append(diags...); resp.Diagnostics.HasError() {
		return
	}
	sw, err := r.pd.ctl.OpenSwarm(ctx, c.SwarmID.ValueString(), c.ManagerAddress.ValueString(), c.ManagerHostKey.ValueString())
	if err != nil {
		resp.Diagnostics.AddError("Cannot delete "+what, err.Error())
		return
	}
	last, err := removal(ctx, sw)
	if errors.Is(err, errCredentials) {
		// Without the swarm's credentials its users cannot be removed;
		// the services go all the same.
		tflog.Warn(ctx, "removing "+what+" without removing its Kafka users", map[string]any{"reason": err.Error()})
		last, err = nil, nil
	}
	if err == nil && len(last) > 0 {
		_, err = sw.Deploy(ctx, state.owner(), last)
	}
	if err != nil {
		resp.Diagnostics.AddError("Cannot delete "+what, fmt.Sprintf("removing its Kafka users: %v", err))
		return
	}
	if err := sw.RemoveOwner(ctx, state.owner()); err != nil {
		resp.Diagnostics.AddError("Cannot delete "+what, err.Error())
	}
}
