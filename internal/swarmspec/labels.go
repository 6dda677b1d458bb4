package swarmspec

import "time"

// Labels set on nodes, services, configs and the network. Everything the
// provider creates carries LabelManaged, so leftovers can always be found.
const (
	LabelManaged   = "minibroker.managed"   // "true"
	LabelOwner     = "minibroker.owner"     // OwnerSwarm, "mirror/NAME" or "filter_group/NAME"
	LabelComponent = "minibroker.component" // one of the Component* values
	LabelSpecHash  = "minibroker.spec-hash" // hash of the desired spec, see Hash
	LabelTaskHash  = "minibroker.task-hash" // on containers: hash of the task template, see TaskHash
	LabelFilter    = "minibroker.filter"    // filter name, on filter and consumer services
	LabelMirror    = "minibroker.mirror"    // mirror name, on mirror and filter group services

	// LabelSettings carries, on a resource's services (the hub for the
	// swarm), the resource's settings as JSON, from which `terraform
	// import` restores every attribute. A label change restarts no task.
	LabelSettings = "minibroker.settings"
	// LabelSwarmID labels a swarm provisioned on EC2 with its resource's id
	// (mb-…), by which mirrors and filter groups name it.
	LabelSwarmID = "minibroker.id"

	// Node labels: the role given in minibroker_swarm.hosts and the node's
	// index among the hosts of that role (0-based).
	LabelRole  = "minibroker.role"
	LabelIndex = "minibroker.index"

	// LabelSSHAddress and LabelDockerSocket say where the provider
	// reaches a node's own engine, as minibroker_swarm.hosts gives them: a
	// node's volumes can only be removed there, and a mirror knows only
	// the manager's address.
	LabelSSHAddress   = "minibroker.ssh-address"
	LabelDockerSocket = "minibroker.docker-socket"

	// LabelKafkaCA is, on the hub of a swarm whose Kafka is secured, the
	// fingerprint of its CA (CAFingerprint), by which mirrors and filter
	// groups check the credentials they are given.
	LabelKafkaCA = "minibroker.kafka-ca"
	// LabelExternal is, on a mirror's Kafka, the bootstrap address of its
	// listener for users outside the swarm.
	LabelExternal = "minibroker.external"
)

// Components.
const (
	ComponentHub         = "hub"
	ComponentProducer    = "producer"
	ComponentIngest      = "ingest" // the upstream relay, in the producer's place
	ComponentRegistry    = "schema-registry"
	ComponentMirrorKafka = "mirror-kafka"
	ComponentMirrorMaker = "mirror-maker"
	ComponentFilter      = "filter"
	ComponentFilters     = "shared-filters"
	ComponentConsumer    = "consumer"
	// ComponentAccess is the one-shot job applying an owner's Kafka users
	// and ACLs.
	ComponentAccess = "access"
)

// Node roles.
const (
	RoleManager  = "manager"
	RoleProducer = "producer"
	RoleFilter   = "filter"
	RoleConsumer = "consumer"
)

// JVMSettleTime is how long a task of a JVM service (a Kafka broker,
// MirrorMaker 2) must have run before it counts as started: Kafka checks
// its configuration only once the JVM is up, several seconds after the
// task starts on a loaded node, so a broker given a bad setting is still
// running at the 5 s that suffice for the other services.
const JVMSettleTime = 20 * time.Second

// IsJVM reports whether a service of the component runs a JVM.
func IsJVM(component string) bool {
	switch component {
	case ComponentHub, ComponentMirrorKafka, ComponentMirrorMaker:
		return true
	}
	return false
}

// Roles lists the node roles in the order hosts are usually written.
var Roles = []string{RoleManager, RoleProducer, RoleFilter, RoleConsumer}

// OwnerSwarm owns the hub, the registry, the producer (or the upstream
// relay) and the network.
const OwnerSwarm = "swarm"

// MirrorOwner and FilterGroupOwner name the owner label of a mirror's and a
// filter group's objects.
func MirrorOwner(name string) string      { return "mirror/" + name }
func FilterGroupOwner(name string) string { return "filter_group/" + name }

// labels returns the labels every managed object carries.
func labels(owner, component string, extra ...string) map[string]string {
	l := map[string]string{LabelManaged: "true", LabelOwner: owner, LabelComponent: component}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

// NodeConstraints places a task on the node with the given role and index.
// A negative index allows any node of the role.
func NodeConstraints(role string, index int) []string {
	c := []string{"node.labels." + LabelRole + "==" + role}
	if index >= 0 {
		c = append(c, "node.labels."+LabelIndex+"=="+itoa(index))
	}
	return c
}
