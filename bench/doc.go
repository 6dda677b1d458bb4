// Package bench holds `make bench`: the mini-broker on the real Kafka bed
// (hub, mirror, MirrorMaker 2), measured against the 2018 prototype's
// figures and against ceilings measured in the same run on the same
// broker: Kafka's own perf tools (the outside tool's view), and the
// librdkafka loop, our producer's client in a bare loop sending payloads
// made beforehand with our settings and as many senders as each producer
// row (rdceiling_test.go); each producer row is compared with the faster
// of the two. It writes its tables to the file named by
// MINIBROKER_BENCH_OUT (docs/benchmarks.md under make) and to the test log.
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
//     these comma-separated strings: "ceiling producer 80KB" (Kafka's perf
//     tools), "ceiling librdkafka small parallel 4", "producer small
//     parallel 2", "pipeline 80KB 50 filters shared", "SASL_SSL" (the runs
//     on secured brokers)... A string starting with "-" leaves out the
//     parts whose name contains the rest (alone, it runs all the others).
//     E.g. the ceilings alone (about 10 minutes):
//     MINIBROKER_BENCH_ONLY=ceiling go test -timeout 60m -run '^$' -bench MiniBroker -benchtime 1x -v ./bench/
//     and the ceilings with the producer's rows, on plaintext only (about
//     12 minutes; MINIBROKER_BENCH_OUT=/tmp/b.md writes the tables there):
//     MINIBROKER_BENCH_ONLY=ceiling,producer,-SASL_SSL go test -timeout 60m -run '^$' -bench MiniBroker -benchtime 1x -v ./bench/
package bench
