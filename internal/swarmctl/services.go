package swarmctl

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Deploy makes the services of owner exactly the desired ones and waits
// until their tasks run (see Apply and WaitRunning). It returns service ids
// by name as soon as the services exist, also when the wait then fails, so
// that the caller can keep them.
func (m *Manager) Deploy(ctx context.Context, owner string, desired []swarmspec.Desired) (map[string]string, error) {
	ids, err := m.Apply(ctx, owner, desired)
	if err != nil {
		return ids, err
	}
	return ids, m.WaitRunning(ctx, ids)
}

// Apply makes the services of owner exactly the desired ones. It first
// refuses names other owners' services hold (CheckNames); then configs
// and secrets; then the brokers and the access jobs, whose
// completion it waits for (the job creates the Kafka users every other
// service of the owner logs in as, and it waits itself for its brokers);
// then the other services; then services, configs and secrets of owner
// that are no longer wanted are removed. Services are created or updated
// concurrently. It returns service ids by name and does not wait for the
// tasks of services other than jobs.
func (m *Manager) Apply(ctx context.Context, owner string, desired []swarmspec.Desired) (map[string]string, error) {
	names := make([]string, len(desired))
	for i, d := range desired {
		names[i] = d.Name()
	}
	if err := m.CheckNames(ctx, owner, names); err != nil {
		return nil, err
	}
	objectIDs, err := m.ensureObjects(ctx, owner, desired)
	if err != nil {
		return nil, err
	}
	existing, err := m.owned(ctx, owner)
	if err != nil {
		return nil, err
	}

	ids := make(map[string]string, len(desired))
	var mu sync.Mutex
	put := func(batch []swarmspec.Desired) error {
		return parallel.ForEach(ctx, maxParallel, batch, func(ctx context.Context, d swarmspec.Desired) error {
			id, err := m.put(ctx, d, existing, objectIDs)
			if err != nil {
				return err
			}
			mu.Lock()
			ids[d.Name()] = id
			mu.Unlock()
			return nil
		})
	}
	first, rest := firstPhase(desired)
	if err := put(first); err != nil {
		return ids, err
	}
	jobs := map[string]string{}
	for _, d := range first {
		if d.Spec.Mode.ReplicatedJob != nil {
			jobs[d.Name()] = ids[d.Name()]
		}
	}
	if err := m.WaitRunning(ctx, jobs); err != nil {
		return ids, err
	}
	if err := put(rest); err != nil {
		return ids, err
	}

	var stale []swarm.Service
	for name, s := range existing {
		if !slices.ContainsFunc(desired, func(d swarmspec.Desired) bool { return d.Name() == name }) {
			stale = append(stale, s)
		}
	}
	if err := m.removeServices(ctx, stale); err != nil {
		return ids, err
	}
	return ids, m.removeUnusedObjects(ctx, owner, desired)
}

// firstPhase splits desired into what Apply puts first, the brokers and
// the access jobs, and the rest.
func firstPhase(desired []swarmspec.Desired) (first, rest []swarmspec.Desired) {
	for _, d := range desired {
		switch d.Spec.Labels[swarmspec.LabelComponent] {
		case swarmspec.ComponentHub, swarmspec.ComponentMirrorKafka, swarmspec.ComponentAccess:
			first = append(first, d)
		default:
			rest = append(rest, d)
		}
	}
	return first, rest
}

