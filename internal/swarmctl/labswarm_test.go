package swarmctl

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/minibroker/terraform-provider-minibroker/internal/dockerssh"
	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

// labSwarm is a swarm formed on a 2-node lab as the provider forms one,
// over SSH: node 0 the manager, node 1 a filter node, the Kafka image
// loaded on both.
type labSwarm struct {
	c      *Client
	mgr    *Manager
	formed Formed
	hosts  []swarmspec.Host
	rec    Record
}

// formLabSwarm forms it with overlay subnets from addressPool. The client
// is closed at cleanup, and swarmctl's log shown if the test failed.
func formLabSwarm(ctx context.Context, t *testing.T, l *lab.Lab, addressPool string) *labSwarm {
	t.Helper()
	nodes := l.Nodes()
	root, err := images.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("swarmctl log:\n%s", logs.String())
		}
	})
	c, err := New(dockerssh.Config{User: l.SSHUser(), PrivateKeyPEM: l.PrivateKeyPEM(), KnownHostsFile: l.KnownHostsFile()},
		slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s := &labSwarm{c: c}
	if s.hosts, err = swarmspec.NumberHosts([]swarmspec.Host{
		{Address: nodes[0].Addr, Role: swarmspec.RoleManager},
		{Address: nodes[1].Addr, Role: swarmspec.RoleFilter},
	}); err != nil {
		t.Fatal(err)
	}
	s.mgr, s.formed, err = c.Form(ctx, Spec{Hosts: s.hosts, AddressPool: addressPool,
		Archives:   []string{filepath.Join(root, "bin/images/minibroker-kafka.tar")},
		KafkaImage: images.DefaultKafkaTag, WorkloadsImage: swarmspec.DefaultWorkloadsImage}, Prior{}, &s.rec)
	if err != nil {
		t.Fatalf("%v (run `make image` first if the archive is missing)", err)
	}
	return s
}
