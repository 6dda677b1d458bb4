package swarmspec

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
)

// Defaults shared by every component.
const (
	DefaultNetwork        = "minibroker"
	DefaultKafkaImage     = "apache/kafka:4.3.1"
	DefaultWorkloadsImage = "minibroker/workloads:dev"
	KafkaPort             = 9092
	HubService            = "mb-hub"
	ProducerService       = "mb-producer"
	IngestService         = "mb-ingest" // the upstream relay, in the producer's place (IngestSpec)

	// ConfigDir is where configs are mounted inside containers.
	ConfigDir = "/etc/minibroker"
	// WorkloadsBinary is the minibroker binary inside the workloads image.
	WorkloadsBinary = "/minibroker"
	// MaxConfigBytes is the most a Swarm config holds (500 KiB).
	MaxConfigBytes = 500 * 1024
)

// Desired is one service to run and the Swarm configs it mounts. The spec's
// config references carry ConfigName only; the provider fills in ConfigID
// once the configs exist.
type Desired struct {
	Spec    swarm.ServiceSpec
	Configs []Config
	// Secrets are Swarm secrets, mounted like Configs but under
	// SecretsDir, with Target the file name there.
	Secrets []Config
}

// Name returns the service name.
func (d Desired) Name() string { return d.Spec.Name }

// SetSettings puts a resource's settings on the service (LabelSettings)
// and hashes the spec again, as the label is part of it.
func (d *Desired) SetSettings(settings string) {
	d.Spec.Labels[LabelSettings] = settings
	d.Spec.Labels[LabelSpecHash] = Hash(d.Spec, d.Configs)
}

// Config is a Swarm config with a content-hashed name: a change of content
// is a new config, which is how Swarm configs can be "updated" at all.
type Config struct {
	Name   string
	Data   []byte
	Target string // file path inside the container
	// Generate, when set, makes Data the first time the object is
	// created; the name then identifies what it is for rather than its
	// content (a broker's keystore: a new key only for a new CA or new
	// names). Not part of any hash.
	Generate func() ([]byte, error) `json:"-"`
}

// newConfig names a config after its base name and a hash of its content.
func newConfig(base string, data []byte, target string) Config {
	sum := sha256.Sum256(data)
	return Config{Name: base + "-" + hex.EncodeToString(sum[:5]), Data: data, Target: target}
}

// service holds what differs between our services; build turns it into a
// ServiceSpec with the settings they all share.
type service struct {
	name, image      string
	resources        Resources // zero fields take DefaultResources of the component
	command, args    []string
	env              []string
	labels           map[string]string
	constraints      []string
	network          string
	configs          []Config
	secrets          []Config      // Swarm secrets (see newSecret)
	mounts           []mount.Mount // named volumes (see dataVolume)
	ports            []swarm.PortConfig
	replicas         uint64
	restartOnFailure bool // a producer with a finite number of visits ends
	job              bool // runs once to completion (a replicated job), again on each change
}

func (s service) build() Desired {
	replicas := s.replicas
	if replicas == 0 {
		replicas = 1
	}
	refs := make([]*swarm.ConfigReference, 0, len(s.configs))
	for _, c := range s.configs {
		refs = append(refs, &swarm.ConfigReference{
			ConfigName: c.Name,
			File:       &swarm.ConfigReferenceFileTarget{Name: c.Target, UID: "0", GID: "0", Mode: 0o444},
		})
	}
	var secretRefs []*swarm.SecretReference
	for _, c := range s.secrets {
		secretRefs = append(secretRefs, &swarm.SecretReference{
			SecretName: c.Name,
			File:       &swarm.SecretReferenceFileTarget{Name: c.Target, UID: "0", GID: "0", Mode: 0o400},
		})
	}
	mode := swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}}
	if s.job {
		one := uint64(1)
		mode = swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &one, TotalCompletions: &one}}
	}
	endpoint := &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: s.ports}
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: s.name, Labels: s.labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:    s.image,
				Command:  s.command,
				Args:     s.args,
				Env:      s.env,
				Hostname: s.name,
				Configs:  refs,
				Secrets:  secretRefs,
				Mounts:   s.mounts,
				Labels:   map[string]string{LabelManaged: "true", LabelOwner: s.labels[LabelOwner]},
			},
			Resources:     s.resources.Or(DefaultResources(s.labels[LabelComponent])).requirements(),
			RestartPolicy: restartPolicy(s.restartOnFailure || s.job),
			Placement:     &swarm.Placement{Constraints: s.constraints},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: s.network, Aliases: []string{s.name}}},
		},
		Mode: mode,
		// No IPVS is needed: clients resolve the service name to its tasks;
		// a published port is on its node only (host mode).
		EndpointSpec: endpoint,
	}
	all := append(slices.Clone(s.configs), s.secrets...)
	spec.TaskTemplate.ContainerSpec.Labels[LabelTaskHash] = TaskHash(spec.TaskTemplate, all)
	spec.Labels[LabelSpecHash] = Hash(spec, all)
	return Desired{Spec: spec, Configs: s.configs, Secrets: s.secrets}
}