// put creates the service, or updates it where it differs from the desired
// spec, and returns its id.
func (m *Manager) put(ctx context.Context, d swarmspec.Desired, existing map[string]swarm.Service, objectIDs map[string]string) (string, error) {
	spec := withObjectIDs(d.Spec, objectIDs)
	cur, ok := existing[d.Name()]
	if !ok {
		m.log.InfoContext(ctx, LogCreateService, "service", d.Name(), "image", d.Spec.TaskTemplate.ContainerSpec.Image)
		resp, err := m.cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
		if errdefs.IsConflict(err) {
			return "", fmt.Errorf("create service %s: %w (another service took the name since the apply began, such as one of a mirror or filter group applied at the same moment: "+
				"service names join the names of a mirror or filter group and of its filters with dashes; rename one of them)", d.Name(), err)
		}
		if err != nil {
			return "", fmt.Errorf("create service %s: %w", d.Name(), err)
		}
		return resp.ID, nil
	}
	if diff := SpecDiff(d.Spec, cur.Spec); len(diff) > 0 {
		m.log.InfoContext(ctx, "updating service", "service", d.Name(), "changed", diff)
		resp, err := m.cli.ServiceUpdate(ctx, cur.ID, cur.Version, spec, swarm.ServiceUpdateOptions{})
		if err != nil {
			return "", fmt.Errorf("update service %s: %w", d.Name(), err)
		}
		for _, w := range resp.Warnings {
			m.log.WarnContext(ctx, w, "service", d.Name())
		}
	}
	return cur.ID, nil
}

// SpecDiff names the fields in which a running service differs from the
// desired spec. The spec-hash label catches anything the provider set; the
// explicit fields catch `docker service update` done by hand, which keeps
// the label.
func SpecDiff(want, got swarm.ServiceSpec) []string {
	var diff []string
	if want.Labels[swarmspec.LabelSpecHash] != got.Labels[swarmspec.LabelSpecHash] {
		diff = append(diff, "spec")
	}
	wc, gc := want.TaskTemplate.ContainerSpec, got.TaskTemplate.ContainerSpec
	if gc == nil {
		return append(diff, "container")
	}
	if resources(want) != resources(got) {
		diff = append(diff, "resources")
	}
	if restart(want) != restart(got) {
		diff = append(diff, "restart policy")
	}
	if imageName(wc.Image) != imageName(gc.Image) {
		diff = append(diff, "image")
	}
	if !slices.Equal(wc.Command, gc.Command) {
		diff = append(diff, "command")
	}
	if !slices.Equal(wc.Args, gc.Args) {
		diff = append(diff, "args")
	}
	if !slices.Equal(wc.Env, gc.Env) {
		diff = append(diff, "env")
	}
	if replicas(want) != replicas(got) {
		diff = append(diff, "replicas")
	}
	if !slices.Equal(constraints(want), constraints(got)) {
		diff = append(diff, "placement")
	}
	if !slices.Equal(mounts(wc), mounts(gc)) {
		diff = append(diff, "mounts")
	}
	return diff
}

// mounts names a container's mounts (type, source, target), as a hand-made
// `docker service update --mount-add/--mount-rm` changes them.
func mounts(cs *swarm.ContainerSpec) []string {
	var out []string
	for _, m := range cs.Mounts {
		out = append(out, fmt.Sprintf("%s:%s:%s", m.Type, m.Source, m.Target))
	}
	return out
}

// imageName drops the digest Swarm pins an image reference to.
func imageName(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	return name
}

// replicas is how many tasks of the service must run, or for a job how
// many must complete.
func replicas(s swarm.ServiceSpec) uint64 {
	switch {
	case s.Mode.ReplicatedJob != nil && s.Mode.ReplicatedJob.TotalCompletions != nil:
		return *s.Mode.ReplicatedJob.TotalCompletions
	case s.Mode.Replicated == nil || s.Mode.Replicated.Replicas == nil:
		return 0
	}
	return *s.Mode.Replicated.Replicas
}

func constraints(s swarm.ServiceSpec) []string {
	if s.TaskTemplate.Placement == nil {
		return nil
	}
	return s.TaskTemplate.Placement.Constraints
}

// resources are a spec's CPU and memory limits and reservations, as a
// hand-made `docker service update --limit-cpu/--limit-memory/
// --reserve-cpu/--reserve-memory` changes them; unset as 0.
func resources(s swarm.ServiceSpec) [4]int64 {
	var out [4]int64
	if r := s.TaskTemplate.Resources; r != nil {
		if l := r.Limits; l != nil {
			out[0], out[1] = l.NanoCPUs, l.MemoryBytes
		}
		if v := r.Reservations; v != nil {
			out[2], out[3] = v.NanoCPUs, v.MemoryBytes
		}
	}
	return out
}

