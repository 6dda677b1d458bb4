package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/upstream"
)

type upstreamConfig struct {
	KeyFile, KnownHosts, Workloads, Kafka string
	Nodes                                 []lab.Node
	Up                                    *upstream.Upstream
	CA                                    string
	User                                  string
	Topic                                 string
}

const upstreamTemplate = `
provider "minibroker" {
  ssh_private_key  = file("{{.KeyFile}}")
  known_hosts_file = "{{.KnownHosts}}"
  kafka_image      = "minibroker/kafka:dev"
  workloads_image  = "minibroker/workloads:dev"
}

resource "minibroker_swarm" "up" {
  encrypt_network = false # the lab's kernel cannot install IPsec states (docs/security.md)
  hosts = [
    { address = "{{(index .Nodes 0).Addr}}", role = "manager" },
    { address = "{{(index .Nodes 1).Addr}}", role = "producer" },
    { address = "{{(index .Nodes 2).Addr}}", role = "filter" },
    { address = "{{(index .Nodes 3).Addr}}", role = "consumer" },
  ]
  image_archives = ["{{.Workloads}}", "{{.Kafka}}"]
  hub            = { heap_mb = 384 }
  upstream = {
    bootstrap      = "{{.Up.Broker.Bootstrap}}"
    topic          = "{{.Topic}}"
    username       = "{{.User}}"
    password       = "{{.Up.Password}}"
    ca_certificate = <<-EOT
{{.CA}}
EOT
    schema_registry_url      = "{{.Up.RegistryURL}}"
    schema_registry_username = "{{.User}}"
    schema_registry_password = "{{.Up.Password}}"
    from_beginning           = true
  }
}

resource "minibroker_mirror" "m0" {
  swarm_id             = minibroker_swarm.up.id
  manager_address      = minibroker_swarm.up.manager_address
  kafka_credentials    = minibroker_swarm.up.kafka_credentials
  name                 = "m0"
  node_index           = 0
  heap_mb              = 384
  mirror_maker_heap_mb = 256
}

resource "minibroker_filter_group" "g0" {
  swarm_id          = minibroker_swarm.up.id
  manager_address   = minibroker_swarm.up.manager_address
  kafka_credentials = minibroker_swarm.up.kafka_credentials
  name              = "g0"
  mirror            = minibroker_mirror.m0.name
  mode              = "shared"
  visit_quiet_time  = "15s"
  filters = [
    { name = "bright", expression = "alert.diaSource.snr > 90.0", max_per_visit = 100 },
  ]
}
`

// TestAccSwarmFedFromUpstream applies a swarm fed from an upstream stream
// with the real Terraform CLI on the lab, as a community broker would: the
// upstream (internal/testbed/upstream: a Kafka broker with SCRAM over TLS
// and a schema registry holding Rubin's v11 at id 1100, written by
// Python's confluent-kafka with Rubin-format alerts and no mb-* headers)
// listens on the lab's gateway, where the nodes reach it. Two visits come
// once the filters run (from_beginning is set, but the upstream is empty
// when the relay starts; a new filter starts at the stream's end, as
// always). The swarm runs mb-ingest instead of mb-producer, the upstream's password
// is in no service's labels, command or env, and the filter's owner,
// with Python's AvroDeserializer and only the readers and
// schema_registry_properties outputs, decodes exactly an independent
// selection of both visits, every alert under id 1100.
func TestAccSwarmFedFromUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, a lab of 4 Docker Engines, Kafka and Terraform; skipped under -short")
	}
	useTerraform(t)
	workloads, kafka := imageArchives(t)
	l := lab.ForTest(t, 4)
	nodes := l.Nodes()
	up := upstream.ForTest(t, l.Gateway().String())
	ca, err := os.ReadFile(up.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := render(t, upstreamTemplate, upstreamConfig{KeyFile: l.PrivateKeyFile(), KnownHosts: l.KnownHostsFile(),
		Workloads: workloads, Kafka: kafka, Nodes: nodes, Up: up, CA: strings.TrimSpace(string(ca)), User: upstream.User, Topic: upstream.Topic})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	visits := []upstream.Visit{{ID: 2001, Count: 200}, {ID: 2002, Count: 200}}
	var wrote []upstream.Alert
	mgr := engine(t, nodes[0])

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             checkNothingLeft(t, nodes),
		Steps: []resource.TestStep{{
			Config: cfg,
			Check: resource.ComposeTestCheckFunc(
				func(*terraform.State) error {
					services, err := mgr.ServiceList(ctx, swarm.ServiceListOptions{})
					if err != nil {
						return err
					}
					var names []string
					for _, svc := range services {
						names = append(names, svc.Spec.Name)
						cs := svc.Spec.TaskTemplate.ContainerSpec
						shown, _ := json.Marshal([]any{svc.Spec.Labels, cs.Labels, cs.Command, cs.Args, cs.Env})
						if strings.Contains(string(shown), up.Password) {
							return fmt.Errorf("service %s shows the upstream's password in its labels, command, args or env", svc.Spec.Name)
						}
					}
					if !slices.Contains(names, swarmspec.IngestService) || slices.Contains(names, swarmspec.ProducerService) {
						return fmt.Errorf("services %v: want %s and no %s", names, swarmspec.IngestService, swarmspec.ProducerService)
					}
					node, err := runningTaskNode(ctx, mgr, swarmspec.IngestService)
					if err != nil {
						return err
					}
					t.Logf("%s runs on %s; no service shows the upstream's password", swarmspec.IngestService, node)
					return nil
				},
				func(s *terraform.State) error {
					for _, v := range visits {
						wrote = append(wrote, up.Write(ctx, t, v)...)
						time.Sleep(5 * time.Second)
					}
					return checkUpstreamReader(ctx, t, s, wrote, visits)
				},
			),
		}},
	})
}

