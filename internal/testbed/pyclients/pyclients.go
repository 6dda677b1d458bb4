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
