package provider

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// driftedID marks, in a resource's services map, a service that was removed
// or changed outside Terraform; the next plan then shows the map changing
// and apply puts the service back.
const driftedID = "(changed outside Terraform)"

// maxParallel bounds concurrent Docker API calls to one manager.
const maxParallel = 8

// ownerFilter selects the objects of one owner.
func ownerFilter(owner string) filters.Args {
	return filters.NewArgs(filters.Arg("label", swarmspec.LabelOwner+"="+owner))
}

// listOwned returns the services of owner by name.
func listOwned(ctx context.Context, cli *client.Client, owner string) (map[string]swarm.Service, error) {
	list, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: ownerFilter(owner)})
	if err != nil {
		return nil, fmt.Errorf("list services of %s: %w", owner, err)
	}
	out := make(map[string]swarm.Service, len(list))
	for _, s := range list {
		out[s.Spec.Name] = s
	}
	return out, nil
}

// applyServices makes the services of owner exactly the desired ones:
// configs first, then services created or updated concurrently, then
// services and configs of owner that are no longer wanted removed. It
// returns service ids by name and does not wait for tasks; see
// waitServices.
func applyServices(ctx context.Context, cli *client.Client, owner string, desired []swarmspec.Desired) (map[string]string, error) {
	configIDs, err := ensureConfigs(ctx, cli, owner, desired)
	if err != nil {
		return nil, err
	}
	existing, err := listOwned(ctx, cli, owner)
	if err != nil {
		return nil, err
	}

	ids := make(map[string]string, len(desired))
	var mu sync.Mutex
	err = forEach(ctx, desired, func(ctx context.Context, d swarmspec.Desired) error {
		spec := withConfigIDs(d.Spec, configIDs)
		var id string
		if cur, ok := existing[d.Name()]; ok {
			id = cur.ID
			if diff := specDiff(d.Spec, cur.Spec); len(diff) > 0 {
				tflog.Info(ctx, "updating service", map[string]any{"service": d.Name(), "changed": diff})
				resp, err := cli.ServiceUpdate(ctx, cur.ID, cur.Version, spec, swarm.ServiceUpdateOptions{})
				if err != nil {
					return fmt.Errorf("update service %s: %w", d.Name(), err)
				}
				for _, w := range resp.Warnings {
					tflog.Warn(ctx, w, map[string]any{"service": d.Name()})
				}
			}
		} else {
			tflog.Info(ctx, "creating service", map[string]any{"service": d.Name(), "image": d.Spec.TaskTemplate.ContainerSpec.Image})
			resp, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
			if err != nil {
				return fmt.Errorf("create service %s: %w", d.Name(), err)
			}
			id = resp.ID
		}
		mu.Lock()
		ids[d.Name()] = id
		mu.Unlock()
		return nil
	})
	if err != nil {
		return ids, err
	}

	want := map[string]bool{}
	for _, d := range desired {
		want[d.Name()] = true
	}
	var stale []swarm.Service
	for name, s := range existing {
		if !want[name] {
			stale = append(stale, s)
		}
	}
	if err := removeServices(ctx, cli, stale); err != nil {
		return ids, err
	}
	return ids, removeUnusedConfigs(ctx, cli, owner, desired)
}

// specDiff names the fields in which a running service differs from the
// desired spec. The spec-hash label catches anything the provider set;
// the explicit fields catch `docker service update` done by hand, which
// keeps the label.
func specDiff(want, got swarm.ServiceSpec) []string {
	var diff []string
	if want.Labels[swarmspec.LabelSpecHash] != got.Labels[swarmspec.LabelSpecHash] {
		diff = append(diff, "spec")
	}
	wc, gc := want.TaskTemplate.ContainerSpec, got.TaskTemplate.ContainerSpec
	if gc == nil {
		return append(diff, "container")
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
	var wp, gp []string
	if want.TaskTemplate.Placement != nil {
		wp = want.TaskTemplate.Placement.Constraints
	}
	if got.TaskTemplate.Placement != nil {
		gp = got.TaskTemplate.Placement.Constraints
	}
	if !slices.Equal(wp, gp) {
		diff = append(diff, "placement")
	}
	return diff
}

func imageName(ref string) string {
	name, _, _ := strings.Cut(ref, "@")
	return name
}

func replicas(s swarm.ServiceSpec) uint64 {
	if s.Mode.Replicated == nil || s.Mode.Replicated.Replicas == nil {
		return 0
	}
	return *s.Mode.Replicated.Replicas
}

// observeServices reports, for every desired service, its id, or driftedID
// when it is missing or differs from the desired spec.
func observeServices(ctx context.Context, cli *client.Client, owner string, desired []swarmspec.Desired) (map[string]string, error) {
	existing, err := listOwned(ctx, cli, owner)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(desired))
	for _, d := range desired {
		cur, ok := existing[d.Name()]
		switch {
		case !ok:
			tflog.Warn(ctx, "service missing", map[string]any{"service": d.Name()})
			out[d.Name()] = driftedID
		case len(specDiff(d.Spec, cur.Spec)) > 0:
			tflog.Warn(ctx, "service changed outside Terraform", map[string]any{"service": d.Name(), "changed": specDiff(d.Spec, cur.Spec)})
			out[d.Name()] = driftedID
		default:
			out[d.Name()] = cur.ID
		}
	}
	for name := range existing {
		if _, ok := out[name]; !ok {
			// A service of ours that the configuration does not want.
			out[name] = driftedID
		}
	}
	return out, nil
}

