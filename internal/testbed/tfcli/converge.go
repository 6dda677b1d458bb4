package tfcli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/sample"
)

// Converged is an apply or destroy, run again as a user would when an
// attempt failed.
type Converged struct {
	Runs     []Run         // every attempt, the last one the one that succeeded
	Took     time.Duration // wall time of all attempts together
	Usage    sample.Usage  // CPU time of all attempts together
	Failures []string      // why each failed attempt failed, after how long
}

// Converge runs the command until it exits 0, at most c.Attempts times; the
// runs are named name, name-attempt2, .... A failed attempt is a result,
// kept in Failures with Terraform's errors; only when every attempt fails
// does Converge return an error, with the last one's output.
func (c *CLI) Converge(ctx context.Context, dir, name string, args ...string) (Converged, error) {
	var cv Converged
	attempts := max(c.Attempts, 1)
	for attempt := 1; attempt <= attempts; attempt++ {
		n := name
		if attempt > 1 {
			n = fmt.Sprintf("%s-attempt%d", name, attempt)
		}
		run, err := c.Run(ctx, dir, n, args...)
		if err != nil {
			return cv, err
		}
		cv.Runs = append(cv.Runs, run)
		cv.Took += run.Took
		cv.Usage = cv.Usage.Add(run.Usage)
		if run.Code == 0 {
			return cv, nil
		}
		why := fmt.Sprintf("attempt %d failed after %.1f s: %s", attempt, run.Took.Seconds(), run.ErrorSummary())
		cv.Failures = append(cv.Failures, why)
		c.logf("terraform %s: %s (output in %s)", strings.Join(args, " "), why, run.Out)
	}
	last := cv.Runs[len(cv.Runs)-1]
	return cv, fmt.Errorf("terraform %s failed %d times; last output in %s, provider log in %s:\n%s", strings.Join(args, " "),
		attempts, last.Out, last.ProviderLog, last.Tail(80))
}
