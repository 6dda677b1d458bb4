package tfcli

import (
	"context"
	"strings"
	"testing"
	"time"
)

// MustRun is Run that fails t at once when the command cannot start or
// exits non-zero, with the end of its output.
func (c *CLI) MustRun(t testing.TB, ctx context.Context, dir, name string, args ...string) Run {
	t.Helper()
	run, err := c.Run(ctx, dir, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	if run.Code != 0 {
		t.Fatalf("terraform %s failed (exit %d); output in %s, provider log in %s:\n%s", strings.Join(args, " "),
			run.Code, run.Out, run.ProviderLog, run.Tail(80))
	}
	return run
}

// Apply applies the root module in dir, again when an attempt fails (see
// Converge); it fails t at once when every attempt failed.
func (c *CLI) Apply(t testing.TB, ctx context.Context, dir, name string) Converged {
	t.Helper()
	return c.mustConverge(t, ctx, dir, name, "apply", "-auto-approve", "-input=false", "-no-color")
}

// Destroy destroys what the root module in dir created, again when an
// attempt fails (see Converge); it fails t at once when every attempt
// failed.
func (c *CLI) Destroy(t testing.TB, ctx context.Context, dir, name string) Converged {
	t.Helper()
	return c.mustConverge(t, ctx, dir, name, "destroy", "-auto-approve", "-input=false", "-no-color")
}

func (c *CLI) mustConverge(t testing.TB, ctx context.Context, dir, name string, args ...string) Converged {
	t.Helper()
	cv, err := c.Converge(ctx, dir, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return cv
}

// PlanNoChange runs a plan of the root module in dir that must find
// nothing to change and returns its time. A plan that finds changes or
// fails is an error of t (reported with the end of its output), which goes
// on.
func (c *CLI) PlanNoChange(t testing.TB, ctx context.Context, dir, name string) time.Duration {
	t.Helper()
	p, err := c.Run(ctx, dir, name, "plan", "-detailed-exitcode", "-input=false", "-no-color")
	if err != nil {
		t.Fatal(err)
	}
	if p.Code != 0 {
		t.Errorf("terraform plan (%s) exited %d (want 0: nothing to change); output in %s:\n%s", name, p.Code, p.Out, p.Tail(60))
	}
	return p.Took
}
