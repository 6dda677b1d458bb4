// Package bench holds `make bench`: the mini-broker on the real Kafka bed
// (hub, mirror, MirrorMaker 2), measured against the 2018 prototype's
// figures and against Kafka's own perf tools on the same broker as the
// ceiling. It writes its tables to the file named by MINIBROKER_BENCH_OUT
// (docs/benchmarks.md under make) and to the test log.
//
// BenchmarkSwarmDeploy and BenchmarkEC2Deploy deploy the 1+11 layout with
// the real Terraform CLI onto a lab of Docker Engines; their doc comments
// say what they measure and how to run them, and they write their sections
// beside MINIBROKER_BENCH_OUT. They run on the test beds of internal/testbed
// (lab, ec2bed, tfcli, sample, report), which the acceptance tests share.
//
// Environment:
//   - MINIBROKER_BENCH_VISITS: visits per pipeline scenario (default 2)
//   - MINIBROKER_BENCH_INTERVAL: time between visits (default 39s, the LSST cadence)
//   - MINIBROKER_BENCH_ONLY: run only the parts whose name contains one of
//     these comma-separated strings: "ceiling producer 80KB", "producer
//     small parallel 2", "pipeline 80KB 50 filters shared", "SASL_SSL"
//     (the runs on secured brokers)... E.g. the ceilings alone (Kafka's
//     perf tools as they come and tuned, a few minutes):
//     MINIBROKER_BENCH_ONLY=ceiling go test -run '^$' -bench MiniBroker -benchtime 1x -v ./bench/
package bench
