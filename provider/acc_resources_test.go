package provider

import (
	"context"
	"fmt"
	"testing"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

// checkResources checks through the Docker API that every kind of
// long-running service of accTemplate carries its limits, reservations
// and restart policy: defaults, the JVMs' memory following their heaps
// (384 MiB for the Kafkas, 256 for MirrorMaker 2). The producer, which
// ends after its visits, is left to internal/swarmspec's tests.
func checkResources(t *testing.T, nodes []lab.Node) resource.TestCheckFunc {
	return func(*terraform.State) error {
		var engines []*client.Client
		for _, n := range nodes {
			engines = append(engines, engine(t, n))
		}
		mgr := engines[nManager]
		broker := func(r swarmspec.Resources) swarmspec.Resources {
			r.MemoryMB = swarmspec.JVMMemoryMB(384, true)
			return r
		}
		mm := swarmspec.MirrorMakerResources
		mm.MemoryMB = swarmspec.JVMMemoryMB(256, false)
		want := map[string]swarmspec.Resources{
			"mb-hub":       broker(swarmspec.HubResources),
			"mb-mirror-m0": broker(swarmspec.MirrorKafkaResources), "mb-mirror-m0-mm2": mm,
			"mb-g0-bright": swarmspec.FilterResources, "mb-g1-filters": swarmspec.FilterResources,
			"mb-g0-bright-c": swarmspec.ConsumerResources,
		}
		for name, w := range want {
			if err := checkServiceResources(context.Background(), mgr, engines, name, w); err != nil {
				return err
			}
		}
		return nil
	}
}

// checkServiceResources compares a service's limits and reservations with
// want, checks its restart policy, and that Docker gave its running
// container the limits (the lab's engines, like any, apply them).
func checkServiceResources(ctx context.Context, mgr *client.Client, engines []*client.Client, name string, want swarmspec.Resources) error {
	svc, _, err := mgr.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		return err
	}
	r := svc.Spec.TaskTemplate.Resources
	if r == nil || r.Limits == nil || r.Reservations == nil {
		return fmt.Errorf("%s: resources %+v, want limits and reservations", name, r)
	}
	got := swarmspec.Resources{CPUs: float64(r.Limits.NanoCPUs) / 1e9, MemoryMB: int(r.Limits.MemoryBytes >> 20),
		ReserveCPUs: float64(r.Reservations.NanoCPUs) / 1e9, ReserveMemoryMB: int(r.Reservations.MemoryBytes >> 20)}
	if got != want {
		return fmt.Errorf("%s: resources %+v, want %+v", name, got, want)
	}
	p := svc.Spec.TaskTemplate.RestartPolicy
	if p == nil || p.Delay == nil || *p.Delay != swarmspec.RestartDelay || p.MaxAttempts == nil || *p.MaxAttempts != 0 {
		return fmt.Errorf("%s: restart policy %+v, want a delay of %s and no limit on attempts", name, p, swarmspec.RestartDelay)
	}
	tasks, err := mgr.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID),
		filters.Arg("desired-state", "running"))})
	if err != nil {
		return err
	}
	for _, task := range tasks {
		if task.Status.State != swarm.TaskStateRunning || task.Status.ContainerStatus == nil {
			continue
		}
		for _, e := range engines {
			c, err := e.ContainerInspect(ctx, task.Status.ContainerStatus.ContainerID)
			if err != nil {
				continue // on another node
			}
			if c.HostConfig.Memory != r.Limits.MemoryBytes || c.HostConfig.NanoCPUs != r.Limits.NanoCPUs {
				return fmt.Errorf("%s: container %s runs with memory %d and NanoCPUs %d, want %d and %d", name, c.Name,
					c.HostConfig.Memory, c.HostConfig.NanoCPUs, r.Limits.MemoryBytes, r.Limits.NanoCPUs)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: no running container found", name)
}

// limitMemoryByHand does what `docker service update --limit-memory` does.
func limitMemoryByHand(ctx context.Context, mgr *client.Client, name string, mb int64) error {
	svc, _, err := mgr.ServiceInspectWithRaw(ctx, name, swarm.ServiceInspectOptions{})
	if err != nil {
		return err
	}
	svc.Spec.TaskTemplate.Resources.Limits.MemoryBytes = mb << 20
	_, err = mgr.ServiceUpdate(ctx, svc.ID, svc.Version, svc.Spec, swarm.ServiceUpdateOptions{})
	return err
}
