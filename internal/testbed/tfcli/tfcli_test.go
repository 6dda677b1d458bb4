package tfcli

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFind(t *testing.T) {
	repo := t.TempDir()
	t.Setenv("PATH", t.TempDir())
	t.Setenv(EnvPath, "")
	if _, err := Find(repo); err == nil || !strings.Contains(err.Error(), "make terraform") {
		t.Errorf("Find without any CLI: %v, want an error saying to run make terraform", err)
	}
	built := filepath.Join(repo, ".cache/terraform/bin/terraform")
	writeFile(t, built, "", 0o755)
	if p, err := Find(repo); err != nil || p != built {
		t.Errorf("Find = %q, %v; want %q", p, err, built)
	}
	t.Setenv(EnvPath, "/opt/tf")
	if p, err := Find(repo); err != nil || p != "/opt/tf" {
		t.Errorf("Find with %s set = %q, %v", EnvPath, p, err)
	}
}

func TestCLIConfigAndEnv(t *testing.T) {
	if got := cliConfig("/w/provider"); !strings.Contains(got, `"minibroker/minibroker" = "/w/provider"`) || !strings.Contains(got, "direct {}") {
		t.Errorf("cliConfig:\n%s", got)
	}
	env := cliEnv([]string{"HOME=/root", "TF_LOG=DEBUG", "TF_CLI_CONFIG_FILE=/etc/x", "PATH=/bin"}, "/w/terraformrc")
	want := []string{"HOME=/root", "PATH=/bin", "TF_CLI_CONFIG_FILE=/w/terraformrc", "CHECKPOINT_DISABLE=1",
		"TF_IN_AUTOMATION=1", "TF_INPUT=0", "TF_LOG_PROVIDER=INFO"}
	if !slices.Equal(env, want) {
		t.Errorf("cliEnv =\n  %v\nwant\n  %v", env, want)
	}
}

// fakeTerraform answers version and output -json, and fails its first
// apply in each directory the way Terraform reports an error.
const fakeTerraform = `#!/bin/sh
case "$1" in
version) echo "Terraform v1.5.7"; echo "on linux_amd64" ;;
output) echo '{"answer": {"value": 42}}' ;;
apply)
  echo "$TF_CLI_CONFIG_FILE" > config-used
  echo "log" > "$TF_LOG_PATH"
  n=$(cat attempts 2>/dev/null || echo 0); n=$((n+1)); echo $n > attempts
  if [ "$n" -lt 2 ]; then
    printf 'Error: no swarm\n\n  with minibroker_swarm.main,\n  on main.tf line 3:\n\nmanager did not answer\n'
    exit 1
  fi
  echo "Apply complete!" ;;
*) exit 3 ;;
esac
`

