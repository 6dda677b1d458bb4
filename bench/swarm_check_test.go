package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/report"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/sample"
)

// This file holds what the benchmarks check and measure through the nodes'
// own Docker sockets, without SSH.

type verifyResult struct {
	services, running int
	waited            time.Duration  // after apply returned, until all ran
	restarted         []string       // services with more than one task
	ended             map[string]int // why the tasks that no longer run ended (state: error), and how many
}

// endedSummary lists why tasks ended, most frequent first: "failed: task:
// non-zero exit (1) ×3; ...".
func (v verifyResult) endedSummary() string {
	reasons := slices.Collect(maps.Keys(v.ended))
	slices.SortFunc(reasons, func(a, b string) int { return cmp.Or(v.ended[b]-v.ended[a], strings.Compare(a, b)) })
	var out []string
	for _, r := range reasons {
		out = append(out, fmt.Sprintf("%s ×%d", r, v.ended[r]))
	}
	return strings.Join(out, "; ")
}

// managedServices selects the services the provider made.
var managedServices = swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmspec.LabelManaged+"=true"))}

// verifyRunning checks, on the manager's socket, that want managed services
// exist and each has a running task.
func (s *swarmBench) verifyRunning(ctx context.Context, want int) verifyResult {
	mgr := s.engines[0]
	began := time.Now()
	var v verifyResult
	for {
		svcs, err := mgr.ServiceList(ctx, managedServices)
		var tasks []swarm.Task
		if err == nil {
			tasks, err = mgr.TaskList(ctx, swarm.TaskListOptions{})
		}
		if err != nil {
			s.transient(began, 2*time.Minute, "verify services", err)
			continue
		}
		running := map[string]bool{}
		count := map[string]int{}
		ended := map[string]int{}
		for _, t := range tasks {
			count[t.ServiceID]++
			if t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning {
				running[t.ServiceID] = true
			} else if t.DesiredState != swarm.TaskStateRunning {
				ended[fmt.Sprintf("%s: %s", t.Status.State, cmp.Or(t.Status.Err, t.Status.Message))]++
			}
		}
		v = verifyResult{services: len(svcs), waited: time.Since(began), ended: ended}
		var notRunning []string
		for _, svc := range svcs {
			if running[svc.ID] {
				v.running++
			} else {
				notRunning = append(notRunning, svc.Spec.Name)
			}
			if count[svc.ID] > 1 {
				v.restarted = append(v.restarted, fmt.Sprintf("%s (%d tasks)", svc.Spec.Name, count[svc.ID]))
			}
		}
		if v.services == want && v.running == want {
			break
		}
		if time.Since(began) > 2*time.Minute {
			sort.Strings(notRunning)
			s.b.Fatalf("after apply: %d managed services (want %d), %d with a running task; not running: %v", v.services, want, v.running, notRunning)
		}
		time.Sleep(time.Second)
	}
	sort.Strings(v.restarted)
	s.b.Logf("verified on the manager: %d services, each with a running task (%.1f s after apply returned); %d had more than one task: %s",
		v.services, v.waited.Seconds(), len(v.restarted), report.FirstFew(v.restarted, 8))
	return v
}

// transient notes an API error of an overloaded engine (a swarm manager on
// saturated cores answers DeadlineExceeded now and then), waits a second and
// lets the caller retry; past limit since began it fails the benchmark.
func (s *swarmBench) transient(began time.Time, limit time.Duration, what string, err error) {
	s.b.Helper()
	if time.Since(began) > limit {
		s.b.Fatalf("%s: %v (still failing after %s)", what, err, limit)
	}
	s.b.Logf("%s: %v (retrying)", what, err)
	time.Sleep(time.Second)
}

// checkNothingLeft checks every node: swarm inactive, no containers, no
// networks but bridge, host and none, none of our images. It gives Docker a
// little time to finish removing things; what is still there after that
// fails the benchmark (after the rest has run) and is returned.
func (s *swarmBench) checkNothingLeft(ctx context.Context, when string) []string {
	began := time.Now()
	for {
		var problems []string
		for i, cli := range s.engines {
			problems = append(problems, leftOnNode(ctx, s.nodes[i].Name, cli)...)
		}
		if len(problems) == 0 {
			s.b.Logf("%s: nothing left on the %d nodes (checked after %.1f s)", when, len(s.engines), time.Since(began).Seconds())
			return nil
		}
		if time.Since(began) > time.Minute {
			s.b.Errorf("%s, left behind:\n  %s", when, strings.Join(problems, "\n  "))
			return problems
		}
		time.Sleep(time.Second)
	}
}

