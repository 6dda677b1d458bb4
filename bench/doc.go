// Package bench holds `make bench`: the mini-broker on the real Kafka bed
// (hub, mirror, MirrorMaker 2), measured against the 2018 prototype's
// figures and against Kafka's own perf tools on the same broker as the
// ceiling. It writes its tables to the file named by MINIBROKER_BENCH_OUT
// (docs/benchmarks.md under make) and to the test log.
//
// Environment:
//   - MINIBROKER_BENCH_VISITS: visits per pipeline scenario (default 2)
//   - MINIBROKER_BENCH_INTERVAL: time between visits (default 39s, the LSST cadence)
//   - MINIBROKER_BENCH_ONLY: run only the scenarios whose name contains this
package bench
