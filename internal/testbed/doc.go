// Package testbed is the root of the test beds: code that starts the real
// parts the tests and benchmarks run against, on this machine, and that no
// shipped binary links (provider.TestShippedBinariesLinkNoTestBed checks).
//
//   - lab: a multi-node Docker Swarm lab, each node a network namespace with
//     its own dockerd and sshd (scripts/lab.sh runs one by hand).
//   - ec2lab: the data plane of moto's EC2, a lab node at each instance's IP.
//   - motoserver: moto's server, the tests' EC2 and SSM, on loopback.
//   - ec2bed: moto, an empty lab, a network, a key pair and the data plane
//     together, for the EC2 acceptance tests and benchmark.
//   - kafkabed: Kafka brokers and MirrorMaker 2 from the Maven jars, on
//     loopback, and Kafka's performance tools.
//   - childproc: starting and stopping the child processes of the above.
//   - tfcli: running the real Terraform CLI against a provider built from a
//     tree (dev_overrides), with retries, logs and the phases of an apply.
//   - sample: CPU use of the machine and of cgroups, and the load average.
//   - report: the markdown the benchmarks write to docs/benchmarks*.md.
//   - outsideavro: Avro container files written by fastavro (the
//     virtualenv of `make pyclients`), with the invalid schema defaults of
//     real archives, and what fastavro reads from them.
package testbed
