package swarmctl

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// taskState summarises the current tasks of one service.
type taskState struct {
	running, complete int
	failed            []swarm.Task
	last              string // latest state and message, for timeouts
	// unschedulable is Swarm's reason when a task has waited longer than
	// unschedulableTime for a node whose free resources fit its
	// reservations.
	unschedulable string
}

// WaitRunning waits until every service (ids by name) has all its replicas
// running for settleTime (swarmspec.JVMSettleTime for a JVM service; or,
// for a service that runs to completion, complete). It fails early, with the tasks' errors and last log lines,
// when tasks keep failing; on timeout it says what each unfinished service
// is doing. Each poll is two API calls (all services, all tasks), however
// many services there are.
func (m *Manager) WaitRunning(ctx context.Context, ids map[string]string) error {
	pending := maps.Clone(ids)
	started := time.Now()
	for len(pending) > 0 {
		services, tasks, err := m.snapshot(ctx)
		if err != nil {
			// A busy manager answers slowly or not at all for a moment
			// (hundreds of tasks starting on a few cores): poll again.
			m.log.WarnContext(ctx, "polling services failed; retrying", "error", err.Error())
			if !sleep(ctx, pollInterval) {
				return fmt.Errorf("timed out waiting for %d services to run; last error: %w", len(pending), err)
			}
			continue
		}
		for name, id := range pending {
			svc, ok := services[id]
			if !ok {
				return fmt.Errorf("service %s was removed while waiting for it to run", name)
			}
			st := classify(svc, tasks[id])
			if st.running+st.complete >= int(replicas(svc.Spec)) {
				m.log.InfoContext(ctx, "service running", "service", name, "after", time.Since(started).Round(time.Millisecond).String())
				delete(pending, name)
				continue
			}
			if len(st.failed) >= failedTasksLimit {
				return m.failureError(ctx, name, st.failed)
			}
			if st.unschedulable != "" {
				return fmt.Errorf("service %s: no node can take its task: %s. The reservations of the tasks on the nodes "+
					"it may run on (its placement) would exceed their CPUs or memory: lower the services' reservations or add nodes "+
					"(docker node inspect shows a node's resources, docker service inspect a service's reservations)", name, st.unschedulable)
			}
			if u := svc.UpdateStatus; u != nil && updateFailed(u.State) {
				err := fmt.Errorf("service %s: update %s: %s", name, u.State, u.Message)
				if len(st.failed) > 0 {
					err = fmt.Errorf("%w\n%w", err, m.failureError(ctx, name, st.failed))
				}
				return err
			}
		}
		if len(pending) > 0 && !sleep(ctx, pollInterval) {
			return m.timeoutError(ctx, pending)
		}
	}
	return nil
}

// updateFailed reports whether Swarm gave up on a service update.
func updateFailed(s swarm.UpdateState) bool {
	switch s {
	case swarm.UpdateStatePaused, swarm.UpdateStateRollbackStarted,
		swarm.UpdateStateRollbackCompleted, swarm.UpdateStateRollbackPaused:
		return true
	}
	return false
}

// sleep waits for d; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// snapshot returns all services by id and all tasks by service id.
func (m *Manager) snapshot(ctx context.Context) (map[string]swarm.Service, map[string][]swarm.Task, error) {
	list, err := m.cli.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	services := make(map[string]swarm.Service, len(list))
	for _, s := range list {
		services[s.ID] = s
	}
	all, err := m.cli.TaskList(ctx, swarm.TaskListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list tasks: %w", err)
	}
	tasks := map[string][]swarm.Task{}
	for _, t := range all {
		tasks[t.ServiceID] = append(tasks[t.ServiceID], t)
	}
	return services, tasks, nil
}

// classify sums up the tasks of the service's current spec version.
func classify(svc swarm.Service, tasks []swarm.Task) taskState {
	var st taskState
	slices.SortFunc(tasks, func(a, b swarm.Task) int { return a.Status.Timestamp.Compare(b.Status.Timestamp) })
	for _, t := range tasks {
		if !currentTask(svc, t) {
			continue
		}
		switch t.Status.State {
		case swarm.TaskStateRunning:
			// A task counts once it has kept running for a while: a process
			// that dies on bad configuration is running for a moment first
			// (a JVM's, for longer).
			settle := settleTime
			if swarmspec.IsJVM(svc.Spec.Labels[swarmspec.LabelComponent]) {
				settle = swarmspec.JVMSettleTime
			}
			if t.DesiredState == swarm.TaskStateRunning && time.Since(t.Status.Timestamp) >= settle {
				st.running++
			}
		case swarm.TaskStateComplete:
			st.complete++
		case swarm.TaskStateFailed, swarm.TaskStateRejected:
			st.failed = append(st.failed, t)
		case swarm.TaskStatePending:
			why := t.Status.Err // "no suitable node (insufficient resources on 2 nodes)"
			if why == "" {
				why = t.Status.Message
			}
			if strings.Contains(why, "insufficient resources") && time.Since(t.CreatedAt) >= unschedulableTime {
				st.unschedulable = why
			}
		}
		st.last = fmt.Sprintf("%s %s", t.Status.State, strings.TrimSpace(t.Status.Message+" "+t.Status.Err))
	}
	return st
}

