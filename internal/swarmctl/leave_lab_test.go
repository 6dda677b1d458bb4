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

// TestLeaveRemovesStuckLeftovers leaves a swarm on a lab node whose engine
// keeps a task container that nothing will remove (as a busy engine that
// gave up on its tasks does): the leave removes it by force once it has
// not gone for staleEndpointGrace, then removes docker_gwbridge, and leaves
// nothing of Swarm on the host.
func TestLeaveRemovesStuckLeftovers(t *testing.T) {
	l := lab.ForTest(t, 1)
	node := l.Nodes()[0]
	root, err := images.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*gwbridgeTimeout)
	defer cancel()
	if err := l.LoadImage(ctx, 1, filepath.Join(root, "bin/images/minibroker-workloads.tar")); err != nil {
		t.Fatalf("%v (run `make image` first; make test does)", err)
	}
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+node.DockerSocket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	if _, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: node.Addr, AdvertiseAddr: node.Addr}); err != nil {
		t.Fatal(err)
	}
	// The engine sets up its ingress sandbox, and with it the bridge, just
	// after the init.
	for {
		_, err := cli.NetworkInspect(ctx, gwbridge, network.InspectOptions{})
		if err == nil {
			break
		}
		if !sleep(ctx, pollInterval) {
			t.Fatalf("swarm init made no %s: %v", gwbridge, err)
		}
	}
	// A container labelled as a task, which Swarm's agent did not create and
	// so never removes.
	stuck, err := cli.ContainerCreate(ctx, &container.Config{
		Image:  swarmspec.DefaultWorkloadsImage,
		Cmd:    []string{"version"},
		Labels: map[string]string{"com.docker.swarm.task": ""},
	}, &container.HostConfig{NetworkMode: gwbridge}, nil, nil, "stuck-task")
	if err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	start := time.Now()
	if err := leaveSwarm(ctx, slog.New(slog.NewTextHandler(&logs, nil)), cli, node.Addr); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("leave took %s; log:\n%s", took.Round(time.Millisecond), logs.String())

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
	if len(left) > 0 {
		t.Errorf("task containers left after leave: %d (the stuck one is %s)", len(left), stuck.ID)
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
	if !strings.Contains(logs.String(), "removing a task container left after leaving the swarm") {
		t.Errorf("the log does not say that the stuck container was removed")
	}
	if took >= gwbridgeTimeout {
		t.Errorf("leave took %s: it waited out its whole timeout instead of removing what was stuck", took)
	}
}
