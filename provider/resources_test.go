package provider

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	tfresource "github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// resourceConfig builds a resource's configuration from top-level
// attribute values, the others null.
func resourceConfig(t *testing.T, r resource.Resource, attrs map[string]tftypes.Value) tfsdk.Config {
	t.Helper()
	ctx := context.Background()
	var resp resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &resp)
	typ := resp.Schema.Type().TerraformType(ctx).(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		vals[name] = tftypes.NewValue(at, nil)
	}
	for name, v := range attrs {
		if _, ok := typ.AttributeTypes[name]; !ok {
			t.Fatalf("no attribute %q", name)
		}
		vals[name] = v
	}
	return tfsdk.Config{Schema: resp.Schema, Raw: tftypes.NewValue(typ, vals)}
}

// roleType is the Terraform type of one role of a resources attribute.
var roleType = tftypes.Object{AttributeTypes: map[string]tftypes.Type{
	"cpus": tftypes.Number, "memory_mb": tftypes.Number, "reserve_cpus": tftypes.Number, "reserve_memory_mb": tftypes.Number}}

// roleValue is one role's object; nil fields are null.
func roleValue(cpus, memoryMB, reserveCPUs, reserveMemoryMB any) tftypes.Value {
	n := func(v any) tftypes.Value { return tftypes.NewValue(tftypes.Number, v) }
	return tftypes.NewValue(roleType, map[string]tftypes.Value{
		"cpus": n(cpus), "memory_mb": n(memoryMB), "reserve_cpus": n(reserveCPUs), "reserve_memory_mb": n(reserveMemoryMB)})
}

// resourcesValue is a resources attribute of the given roles; roles left
// out are null.
func resourcesValue(names []string, roles map[string]tftypes.Value) tftypes.Value {
	types, vals := map[string]tftypes.Type{}, map[string]tftypes.Value{}
	for _, n := range names {
		types[n] = roleType
		vals[n] = tftypes.NewValue(roleType, nil)
		if v, ok := roles[n]; ok {
			vals[n] = v
		}
	}
	return tftypes.NewValue(tftypes.Object{AttributeTypes: types}, vals)
}

// The schema's defaults are swarmspec's, role by role; a JVM's memory
// limit is left null, for swarmspec to derive from the heap.
func TestResourcesDefaultsAreSwarmspecs(t *testing.T) {
	ctx := context.Background()
	check := func(resource string, s schema.Schema, role string, want swarmspec.Resources, jvm bool) {
		t.Helper()
		got := roleResources(ctx, objectDefault(s.Attributes["resources"].(schema.SingleNestedAttribute).Attributes), role)
		if jvm {
			want.MemoryMB = 0
		}
		if got != want {
			t.Errorf("%s: resources.%s defaults %+v, want swarmspec's %+v", resource, role, got, want)
		}
	}
	check("swarm", swarmSchema(ctx), "hub", swarmspec.HubResources, true)
	check("swarm", swarmSchema(ctx), "producer", swarmspec.ProducerResources, false)
	check("mirror", mirrorSchema(ctx), "kafka", swarmspec.MirrorKafkaResources, true)
	check("mirror", mirrorSchema(ctx), "mirror_maker", swarmspec.MirrorMakerResources, true)
	check("filter group", filterGroupSchema(ctx), "filter", swarmspec.FilterResources, false)
	check("filter group", filterGroupSchema(ctx), "consumer", swarmspec.ConsumerResources, false)
}