// checkUpstreamReader reads the filter bright from outside the swarm, as
// its owner would, decoding through the swarm's registry, until it has
// both visits, and compares them with an independent selection.
func checkUpstreamReader(ctx context.Context, t *testing.T, s *terraform.State, wrote []upstream.Alert, visits []upstream.Visit) error {
	readers, err := readersOutput(s, "minibroker_filter_group.g0")
	if err != nil {
		return err
	}
	r, ok := readers["bright"]
	if !ok {
		return fmt.Errorf("no reader for bright in %v", readers)
	}
	dir, props := readerDir(t, r)
	sw := s.RootModule().Resources["minibroker_swarm.up"].Primary.Attributes
	regProps := filepath.Join(dir, "registry.properties")
	if err := os.WriteFile(regProps, []byte(sw["schema_registry_properties"]), 0o600); err != nil {
		return err
	}
	want := map[int64][]string{}
	for _, v := range visits {
		want[v.ID] = upstream.Select(wrote, v.ID, 90)
	}
	var got map[int64][]string
	var last string
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
		alerts, code, stderr := outsideReader(ctx, t, dir, props, r.Topic, "--registry", regProps)
		got = map[int64][]string{}
		for _, a := range alerts {
			if a.SchemaID != upstream.RubinV11ID || a.Decoded != a.ID {
				return fmt.Errorf("AvroDeserializer decoded alert %s as diaSourceId %q with schema id %d; want the same id and %d",
					a.ID, a.Decoded, a.SchemaID, upstream.RubinV11ID)
			}
			got[a.Visit] = append(got[a.Visit], a.Decoded)
		}
		last = fmt.Sprintf("exit %d, %d alerts: %s", code, len(alerts), stderr)
		if len(got[visits[1].ID]) >= len(want[visits[1].ID]) {
			break
		}
		time.Sleep(5 * time.Second)
	}
	for _, v := range visits {
		if !slices.Equal(sortedIDs(got[v.ID]), sortedIDs(want[v.ID])) {
			return fmt.Errorf("visit %d: the outside reader decoded %d alerts %v, want the %d selected independently %v (last read: %s)",
				v.ID, len(got[v.ID]), got[v.ID], len(want[v.ID]), want[v.ID], last)
		}
	}
	t.Logf("outside reader (python AvroDeserializer, schema registry at %s): visits %d and %d, %d and %d alerts, each exactly the independent selection, id %d",
		sw["schema_registry_url"], visits[0].ID, visits[1].ID, len(got[visits[0].ID]), len(got[visits[1].ID]), upstream.RubinV11ID)
	return nil
}

func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
