package swarmspec

import (
	"fmt"
	"path"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// Producer describes the alert producer, placed on the producer node.
type Producer struct {
	Image          string
	Network        string
	AlertsPerVisit int
	Interval       time.Duration
	// Visits to send; 0 sends forever.
	Visits      int
	CutoutBytes int
	Parallel    int
	Seed        int64
	Partitions  int
	// Replay holds Avro container files (name → content) to cycle through
	// instead of synthetic alerts.
	Replay []ReplayFile
	// Resources of the producer's task; zero fields take ProducerResources.
	Resources Resources
	// Security, when set, is how the producer authenticates to the hub.
	Security *Security
	// Registry is the schema registry the producer registers through;
	// nil: it writes the schemas topic itself.
	Registry *Registry
}

// ReplayFile is one Avro container file of real alerts.
type ReplayFile struct {
	Name string
	Data []byte
}

// ProducerSpec is the alert producer service.
func ProducerSpec(p Producer) Desired {
	partitions := p.Partitions
	if partitions == 0 {
		partitions = stream.DefaultPartitions
	}
	args := []string{"produce",
		"--bootstrap", Bootstrap(HubService),
		"--alerts-per-visit", itoa(p.AlertsPerVisit),
		"--interval", p.Interval.String(),
		"--visits", itoa(p.Visits),
		"--cutout-bytes", itoa(p.CutoutBytes),
		"--parallel", itoa(max(p.Parallel, 1)),
		"--seed", fmt.Sprint(p.Seed),
		"--partitions", itoa(partitions),
		"--name", "producer",
	}
	var configs []Config
	for i, f := range p.Replay {
		c := newConfig(fmt.Sprintf("%s-replay%d", ProducerService, i), f.Data,
			path.Join(ConfigDir, "replay", fmt.Sprintf("%d-%s", i, path.Base(f.Name))))
		configs = append(configs, c)
		args = append(args, "--replay", c.Target)
	}
	svc := service{
		name:             ProducerService,
		image:            p.Image,
		command:          []string{WorkloadsBinary},
		args:             args,
		labels:           labels(OwnerSwarm, ComponentProducer),
		constraints:      NodeConstraints(RoleProducer, -1),
		network:          p.Network,
		configs:          configs,
		resources:        p.Resources,
		restartOnFailure: p.Visits > 0,
	}
	p.Security.secureClient(&svc, ProducerUser)
	if p.Registry != nil {
		p.Registry.registryClient(&svc)
	}
	return svc.build()
}

// SwarmAccessSpec is the access job of the swarm's own users on the hub:
// the producer, the report reader, the registry and, in a swarm fed from
// upstream (ingest), the upstream relay. The producer's user stays while
// the relay runs in its place, so switching back needs no new user.
func SwarmAccessSpec(image, network string, sec *Security, ingest bool) Desired {
	users := []access.User{
		sec.user(ProducerUser, access.ProducerGrants(stream.AlertsTopic, stream.SchemasTopic, stream.TimingTopic)),
		sec.user(ReportUser, access.TimingReaderGrants(stream.TimingTopic)),
		sec.user(RegistryUser, access.RegistryGrants(stream.SchemasTopic)),
	}
	if ingest {
		users = append(users, sec.ingestUser())
	}
	plan := access.Plan{Owner: swarmUsers, Clusters: []access.ClusterPlan{cluster(Bootstrap(HubService), users...)}}
	return sec.accessJob(SwarmAccessService, image, network, OwnerSwarm, plan)
}
