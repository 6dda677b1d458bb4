package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/docker/docker/api/types/swarm"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

type scaleConfig struct {
	KeyFile, KnownHosts, Kafka, Workloads string
	Nodes                                 []lab.Node
	Consumers                             int
	HubProperties                         string
	Resources                             string
}

const scaleTemplate = `
provider "minibroker" {
  ssh_private_key = file("{{.KeyFile}}")
  host_key_policy = "trust_on_first_use"
  kafka_image     = "minibroker/kafka:dev"
}

resource "minibroker_swarm" "s" {
  encrypt_network = false # the lab's kernel cannot install IPsec states (docs/security.md)
  # This test is about the nodes, not Kafka's users: no access job. The
  # manager still runs the schema registry, from the workloads image.
  kafka_auth = false
  hosts = [
    { address = "{{(index .Nodes 0).Addr}}", role = "manager" },{{range $i, $n := .Nodes}}{{if and (gt $i 0) (le $i $.Consumers)}}
    { address = "{{$n.Addr}}", role = "consumer" },{{end}}{{end}}
  ]
  image_archives = ["{{.Workloads}}", "{{.Kafka}}"]
  hub      = { heap_mb = 256{{if .HubProperties}}, properties = {{.HubProperties}}{{end}} }
  producer = { enabled = false }
  timeouts = { update = "3m" }{{if .Resources}}
  resources = {{.Resources}}{{end}}
}
`

// TestAccSwarmScalesAndReportsFailures grows and shrinks the swarm in place
// (trust on first use keeps host keys in state), then asks for a hub no
// node has room for and breaks the hub, and expects each apply to fail with
// the reason (Swarm's, then the hub's own log lines), leaving the service in
// place; destroy still removes everything.
func TestAccSwarmScalesAndReportsFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, a lab of 3 Docker Engines and Terraform; skipped under -short")
	}
	useTerraform(t)
	workloads, kafka := imageArchives(t)
	l := lab.ForTest(t, 3)
	nodes := l.Nodes()
	mgr := engine(t, nodes[0])
	cfg := func(consumers int, props string) string {
		return render(t, scaleTemplate, scaleConfig{KeyFile: l.PrivateKeyFile(), KnownHosts: l.KnownHostsFile(),
			Kafka: kafka, Workloads: workloads, Nodes: nodes, Consumers: consumers, HubProperties: props})
	}
	withResources := func(res string) string {
		return render(t, scaleTemplate, scaleConfig{KeyFile: l.PrivateKeyFile(), KnownHosts: l.KnownHostsFile(),
			Kafka: kafka, Workloads: workloads, Nodes: nodes, Consumers: 1, Resources: res})
	}
	members := func(want int) resource.TestCheckFunc {
		return func(*terraform.State) error {
			list, err := mgr.NodeList(context.Background(), swarm.NodeListOptions{})
			if err != nil {
				return err
			}
			if len(list) != want {
				return fmt.Errorf("swarm has %d nodes, want %d", len(list), want)
			}
			for _, n := range list {
				if n.Spec.Labels["minibroker.role"] == "" {
					return fmt.Errorf("node %s has no role label", n.Description.Hostname)
				}
			}
			return nil
		}
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             checkNothingLeft(t, nodes),
		Steps: []resource.TestStep{
			{
				Config: cfg(1, ""),
				Check: resource.ComposeTestCheckFunc(members(2),
					resource.TestMatchResourceAttr("minibroker_swarm.s", "host_keys."+nodes[0].Addr, regexp.MustCompile(`^SHA256:`)),
					resource.TestCheckResourceAttr("minibroker_swarm.s", "nodes_by_role.consumer.#", "1")),
			},
			{
				Config: cfg(2, ""),
				Check: resource.ComposeTestCheckFunc(members(3),
					resource.TestCheckResourceAttr("minibroker_swarm.s", "nodes_by_role.consumer.#", "2")),
			},
			{
				Config: cfg(1, ""),
				Check: resource.ComposeTestCheckFunc(members(2), func(*terraform.State) error {
					info, err := engine(t, nodes[2]).Info(context.Background())
					if err != nil {
						return err
					}
					if info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
						return fmt.Errorf("removed host is still in the swarm (%s)", info.Swarm.LocalNodeState)
					}
					return nil
				}),
			},
			{
				// A hub that reserves more memory than any node has: the
				// apply fails with Swarm's reason after 30 s, not at its
				// timeout.
				Config:      withResources(`{ hub = { memory_mb = 1048576, reserve_memory_mb = 1048576 } }`),
				ExpectError: regexp.MustCompile(`(?s)service mb-hub: no node can take its task: no suitable node \(insufficient\s+resources`),
			},
			{
				// A hub that cannot start: the error carries Kafka's own words.
				Config:      cfg(1, `{ "num.network.threads" = "many" }`),
				ExpectError: regexp.MustCompile(`(?s)service mb-hub: \d+ tasks failed.*last \d+ log lines.*num\.network\.threads.*left in place`),
			},
		},
	})
}
