// Package chaos is the fault-injection suite: it runs the mini-broker on
// real parts, breaks them mid-visit at seeded random moments, and checks
// that no alert was lost or duplicated on the way from the producer to each
// filter's consumer.
//
// TestChaosProcessFaults runs real `minibroker` processes (producer,
// isolated and shared filters, consumers writing --out files) between two
// real Kafka brokers joined by MirrorMaker 2 (internal/testbed/kafkabed).
// Every process runs under a supervisor that restarts it when it dies, as
// Swarm's restart policy does. Each visit gets one fault: SIGKILL of a
// filter, a consumer or MirrorMaker 2, SIGKILL or clean restart of the
// mirror or of the hub broker. At the end it reads back every topic and
// asserts, per filter: what its consumer wrote equals an independent
// evaluation of the filter over the produced alerts (every match under the
// cap; above it, exactly cap alerts, each partition's first matches in
// offset order), ranks 1..k, no alert twice, and one completion event per
// visit with the right counts.
//
// `make test` runs it with one round of faults; `make chaos` with
// MINIBROKER_CHAOS_ROUNDS rounds, and writes the figures into
// docs/reliability.md (MINIBROKER_CHAOS_OUT) between the chaos markers.
package chaos
