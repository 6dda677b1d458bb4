// Package pyclients finds the outside clients the tests check the
// mini-broker with: the virtualenv that `make pyclients`
// (scripts/fetch-pyclients.sh) installs at .cache/pyclients, holding
// Python's confluent-kafka (with its schema-registry and Avro extras) and
// fastavro from PyPI, code this project did not write.
package pyclients

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir is the virtualenv's path relative to the repository root.
const Dir = ".cache/pyclients"

// Scripts the tests run with the virtualenv's Python, relative to the
// repository root (see each one's docstring for its arguments and output).
const (
	// OutsideReader reads a filtered stream as a filter's owner does, from
	// the properties minibroker_filter_group.readers gives, optionally
	// decoding through a schema registry with AvroDeserializer.
	OutsideReader = "internal/testbed/pyclients/outside_reader.py"
	// UpstreamProducer writes an upstream alert stream of Rubin-format
	// alerts with Producer and AvroSerializer, as an upstream's source does.
	UpstreamProducer = "internal/testbed/pyclients/upstream_producer.py"
)

// Python returns the virtualenv's interpreter under the repository root, or
// an error that says how to install it. Tests fail on that error, never skip:
// `make test` installs the clients first.
func Python(repoRoot string) (string, error) {
	p := filepath.Join(repoRoot, Dir, "bin", "python")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the outside Python clients are missing (%v): run `make pyclients` (make test does)", err)
	}
	return p, nil
}
