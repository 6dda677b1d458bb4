package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// The raw baseline: the mirrors' and filter groups' services deployed by
// the provider's own deploy code (internal/swarmctl) on the manager's unix
// socket, without Terraform and without SSH, from exactly what the
// Terraform apply had deployed.

// deployed is what the Terraform apply deployed for the mirrors and filter
// groups, as swarmctl takes it: the services and their configs, by owner.
type deployed map[string][]swarmspec.Desired

// owners lists the mirrors, then the filter groups, each by name: the
// order in which Terraform creates them (a group names its mirror).
func (d deployed) owners() []string {
	var mirrors, groups []string
	for owner := range d {
		if isMirror(owner) {
			mirrors = append(mirrors, owner)
		} else {
			groups = append(groups, owner)
		}
	}
	slices.Sort(mirrors)
	slices.Sort(groups)
	return append(mirrors, groups...)
}

func isMirror(owner string) bool { return strings.HasPrefix(owner, swarmspec.MirrorOwner("")) }

// capture reads back from the manager what the Terraform apply deployed
// for the mirrors and filter groups: each service's spec as Docker keeps
// it and the contents of the configs it mounts (see desiredOf).
func (s *swarmBench) capture(ctx context.Context) deployed {
	mgr := s.engines[0]
	svcs, err := mgr.ServiceList(ctx, managedServices)
	must(s.b, err)
	nets, err := mgr.NetworkList(ctx, network.ListOptions{})
	must(s.b, err)
	networks := map[string]string{}
	for _, n := range nets {
		networks[n.ID] = n.Name
	}
	configs := map[string][]byte{} // by id
	dep := deployed{}
	var mirrors, groups, services int
	for _, svc := range svcs {
		owner := svc.Spec.Labels[swarmspec.LabelOwner]
		if owner == swarmspec.OwnerSwarm {
			continue
		}
		for _, ref := range svc.Spec.TaskTemplate.ContainerSpec.Configs {
			if _, ok := configs[ref.ConfigID]; !ok {
				c, _, err := mgr.ConfigInspectWithRaw(ctx, ref.ConfigID)
				must(s.b, err)
				configs[ref.ConfigID] = c.Spec.Data
			}
		}
		d, err := desiredOf(svc.Spec, networks, configs)
		must(s.b, err)
		if dep[owner] == nil {
			if isMirror(owner) {
				mirrors++
			} else {
				groups++
			}
		}
		dep[owner] = append(dep[owner], d)
		services++
	}
	if mirrors != filterHosts || groups != filterHosts || services != servicesFull-2 {
		s.b.Fatalf("read back %d mirrors, %d filter groups, %d services; want %d, %d, %d", mirrors, groups, services,
			filterHosts, filterHosts, servicesFull-2)
	}
	return dep
}

// desiredOf turns a service's spec, as Docker keeps it, back into what
// swarmctl takes: config references by name (their ids are this swarm's)
// with the configs' contents (configs, by id), and networks by name (Docker
// keeps their ids). The labels, spec hash included, stay as they are.
func desiredOf(spec swarm.ServiceSpec, networks map[string]string, configs map[string][]byte) (swarmspec.Desired, error) {
	var d swarmspec.Desired
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Configs = nil
	for _, r := range spec.TaskTemplate.ContainerSpec.Configs {
		data, ok := configs[r.ConfigID]
		if !ok || r.File == nil {
			return d, fmt.Errorf("service %s: config %s (%s) unknown or not a file", spec.Name, r.ConfigName, r.ConfigID)
		}
		ref := *r
		ref.ConfigID = ""
		cs.Configs = append(cs.Configs, &ref)
		d.Configs = append(d.Configs, swarmspec.Config{Name: r.ConfigName, Data: data, Target: r.File.Name})
	}
	spec.TaskTemplate.ContainerSpec = &cs
	spec.TaskTemplate.Networks = slices.Clone(spec.TaskTemplate.Networks)
	for i, n := range spec.TaskTemplate.Networks {
		name, ok := networks[n.Target]
		if !ok {
			return d, fmt.Errorf("service %s: network %s unknown", spec.Name, n.Target)
		}
		spec.TaskTemplate.Networks[i].Target = name
	}
	d.Spec = spec
	return d, nil
}

