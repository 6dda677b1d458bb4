package bench

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/sample"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/tfcli"
)

// These tests need no lab: they check what the swarm benchmark computes
// and reports from what it read.

// mirror is what the provider deploys for a mirror named name.
func mirror(name string) []swarmspec.Desired {
	ds := swarmspec.MirrorSpecs(swarmspec.Mirror{Name: name, NodeIndex: 1, Topics: "alerts-.*",
		Kafka: swarmspec.Kafka{Image: kafkaImage, Network: "minibroker", HeapMB: 384}})
	ds[0].SetSettings(`{"name":"` + name + `"}`)
	return ds
}

// asDockerKeepsIt is a spec as Docker returns it: config references with
// the swarm's config ids, networks by id.
func asDockerKeepsIt(spec swarm.ServiceSpec, configIDs, networkIDs map[string]string) swarm.ServiceSpec {
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Configs = nil
	for _, r := range spec.TaskTemplate.ContainerSpec.Configs {
		ref := *r
		ref.ConfigID = configIDs[r.ConfigName]
		cs.Configs = append(cs.Configs, &ref)
	}
	spec.TaskTemplate.ContainerSpec = &cs
	spec.TaskTemplate.Networks = slices.Clone(spec.TaskTemplate.Networks)
	for i, n := range spec.TaskTemplate.Networks {
		spec.TaskTemplate.Networks[i].Target = networkIDs[n.Target]
	}
	return spec
}

func TestDesiredOfUndoesDocker(t *testing.T) {
	networkIDs := map[string]string{"minibroker": "net0id"}
	networks := map[string]string{"net0id": "minibroker"}
	for _, want := range mirror("node1") {
		configIDs, configs := map[string]string{}, map[string][]byte{}
		for i, c := range want.Configs {
			id := want.Name() + "-cfg" + string(rune('0'+i))
			configIDs[c.Name], configs[id] = id, c.Data
		}
		got, err := desiredOf(asDockerKeepsIt(want.Spec, configIDs, networkIDs), networks, configs)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: read back as\n  %+v\nwant\n  %+v", want.Name(), got, want)
		}
		if h := swarmspec.Hash(got.Spec, got.Configs); h != want.Spec.Labels[swarmspec.LabelSpecHash] {
			t.Errorf("%s: hash of what was read back %s, label %s", want.Name(), h, want.Spec.Labels[swarmspec.LabelSpecHash])
		}
	}

	spec := mirror("node1")[1].Spec
	if _, err := desiredOf(asDockerKeepsIt(spec, map[string]string{}, networkIDs), networks, map[string][]byte{}); err == nil {
		t.Error("a config whose content was not read: no error")
	}
	if _, err := desiredOf(asDockerKeepsIt(spec, nil, map[string]string{}), networks, map[string][]byte{"": nil}); err == nil {
		t.Error("an unknown network: no error")
	}
}

func TestDeployedOwners(t *testing.T) {
	dep := deployed{"filter_group/node2": nil, "mirror/node2": nil, "filter_group/node1": nil, "mirror/node1": nil}
	if got, want := dep.owners(), []string{"mirror/node1", "mirror/node2", "filter_group/node1", "filter_group/node2"}; !slices.Equal(got, want) {
		t.Errorf("owners = %v, want %v", got, want)
	}
}

func TestCompareSpecs(t *testing.T) {
	ds := mirror("node1")
	dep := deployed{swarmspec.MirrorOwner("node1"): ds}
	ids := map[string]string{ds[0].Name(): "id0", ds[1].Name(): "id1"}
	created := func(id string, spec swarm.ServiceSpec) swarm.Service {
		return swarm.Service{ID: id, Spec: asDockerKeepsIt(spec, map[string]string{}, map[string]string{"minibroker": "n"})}
	}
	services := []swarm.Service{created("id0", ds[0].Spec), created("id1", ds[1].Spec),
		created("other", ds[0].Spec)} // not one the baseline created
	if same, differ := compareSpecs(dep, ids, services); same != 2 || len(differ) != 0 {
		t.Errorf("identical: %d same, differ %v", same, differ)
	}

	changed := ds[1].Spec
	cs := *changed.TaskTemplate.ContainerSpec
	cs.Env = []string{"KAFKA_HEAP_OPTS=-Xmx1m"}
	changed.TaskTemplate.ContainerSpec = &cs
	changed.Labels = map[string]string{swarmspec.LabelSpecHash: "0"}
	same, differ := compareSpecs(dep, ids, []swarm.Service{created("id1", changed)})
	want := []string{ds[0].Name() + " (not created)", ds[1].Name() + " (spec, env, spec-hash label)"}
	if same != 0 || !slices.Equal(differ, want) {
		t.Errorf("changed: %d same, differ %q; want %q", same, differ, want)
	}
}

// benchForReport is a swarm benchmark as the report sees it, without a lab.
func benchForReport() *swarmBench {
	s := &swarmBench{lab: &lab.Lab{}, tf: &tfcli.CLI{Version: "Terraform v1.5.7"}, load0: "0.1 0.2 0.3", labStart: time.Second}
	for i := range swarmNodes {
		s.nodes = append(s.nodes, lab.Node{Name: "node" + string(rune('a'+i)), Dir: "/tmp/mblab0/n" + string(rune('a'+i))})
	}
	return s
}

