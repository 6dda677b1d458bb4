package access

// What each workload may do, in Kafka's terms. Each function lists the
// grants the calls of one `minibroker` command (or of MirrorMaker 2) need
// on one cluster, and no more; TestPipelineOnSecuredKafka runs the whole
// pipeline with exactly these.

// topic is a literal grant on one topic.
func topic(name string, ops ...string) Grant {
	return Grant{Resource: Topic, Name: name, Pattern: Literal, Operations: Ops(ops...)}
}

// ProducerGrants: `minibroker produce` on the hub creates and writes the
// alert and timing topics. It registers its schemas through the schema
// registry, which alone writes the schemas topic; the producer only
// creates that topic (again, on a hub that lost its data) and checks that
// it still holds something (a metadata and a list-offsets request: Describe).
func ProducerGrants(alerts, schemas, timing string) []Grant {
	return []Grant{
		topic(alerts, Create, Describe, Write),
		topic(schemas, Create, Describe),
		topic(timing, Create, Describe, Write),
	}
}

// RegistryGrants: the schema registry service keeps its state in the
// schemas topic on the hub: it creates it, reads it and registers into it.
func RegistryGrants(schemas string) []Grant {
	return []Grant{topic(schemas, Create, Describe, Read, Write)}
}

// TimingWriterGrants: filters and consumers write their events to the
// hub's timing topic, which the producer creates.
func TimingWriterGrants(timing string) []Grant {
	return []Grant{topic(timing, Describe, Write)}
}

// TimingReaderGrants: `minibroker report` reads the timing topic.
func TimingReaderGrants(timing string) []Grant {
	return []Grant{topic(timing, Describe, Read)}
}

// FilterGrants: one filter process on its mirror reads the alerts and
// schemas, creates and writes its outputs, dead letters and state (and
// reads the state back on restart), commits its group's offsets in its
// transactions, and closes a transaction of its own id that Kafka left
// hanging. That last step (kclient.CloseHanging) reads the producers of
// its group's offsets partition and writes transaction markers, which
// Kafka allows only with ClusterAction on the cluster: the one broad
// permission here, held only by our own filter processes.
func FilterGrants(input, schemas string, writes []string, group, transactionalID, offsetsTopic string) []Grant {
	gs := []Grant{
		topic(input, Describe, Read),
		topic(schemas, Describe, Read),
		topic(offsetsTopic, Describe, Read),
		{Resource: Group, Name: group, Pattern: Literal, Operations: Ops(Describe, Read)},
		{Resource: TransactionalID, Name: transactionalID, Pattern: Literal, Operations: Ops(Describe, Write)},
		{Resource: Cluster, Name: ClusterName, Pattern: Literal, Operations: Ops(ClusterAction)},
	}
	for _, w := range writes {
		gs = append(gs, topic(w, Create, Describe, Write, Read))
	}
	return gs
}

// ConsumerGrants: `minibroker consume` (the swarm's consumer, or a user's
// own client) reads one topic in one group.
func ConsumerGrants(output, group string) []Grant {
	return []Grant{
		topic(output, Describe, Read),
		{Resource: Group, Name: group, Pattern: Literal, Operations: Ops(Describe, Read)},
	}
}

// ReaderGrants: a filter's outside reader reads its output topic, in
// consumer groups named after the user: the user name itself or any
// name starting with it and a dot; and the schemas, to decode the alerts
// (`minibroker consume --format json`).
func ReaderGrants(output, schemas, user string) []Grant {
	return []Grant{
		topic(output, Describe, Read),
		topic(schemas, Describe, Read),
		{Resource: Group, Name: user, Pattern: Literal, Operations: Ops(Describe, Read)},
		{Resource: Group, Name: user + UserSeparator, Pattern: Prefixed, Operations: Ops(Describe, Read)},
	}
}

// MirrorMakerSourceGrants: MirrorMaker 2 reads every topic its regex
// selects on the hub, with their configs. The regex is Java's, so the
// grant covers all topics ("*").
func MirrorMakerSourceGrants() []Grant {
	return []Grant{
		{Resource: Topic, Name: "*", Pattern: Literal, Operations: Ops(Describe, DescribeConfigs, Read)},
		{Resource: Group, Name: "*", Pattern: Literal, Operations: Ops(Describe, Read)},
	}
}

// MirrorMakerTargetGrants: on its mirror, MirrorMaker 2 creates the
// copies with the hub's configs and writes them, and keeps its Connect
// worker's state in topics and a group of its own. It manages the
// mirror's topics, so it is granted all topic and group operations
// there, and the cluster operations Connect uses.
func MirrorMakerTargetGrants() []Grant {
	return []Grant{
		{Resource: Topic, Name: "*", Pattern: Literal, Operations: Ops(All)},
		{Resource: Group, Name: "*", Pattern: Literal, Operations: Ops(All)},
		{Resource: Cluster, Name: ClusterName, Pattern: Literal, Operations: Ops(Create, Describe, DescribeConfigs)},
	}
}

// IngestGrants: `minibroker ingest` on the hub creates and writes the
// alert topic and its state topic (read back on restart) in transactions
// of its own id, and closes a transaction of that id Kafka left hanging
// (ClusterAction, as FilterGrants explains; listing a partition's
// producers takes Read on its topic). It also creates the timing topic,
// which the producer creates where one runs.
func IngestGrants(alerts, state, timing, transactionalID string) []Grant {
	return []Grant{
		topic(alerts, Create, Describe, Write, Read),
		topic(state, Create, Describe, Write, Read),
		topic(timing, Create, Describe),
		{Resource: TransactionalID, Name: transactionalID, Pattern: Literal, Operations: Ops(Describe, Write)},
		{Resource: Cluster, Name: ClusterName, Pattern: Literal, Operations: Ops(ClusterAction)},
	}
}