type rawResult struct {
	services, configs int
	created           time.Duration // configs and services created (every Apply returned)
	running           time.Duration // every service's tasks running for swarmctl's settle time, from the start
	removed           time.Duration // services removed and their tasks gone, configs removed
	specsSame         int
	specsDiffer       []string
}

// rawDeploy deploys what the Terraform apply had deployed onto the swarm of
// the swarm-only apply, with swarmctl on the manager's unix socket as the
// provider deploys it, every owner at once (Terraform does up to 10
// resources at a time, and must create a mirror before its groups): Apply
// per owner, WaitRunning on every service, then, after checking the
// services against the captured specs, RemoveOwner per owner.
func (s *swarmBench) rawDeploy(ctx context.Context, dep deployed) rawResult {
	mgr := swarmctl.NewManager(s.engines[0], nil)
	owners := dep.owners()
	var res rawResult
	configs := map[string]bool{}
	for _, ds := range dep {
		res.services += len(ds)
		for _, d := range ds {
			for _, c := range d.Configs {
				configs[c.Name] = true
			}
		}
	}
	res.configs = len(configs)

	start := time.Now()
	ids := map[string]string{}
	var mu sync.Mutex
	err := parallel.ForEach(ctx, len(owners), owners, func(ctx context.Context, owner string) error {
		got, err := mgr.Apply(ctx, owner, dep[owner])
		mu.Lock()
		maps.Copy(ids, got)
		mu.Unlock()
		if err != nil {
			return fmt.Errorf("apply %s: %w", owner, err)
		}
		return nil
	})
	if err != nil {
		s.b.Fatalf("raw baseline: %v", err)
	}
	res.created = time.Since(start)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := mgr.WaitRunning(wctx, ids); err != nil {
		s.b.Fatalf("raw baseline: %v", err)
	}
	res.running = time.Since(start)

	svcs, err := s.engines[0].ServiceList(ctx, managedServices)
	must(s.b, err)
	res.specsSame, res.specsDiffer = compareSpecs(dep, ids, svcs)
	if len(res.specsDiffer) > 0 {
		s.b.Errorf("raw baseline: %d services differ from what the provider deployed: %v", len(res.specsDiffer), res.specsDiffer)
	}
	s.b.Logf("raw baseline (swarmctl): %d services (%d configs) created in %.1f s, all running after %.1f s; same specs as the provider's: %d/%d",
		len(ids), res.configs, res.created.Seconds(), res.running.Seconds(), res.specsSame, res.services)

	start = time.Now()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := parallel.ForEach(rctx, len(owners), owners, func(ctx context.Context, owner string) error {
		if err := mgr.RemoveOwner(ctx, owner); err != nil {
			return fmt.Errorf("remove %s: %w", owner, err)
		}
		return nil
	}); err != nil {
		s.b.Fatalf("raw baseline: %v", err)
	}
	res.removed = time.Since(start)
	s.b.Logf("raw baseline (swarmctl): %d services removed, tasks gone, configs removed in %.1f s", len(ids), res.removed.Seconds())
	return res
}

// compareSpecs checks the services the baseline created (ids by name,
// services as Docker lists them) against what the Terraform apply had
// deployed: a service is the same when swarmctl.SpecDiff finds no
// difference and it has the same spec-hash label. It returns how many are
// the same and, for the others, what differs.
func compareSpecs(dep deployed, ids map[string]string, services []swarm.Service) (same int, differ []string) {
	got := map[string]swarm.ServiceSpec{}
	for _, svc := range services {
		if ids[svc.Spec.Name] == svc.ID {
			got[svc.Spec.Name] = svc.Spec
		}
	}
	for _, owner := range dep.owners() {
		for _, d := range dep[owner] {
			created, ok := got[d.Name()]
			if !ok {
				differ = append(differ, d.Name()+" (not created)")
				continue
			}
			diff := swarmctl.SpecDiff(d.Spec, created)
			if h := swarmspec.LabelSpecHash; d.Spec.Labels[h] != created.Labels[h] {
				diff = append(diff, "spec-hash label")
			}
			if len(diff) > 0 {
				differ = append(differ, fmt.Sprintf("%s (%s)", d.Name(), strings.Join(diff, ", ")))
				continue
			}
			same++
		}
	}
	return same, differ
}