func newFake(t *testing.T) *CLI {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "terraform")
	writeFile(t, bin, fakeTerraform, 0o755)
	var logged []string
	c, err := New(context.Background(), Options{Path: bin, ProviderDir: filepath.Join(dir, "provider"), Dir: dir,
		Logf: func(f string, a ...any) { logged = append(logged, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != "Terraform v1.5.7" {
		t.Errorf("Version = %q", c.Version)
	}
	t.Cleanup(func() {
		if len(logged) == 0 {
			t.Error("nothing was logged")
		}
	})
	return c
}

func TestRunAndConverge(t *testing.T) {
	c := newFake(t)
	ctx := context.Background()
	root := t.TempDir()
	var seen int
	c.OnRun = func() { seen++ }

	cv, err := c.Converge(ctx, root, "apply-x", "apply", "-auto-approve")
	if err != nil {
		t.Fatal(err)
	}
	if len(cv.Runs) != 2 || cv.Runs[0].Name != "apply-x" || cv.Runs[1].Name != "apply-x-attempt2" || seen != 4 {
		t.Fatalf("runs %+v (OnRun called %d times)", cv.Runs, seen)
	}
	if cv.Runs[0].Code != 1 || cv.Runs[1].Code != 0 || cv.Took != cv.Runs[0].Took+cv.Runs[1].Took {
		t.Errorf("codes %d, %d; took %s", cv.Runs[0].Code, cv.Runs[1].Code, cv.Took)
	}
	if len(cv.Failures) != 1 || !strings.HasSuffix(cv.Failures[0], ": 1× no swarm: manager did not answer") {
		t.Errorf("Failures = %q", cv.Failures)
	}
	out, err := os.ReadFile(cv.Runs[0].Out)
	if err != nil || !strings.Contains(string(out), " Error: no swarm\n") {
		t.Errorf("output file: %q, %v", out, err)
	}
	if _, err := os.Stat(cv.Runs[1].ProviderLog); err != nil {
		t.Errorf("provider log: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "config-used")); strings.TrimSpace(string(b)) != filepath.Join(filepath.Dir(c.Logs), "terraformrc") {
		t.Errorf("the command used CLI configuration %q", b)
	}

	var outputs struct{ Answer struct{ Value int } }
	if err := c.MustRun(t, ctx, root, "output", "output", "-json").DecodeJSON(&outputs); err != nil || outputs.Answer.Value != 42 {
		t.Errorf("DecodeJSON: %+v, %v", outputs, err)
	}

	c.Attempts = 2
	if _, err := c.Converge(ctx, root, "plan", "plan"); err == nil || !strings.Contains(err.Error(), "failed 2 times") {
		t.Errorf("Converge of a command that always fails: %v", err)
	}
}

func TestErrorSummaryAndTail(t *testing.T) {
	r := Run{Code: 1, Lines: lines(
		"minibroker_mirror.node[\"node1\"]: Creating...",
		"Error: create service",
		"",
		"  with minibroker_mirror.node[\"node1\"],",
		"  on main.tf line 40, in resource \"minibroker_mirror\" \"node\":",
		"  40: resource \"minibroker_mirror\" \"node\" {",
		"",
		"context deadline exceeded",
		"",
		"Error: create service",
		"",
		"context deadline exceeded",
		"Releasing state lock. This may take a few moments...",
	)}
	if got, want := r.ErrorSummary(), "2× create service: context deadline exceeded"; got != want {
		t.Errorf("ErrorSummary = %q, want %q", got, want)
	}
	if got := (Run{Code: 2}).ErrorSummary(); got != "exit 2" {
		t.Errorf("ErrorSummary without errors = %q", got)
	}
	if got := r.Tail(2); got != "context deadline exceeded\nReleasing state lock. This may take a few moments..." {
		t.Errorf("Tail(2) = %q", got)
	}
	if got := r.Tail(100); got != strings.TrimSuffix(r.Text(), "\n") {
		t.Errorf("Tail(100) is not the whole output")
	}
}

func TestPhasesOf(t *testing.T) {
	began := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	log := filepath.Join(t.TempDir(), "apply.provider.log")
	at := func(s float64, msg string) string {
		return began.Add(time.Duration(s*float64(time.Second))).Format(time.RFC3339Nano) +
			" [INFO]  provider.terraform-provider-minibroker: " + msg + ": @module=x"
	}
	writeFile(t, log, strings.Join([]string{
		at(4, "instance started"), at(3, "instance started"), at(9, "initialising swarm"),
		at(30, "creating service"), at(41, "creating service"), "garbage line",
	}, "\n"), 0o644)
	r := Run{Began: began, Took: 60 * time.Second, ProviderLog: log}
	for _, l := range []struct {
		at   float64
		text string
	}{
		{2.5, "minibroker_swarm.main: Creating..."},
		{20, "minibroker_swarm.main: Creation complete after 17s [id=mb-1]"},
		{20.5, "minibroker_mirror.node[\"node1\"]: Creating..."},
		{21, "minibroker_mirror.node[\"node2\"]: Creating..."},
		{31, "minibroker_mirror.node[\"node1\"]: Creation complete after 10s [id=m1]"},
		{33, "minibroker_mirror.node[\"node2\"]: Creation complete after 12s [id=m2]"},
		{34, "minibroker_filter_group.node[\"node1\"]: Creating..."},
		{55, "minibroker_filter_group.node[\"node1\"]: Creation complete after 21s [id=g1]"},
	} {
		r.Lines = append(r.Lines, Line{time.Duration(l.at * float64(time.Second)), l.text})
	}
	p := PhasesOf(r)
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	if p.FirstStart != sec(2.5) || p.SwarmStart != sec(2.5) || p.SwarmDone != sec(20) || p.LastDone != sec(55) || p.Total != sec(60) {
		t.Errorf("phases %+v", p)
	}
	if p.LastCreate != sec(41) || p.SwarmInit != sec(9) || p.FirstInstance != sec(3) || p.LastInstance != sec(4) {
		t.Errorf("from the provider log: last create %s, init %s, instances %s–%s", p.LastCreate, p.SwarmInit, p.FirstInstance, p.LastInstance)
	}
	if lo, hi, n := p.Span("minibroker_mirror."); lo != sec(10.5) || hi != sec(12) || n != 2 {
		t.Errorf("mirrors %s–%s ×%d", lo, hi, n)
	}
	if p.Events[0].Took != "17s" {
		t.Errorf("first event %+v", p.Events[0])
	}

	destroy := Run{Lines: lines(
		"minibroker_filter_group.node[\"node1\"]: Destroying... [id=g1]",
		"minibroker_filter_group.node[\"node1\"]: Destruction complete after 8s",
	)}
	if lo, _, n := PhasesOf(destroy).Span("minibroker_filter_group."); n != 1 || lo != time.Second {
		t.Errorf("destroy: %s ×%d", lo, n)
	}
}

// lines stamps texts a second apart.
func lines(texts ...string) []Line {
	var out []Line
	for i, s := range texts {
		out = append(out, Line{time.Duration(i) * time.Second, s})
	}
	return out
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}