func TestReservationCheck(t *testing.T) {
	ctx := context.Background()
	v := reservationCheck{swarmspec.FilterResources}
	for name, c := range map[string]struct {
		role tftypes.Value
		want string // "" for none
	}{
		"defaults":                {roleValue(nil, nil, nil, nil), ""},
		"all given":               {roleValue(1.5, 2048, 1.5, 2048), ""},
		"memory above limit":      {roleValue(nil, 512, nil, 600), "600 MiB is above the memory limit of 512 MiB"},
		"cpus above limit":        {roleValue(0.5, nil, 0.75, nil), "0.75 CPUs is above the limit of 0.5"},
		"above the default limit": {roleValue(nil, nil, nil, swarmspec.FilterResources.MemoryMB+1), "above the memory limit"},
		"limit under the default": {roleValue(0.001+swarmspec.FilterResources.ReserveCPUs/2, nil, nil, nil), "above the limit"},
		"unknown waits for the plan": {tftypes.NewValue(roleType, map[string]tftypes.Value{"cpus": tftypes.NewValue(tftypes.Number, tftypes.UnknownValue),
			"memory_mb": tftypes.NewValue(tftypes.Number, 1), "reserve_cpus": tftypes.NewValue(tftypes.Number, 2),
			"reserve_memory_mb": tftypes.NewValue(tftypes.Number, 2)}), ""},
	} {
		obj, err := types.ObjectType{AttrTypes: map[string]attr.Type{"cpus": types.Float64Type, "memory_mb": types.Int64Type,
			"reserve_cpus": types.Float64Type, "reserve_memory_mb": types.Int64Type}}.ValueFromTerraform(ctx, c.role)
		if err != nil {
			t.Fatal(err)
		}
		resp := &validator.ObjectResponse{}
		v.ValidateObject(ctx, validator.ObjectRequest{Path: path.Root("resources").AtName("filter"), ConfigValue: obj.(types.Object)}, resp)
		got := ""
		if resp.Diagnostics.HasError() {
			got = resp.Diagnostics.Errors()[0].Detail()
		}
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}

func TestJVMMemoryFollowsTheHeap(t *testing.T) {
	ctx := context.Background()
	names := []string{"kafka", "mirror_maker"}
	num := func(v any) tftypes.Value { return tftypes.NewValue(tftypes.Number, v) }
	for name, c := range map[string]struct {
		attrs map[string]tftypes.Value
		want  string // "" for none, else the path and a part of the message
	}{
		"defaults": {nil, ""},
		"a big heap and no limit: the limit follows": {map[string]tftypes.Value{"heap_mb": num(8192), "mirror_maker_heap_mb": num(4096)}, ""},
		"a limit with room": {map[string]tftypes.Value{"resources": resourcesValue(names, map[string]tftypes.Value{
			"kafka": roleValue(nil, 1024+256, nil, 512)})}, ""},
		"a limit under the default heap": {map[string]tftypes.Value{"resources": resourcesValue(names, map[string]tftypes.Value{
			"kafka": roleValue(nil, 1100, nil, 512)})}, "resources.kafka.memory_mb: a memory limit of 1100 MiB leaves a JVM heap of 1024 MiB"},
		"a limit under a given heap": {map[string]tftypes.Value{"mirror_maker_heap_mb": num(2048), "resources": resourcesValue(names, map[string]tftypes.Value{
			"mirror_maker": roleValue(nil, 2048, nil, nil)})}, "resources.mirror_maker.memory_mb: a memory limit of 2048 MiB"},
		"a reservation above the derived limit": {map[string]tftypes.Value{"resources": resourcesValue(names, map[string]tftypes.Value{
			"mirror_maker": roleValue(nil, nil, nil, 4000)})}, "resources.mirror_maker.reserve_memory_mb: a reservation of 4000 MiB is above the memory limit of 1536 MiB"},
		"an unknown heap waits": {map[string]tftypes.Value{"heap_mb": num(tftypes.UnknownValue), "resources": resourcesValue(names, map[string]tftypes.Value{
			"kafka": roleValue(nil, 300, nil, nil)})}, ""},
	} {
		r := newMirrorResource().(*mirrorResource)
		resp := &resource.ValidateConfigResponse{}
		r.ValidateConfig(ctx, resource.ValidateConfigRequest{Config: resourceConfig(t, r, c.attrs)}, resp)
		got := ""
		if resp.Diagnostics.HasError() {
			e := resp.Diagnostics.Errors()[0]
			p := ""
			if ae, ok := e.(interface{ Path() path.Path }); ok {
				p = ae.Path().String()
			}
			got = p + ": " + e.Detail()
		}
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}

// TestResourcesPlan plans with the Terraform CLI (no Docker): the plan
// shows every default, fills the fields a role leaves out, leaves a JVM's
// memory limit to the heap, and validation refuses bad values.
func TestResourcesPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Terraform CLI; skipped under -short")
	}
	useTerraform(t)
	key := testKeyPEM(t)
	provider := `
provider "minibroker" {
  ssh_private_key = <<EOT
` + key + `EOT
  host_key_policy = "trust_on_first_use"
}
`
	swarm := func(resources string) string {
		return provider + `
resource "minibroker_swarm" "s" {
  hosts = [
    { address = "192.0.2.1", role = "manager" },
    { address = "192.0.2.2", role = "producer" },
  ]
` + resources + `
}
`
	}
	group := func(resources string) string {
		return provider + `
resource "minibroker_filter_group" "g" {
  swarm_id        = "x"
  manager_address = "192.0.2.1"
  name            = "g"
  mirror          = "m"
  filters         = [{ name = "f", expression = "true" }]
` + resources + `
}
resource "minibroker_mirror" "m" {
  swarm_id        = "x"
  manager_address = "192.0.2.1"
  name            = "m"
  node_index      = 0
  heap_mb         = 2048
}
`
	}
	at := func(res string, p ...any) plancheck.PlanCheck {
		return plancheck.ExpectKnownValue(res, tfjsonpath.New("resources").AtMapKey(p[0].(string)).AtMapKey(p[1].(string)), p[2].(knownvalue.Check))
	}
	num := knownvalue.Float64Exact
	intv := knownvalue.Int64Exact
	tfresource.UnitTest(t, tfresource.TestCase{
		ProtoV6ProviderFactories: factories,
		Steps: []tfresource.TestStep{
			{
				Config: swarm(`  resources = { producer = { cpus = 1.5 } }`), PlanOnly: true, ExpectNonEmptyPlan: true,
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PostApplyPreRefresh: []plancheck.PlanCheck{
					at("minibroker_swarm.s", "producer", "cpus", num(1.5)),
					at("minibroker_swarm.s", "producer", "memory_mb", intv(int64(swarmspec.ProducerResources.MemoryMB))),
					at("minibroker_swarm.s", "producer", "reserve_cpus", num(swarmspec.ProducerResources.ReserveCPUs)),
					at("minibroker_swarm.s", "hub", "cpus", num(swarmspec.HubResources.CPUs)),
					at("minibroker_swarm.s", "hub", "memory_mb", knownvalue.Null()),
					at("minibroker_swarm.s", "hub", "reserve_memory_mb", intv(int64(swarmspec.HubResources.ReserveMemoryMB))),
				}},
			},
			{
				Config: group(``), PlanOnly: true, ExpectNonEmptyPlan: true,
				ConfigPlanChecks: tfresource.ConfigPlanChecks{PostApplyPreRefresh: []plancheck.PlanCheck{
					at("minibroker_filter_group.g", "filter", "reserve_cpus", num(swarmspec.FilterResources.ReserveCPUs)),
					at("minibroker_filter_group.g", "consumer", "memory_mb", intv(int64(swarmspec.ConsumerResources.MemoryMB))),
					at("minibroker_mirror.m", "mirror_maker", "reserve_memory_mb", intv(int64(swarmspec.MirrorMakerResources.ReserveMemoryMB))),
				}},
			},
			{
				Config:      group(`  resources = { filter = { cpus = 0 } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`resources.filter.cpus value must be at least 0.01`),
			},
			{
				Config:      group(`  resources = { consumer = { memory_mb = 64, reserve_memory_mb = 128 } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`(?s)Reservation above its limit.*128 MiB is above the memory limit of 64 MiB`),
			},
			{
				Config:      swarm(`  resources = { hub = { memory_mb = 1024 } }`),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`Memory limit too low for the heap`),
			},
		},
	})
}
