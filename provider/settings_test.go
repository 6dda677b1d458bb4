package provider

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// The settings label must give back, on import, exactly the attributes it
// was written from: a difference would show as a change in the first plan
// after an import.
func TestSettingsLabelRoundTrips(t *testing.T) {
	ctx := context.Background()
	sw := newSwarmResource().(*swarmResource)
	var m swarmModel
	nullModel(t, sw.settings, &m)
	m.Hosts = hostList(hostModelsOf("manager", "producer", "filter"))
	m.Network = types.StringValue("minibroker")
	m.AddressPool = types.StringValue("10.8.0.0/16")
	m.KafkaImage = types.StringValue("k:1")
	m.WorkloadsImage = types.StringValue("w:1")
	m.ImageArchives = types.ListValueMust(types.StringType, []attr.Value{types.StringValue("/local/k.tar")})
	m.Hub = objectDefault(hubSchema().Attributes)
	m.Producer = objectDefault(producerSchema().Attributes)
	// Fractional CPUs must come back as they went.
	res := objectDefault(resourcesSchema("", swarmRoles...).Attributes).Attributes()
	producer := res["producer"].(types.Object).Attributes()
	producer["reserve_cpus"] = types.Float64Value(0.05)
	res["producer"] = types.ObjectValueMust(res["producer"].(types.Object).AttributeTypes(ctx), producer)
	m.Resources = types.ObjectValueMust(m.Resources.AttributeTypes(ctx), res)
	label, err := sw.settings.encode(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(label, "/local/k.tar") {
		t.Errorf("the label carries a local archive path: %s", label)
	}
	var got swarmModel
	nullModel(t, sw.settings, &got)
	if err := sw.settings.decode(ctx, label, &got); err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2]attr.Value{
		"hosts": {m.Hosts, got.Hosts}, "hub": {m.Hub, got.Hub}, "producer": {m.Producer, got.Producer}, "resources": {m.Resources, got.Resources},
		"address_pool": {m.AddressPool, got.AddressPool}, "kafka_image": {m.KafkaImage, got.KafkaImage},
	} {
		if !pair[0].Equal(pair[1]) {
			t.Errorf("%s: wrote %v, read back %v", name, pair[0], pair[1])
		}
	}
	if again, _ := sw.settings.encode(ctx, got); again != label {
		t.Errorf("label changed on the way back:\n%s\n%s", label, again)
	}

	fg := newFilterGroupResource().(*filterGroupResource)
	var g filterGroupModel
	nullModel(t, fg.settings, &g)
	g.Mirror, g.Mode, g.WorkloadsImage = types.StringValue("m0"), types.StringValue("shared"), types.StringValue("w:1")
	g.Filters = []filterModel{{Name: types.StringValue("bright"), Expression: types.StringValue("alert.x > 1.0"),
		MaxPerVisit: types.Int64Value(-1), Output: types.StringNull(), Consumer: types.BoolValue(false),
		ConsumerNode: types.Int64Value(2), Readers: types.ListValueMust(types.StringType, []attr.Value{types.StringValue("alice")})}}
	g.Name = types.StringValue("g0")
	g.SwarmID = types.StringValue("not-carried")
	label, err = fg.settings.encode(ctx, &g)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(label, "not-carried") {
		t.Errorf("the label carries the swarm id, which import takes from the swarm: %s", label)
	}
	var gg filterGroupModel
	nullModel(t, fg.settings, &gg)
	if err := fg.settings.decode(ctx, label, &gg); err != nil {
		t.Fatal(err)
	}
	if len(gg.Filters) != 1 || !reflect.DeepEqual(gg.Filters[0], g.Filters[0]) || gg.Mode != g.Mode || gg.Name != g.Name {
		t.Errorf("filter group: wrote %+v, read back %+v", g, gg)
	}

	// Sensitive attributes never reach a label: the hub's properties
	// (nested) and a mirror's (top level) come back unset.
	secret := types.MapValueMust(types.StringType, map[string]attr.Value{
		"listener.name.sasl.scram-sha-512.sasl.jaas.config": types.StringValue("password=\"hunter2\"")})
	hub := objectDefault(hubSchema().Attributes).Attributes()
	hub["properties"] = secret
	m.Hub = types.ObjectValueMust(m.Hub.AttributeTypes(ctx), hub)
	label, err = sw.settings.encode(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(label, "hunter2") {
		t.Errorf("the swarm's label carries the hub's sensitive properties: %s", label)
	}
	nullModel(t, sw.settings, &got)
	if err := sw.settings.decode(ctx, label, &got); err != nil {
		t.Fatal(err)
	}
	if p := got.Hub.Attributes()["properties"]; !p.IsNull() {
		t.Errorf("hub properties read back from the label: %v", p)
	}
	mr0 := newMirrorResource().(*mirrorResource)
	var mirror mirrorModel
	nullModel(t, mr0.settings, &mirror)
	mirror.Name, mirror.Properties = types.StringValue("m0"), secret
	if label, err = mr0.settings.encode(ctx, &mirror); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(label, "hunter2") || !strings.Contains(label, `"m0"`) {
		t.Errorf("the mirror's label: %s", label)
	}

	// A label of a provider from before the codec (here a mirror's) is
	// refused with what to do, not read as nulls.
	old := `{"Name":"m0","NodeIndex":0,"Kafka":{"Image":"k:1","Network":"","HeapMB":384}}`
	mr := newMirrorResource().(*mirrorResource)
	var mm mirrorModel
	nullModel(t, mr.settings, &mm)
	if err := mr.settings.decode(ctx, old, &mm); err == nil || !strings.Contains(err.Error(), "older version of the provider") {
		t.Errorf("old label: %v", err)
	}
}

// nullModel sets every attribute of a model to null, as a new state has
// them.
func nullModel(t *testing.T, c settingsCodec, model any) {
	t.Helper()
	ctx := context.Background()
	vals := map[string]attr.Value{}
	for name, typ := range c.attrTypes {
		var err error
		if vals[name], err = typ.ValueFromTerraform(ctx, tftypes.NewValue(typ.TerraformType(ctx), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if d := types.ObjectValueMust(c.attrTypes, vals).As(ctx, model, basetypes.ObjectAsOptions{}); d.HasError() {
		t.Fatal(d)
	}
}
