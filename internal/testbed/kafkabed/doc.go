// Package kafkabed runs a real Apache Kafka 4.x test bed on loopback: KRaft
// brokers, MirrorMaker 2 and Kafka's own perf tools, as plain `java -cp`
// processes built from the jars that scripts/fetch-kafka.sh puts in
// <repo>/.cache/kafka/libs (run `make kafka` once).
//
// Every process runs in its own process group with its own temp directory
// (configs, data, log files). Stop ends the whole group (SIGTERM, then SIGKILL
// after a timeout) and removes the directory unless MINIBROKER_KEEP_BED=1. On
// Linux the processes also get SIGKILL if the test binary dies, so no java is
// left behind even when a test panics or times out.
//
// Typical use in a test:
//
//	hub := kafkabed.StartBrokerT(t)
//	mirror := kafkabed.StartBrokerT(t)
//	mm := kafkabed.StartMirrorMakerT(t, hub, mirror)
//	_, err := mm.WaitReplication(ctx, "alerts")
//	kafkabed.Must(t, err)
//
// The configuration files come from internal/kafkaconf, the same contract the
// Terraform provider deploys, so tests exercise the production settings.
package kafkabed