// leftOnNode lists what is left on one node of a swarm that was taken
// down, and the errors of asking.
func leftOnNode(ctx context.Context, name string, cli *client.Client) []string {
	var problems []string
	info, err := cli.Info(ctx)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", name, err)}
	}
	if info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		problems = append(problems, fmt.Sprintf("%s: swarm %s", name, info.Swarm.LocalNodeState))
	}
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", name, err))
	}
	for _, c := range cs {
		problems = append(problems, fmt.Sprintf("%s: container %v (%s, %s)", name, c.Names, c.Image, c.State))
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", name, err))
	}
	for _, nw := range nets {
		if !slices.Contains([]string{"bridge", "host", "none"}, nw.Name) {
			problems = append(problems, fmt.Sprintf("%s: network %s", name, nw.Name))
		}
	}
	imgs, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("reference", "minibroker/*"))})
	if err != nil {
		problems = append(problems, fmt.Sprintf("%s: %v", name, err))
	}
	for _, img := range imgs {
		problems = append(problems, fmt.Sprintf("%s: image %v", name, img.RepoTags))
	}
	return problems
}

// rawImageLoad loads the archives as the provider does (Kafka onto the
// manager and the filter hosts, workloads onto every node but the manager;
// 8 nodes at a time, a node's archives one after the other), but through the
// nodes' unix sockets, then removes the images again.
func (s *swarmBench) rawImageLoad(ctx context.Context) (time.Duration, int64) {
	var mu sync.Mutex
	var bytes int64
	load := func(cli *client.Client, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, _ := f.Stat()
		resp, err := cli.ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
		if err != nil {
			return fmt.Errorf("load %s: %w", path, err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		mu.Lock()
		bytes += st.Size()
		mu.Unlock()
		return nil
	}
	start := time.Now()
	err := parallel.ForEach(ctx, callsAtOnce, indexes(len(s.engines)), func(ctx context.Context, i int) error {
		isManager, isFilter := i == 0, i >= 2 && i < 2+filterHosts
		if isManager || isFilter {
			if err := load(s.engines[i], s.kafka); err != nil {
				return err
			}
		}
		if !isManager {
			return load(s.engines[i], s.workloads)
		}
		return nil
	})
	took := time.Since(start)
	if err != nil {
		s.b.Errorf("raw image loads: %v", err)
		took = 0
	} else {
		s.b.Logf("raw image loads: %.0f MB onto %d nodes in %.1f s", float64(bytes)/1e6, len(s.engines), took.Seconds())
	}
	err = parallel.ForEach(ctx, callsAtOnce, s.engines, func(ctx context.Context, cli *client.Client) error {
		for _, ref := range []string{kafkaImage, workloadsImage} {
			if _, err := cli.ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.b.Errorf("removing the raw-loaded images: %v", err)
	}
	return took, bytes
}

// indexes is 0, 1, ..., n-1.
func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// --- what else uses the machine's CPU --------------------------------------

// noteOtherLabs records the nodes of other labs running on this machine
// (their network namespaces): they share the cores with this benchmark.
func (s *swarmBench) noteOtherLabs() {
	entries, _ := os.ReadDir("/run/netns")
	own := fmt.Sprintf("mblab%d-", s.lab.Number())
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "mblab") && !strings.HasPrefix(n, own) {
			if s.others == nil {
				s.others = map[string]bool{}
			}
			s.others[n] = true
		}
	}
}

// kafkaHostsCPU is the CPU time, of u, of the containers on the manager and
// the filter hosts (hub, mirrors, MirrorMaker 2, filters). The lab gives
// the containers of the node in slot I, whose directory is /tmp/mblabN/nI,
// the cgroup parent mblabN-nI.
func (s *swarmBench) kafkaHostsCPU(u sample.Usage) float64 {
	kafkaHosts := map[string]bool{}
	for i, n := range s.nodes {
		if i < 1 || (i >= 2 && i < 2+filterHosts) {
			kafkaHosts[fmt.Sprintf("mblab%d-%s", s.lab.Number(), filepath.Base(n.Dir))] = true
		}
	}
	return u.CgroupCPU(func(cgroup string) bool { return kafkaHosts[cgroup] })
}

// otherLabs lists the nodes of other labs seen during the run.
func (s *swarmBench) otherLabs() []string { return slices.Sorted(maps.Keys(s.others)) }
