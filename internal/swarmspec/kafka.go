package swarmspec

import (
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// Kafka describes one single-node KRaft Kafka (broker and controller in one
// process), the hub or a mirror.
type Kafka struct {
	Image   string
	Network string
	HeapMB  int
	// Partitions is num.partitions, used for topics created on first use.
	Partitions int
	// RetentionMinutes is log.retention.minutes (0 keeps Kafka's default).
	RetentionMinutes int
	// Properties override server.properties entries.
	Properties map[string]string
	// Resources of the broker's task; zero fields take the defaults
	// (HubResources or MirrorKafkaResources, the memory limit JVMMemoryMB).
	Resources Resources
	// Security, when set, secures the broker.
	Security *Security
	// External, on a secured mirror, adds the listener for users outside
	// the swarm (ignored without Security).
	External *External
}

// Kafka heap and topic defaults.
const (
	DefaultKafkaHeapMB       = 1024
	DefaultMirrorMakerHeapMB = 512
	DefaultRetentionMinutes  = 60
	kafkaDataDir             = "/var/lib/kafka/data"
)

// HubSpec is the hub Kafka, placed on the manager node.
func HubSpec(k Kafka) Desired {
	l := labels(OwnerSwarm, ComponentHub)
	if k.Security != nil {
		l[LabelKafkaCA] = k.Security.CAFingerprint()
	}
	return kafkaService(k, HubService, l, NodeConstraints(RoleManager, -1))
}

// DataVolume names the local volume that keeps a Kafka service's data (its
// log directories and KRaft metadata) on the node the service is pinned to.
func DataVolume(service string) string { return service + "-data" }

// dataVolume mounts a Kafka service's data volume at its log directory, so
// that a task restart, a dockerd restart or a reboot of its node resumes
// with every topic, consumer group offset and (on a mirror) MirrorMaker 2's
// state, which MirrorMaker 2 keeps in topics of the mirror Kafka. The local
// driver creates the volume on first use, with the labels given here (by
// which swarmctl removes only what it created), and copies into it the
// image's directory at the target with its ownership (root in our image,
// which runs as root; appuser in apache/kafka, which runs as appuser and
// could not write a directory owned by root), which is why NoCopy stays
// unset. swarmctl removes the volume with the service.
func dataVolume(service, owner string) mount.Mount {
	return mount.Mount{
		Type:   mount.TypeVolume,
		Source: DataVolume(service),
		Target: kafkaDataDir,
		VolumeOptions: &mount.VolumeOptions{
			Labels: map[string]string{LabelManaged: "true", LabelOwner: owner},
		},
	}
}

// MirrorKafkaService names the Kafka service of a mirror.
func MirrorKafkaService(mirror string) string { return "mb-mirror-" + mirror }

// MirrorMakerService names the MirrorMaker 2 service of a mirror.
func MirrorMakerService(mirror string) string { return "mb-mirror-" + mirror + "-mm2" }

// Mirror describes a downstream Kafka and the MirrorMaker 2 that fills it
// from the hub, both on one filter node.
type Mirror struct {
	Name      string
	NodeIndex int // index among the filter nodes
	Kafka     Kafka
	// Topics is the Java regex of hub topics to copy.
	Topics            string
	MirrorMakerHeapMB int
	// MirrorMakerProperties override mm2.properties entries.
	MirrorMakerProperties map[string]string
	// MirrorMakerResources of MirrorMaker 2's task; zero fields take
	// MirrorMakerResources, the memory limit JVMMemoryMB.
	MirrorMakerResources Resources
	// AccessImage is the workloads image, which runs the access job of a
	// secured mirror.
	AccessImage string
}

// MirrorSpecs returns the mirror's Kafka and its MirrorMaker 2.
func MirrorSpecs(m Mirror) []Desired {
	owner := MirrorOwner(m.Name)
	place := NodeConstraints(RoleFilter, m.NodeIndex)
	kafkaName := MirrorKafkaService(m.Name)
	l := labels(owner, ComponentMirrorKafka, LabelMirror, m.Name, LabelIndex, itoa(m.NodeIndex))
	if e := m.Kafka.External; e != nil && m.Kafka.Security != nil {
		l[LabelExternal] = e.Bootstrap()
	}
	broker := kafkaService(m.Kafka, kafkaName, l, place)

	opts := kafkaconf.MirrorOptions{
		SourceBootstrap: Bootstrap(HubService),
		TargetBootstrap: Bootstrap(kafkaName),
		Topics:          m.Topics,
		Overrides:       m.MirrorMakerProperties,
	}
	sec := m.Kafka.Security
	mmUser := MirrorMakerUser(m.Name)
	if sec != nil {
		auth := sec.clientAuth(mmUser)
		opts.SourceAuth, opts.TargetAuth = &auth, &auth
	}
	props := []byte(kafkaconf.MirrorMakerProperties(opts))
	mmName := MirrorMakerService(m.Name)
	heap := m.MirrorMakerHeapMB
	if heap == 0 {
		heap = DefaultMirrorMakerHeapMB
	}
	mm := service{
		name:        mmName,
		image:       m.Kafka.Image,
		env:         []string{heapEnv(heap)},
		resources:   jvmResources(m.MirrorMakerResources, ComponentMirrorMaker, heap),
		labels:      labels(owner, ComponentMirrorMaker, LabelMirror, m.Name),
		constraints: place,
		network:     m.Kafka.Network,
	}
	// Secured, mm2.properties holds MirrorMaker 2's password: a secret.
	propsPath := ConfigDir + "/mm2.properties"
	if sec != nil {
		propsPath = SecretsDir + "/" + mirrorMakerFile
		mm.configs = []Config{sec.caConfig(mmName)}
		mm.secrets = []Config{newSecret(mmName, props, mirrorMakerFile)}
	} else {
		mm.configs = []Config{newConfig(mmName, props, propsPath)}
	}
	mm.command = []string{"/bin/sh", "-c", "exec /opt/kafka/bin/connect-mirror-maker.sh " + propsPath}
	out := []Desired{broker, mm.build()}
	if sec != nil {
		plan := access.Plan{Owner: mirrorUsers(m.Name), Clusters: []access.ClusterPlan{
			cluster(Bootstrap(HubService), sec.user(mmUser, access.MirrorMakerSourceGrants())),
			cluster(Bootstrap(kafkaName), sec.user(mmUser, access.MirrorMakerTargetGrants())),
		}}
		out = append(out, sec.accessJob(MirrorAccessService(m.Name), m.AccessImage, m.Kafka.Network, owner, plan))
	}
	return out
}

// MirrorRemovalSpecs are what a secured mirror leaves while it is being
// removed: its access job with an empty plan for the hub, which removes
// its MirrorMaker 2's user and ACLs there (the mirror's own users go with
// its broker and volume). Nil for a mirror without security.
func MirrorRemovalSpecs(m Mirror) []Desired {
	sec := m.Kafka.Security
	if sec == nil {
		return nil
	}
	plan := access.Plan{Owner: mirrorUsers(m.Name), Clusters: []access.ClusterPlan{cluster(Bootstrap(HubService))}}
	return []Desired{sec.accessJob(MirrorAccessService(m.Name), m.AccessImage, m.Kafka.Network, MirrorOwner(m.Name), plan)}
}

// kafkaService runs kafka-storage format (a no-op once formatted) and then
// the server, with server.properties from a Swarm config.
func kafkaService(k Kafka, name string, l map[string]string, constraints []string) Desired {
	overrides := map[string]string{}
	if k.RetentionMinutes > 0 {
		overrides["log.retention.minutes"] = itoa(k.RetentionMinutes)
	}
	for key, v := range k.Properties {
		overrides[key] = v
	}
	partitions := k.Partitions
	if partitions == 0 {
		partitions = stream.DefaultPartitions
	}
	opts := kafkaconf.BrokerOptions{
		ListenerHost:   "0.0.0.0",
		ListenerPort:   KafkaPort,
		AdvertisedHost: name,
		LogDirs:        kafkaDataDir,
		NumPartitions:  partitions,
		Overrides:      overrides,
	}
	var configs, secrets []Config
	var ports []swarm.PortConfig
	if k.Security != nil {
		opts.Security, secrets = k.Security.brokerSecurity(name, k.External)
		configs = append(configs, k.Security.caConfig(name))
		if e := k.External; e != nil {
			ports = []swarm.PortConfig{{Protocol: swarm.PortConfigProtocolTCP, TargetPort: uint32(e.Port),
				PublishedPort: uint32(e.Port), PublishMode: swarm.PortConfigPublishModeHost}}
		}
	}
	// Secured, server.properties holds the admin's password: a secret.
	server := []byte(kafkaconf.BrokerProperties(opts))
	cfg, propsPath := newConfig(name+"-server", server, ConfigDir+"/server.properties"), ConfigDir+"/server.properties"
	if k.Security != nil {
		secrets = append(secrets, newSecret(name+"-server", server, serverPropertiesFile))
		propsPath = SecretsDir + "/" + serverPropertiesFile
	} else {
		configs = append(configs, cfg)
	}
	format := strings.Join(kafkaconf.FormatArgs(ClusterID(name), propsPath), " ")
	heap := k.HeapMB
	if heap == 0 {
		heap = DefaultKafkaHeapMB
	}
	return service{
		name:  name,
		image: k.Image,
		command: []string{"/bin/sh", "-c", fmt.Sprintf("set -e\n/opt/kafka/bin/kafka-storage.sh %s\nexec /opt/kafka/bin/kafka-server-start.sh %s\n",
			format, propsPath)},
		env:         []string{heapEnv(heap)},
		resources:   jvmResources(k.Resources, l[LabelComponent], heap),
		labels:      l,
		constraints: constraints,
		network:     k.Network,
		configs:     configs,
		secrets:     secrets,
		ports:       ports,
		mounts:      []mount.Mount{dataVolume(name, l[LabelOwner])},
	}.build()
}

func heapEnv(mb int) string { return fmt.Sprintf("KAFKA_HEAP_OPTS=-Xmx%dm -Xms%dm", mb, mb) }