// restartPolicy is a spec's restart policy with Swarm's defaults for what
// it leaves unset (any exit, after 5 s, for ever).
type restartPolicy struct {
	condition     swarm.RestartPolicyCondition
	delay, window time.Duration
	attempts      uint64
}

// restart is a spec's restart policy, as `docker service update
// --restart-condition/--restart-delay/--restart-max-attempts/
// --restart-window` changes it.
func restart(s swarm.ServiceSpec) restartPolicy {
	out := restartPolicy{condition: swarm.RestartPolicyConditionAny, delay: 5 * time.Second}
	p := s.TaskTemplate.RestartPolicy
	if p == nil {
		return out
	}
	if p.Condition != "" {
		out.condition = p.Condition
	}
	if p.Delay != nil {
		out.delay = *p.Delay
	}
	if p.Window != nil {
		out.window = *p.Window
	}
	if p.MaxAttempts != nil {
		out.attempts = *p.MaxAttempts
	}
	return out
}

// Observe reports, for every desired service of owner, its id, or "" when
// it is missing or differs from the desired spec (changed outside the
// provider). A service of owner that is not desired is reported with "" too.
func (m *Manager) Observe(ctx context.Context, owner string, desired []swarmspec.Desired) (map[string]string, error) {
	existing, err := m.owned(ctx, owner)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(desired))
	for _, d := range desired {
		cur, ok := existing[d.Name()]
		if !ok {
			m.log.WarnContext(ctx, "service missing", "service", d.Name())
			out[d.Name()] = ""
			continue
		}
		if diff := SpecDiff(d.Spec, cur.Spec); len(diff) > 0 {
			m.log.WarnContext(ctx, "service differs from its desired spec", "service", d.Name(), "changed", diff)
			out[d.Name()] = ""
			continue
		}
		out[d.Name()] = cur.ID
	}
	for name := range existing {
		if _, ok := out[name]; !ok {
			out[name] = "" // a service of ours that is not wanted
		}
	}
	return out, nil
}

// HasServices reports whether owner has any service in the swarm, as
// desired or not.
func (m *Manager) HasServices(ctx context.Context, owner string) (bool, error) {
	existing, err := m.owned(ctx, owner)
	return len(existing) > 0, err
}

// ServiceImage returns the image a service of owner runs, as its spec
// names it (without a digest).
func (m *Manager) ServiceImage(ctx context.Context, owner, service string) (string, bool) {
	existing, err := m.owned(ctx, owner)
	if err != nil {
		return "", false
	}
	s, ok := existing[service]
	if !ok || s.Spec.TaskTemplate.ContainerSpec == nil {
		return "", false
	}
	return imageName(s.Spec.TaskTemplate.ContainerSpec.Image), true
}

// ServiceIDs returns the ids of owner's services by name, as they run.
func (m *Manager) ServiceIDs(ctx context.Context, owner string) (map[string]string, error) {
	existing, err := m.owned(ctx, owner)
	ids := make(map[string]string, len(existing))
	for name, s := range existing {
		ids[name] = s.ID
	}
	return ids, err
}

// Settings returns the settings label (swarmspec.LabelSettings) that
// owner's services carry (the first in name order that has one); ok is
// false when none does.
func (m *Manager) Settings(ctx context.Context, owner string) (settings string, ok bool, err error) {
	services, err := m.owned(ctx, owner)
	if err != nil {
		return "", false, err
	}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		if s := services[name].Spec.Labels[swarmspec.LabelSettings]; s != "" {
			return s, true, nil
		}
	}
	return "", false, nil
}

