// Package minibin builds the `minibroker` workload binary for tests that
// run it as its own process: to kill it, or to use it as a user would.
package minibin

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// Package is the workload binary's import path.
const Package = "github.com/minibroker/terraform-provider-minibroker/workloads/cmd/minibroker"

// Build builds the binary for the host into dir and returns its path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "minibroker")
	if out, err := exec.Command("go", "build", "-o", bin, Package).CombinedOutput(); err != nil {
		t.Fatalf("build minibroker: %v\n%s", err, out)
	}
	return bin
}
