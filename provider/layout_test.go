package provider

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The provider's resources translate between Terraform and internal/swarmctl;
// only swarmctl talks to Docker.
func TestProviderTalksToDockerOnlyThroughSwarmctl(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			if strings.HasPrefix(strings.Trim(imp.Path.Value, `"`), "github.com/docker/docker/") {
				t.Errorf("%s imports %s: Docker calls belong in internal/swarmctl", f, imp.Path.Value)
			}
		}
	}
}

// Test beds (internal/testbed) start processes, namespaces and servers for
// tests; no binary we ship may link them.
func TestShippedBinariesLinkNoTestBed(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}",
		"..", "../workloads/cmd/minibroker", "../internal/images/cmd/mkimage").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/internal/testbed/") {
			t.Errorf("a shipped binary links the test bed %s", pkg)
		}
	}
}