// owned returns the services of owner by name.
func (m *Manager) owned(ctx context.Context, owner string) (map[string]swarm.Service, error) {
	list, err := m.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: ownerFilter(owner)})
	if err != nil {
		return nil, fmt.Errorf("list services of %s: %w", owner, err)
	}
	out := make(map[string]swarm.Service, len(list))
	for _, s := range list {
		out[s.Spec.Name] = s
	}
	return out, nil
}

// ensureObjects creates the configs and secrets the desired services
// mount (names are content hashes, so an existing one is reused) and
// returns ids by name.
func (m *Manager) ensureObjects(ctx context.Context, owner string, desired []swarmspec.Desired) (map[string]string, error) {
	ids := map[string]string{}
	for _, kind := range m.objectKinds() {
		have, err := kind.list(ctx, owner)
		if err != nil {
			return nil, err
		}
		for name, id := range have {
			ids[name] = id
		}
		for _, d := range desired {
			for _, c := range kind.of(d) {
				if _, ok := ids[c.Name]; ok {
					continue
				}
				if c.Data == nil && c.Generate != nil {
					var err error
					if c.Data, err = c.Generate(); err != nil {
						return nil, err
					}
				}
				id, err := kind.create(ctx, owner, c)
				if err != nil {
					return nil, err
				}
				ids[c.Name] = id
			}
		}
	}
	return ids, nil
}

// withObjectIDs fills in the ids of the configs and secrets a spec mounts
// by name.
func withObjectIDs(spec swarm.ServiceSpec, ids map[string]string) swarm.ServiceSpec {
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Configs, cs.Secrets = nil, nil
	for _, r := range spec.TaskTemplate.ContainerSpec.Configs {
		ref := *r
		ref.ConfigID = ids[r.ConfigName]
		cs.Configs = append(cs.Configs, &ref)
	}
	for _, r := range spec.TaskTemplate.ContainerSpec.Secrets {
		ref := *r
		ref.SecretID = ids[r.SecretName]
		cs.Secrets = append(cs.Secrets, &ref)
	}
	spec.TaskTemplate.ContainerSpec = &cs
	return spec
}

// removeUnusedObjects removes configs and secrets of owner that no
// desired service mounts. One still held by a task that is shutting down
// is left for the next apply or destroy, which try again.
func (m *Manager) removeUnusedObjects(ctx context.Context, owner string, desired []swarmspec.Desired) error {
	for _, kind := range m.objectKinds() {
		keep := map[string]bool{}
		for _, d := range desired {
			for _, c := range kind.of(d) {
				keep[c.Name] = true
			}
		}
		have, err := kind.list(ctx, owner)
		if err != nil {
			return err
		}
		for name, id := range have {
			if keep[name] {
				continue
			}
			if err := kind.remove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
				m.log.DebugContext(ctx, kind.name+" still in use, left for later", kind.name, name, "error", err.Error())
			}
		}
	}
	return nil
}

// objectKind is what differs between Swarm configs and secrets, which
// the provider manages alike: content-hashed names, labelled with their
// owner, removed once unused.
type objectKind struct {
	name   string
	of     func(swarmspec.Desired) []swarmspec.Config
	list   func(ctx context.Context, owner string) (map[string]string, error) // ids by name
	create func(ctx context.Context, owner string, c swarmspec.Config) (string, error)
	remove func(ctx context.Context, id string) error
}

