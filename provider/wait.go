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
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/hashicorp/terraform-plugin-log/tflog"
)

const (
	pollInterval = time.Second
	// failedTasksLimit is how many failed tasks of one service end a wait:
	// Swarm would go on restarting, but the user needs the reason now.
	failedTasksLimit = 3
	// logTail is how many log lines of a failing task an error shows.
	logTail = 20
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
// says what each unfinished service is doing.
func waitServices(ctx context.Context, cli *client.Client, ids map[string]string) error {
	pending := map[string]string{}
	for name, id := range ids {
		pending[name] = id
	}
	started := time.Now()
	for {
		for name, id := range pending {
			svc, _, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
			if err != nil {
				return fmt.Errorf("inspect service %s: %w", name, err)
			}
			st, err := serviceTasks(ctx, cli, svc)
			if err != nil {
				return err
			}
			want := int(replicas(svc.Spec))
			if st.running+st.complete >= want {
				tflog.Info(ctx, "service running", map[string]any{"service": name, "after": time.Since(started).Round(time.Millisecond).String()})
				delete(pending, name)
				continue
			}
			if len(st.failed) >= failedTasksLimit {
				return failureError(ctx, cli, name, st.failed)
			}
			pending[name] = id
			_ = st
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return timeoutError(ctx, cli, pending)
		case <-time.After(pollInterval):
		}
	}
}

// serviceTasks classifies the tasks of the service's current spec version.
func serviceTasks(ctx context.Context, cli *client.Client, svc swarm.Service) (taskState, error) {
	tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
	if err != nil {
		return taskState{}, fmt.Errorf("list tasks of %s: %w", svc.Spec.Name, err)
	}
	var st taskState
	slices.SortFunc(tasks, func(a, b swarm.Task) int { return a.Status.Timestamp.Compare(b.Status.Timestamp) })
	for _, t := range tasks {
		if !currentVersion(svc, t) {
			continue
		}
		switch t.Status.State {
		case swarm.TaskStateRunning:
			if t.DesiredState == swarm.TaskStateRunning {
				st.running++
			}
		case swarm.TaskStateComplete:
			st.complete++
		case swarm.TaskStateFailed, swarm.TaskStateRejected:
			st.failed = append(st.failed, t)
		}
		st.last = fmt.Sprintf("%s %s", t.Status.State, strings.TrimSpace(t.Status.Message+" "+t.Status.Err))
	}
	return st, nil
}

// currentVersion reports whether a task runs the service's current spec:
// after an update, old tasks (and their failures) no longer count.
func currentVersion(svc swarm.Service, t swarm.Task) bool {
	if svc.UpdateStatus == nil || svc.UpdateStatus.StartedAt == nil {
		return true
	}
	return !t.CreatedAt.Before(*svc.UpdateStatus.StartedAt)
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
	var lines []string
	for name, id := range pending {
		svc, _, err := cli.ServiceInspectWithRaw(dctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			lines = append(lines, name+": "+err.Error())
			continue
		}
		st, err := serviceTasks(dctx, cli, svc)
		if err != nil {
			lines = append(lines, name+": "+err.Error())
			continue
		}
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
