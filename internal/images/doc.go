// Package images builds the project's Docker images as `docker save` archives,
// without a Docker daemon and without pulling anything, so that the Terraform
// provider can `docker load` them onto Swarm nodes that have no registry.
//
//   - archive.go writes a docker-save archive (manifest.json, the image config,
//     one tar per layer, repositories) from an in-Go list of files. The output
//     is deterministic: fixed mtimes, uid/gid 0, sorted entries, so the same
//     inputs always give the same image ID.
//   - inspect.go reads an archive's RepoTags and image ID back (standard
//     library only; the provider uses it to skip loading an image a node
//     already has).
//   - workloads.go builds minibroker/workloads: a static (musl) minibroker.
//   - kafka.go builds minibroker/kafka: a jlink'd JRE, the glibc libraries it
//     needs, busybox and the Kafka jars, with the same contract as the
//     official apache/kafka image: the Kafka* constants, and the busybox-sh
//     scripts and log4j2 configs embedded from kafka/.
//
// The command ./internal/images/cmd/mkimage (`make image`) writes both.
// The whole package uses only the standard library.
package images