func converged(took time.Duration) tfcli.Converged {
	return tfcli.Converged{Runs: []tfcli.Run{{Took: took}}, Took: took,
		Usage: sample.Usage{CPU: took.Seconds(), Total: 2 * took.Seconds(), Cgroups: map[string]float64{"mblab0-na": 3, "mblab0-nb": 4}}}
}

func TestSwarmReport(t *testing.T) {
	s := benchForReport()
	sec := time.Second
	res := &swarmResults{plans: 2, apply: converged(250 * sec), destroy: converged(60 * sec),
		plan: []time.Duration{4 * sec, 3 * sec}, planFloor: []time.Duration{sec / 2, sec / 4},
		swarmApply: converged(20 * sec), swarmDestroy: converged(14 * sec),
		raw:         rawResult{services: 210, configs: 10, created: sec, running: 240 * sec, removed: 30 * sec, specsSame: 210},
		applyPhases: tfcli.Phases{FirstStart: sec, SwarmStart: sec, SwarmDone: 21 * sec, LastDone: 249 * sec, LastCreate: 31 * sec, Total: 250 * sec},
	}
	text := s.report(res)
	for _, want := range []string{
		"## Swarm deployment: the 1+11 layout applied with Terraform onto a 12-node lab\n",
		"so its \"running\" includes that settle time",
		"| apply, full layout: nothing → 212 services running | 250.0 s | 260.0 s: swarm-only apply 20.0 s + swarmctl on the manager's socket 240.0 s | < 120.0 s: **not met** |",
		"| ↳ 5 mirrors + 5 filter groups: 210 services to running | 228.0 s | swarmctl on the manager's unix socket, every owner at once, 8 calls at a time each: 240.0 s | |",
		"| ↳↳ of which until the last service was created (API calls) | 10.0 s | 1.0 s | |",
		"| plan, nothing to change (median of 2; max) | 3.5 s (max 4.0 s) | empty root module, same CLI and provider: 0.4 s (max 0.5 s) | < 5.0 s: met |",
		"| destroy, full layout | 60.0 s | swarmctl removal of the 210 services 30.0 s + swarm-only destroy 14.0 s = 44.0 s | |",
		"(250 CPU-s, of which the containers 7: hub, mirrors, MirrorMaker 2 and filters 3;",
		"- plans: 4.00, 3.00 s; empty-module plans: 0.50, 0.25 s\n",
		"  (swarmctl.SpecDiff finds nothing, same spec-hash label): 210/210\n",
	} {
		mustContain(t, "the report", text, want)
	}
	if strings.Contains(text, "the provider at") || strings.Contains(text, "Failed attempts") {
		t.Errorf("a report without a baseline revision or failures mentions them:\n%s", text)
	}

	res.ref = &refResult{ref: "96d4c78", apply: converged(270 * sec), destroy: converged(70 * sec),
		plan: []time.Duration{6 * sec, 5 * sec}, planFloor: []time.Duration{sec, sec / 2}}
	res.ref.apply.Failures = []string{"attempt 1 failed after 100.0 s: 1× boom: it broke"}
	text = s.report(res)
	for _, want := range []string{
		"; the provider at 96d4c78, same layout, before this run: 5.5 s (max 6.0 s), its empty module 0.8 s (max 1.0 s) | < 5.0 s: met |",
		"- the provider at 96d4c78, before this run: apply 270.0 s, plans 6.00, 5.00 s (empty module: 1.00, 0.50 s), destroy 70.0 s; left afterwards: nothing\n",
		"- apply with the provider at 96d4c78: attempt 1 failed after 100.0 s: 1× boom: it broke; applied again, as a user would\n",
	} {
		mustContain(t, "the report with a baseline revision", text, want)
	}
}

func TestEC2Report(t *testing.T) {
	s := &ec2Bench{swarmBench: benchForReport(), filtersPerHost: filtersPerHost}
	sec := time.Second
	res := &ec2Results{filtersPerHost: filtersPerHost, services: servicesFull, plans: 1,
		apply: converged(240 * sec), destroy: converged(55 * sec), base: converged(230 * sec), baseDestroy: converged(64 * sec),
		plan: []time.Duration{4 * sec}, basePlan: []time.Duration{5 * sec}, addNodes: 2 * sec, instancesOnMoto: 12}
	text := s.report(res)
	for _, want := range []string{
		"| hosts + apply | 240.0 s | 232.0 s |",
		"| plan, nothing to change (median of 1; max) | 4.0 s (max 4.0 s) | 5.0 s (max 5.0 s) |",
		"| left afterwards | on moto nothing (12 instances listed, all terminated; no security group but default, no key pair); in the lab no node | on the nodes: nothing |",
		"- examples/aws apply: 240.0 s wall, machine CPU 50 % busy (240 CPU-s, of which the lab's containers 7); minibroker_swarm ×0",
	} {
		mustContain(t, "the EC2 report", text, want)
	}
}

func mustContain(t *testing.T, what, text, want string) {
	t.Helper()
	if !strings.Contains(text, want) {
		t.Errorf("%s lacks %q:\n%s", what, want, text)
	}
}
