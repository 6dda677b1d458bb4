package swarmctl

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

// TestLeave leaves a swarm on a lab node twice: a plain leave must remove
// docker_gwbridge without forcing anything; then, with a task container of
// the node that nothing will remove (as a busy engine that gave up on its
// tasks leaves one), the leave must remove it by force once it has not gone
// for staleEndpointGrace, then the bridge, and leave nothing of Swarm on the
// host.
func TestLeave(t *testing.T) {
	l := lab.ForTest(t, 1)
	node := l.Nodes()[0]
	root, err := images.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*gwbridgeTimeout)
	defer cancel()
	if err := l.LoadImage(ctx, 1, filepath.Join(root, "bin/images/minibroker-workloads.tar")); err != nil {
		t.Fatalf("%v (run `make image` first; make test does)", err)
	}
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+node.DockerSocket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	t.Run("plain", func(t *testing.T) {
		initLabSwarm(ctx, t, cli, node.Addr)
		logs, took := leave(ctx, t, cli, node.Addr)
		checkLeft(ctx, t, cli)
		if strings.Contains(logs, "level=WARN") || strings.Contains(logs, "by force") || strings.Contains(logs, "removing a task container") {
			t.Errorf("a plain leave warned or forced something:\n%s", logs)
		}
		if took >= staleEndpointGrace {
			t.Errorf("a plain leave took %s", took)
		}
	})
	t.Run("stuck task container", func(t *testing.T) {
		nodeID := initLabSwarm(ctx, t, cli, node.Addr)
		// A container labelled as a task of this node, which Swarm's agent
		// did not create and so never removes.
		if _, err := cli.ContainerCreate(ctx, &container.Config{
			Image:  swarmspec.DefaultWorkloadsImage,
			Cmd:    []string{"version"},
			Labels: map[string]string{"com.docker.swarm.task": "", labelTaskNode: nodeID},
		}, &container.HostConfig{NetworkMode: gwbridge}, nil, nil, "stuck-task"); err != nil {
			t.Fatal(err)
		}
		logs, took := leave(ctx, t, cli, node.Addr)
		checkLeft(ctx, t, cli)
		if !strings.Contains(logs, "removing a task container left after leaving the swarm") {
			t.Errorf("the log does not say that the stuck container was removed")
		}
		if took < staleEndpointGrace || took >= gwbridgeTimeout {
			t.Errorf("leave took %s: it should force the removal after %s, well before its %s timeout", took, staleEndpointGrace, gwbridgeTimeout)
		}
	})
}

// initLabSwarm makes the host a single-node swarm and waits for its
// docker_gwbridge (the engine sets up its ingress sandbox, and with it the
// bridge, just after the init). It returns the node's id.
func initLabSwarm(ctx context.Context, t *testing.T, cli *client.Client, addr string) string {
	t.Helper()
	id, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: addr, AdvertiseAddr: addr})
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, err := cli.NetworkInspect(ctx, gwbridge, network.InspectOptions{})
		if err == nil {
			return id
		}
		if !sleep(ctx, pollInterval) {
			t.Fatalf("swarm init made no %s: %v", gwbridge, err)
		}
	}
}

// leave runs leaveSwarm and returns its log and how long it took.
func leave(ctx context.Context, t *testing.T, cli *client.Client, addr string) (string, time.Duration) {
	t.Helper()
	var logs bytes.Buffer
	start := time.Now()
	if err := leaveSwarm(ctx, slog.New(slog.NewTextHandler(&logs, nil)), cli, addr); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("leave took %s; log:\n%s", took.Round(time.Millisecond), logs.String())
	return logs.String(), took
}

// checkLeft fails the test when the host is still in a swarm or keeps a
// task container, a swarm network or docker_gwbridge.
func checkLeft(ctx context.Context, t *testing.T, cli *client.Client) {
	t.Helper()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		t.Errorf("node state after leave: %s, want inactive", info.Swarm.LocalNodeState)
	}
	left, err := cli.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.task"))})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range left {
		t.Errorf("task container left after leave: %s", strings.Join(c.Names, ","))
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		if n.Name == gwbridge || n.Scope == "swarm" {
			t.Errorf("network left after leave: %s (%s)", n.Name, n.Scope)
		}
	}
}