// currentTask reports whether a task runs the service's current task
// template: after an update, old tasks (and their failures) do not count.
func currentTask(svc swarm.Service, t swarm.Task) bool {
	want := svc.Spec.TaskTemplate.ContainerSpec
	if want == nil || t.Spec.ContainerSpec == nil {
		return false
	}
	return t.Spec.ContainerSpec.Labels[swarmspec.LabelTaskHash] == want.Labels[swarmspec.LabelTaskHash]
}

func (m *Manager) failureError(ctx context.Context, name string, failed []swarm.Task) error {
	last := failed[len(failed)-1]
	var b strings.Builder
	fmt.Fprintf(&b, "service %s: %d tasks failed; the last one %s on node %s: %s",
		name, len(failed), last.Status.State, last.NodeID, strings.TrimSpace(last.Status.Err+" "+last.Status.Message))
	if s := last.Status.ContainerStatus; (s != nil && s.ExitCode == 137) || strings.Contains(last.Status.Err, "exit (137)") {
		b.WriteString(" (137: killed, as by its memory limit when it uses more)")
	}
	if lines := m.taskLogs(ctx, last.ID); len(lines) > 0 {
		fmt.Fprintf(&b, "\nlast %d log lines of task %s:\n  %s", len(lines), last.ID, strings.Join(lines, "\n  "))
	}
	b.WriteString("\nThe service is left in place for inspection (docker service ps --no-trunc " + name + "); fix the cause and apply again.")
	return fmt.Errorf("%s", b.String())
}

func (m *Manager) timeoutError(ctx context.Context, pending map[string]string) error {
	// The wait's context is done; use a short fresh one to describe why.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	services, tasks, err := m.snapshot(dctx)
	if err != nil {
		return fmt.Errorf("timed out waiting for %d services to run (%w)", len(pending), err)
	}
	var lines []string
	for name, id := range pending {
		svc := services[id]
		st := classify(svc, tasks[id])
		if st.last == "" {
			st.last = "no task yet"
		}
		lines = append(lines, fmt.Sprintf("%s: %d/%d running, last task: %s", name, st.running, replicas(svc.Spec), st.last))
	}
	slices.Sort(lines)
	return fmt.Errorf("timed out waiting for services to run:\n  %s", strings.Join(lines, "\n  "))
}

// taskLogs returns the last log lines of a task, or nothing when Docker
// cannot give them (the node may be gone).
func (m *Manager) taskLogs(ctx context.Context, taskID string) []string {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rc, err := m.cli.TaskLogs(lctx, taskID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(logTail)})
	if err != nil {
		return nil
	}
	defer rc.Close()
	return LogLines(rc)
}

// LogLines reads Docker's multiplexed log stream (service, task or
// container logs) into lines.
func LogLines(r io.Reader) []string {
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, r)
		pw.CloseWithError(err)
	}()
	var lines []string
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	_ = pr.Close()
	return lines
}

// waitTasksGone waits until no removed service has a task left. Each poll
// is one API call, however many services there are.
func (m *Manager) waitTasksGone(ctx context.Context, services []swarm.Service) error {
	removed := make(map[string]string, len(services)) // names by id
	jobs := map[string]bool{}
	for _, s := range services {
		removed[s.ID] = s.Spec.Name
		jobs[s.ID] = s.Spec.Mode.ReplicatedJob != nil
	}
	for len(removed) > 0 {
		// The "service" filter refuses a removed service: filter here.
		all, err := m.cli.TaskList(ctx, swarm.TaskListOptions{})
		if err != nil {
			return fmt.Errorf("list tasks of removed services: %w", err)
		}
		left := map[string]int{} // tasks by service name
		for _, t := range all {
			// Swarm keeps the finished tasks of a removed job for a while;
			// they hold no running container and a job mounts no volume.
			if jobs[t.ServiceID] && terminal(t.Status.State) {
				continue
			}
			if name, ok := removed[t.ServiceID]; ok {
				left[name]++
			}
		}
		if len(left) == 0 {
			return nil
		}
		if !sleep(ctx, pollInterval) {
			var still []string
			for name, n := range left {
				still = append(still, fmt.Sprintf("%s (%d tasks)", name, n))
			}
			slices.Sort(still)
			return fmt.Errorf("services removed, but tasks of %s are still shutting down: %w", strings.Join(still, ", "), ctx.Err())
		}
	}
	return nil
}

// terminal reports whether a task in state s has ended for good.
func terminal(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateShutdown, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		return true
	}
	return false
}
