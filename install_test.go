package main

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/tfcli"
)

// TestMakeInstall installs the provider as a user would and has the real
// Terraform CLI find it with no help: `make install` into an empty home,
// then, in a root module that calls examples/any-swarm as a module, with
// no CLI configuration (so no provider_installation block and no
// dev_overrides) and no network, `terraform init` must install
// minibroker/minibroker at CHANGELOG.md's version from
// ~/.terraform.d/plugins, and `terraform validate` must run it. It needs
// make, Go and a Terraform CLI (`make terraform`); without one it fails,
// never skips (other than under -short).
func TestMakeInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the provider and runs make and the Terraform CLI; skipped under -short")
	}
	repo, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tf, err := tfcli.Find(repo)
	if err != nil {
		t.Fatal(err)
	}
	makeCmd, err := exec.LookPath("make")
	if err != nil {
		t.Fatalf("make: %v", err)
	}
	version := changelogVersion(t, filepath.Join(repo, "CHANGELOG.md"))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()

	work := t.TempDir()
	home := filepath.Join(work, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}

	// make install with HOME in the temporary directory. Go's caches and
	// settings stay where this process has them (they default to places
	// under HOME), so the build reuses what is already compiled.
	goEnv := goEnvOf(t, "GOCACHE", "GOMODCACHE", "GOPATH", "GOENV", "GOOS", "GOARCH")
	platform := goEnv["GOOS"] + "_" + goEnv["GOARCH"]
	makeEnv := withoutVars(os.Environ(), "HOME", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS")
	makeEnv = append(makeEnv, "HOME="+home)
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOENV"} {
		makeEnv = append(makeEnv, k+"="+goEnv[k])
	}
	out := run(t, ctx, repo, makeEnv, makeCmd, "install")
	t.Logf("make install:\n%s", out)

	installed := filepath.Join(home, ".terraform.d/plugins/registry.terraform.io/minibroker/minibroker",
		version, platform, "terraform-provider-minibroker_v"+version)
	info, err := os.Stat(installed)
	if err != nil {
		t.Fatalf("make install did not install version %s (from CHANGELOG.md) where terraform init looks: %v", version, err)
	}
	if info.Mode()&0o111 == 0 {
		t.Errorf("%s is not executable (%s)", installed, info.Mode())
	}
	checkVersionFlag(t, installed, version)

	// A root module calling the example by absolute path, with the
	// variables it requires.
	root := filepath.Join(work, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	mainTF := fmt.Sprintf(`module "mb" {
  source = %q

  manager_host   = "10.0.0.10"
  producer_host  = "10.0.0.11"
  filter_hosts   = ["10.0.0.12"]
  consumer_hosts = ["10.0.0.13"]
}
`, filepath.Join(repo, "examples/any-swarm"))
	if err := os.WriteFile(filepath.Join(root, "main.tf"), []byte(mainTF), 0o644); err != nil {
		t.Fatal(err)
	}

	// Terraform as on a fresh machine: an empty CLI configuration, no TF_*
	// settings, the temporary home (and XDG data directories inside it, so
	// the only local mirror is ~/.terraform.d/plugins), no checkpoint
	// calls. Every HTTP(S) request goes to a proxy that counts and refuses
	// it: init must need no network.
	rc := filepath.Join(work, "terraformrc")
	if err := os.WriteFile(rc, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var dialled atomic.Int32
	proxy := refusingProxy(t, &dialled)
	tfEnv := withoutVars(os.Environ(), "HOME", "XDG_DATA_HOME", "XDG_DATA_DIRS", "XDG_CONFIG_HOME",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
	tfEnv = withoutPrefix(tfEnv, "TF_")
	tfEnv = append(tfEnv, "HOME="+home, "XDG_DATA_HOME="+filepath.Join(home, ".local/share"),
		"XDG_DATA_DIRS="+filepath.Join(work, "no-data-dirs"), "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"TF_CLI_CONFIG_FILE="+rc, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0",
		"HTTP_PROXY="+proxy, "HTTPS_PROXY="+proxy)

	out = run(t, ctx, root, tfEnv, tf, "init", "-input=false", "-no-color")
	t.Logf("terraform init:\n%s", out)
	if want := "Installed minibroker/minibroker v" + version; !strings.Contains(out, want) {
		t.Errorf("terraform init does not say %q:\n%s", want, out)
	}
	lock, err := os.ReadFile(filepath.Join(root, ".terraform.lock.hcl"))
	if err != nil {
		t.Fatalf("terraform init wrote no lock file: %v", err)
	}
	locked := regexp.MustCompile(`provider "registry\.terraform\.io/minibroker/minibroker" \{\s*version\s*=\s*"([^"]+)"`).FindSubmatch(lock)
	if locked == nil || string(locked[1]) != version {
		t.Errorf("the lock file does not select minibroker/minibroker %s:\n%s", version, lock)
	}
	if !strings.Contains(string(lock), `"h1:`) {
		t.Errorf("the lock file records no checksum of the installed provider:\n%s", lock)
	}
	used := filepath.Join(root, ".terraform/providers/registry.terraform.io/minibroker/minibroker",
		version, platform, "terraform-provider-minibroker_v"+version)
	if _, err := os.Stat(used); err != nil {
		t.Errorf("terraform init did not install the provider into the module: %v", err)
	}

	// validate starts the installed binary (plugin protocol 6) for its schema.
	run(t, ctx, root, tfEnv, tf, "validate", "-no-color")

	var v struct {
		Selections map[string]string `json:"provider_selections"`
	}
	if err := json.Unmarshal([]byte(run(t, ctx, root, tfEnv, tf, "version", "-json")), &v); err != nil {
		t.Fatalf("terraform version -json: %v", err)
	}
	if got := v.Selections["registry.terraform.io/minibroker/minibroker"]; got != version {
		t.Errorf("terraform version -json selects minibroker/minibroker %q, want %q (%v)", got, version, v.Selections)
	}
	out = run(t, ctx, root, tfEnv, tf, "providers", "-no-color")
	if !strings.Contains(out, "module.mb") || !strings.Contains(out, "provider[registry.terraform.io/minibroker/minibroker]") {
		t.Errorf("terraform providers does not list module.mb's minibroker/minibroker:\n%s", out)
	}
	if n := dialled.Load(); n > 0 {
		t.Errorf("terraform made %d connection(s) through the proxy: installing from the local mirror must need no network", n)
	}
}

// TestProviderNeedsNoCgo checks that the provider links no package that
// uses cgo, outside the standard library (whose net and os/user have pure Go
// fallbacks): releases are built with CGO_ENABLED=0 (.goreleaser.yml), for
// every platform from one machine. The Kafka client of the workloads
// (confluent-kafka-go, through workloads/kclient) is the one to keep out:
// what the provider shares with the workloads lives in packages without it
// (workloads/stream, workloads/filter, workloads/access).
func TestProviderNeedsNoCgo(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if and (not .Standard) .CgoFiles}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if cgo := strings.Fields(string(out)); len(cgo) > 0 {
		t.Errorf("the provider links packages that need cgo, so `CGO_ENABLED=0 go build .` (the release build) fails: %v\n"+
			"find who imports them with `go list -deps -f '{{.ImportPath}}: {{.Imports}}' .`", cgo)
	}
}

// changelogVersion is the version of CHANGELOG.md's first entry, a line
// `## X.Y.Z (...)`, as `make install` reads it.
func changelogVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^## ([0-9][^\s]*)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no `## X.Y.Z` entry", path)
	}
	v := string(m[1])
	if !regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`).MatchString(v) {
		t.Fatalf("%s: the newest entry's version %q is not a semantic version", path, v)
	}
	return v
}

// checkVersionFlag checks that the binary was linked with
// -X main.version=version, as Go records it in the binary's build
// information (unless built with -trimpath, which leaves -ldflags out).
func checkVersionFlag(t *testing.T, binary, version string) {
	t.Helper()
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatalf("%s: %v", binary, err)
	}
	var ldflags, trimpath string
	for _, s := range bi.Settings {
		switch s.Key {
		case "-ldflags":
			ldflags = s.Value
		case "-trimpath":
			trimpath = s.Value
		}
	}
	switch {
	case strings.Contains(ldflags, "-X main.version="+version):
	case ldflags == "" && trimpath == "true":
		t.Logf("%s was built with -trimpath (GOFLAGS?): its -ldflags are not recorded to check", binary)
	default:
		t.Errorf("%s was not linked with -X main.version=%s (-ldflags %q)", binary, version, ldflags)
	}
}

// goEnvOf returns `go env` settings of this process's environment.
func goEnvOf(t *testing.T, keys ...string) map[string]string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"env", "-json"}, keys...)...).Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("go env -json: %v\n%s", err, out)
	}
	return m
}

// refusingProxy listens on loopback as an HTTP proxy that closes every
// connection at once, counting them, and returns its URL.
func refusingProxy(t *testing.T, dialled *atomic.Int32) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			c.Close()
		}
	}()
	return "http://" + ln.Addr().String()
}

// run runs a command in dir with env and returns its output; a failure
// fails t with the output.
func run(t *testing.T, ctx context.Context, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

// withoutVars is env without the variables named.
func withoutVars(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	return out
}

// withoutPrefix is env without the variables whose names start with prefix.
func withoutPrefix(env []string, prefix string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}