func (m *Manager) objectKinds() []objectKind {
	annotations := func(owner, name string) swarm.Annotations {
		return swarm.Annotations{Name: name, Labels: map[string]string{swarmspec.LabelManaged: "true", swarmspec.LabelOwner: owner}}
	}
	return []objectKind{{
		name: "config",
		of:   func(d swarmspec.Desired) []swarmspec.Config { return d.Configs },
		list: func(ctx context.Context, owner string) (map[string]string, error) {
			have, err := m.cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: ownerFilter(owner)})
			if err != nil {
				return nil, fmt.Errorf("list configs of %s: %w", owner, err)
			}
			ids := map[string]string{}
			for _, c := range have {
				ids[c.Spec.Name] = c.ID
			}
			return ids, nil
		},
		create: func(ctx context.Context, owner string, c swarmspec.Config) (string, error) {
			resp, err := m.cli.ConfigCreate(ctx, swarm.ConfigSpec{Annotations: annotations(owner, c.Name), Data: c.Data})
			if err != nil {
				return "", fmt.Errorf("create config %s: %w", c.Name, err)
			}
			return resp.ID, nil
		},
		remove: func(ctx context.Context, id string) error { return m.cli.ConfigRemove(ctx, id) },
	}, {
		name: "secret",
		of:   func(d swarmspec.Desired) []swarmspec.Config { return d.Secrets },
		list: func(ctx context.Context, owner string) (map[string]string, error) {
			have, err := m.cli.SecretList(ctx, swarm.SecretListOptions{Filters: ownerFilter(owner)})
			if err != nil {
				return nil, fmt.Errorf("list secrets of %s: %w", owner, err)
			}
			ids := map[string]string{}
			for _, c := range have {
				ids[c.Spec.Name] = c.ID
			}
			return ids, nil
		},
		create: func(ctx context.Context, owner string, c swarmspec.Config) (string, error) {
			resp, err := m.cli.SecretCreate(ctx, swarm.SecretSpec{Annotations: annotations(owner, c.Name), Data: c.Data})
			if err != nil {
				return "", fmt.Errorf("create secret %s: %w", c.Name, err)
			}
			return resp.ID, nil
		},
		remove: func(ctx context.Context, id string) error { return m.cli.SecretRemove(ctx, id) },
	}}
}

// RemoveOwner removes every service, config and secret of owner, waits
// until their containers are gone and removes their volumes, so that
// nothing is left behind.
func (m *Manager) RemoveOwner(ctx context.Context, owner string) error {
	existing, err := m.owned(ctx, owner)
	if err != nil {
		return err
	}
	if err := m.removeServices(ctx, slices.Collect(maps.Values(existing))); err != nil {
		return err
	}
	for _, kind := range m.objectKinds() {
		have, err := kind.list(ctx, owner)
		if err != nil {
			return err
		}
		for name, id := range have {
			if err := kind.remove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("remove %s %s: %w", kind.name, name, err)
			}
		}
	}
	return nil
}

// removeServices removes services, waits until none of their tasks is
// left (Swarm removes tasks, and their containers, asynchronously) and
// then removes the volumes their tasks mounted, on the nodes that hold
// them (see volumes.go).
// One removal at a time: each is a Raft write on the manager, and a
// destroy removes several owners' services at once.
func (m *Manager) removeServices(ctx context.Context, services []swarm.Service) error {
	vols, err := m.volumesOf(ctx, services)
	if err != nil {
		return err
	}
	for _, s := range services {
		m.log.InfoContext(ctx, "removing service", "service", s.Spec.Name)
		if err := m.removeService(ctx, s); err != nil {
			return err
		}
	}
	if err := m.waitTasksGone(ctx, services); err != nil {
		return err
	}
	return m.removeVolumes(ctx, vols)
}

// removeService removes one service. A manager busy starting or stopping
// hundreds of tasks can time out committing the removal to Raft ("rpc
// error: code = DeadlineExceeded"); the removal is retried, up to
// removeAttempts times, as a user would rerun the destroy.
func (m *Manager) removeService(ctx context.Context, s swarm.Service) error {
	for attempt := 1; ; attempt++ {
		err := m.cli.ServiceRemove(ctx, s.ID)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if attempt == removeAttempts || !sleep(ctx, time.Duration(attempt)*pollInterval) {
			return fmt.Errorf("remove service %s (%d attempts): %w", s.Spec.Name, attempt, err)
		}
		m.log.WarnContext(ctx, "removing a service failed; retrying", "service", s.Spec.Name, "error", err.Error())
	}
}
