package provider

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

const (
	pollInterval = time.Second
	// failedTasksLimit is how many failed tasks of one service end a wait:
	// Swarm would go on restarting, but the user needs the reason now.
	failedTasksLimit = 3
	// logTail is how many log lines of a failing task an error shows.
	logTail = 20
	// settleTime is how long a task must have been running to count, as
	// Swarm's own update monitor (5 s by default).
	settleTime = 5 * time.Second
)

// taskState summarises the current tasks of one service.
type taskState struct {
	running, complete int
	failed            []swarm.Task
	last              string // latest state and message, for timeouts
}

// waitServices waits until every service has all its replicas running (or,
// for a service that runs to completion, complete). It fails early, with the
// tasks' errors and last log lines, when tasks keep failing; on timeout it
// says what each unfinished service is doing. Each poll is two API calls
// (all services, all tasks), however many services there are.
func waitServices(ctx context.Context, cli *client.Client, ids map[string]string) error {
	pending := map[string]string{}
	for name, id := range ids {
		pending[name] = id
	}
	started := time.Now()
	var lastErr error
	for len(pending) > 0 {
		services, tasks, err := snapshot(ctx, cli)
		if err != nil {
			// A busy manager answers slowly or not at all for a moment
			// (seen with 200 services starting on two cores): poll again.
			tflog.Warn(ctx, "polling services failed; retrying", map[string]any{"error": err.Error()})
			lastErr = err
			select {
			case <-ctx.Done():
				return fmt.Errorf("timed out waiting for %d services to run; last error: %w", len(pending), lastErr)
			case <-time.After(pollInterval):
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
				tflog.Info(ctx, "service running", map[string]any{"service": name, "after": time.Since(started).Round(time.Millisecond).String()})
				delete(pending, name)
				continue
			}
			if len(st.failed) >= failedTasksLimit {
				return failureError(ctx, cli, name, st.failed)
			}
			if u := svc.UpdateStatus; u != nil && (u.State == swarm.UpdateStatePaused || u.State == swarm.UpdateStateRollbackStarted ||
				u.State == swarm.UpdateStateRollbackCompleted || u.State == swarm.UpdateStateRollbackPaused) {
				err := fmt.Errorf("service %s: update %s: %s", name, u.State, u.Message)
				if len(st.failed) > 0 {
					err = fmt.Errorf("%w\n%w", err, failureError(ctx, cli, name, st.failed))
				}
				return err
			}
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return timeoutError(ctx, cli, pending)
		case <-time.After(pollInterval):
		}
	}
	return nil
}

// snapshot returns all services by id and all tasks by service id.
func snapshot(ctx context.Context, cli *client.Client) (map[string]swarm.Service, map[string][]swarm.Task, error) {
	list, err := cli.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	services := make(map[string]swarm.Service, len(list))
	for _, s := range list {
		services[s.ID] = s
	}
	all, err := cli.TaskList(ctx, swarm.TaskListOptions{})
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
			// that dies on bad configuration is running for a moment first.
			if t.DesiredState == swarm.TaskStateRunning && time.Since(t.Status.Timestamp) >= settleTime {
				st.running++
			}
		case swarm.TaskStateComplete:
			st.complete++
		case swarm.TaskStateFailed, swarm.TaskStateRejected:
			st.failed = append(st.failed, t)
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

func failureError(ctx context.Context, cli *client.Client, name string, failed []swarm.Task) error {
	last := failed[len(failed)-1]
	var b strings.Builder
	fmt.Fprintf(&b, "service %s: %d tasks failed; the last one %s on node %s: %s",
		name, len(failed), last.Status.State, last.NodeID, strings.TrimSpace(last.Status.Err+" "+last.Status.Message))
	if lines := taskLogs(ctx, cli, last.ID); len(lines) > 0 {
		fmt.Fprintf(&b, "\nlast %d log lines of task %s:\n  %s", len(lines), last.ID, strings.Join(lines, "\n  "))
	}
	b.WriteString("\nThe service is left in place for inspection (docker service ps --no-trunc " + name + "); fix the cause and apply again.")
	return fmt.Errorf("%s", b.String())
}

func timeoutError(ctx context.Context, cli *client.Client, pending map[string]string) error {
	// The wait's context is done; use a short fresh one to describe why.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	services, tasks, err := snapshot(dctx, cli)
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
func taskLogs(ctx context.Context, cli *client.Client, taskID string) []string {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	rc, err := cli.TaskLogs(lctx, taskID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(logTail)})
	if err != nil {
		return nil
	}
	defer rc.Close()
	return demuxLines(rc)
}

// demuxLines reads Docker's multiplexed log stream into lines.
func demuxLines(r io.Reader) []string {
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

// waitTasksGone waits until a removed service has no task left.
func waitTasksGone(ctx context.Context, cli *client.Client, s swarm.Service) error {
	for {
		// The "service" filter refuses a removed service: filter here.
		all, err := cli.TaskList(ctx, swarm.TaskListOptions{})
		if err != nil {
			return fmt.Errorf("list tasks of removed service %s: %w", s.Spec.Name, err)
		}
		var tasks []swarm.Task
		for _, t := range all {
			if t.ServiceID == s.ID {
				tasks = append(tasks, t)
			}
		}
		if len(tasks) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("service %s removed, but %d of its tasks are still shutting down: %w", s.Spec.Name, len(tasks), ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}
