package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// An upgrade must not replace a swarm (and its brokers' data) because
// encrypt_network, new, defaults to true: a swarm whose state predates it
// keeps its unencrypted network unless the configuration says otherwise.
func TestEncryptNetworkUpgradeKeepsTheSwarm(t *testing.T) {
	existing := tfsdk.State{Raw: tftypes.NewValue(tftypes.Object{}, map[string]tftypes.Value{})}
	for _, tc := range []struct {
		name          string
		state         tfsdk.State
		stateV, confV types.Bool
		want          types.Bool
	}{
		{"new swarm: the default", tfsdk.State{Raw: tftypes.NewValue(tftypes.Object{}, nil)}, types.BoolNull(), types.BoolNull(), types.BoolValue(true)},
		{"swarm from before the attribute", existing, types.BoolNull(), types.BoolNull(), types.BoolValue(false)},
		{"swarm from before, encryption asked for", existing, types.BoolNull(), types.BoolValue(true), types.BoolValue(true)},
		{"swarm with the attribute", existing, types.BoolValue(true), types.BoolNull(), types.BoolValue(true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := types.BoolValue(true) // the default, or the configured value
			if !tc.confV.IsNull() {
				plan = tc.confV
			}
			resp := planmodifier.BoolResponse{PlanValue: plan}
			legacyUnencrypted{}.PlanModifyBool(context.Background(), planmodifier.BoolRequest{
				State: tc.state, StateValue: tc.stateV, ConfigValue: tc.confV, PlanValue: plan}, &resp)
			if !resp.PlanValue.Equal(tc.want) {
				t.Errorf("planned %v, want %v", resp.PlanValue, tc.want)
			}
		})
	}
}
