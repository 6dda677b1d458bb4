package tfcli

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/sample"
)

// Options configures New.
type Options struct {
	// Path is the Terraform CLI (see Find). Required.
	Path string
	// ProviderDir holds the terraform-provider-minibroker binary every
	// command uses, through dev_overrides (see BuildProvider). Required.
	ProviderDir string
	// Dir receives the CLI configuration (Dir/terraformrc) and the commands'
	// outputs and provider logs (Dir/logs). Required.
	Dir string
	// Cgroups is the name prefix of the cgroups whose CPU time every Run
	// records in Run.Usage (sample.Start); empty: the machine's only.
	Cgroups string
	// Logf, if set, receives a line per command and per failed attempt.
	Logf func(format string, args ...any)
}

// CLI runs Terraform commands with one CLI configuration.
type CLI struct {
	// Path is the Terraform CLI and Version the first line of its `terraform
	// version`.
	Path, Version string
	// Env is every command's environment; New sets it (see the package
	// comment) and a caller may change it before running anything.
	Env []string
	// Logs is the directory of the outputs and provider logs.
	Logs string
	// Cgroups and Logf are as in Options.
	Cgroups string
	Logf    func(format string, args ...any)
	// Attempts bounds the attempts of Converge, Apply and Destroy
	// (default 3).
	Attempts int
	// OnRun, if set, is called before each command starts and after it
	// ends (say, to note what else runs on the machine meanwhile).
	OnRun func()
}

// New writes a CLI configuration whose dev_overrides point
// minibroker/minibroker at opts.ProviderDir (`terraform init` is not used:
// it would look the provider up in the registry; `terraform get` installs
// modules) and returns the CLI that uses it.
func New(ctx context.Context, opts Options) (*CLI, error) {
	if opts.Path == "" || opts.ProviderDir == "" || opts.Dir == "" {
		return nil, fmt.Errorf("tfcli: Options.Path, ProviderDir and Dir are required")
	}
	c := &CLI{Path: opts.Path, Logs: filepath.Join(opts.Dir, "logs"), Cgroups: opts.Cgroups, Logf: opts.Logf, Attempts: 3}
	if err := os.MkdirAll(c.Logs, 0o755); err != nil {
		return nil, err
	}
	config := filepath.Join(opts.Dir, "terraformrc")
	if err := os.WriteFile(config, []byte(cliConfig(opts.ProviderDir)), 0o644); err != nil {
		return nil, err
	}
	c.Env = cliEnv(os.Environ(), config)
	version := exec.CommandContext(ctx, c.Path, "version")
	version.Env = c.Env
	v, err := version.Output()
	if err != nil {
		return nil, fmt.Errorf("%s version: %w", c.Path, err)
	}
	c.Version, _, _ = strings.Cut(strings.TrimSpace(string(v)), "\n")
	return c, nil
}

// cliConfig is a CLI configuration that takes the provider from dir.
func cliConfig(dir string) string {
	return fmt.Sprintf(`provider_installation {
  dev_overrides {
    "minibroker/minibroker" = %q
  }
  direct {}
}
`, dir)
}

// cliEnv is env without TF_* variables, plus the CLI configuration file and
// the settings of a CLI run by a program.
func cliEnv(env []string, config string) []string {
	var out []string
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "TF_") {
			out = append(out, kv)
		}
	}
	return append(out, "TF_CLI_CONFIG_FILE="+config, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1",
		"TF_INPUT=0", "TF_LOG_PROVIDER=INFO")
}

func (c *CLI) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// Run is one command that ran.
type Run struct {
	// Name names the run's files: Out is Logs/Name.out (the output lines,
	// stamped with seconds since the start), ProviderLog Logs/Name.provider.log.
	Name, Out, ProviderLog string
	Args                   []string
	Began                  time.Time
	Took                   time.Duration // from start to exit
	Code                   int           // exit code; -1 when it was killed
	Lines                  []Line        // stdout and stderr, as they came
	Usage                  sample.Usage  // CPU time used meanwhile
}

// Line is a line of a command's output.
type Line struct {
	At   time.Duration // since the command started
	Text string
}

// Run runs terraform with args in the root module dir and returns what it
// did. A non-zero exit is not an error (see Run.Code); failing to start
// the command is.
func (c *CLI) Run(ctx context.Context, dir, name string, args ...string) (Run, error) {
	run := Run{Name: name, Args: args, Out: filepath.Join(c.Logs, name+".out"),
		ProviderLog: filepath.Join(c.Logs, name+".provider.log")}
	cmd := exec.CommandContext(ctx, c.Path, args...)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(c.Env), "TF_LOG_PATH="+run.ProviderLog)
	cmd.WaitDelay = 10 * time.Second
	r, w, err := os.Pipe()
	if err != nil {
		return run, err
	}
	defer r.Close()
	cmd.Stdout, cmd.Stderr = w, w
	if c.OnRun != nil {
		c.OnRun()
	}
	span := sample.Start(c.Cgroups)
	run.Began = time.Now()
	err = cmd.Start()
	w.Close()
	if err != nil {
		return run, fmt.Errorf("terraform %s: %w", strings.Join(args, " "), err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			run.Lines = append(run.Lines, Line{time.Since(run.Began), sc.Text()})
		}
	}()
	err = cmd.Wait()
	run.Took = time.Since(run.Began)
	run.Usage = span.Stop()
	if c.OnRun != nil {
		c.OnRun()
	}
	<-done
	run.Code = cmd.ProcessState.ExitCode()
	if err != nil && run.Code < 0 {
		run.Code = -1
	}
	var log strings.Builder
	for _, l := range run.Lines {
		fmt.Fprintf(&log, "%8.3f %s\n", l.At.Seconds(), l.Text)
	}
	_ = os.WriteFile(run.Out, []byte(log.String()), 0o644)
	c.logf("terraform %s (%s): exit %d in %.1f s, machine CPU %.0f %% busy", strings.Join(args, " "), name, run.Code,
		run.Took.Seconds(), 100*run.Usage.Busy())
	return run, nil
}
