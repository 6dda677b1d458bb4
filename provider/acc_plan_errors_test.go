package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
)

// TestAccPlanRefusesBadInput: what apply, or the processes it starts,
// would fail on fails the plan instead, naming the attribute (issue 13):
// reserved and duplicate filter outputs, filter names giving one service
// name, cost limits and time budgets out
// of range,
// malformed Kafka properties, mirror topics that are no regular
// expression or leave out the stream, and values out of range. Each step
// plans one bad input with the real Terraform CLI; no lab is needed, as
// validation runs before the provider connects anywhere. The last step
// is good input with every new attribute set, which gets past validation
// and stops at the provider's configuration (no SSH key).
func TestAccPlanRefusesBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Terraform; skipped under -short")
	}
	useTerraform(t)
	group := func(filters ...string) string {
		return `
resource "minibroker_filter_group" "g" {
  swarm_id        = "x"
  manager_address = "127.0.0.1"
  name            = "g"
  mirror          = "m"
  filters = [
    ` + strings.Join(filters, ",\n    ") + `
  ]
}`
	}
	mirror := func(attrs string) string {
		return `
resource "minibroker_mirror" "m" {
  swarm_id        = "x"
  manager_address = "127.0.0.1"
  name            = "m"
  node_index      = 0
  ` + attrs + `
}`
	}
	swarm := func(attrs string) string {
		return `
resource "minibroker_swarm" "s" {
  aws = {
    public_key        = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0wmN/Cr3JXqmLW7u+g9pTh+wyqDHpSQEIQczXkVx9q test"
    admin_cidr_blocks = ["203.0.113.7/32"]
  }
  ` + attrs + `
}`
	}
	step := func(config, want string) resource.TestStep {
		return resource.TestStep{Config: config, PlanOnly: true, ExpectError: regexp.MustCompile(`(?s)` + want)}
	}
	ws := `\s+` // Terraform wraps long messages
	words := func(s string) string { return strings.Join(strings.Fields(regexp.QuoteMeta(s)), ws) }
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		Steps: []resource.TestStep{
			// Filter outputs.
			step(group(`{ name = "ok", expression = "true" }`, `{ name = "alerts", expression = "true" }`),
				`Reserved output topic.*`+words(`filters[1] (alerts): its name, which is its output topic without`)+`.*`+
					words(`"alerts" is reserved: the full alert stream`)),
			step(group(`{ name = "f", expression = "true", output = "minibroker-schemas" }`),
				`Reserved output topic.*`+words(`filters[0] (f): its output topic "minibroker-schemas" is reserved: the schema registry's topic`)),
			step(group(`{ name = "f", expression = "true", output = "g-state" }`),
				`Reserved output topic.*`+words(`"g-state" is reserved: a filter process's state`)),
			step(group(`{ name = "f", expression = "true", output = "__consumer_offsets" }`),
				`Reserved output topic.*`+words(`is reserved: Kafka's internal topics`)),
			step(group(`{ name = "f1", expression = "true", output = "out" }`, `{ name = "f2", expression = "true", output = "out" }`),
				`Duplicate output topic.*`+words(`filters[1] (f2) writes to "out", as filters[0] (f1) does`)),
			// Filter x's consumer and isolated filter x-c would both be
			// mb-g-x-c; without x's consumer they apply.
			step(group(`{ name = "x", expression = "true" }`, `{ name = "x-c", expression = "true", output = "o2" }`),
				`Filter names collide.*`+words(`filters[0] (x) and filters[1] (x-c) would both have a service named "mb-g-x-c"`)),
			step(group(`{ name = "a.b", expression = "true" }`, `{ name = "f", expression = "true", output = "a_b" }`),
				`Duplicate output topic.*`+words(`Kafka takes '.' and '_' as the same`)),
			step(group(`{ name = "f", expression = "true", output = "no spaces" }`),
				`Invalid output topic.*`+words(`"no spaces" is not a Kafka topic name`)),
			// Cost limits.
			step(group(`{ name = "f", expression = "true", cost_limit = 0 }`),
				words(`filters[0].cost_limit value must be between 1 and `+fmt.Sprint(filter.MaxCostLimit)+`, got: 0`)),
			step(group(`{ name = "f", expression = "true", time_budget = "1ms" }`),
				words(`filters[0].time_budget`)+`.*`+words(`want a duration from 10ms to 1m0s`)),
			step(group(`{ name = "f", expression = "true", time_budget = "soon" }`),
				words(`Invalid time budget`)+`.*`+words(`filters[0].time_budget: want a duration`)),
			step(group(`{ name = "f", expression = "true", cost_limit = `+fmt.Sprint(filter.MaxCostLimit+1)+` }`),
				words(fmt.Sprintf(`value must be between 1 and %d, got: %d`, filter.MaxCostLimit, filter.MaxCostLimit+1))),
			// Kafka properties, wherever the provider takes them.
			step(mirror(`properties = { "Num.IO.Threads" = "8" }`),
				`Invalid Kafka property.*`+words(`"Num.IO.Threads" is not a Kafka configuration key`)),
			step(mirror(`properties = { "num.io.threads" = "" }`),
				`Invalid Kafka property.*`+words(`"num.io.threads" has an empty value`)),
			step(mirror(`mirror_maker_properties = { "hub->mirror.tasks.max" = "4", "sync.topic.acls.enabled" = "false\nreplication.factor=3" }`),
				`Invalid Kafka property.*`+words(`the value of "sync.topic.acls.enabled" holds a line break`)),
			step(mirror(`mirror_maker_properties = { "hub -> mirror.tasks.max" = "4" }`),
				`Invalid Kafka property.*`+words(`"hub -> mirror.tasks.max" is not a MirrorMaker 2 configuration key`)),
			step(swarm(`hub = { properties = { "log retention hours" = "1" } }`),
				`Invalid Kafka property.*`+words(`"log retention hours" is not a Kafka configuration key`)),
			// Mirror topics.
			step(mirror(`topics = "alerts"`),
				`Invalid mirror topics.*`+words(`"alerts" does not match minibroker-schemas`)),
			step(mirror(`topics = "(alerts|minibroker-schemas"`),
				`Invalid mirror topics.*`+words(`is not a regular expression`)),
			// Out of range.
			step(swarm(`producer = { cutout_bytes = 6000000 }`),
				words(fmt.Sprintf(`producer.cutout_bytes value must be between 0 and %d, got: 6000000`, maxCutoutBytes))),
			step(swarm(`producer = { alerts_per_visit = 2000000 }`),
				words(fmt.Sprintf(`producer.alerts_per_visit value must be between 1 and %d, got: 2000000`, maxAlertsPerVisit))),
			step(swarm(`hub = { retention_minutes = 3000000000 }`),
				words(fmt.Sprintf(`hub.retention_minutes value must be between 1 and %d, got: 3000000000`, maxRetentionMinutes))),
			// Good input gets past validation.
			step(swarm(`hub = { properties = { "num.io.threads" = "8" }, retention_minutes = 60 }
  producer = { cutout_bytes = 1000, alerts_per_visit = 500 }`)+
				mirror(`properties = { "num.io.threads" = "8" }
  mirror_maker_properties = { "hub->mirror.tasks.max" = "4" }
  topics = "alerts|minibroker-schemas|extra\\..*"`)+
				group(`{ name = "f1", expression = "true", cost_limit = 1, time_budget = "250ms" }`, `{ name = "f2", expression = "true", output = "f2-out", cost_limit = `+fmt.Sprint(filter.MaxCostLimit)+` }`),
				`Missing SSH private key`),
		},
	})
}
