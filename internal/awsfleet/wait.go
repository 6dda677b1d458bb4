package awsfleet

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Default timeouts of the waiters.
const (
	RunningTimeout    = 10 * time.Minute
	TerminatedTimeout = 10 * time.Minute
)

// WaitRunning waits until every instance is running and returns them as
// EC2 then reports them (with their addresses). An instance that stops or
// terminates on the way ends the wait with EC2's reason.
func (c *Client) WaitRunning(ctx context.Context, ids []string) ([]Instance, error) {
	for {
		got, err := c.Instances(ctx, ids)
		if err != nil {
			return nil, err
		}
		byID := map[string]Instance{}
		for _, in := range got {
			byID[in.ID] = in
		}
		var waiting []string
		for _, id := range ids {
			in, ok := byID[id]
			switch {
			case !ok || in.State == "pending":
				// Just launched instances may not be listed yet.
				waiting = append(waiting, id)
			case in.State != "running":
				reason := in.StateReason
				if reason == "" {
					reason = "no reason given"
				}
				return nil, fmt.Errorf("instance %s is %s instead of running: %s", in.Label(), in.State, reason)
			}
		}
		if len(waiting) == 0 {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for instances to run, still pending: %s: %w", strings.Join(waiting, ", "), ctx.Err())
		case <-time.After(c.poll):
		}
	}
}

// WaitTerminated waits until none of the instances exists any more other
// than as terminated.
func (c *Client) WaitTerminated(ctx context.Context, ids []string) error {
	for {
		got, err := c.Instances(ctx, ids)
		if err != nil {
			return err
		}
		var left []string
		for _, in := range got {
			if in.State != "terminated" {
				left = append(left, in.ID+" ("+in.State+")")
			}
		}
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for instances to terminate, still there: %s: %w", strings.Join(left, ", "), ctx.Err())
		case <-time.After(c.poll):
		}
	}
}