// RestartDelay is how long Swarm waits before it restarts a task.
//
// Tasks restart whatever made them end (on failure only for a producer
// sent a finite number of visits, which ends when done), after
// RestartDelay, and never give up (MaxAttempts 0, so the Window that
// counts attempts is 0 too): a broker, MirrorMaker 2 or filter that
// stopped restarting would leave the pipeline broken with nothing in
// Terraform's plan to show it, while one that fails for a passing reason
// (its broker restarting, its node rebooting, a memory limit hit once)
// comes back on its own. Swarm has no exponential back-off
// (moby/swarmkit#1201): this fixed delay, Swarm's own default, bounds a
// crash loop to 12 restarts a minute, and the provider's wait reports a
// loop after 3 failed tasks (internal/swarmctl) with their error and last
// log lines.
const RestartDelay = 5 * time.Second

// restartPolicy is the restart policy of a service; onFailure for one
// that ends when its work is done.
func restartPolicy(onFailure bool) *swarm.RestartPolicy {
	condition := swarm.RestartPolicyConditionAny
	if onFailure {
		condition = swarm.RestartPolicyConditionOnFailure
	}
	delay, attempts, window := RestartDelay, uint64(0), time.Duration(0)
	return &swarm.RestartPolicy{Condition: condition, Delay: &delay, MaxAttempts: &attempts, Window: &window}
}

// TaskHash fingerprints what a task runs. It rides on every container of
// the service, so tasks of the current spec can be told from those of an
// earlier one; service labels are not part of it, so changing them (as
// the settings label does) restarts nothing.
func TaskHash(t swarm.TaskSpec, configs []Config) string {
	cs := *t.ContainerSpec
	cs.Labels = withoutKey(cs.Labels, LabelTaskHash)
	t.ContainerSpec = &cs
	b, _ := json.Marshal(struct {
		Task    swarm.TaskSpec
		Configs []Config
	}{t, configs})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Hash fingerprints a desired spec and its configs' contents. It is stored
// in the LabelSpecHash label, so Read can tell whether a running service
// still is what the provider created.
func Hash(spec swarm.ServiceSpec, configs []Config) string {
	spec.Labels = withoutKey(spec.Labels, LabelSpecHash)
	b, _ := json.Marshal(struct {
		Spec    swarm.ServiceSpec
		Configs []Config
	}{spec, configs})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func withoutKey(m map[string]string, key string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// ClusterID derives a stable KRaft cluster id from a service name: the
// first 16 bytes of a hash, hashed again while the id is one the storage
// tool cannot take (see kafkaconf.ClusterID).
func ClusterID(seed string) string {
	sum := sha256.Sum256([]byte("minibroker/" + seed))
	for {
		if id, ok := kafkaconf.ClusterID([16]byte(sum[:16])); ok {
			return id
		}
		sum = sha256.Sum256(sum[:])
	}
}

// Bootstrap is the address clients on the overlay network use for a Kafka
// service: the service name resolves to its task (endpoint mode dnsrr).
func Bootstrap(service string) string { return service + ":" + itoa(KafkaPort) }

func itoa(i int) string { return strconv.Itoa(i) }
