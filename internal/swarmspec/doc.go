// Package swarmspec turns mini-broker configuration into Docker Swarm service
// and config specs. It is pure: no Docker, no network, no clock. The
// Terraform provider computes the desired specs here, creates or updates them
// through the Docker API, and on Read compares what runs against them.
//
// Naming, labels and the container contract of the two images live here too,
// so the provider, the tests and the docs agree on them:
//
//   - Kafka image (the official apache/kafka or the lab's minibroker/kafka):
//     /bin/sh, /opt/kafka/bin/kafka-storage.sh, kafka-server-start.sh and
//     connect-mirror-maker.sh, honouring KAFKA_HEAP_OPTS.
//   - Workloads image (minibroker/workloads, `make image`): the static
//     minibroker binary at /minibroker.
package swarmspec
