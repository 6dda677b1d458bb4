// Package kafkaconf is the configuration contract shared by the local test bed
// (internal/testbed/kafkabed) and the Terraform provider, which renders the same files
// into Docker Swarm configs for the official apache/kafka image.
//
// Everything here is a pure function: options in, Java .properties text out,
// with no I/O. Output is sorted by key and fully deterministic, so a caller can
// content-hash it (for example to name a Swarm config or to decide whether a
// service must be restarted).
package kafkaconf