// ensureConfigs creates the configs the desired services mount (names are
// content hashes, so an existing one is reused) and returns ids by name.
func ensureConfigs(ctx context.Context, cli *client.Client, owner string, desired []swarmspec.Desired) (map[string]string, error) {
	have, err := cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: ownerFilter(owner)})
	if err != nil {
		return nil, fmt.Errorf("list configs of %s: %w", owner, err)
	}
	ids := map[string]string{}
	for _, c := range have {
		ids[c.Spec.Name] = c.ID
	}
	for _, d := range desired {
		for _, c := range d.Configs {
			if _, ok := ids[c.Name]; ok {
				continue
			}
			resp, err := cli.ConfigCreate(ctx, swarm.ConfigSpec{
				Annotations: swarm.Annotations{Name: c.Name, Labels: map[string]string{
					swarmspec.LabelManaged: "true", swarmspec.LabelOwner: owner}},
				Data: c.Data,
			})
			if err != nil {
				return nil, fmt.Errorf("create config %s: %w", c.Name, err)
			}
			ids[c.Name] = resp.ID
		}
	}
	return ids, nil
}

func withConfigIDs(spec swarm.ServiceSpec, ids map[string]string) swarm.ServiceSpec {
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Configs = nil
	for _, r := range spec.TaskTemplate.ContainerSpec.Configs {
		ref := *r
		ref.ConfigID = ids[r.ConfigName]
		cs.Configs = append(cs.Configs, &ref)
	}
	spec.TaskTemplate.ContainerSpec = &cs
	return spec
}

// removeUnusedConfigs removes configs of owner that no desired service
// mounts. A config still held by a task that is shutting down is left for
// the next apply or destroy, which try again.
func removeUnusedConfigs(ctx context.Context, cli *client.Client, owner string, desired []swarmspec.Desired) error {
	keep := map[string]bool{}
	for _, d := range desired {
		for _, c := range d.Configs {
			keep[c.Name] = true
		}
	}
	have, err := cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: ownerFilter(owner)})
	if err != nil {
		return fmt.Errorf("list configs of %s: %w", owner, err)
	}
	for _, c := range have {
		if keep[c.Spec.Name] {
			continue
		}
		if err := cli.ConfigRemove(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
			tflog.Debug(ctx, "config still in use, left for later", map[string]any{"config": c.Spec.Name, "error": err.Error()})
		}
	}
	return nil
}

// removeOwner removes every service and config of owner and waits until
// their containers are gone, so that a destroy leaves nothing behind.
func removeOwner(ctx context.Context, cli *client.Client, owner string) error {
	existing, err := listOwned(ctx, cli, owner)
	if err != nil {
		return err
	}
	if err := removeServices(ctx, cli, slices.Collect(maps.Values(existing))); err != nil {
		return err
	}
	have, err := cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: ownerFilter(owner)})
	if err != nil {
		return fmt.Errorf("list configs of %s: %w", owner, err)
	}
	for _, c := range have {
		if err := cli.ConfigRemove(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove config %s: %w", c.Spec.Name, err)
		}
	}
	return nil
}

// removeServices removes services and waits until none of their tasks is
// left (Swarm removes tasks, and their containers, asynchronously).
func removeServices(ctx context.Context, cli *client.Client, services []swarm.Service) error {
	for _, s := range services {
		tflog.Info(ctx, "removing service", map[string]any{"service": s.Spec.Name})
		if err := cli.ServiceRemove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove service %s: %w", s.Spec.Name, err)
		}
	}
	for _, s := range services {
		if err := waitTasksGone(ctx, cli, s); err != nil {
			return err
		}
	}
	return nil
}

// forEach runs fn for every item, at most maxParallel at a time, and joins
// the errors.
func forEach[T any](ctx context.Context, items []T, fn func(context.Context, T) error) error {
	sem := make(chan struct{}, maxParallel)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
