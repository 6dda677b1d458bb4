package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
)

// runAdmin applies an access plan: the users and ACLs one owner wants on
// its clusters (package access). The plan holds passwords, so the swarm
// delivers it, and the admin's properties file, as Swarm secrets.
func runAdmin(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	plan := fs.String("plan", "", "access plan (JSON, package access): the owner's users and grants on each cluster")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long (brokers still starting are retried until then)")
	var conn settingsFlags
	conn.register(fs)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if *plan == "" {
		return usagef("admin: --plan is required")
	}
	data, err := os.ReadFile(*plan)
	if err != nil {
		return fmt.Errorf("read access plan: %w", err)
	}
	var p access.Plan
	if err := json.Unmarshal(data, &p); err != nil {
		return fmt.Errorf("access plan %s: %w", *plan, err)
	}
	if err := p.Check(); err != nil {
		return usageError{err}
	}
	settings, err := conn.overrides()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	// A broker that has just started may not know the admin user yet:
	// retry until the deadline.
	for {
		changes, err := kclient.ApplyAccess(ctx, p, settings)
		if err == nil {
			for _, c := range changes {
				log.Info("access applied", "owner", p.Owner, "cluster", c.Bootstrap, "users", len(c.UsersSet),
					"users_removed", c.UsersRemoved, "acls_created", c.ACLsCreated, "acls_removed", c.ACLsRemoved)
			}
			return nil
		}
		log.Warn("access not applied yet", "owner", p.Owner, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("access plan %s: %w", p.Owner, err)
		case <-time.After(2 * time.Second):
		}
	}
}
