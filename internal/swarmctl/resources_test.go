package swarmctl

import (
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// A hand-made `docker service update --limit-memory` (or of any other
// limit, reservation or restart setting) keeps the spec-hash label: the
// fields themselves must show it as drift.
func TestSpecDiffSeesResourcesAndRestartPolicy(t *testing.T) {
	want := swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec
	changes := map[string]func(*swarm.TaskSpec){
		"--limit-memory":         func(ts *swarm.TaskSpec) { ts.Resources.Limits.MemoryBytes = 512 << 20 },
		"--limit-cpu":            func(ts *swarm.TaskSpec) { ts.Resources.Limits.NanoCPUs = 1e9 },
		"--reserve-memory":       func(ts *swarm.TaskSpec) { ts.Resources.Reservations.MemoryBytes = 3 << 30 },
		"--reserve-cpu":          func(ts *swarm.TaskSpec) { ts.Resources.Reservations.NanoCPUs = 0 },
		"limits removed":         func(ts *swarm.TaskSpec) { ts.Resources = nil },
		"--restart-condition":    func(ts *swarm.TaskSpec) { ts.RestartPolicy.Condition = swarm.RestartPolicyConditionNone },
		"--restart-delay":        func(ts *swarm.TaskSpec) { d := time.Minute; ts.RestartPolicy.Delay = &d },
		"--restart-max-attempts": func(ts *swarm.TaskSpec) { n := uint64(3); ts.RestartPolicy.MaxAttempts = &n },
		"--restart-window":       func(ts *swarm.TaskSpec) { w := time.Minute; ts.RestartPolicy.Window = &w },
	}
	for name, change := range changes {
		got := swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec
		change(&got.TaskTemplate)
		d := SpecDiff(want, got)
		if len(d) != 1 || (d[0] != "resources" && d[0] != "restart policy") {
			t.Errorf("%s: diff %v, want resources or restart policy", name, d)
		}
	}

	// What Swarm gives back for what it leaves unset is no change: a
	// policy of Swarm's defaults equals no policy.
	got := swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec
	got.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{}
	want.TaskTemplate.RestartPolicy = nil
	if d := SpecDiff(want, got); len(d) != 0 {
		t.Errorf("defaults counted as drift: %v", d)
	}
	got.TaskTemplate.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{}}
	want.TaskTemplate.Resources = nil
	if d := SpecDiff(want, got); !slices.Equal(d, nil) {
		t.Errorf("empty limits counted as drift: %v", d)
	}
}

// A task that no node has room for is reported once it has waited
// unschedulableTime, not at the end of the apply's timeout.
func TestClassifySeesUnschedulableTasks(t *testing.T) {
	svc := swarm.Service{Spec: swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec}
	task := func(age time.Duration, err string) swarm.Task {
		var tk swarm.Task
		tk.CreatedAt = time.Now().Add(-age)
		tk.Spec = svc.Spec.TaskTemplate
		tk.Status = swarm.TaskStatus{State: swarm.TaskStatePending, Err: err, Timestamp: time.Now()}
		tk.DesiredState = swarm.TaskStateRunning
		return tk
	}
	const why = "no suitable node (insufficient resources on 2 nodes)"
	if st := classify(svc, []swarm.Task{task(time.Minute, why)}); st.unschedulable != why {
		t.Errorf("a task pending for a minute: %q, want %q", st.unschedulable, why)
	}
	if st := classify(svc, []swarm.Task{task(time.Second, why)}); st.unschedulable != "" {
		t.Errorf("a task just created: %q, want none yet", st.unschedulable)
	}
	if st := classify(svc, []swarm.Task{task(time.Minute, "")}); st.unschedulable != "" {
		t.Errorf("a task pending for another reason: %q", st.unschedulable)
	}
}
