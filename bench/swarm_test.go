package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/docker/docker/client"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/report"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/sample"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/tfcli"
)

// BenchmarkSwarmDeploy measures the deployment of the original 1+11 layout
// with 100 filters and 100 consumers against two targets: on the lab, an
// apply from nothing converges in under 2 minutes, and a plan with nothing
// to change takes under 5 s.
//
// On a 12-node lab (internal/testbed/lab: network namespaces on this
// machine, each with its own dockerd and sshd) it runs the real Terraform
// CLI, as a user would, on a root module that calls examples/any-swarm,
// with the provider built from this tree (dev_overrides): apply of the full
// layout (212 services), plans with nothing to change, destroy (then checks
// every node's Docker socket for leftovers). In the same run it measures
// baselines: the CLI's own plan floor (a root module with no resources);
// the 210 mirror and filter services deployed without Terraform and without
// SSH, by the provider's own deploy code (internal/swarmctl) on the
// manager's unix socket, from the specs and configs the Terraform apply had
// deployed, read back from Docker; the image loads through the nodes'
// sockets; a shared-mode apply; and, when asked, the plans of an older
// revision's provider.
//
// An apply or destroy that fails is run again, as a user would, up to 3
// times: the failure (with Terraform's error) is part of the results and the
// times include every attempt; the benchmark fails only when all attempts
// do. Leftovers on a node after a destroy fail it once the rest has run.
//
// It needs root, `make image` and `make terraform`; it fails, saying so, when
// one is missing, and skips only under -short. Run it alone:
//
//	go test ./bench -run XXX -bench BenchmarkSwarmDeploy -benchtime 1x -timeout 60m -v
//
// Environment:
//   - MINIBROKER_BENCH_SWARM_OUT: file for the markdown section (default: beside
//     MINIBROKER_BENCH_OUT as benchmarks-swarm.md, else only the log)
//   - MINIBROKER_BENCH_SWARM_DIR: keep the Terraform directories, CLI outputs and
//     provider logs (TF_LOG_PROVIDER=INFO) here instead of a temporary directory
//   - MINIBROKER_BENCH_SWARM_PLANS: plans with nothing to change (default 3)
//   - MINIBROKER_BENCH_SWARM_SHARED=0: skip the shared-mode apply
//   - MINIBROKER_BENCH_SWARM_INTERVAL: the producer's visit interval (default
//     1000h: the producer is deployed and runs, but sends no visit while the
//     deployment is measured; 39s is the original cadence, see idleInterval)
//   - MINIBROKER_BENCH_SWARM_BASELINE_REF: a git revision (e.g. 96d4c78) whose
//     provider is the baseline of the plan with nothing to change: before
//     the run with this tree, the benchmark builds that revision's provider
//     (in a temporary git worktree under the work directory), applies the
//     full layout with it from a Terraform directory of its own, runs as
//     many plans with nothing to change (each beside the empty module's),
//     destroys it and checks that nothing is left; the report shows its
//     plans beside ours. The layout is this tree's examples/any-swarm, which
//     the revision's provider must accept. Unset: no such baseline.
//   - TF_ACC_TERRAFORM_PATH: the Terraform CLI (default .cache/terraform/bin/terraform, then PATH)
func BenchmarkSwarmDeploy(b *testing.B) {
	if testing.Short() {
		b.Skip("needs root, a 12-node lab, Terraform and the images; skipped under -short")
	}
	for range b.N {
		runSwarmDeploy(b)
	}
}

// The layout of examples/any-swarm on the lab: node 1 manager, node 2
// producer, nodes 3-7 filter hosts, nodes 8-12 consumer hosts.
const (
	swarmNodes      = 12
	filterHosts     = 5
	filtersPerHost  = 20
	servicesFull    = 1 + 1 + 2*filterHosts + 2*filterHosts*filtersPerHost // 212
	servicesShared  = 1 + 1 + 2*filterHosts + filterHosts + filterHosts*filtersPerHost
	callsAtOnce     = 8 // Docker API calls the provider makes at once, to a manager or to nodes (as internal/swarmctl)
	applyTarget     = 2 * time.Minute
	planTarget      = 5 * time.Second
	kafkaImage      = "minibroker/kafka:dev"
	workloadsImage  = "minibroker/workloads:dev"
	hubHeapMB       = 384
	mirrorHeapMB    = 384
	mirrorMakerHeap = 256
)

// envBaselineRef names the older revision whose provider's plans are a
// baseline (see BenchmarkSwarmDeploy).
const envBaselineRef = "MINIBROKER_BENCH_SWARM_BASELINE_REF"

type swarmBench struct {
	b          *testing.B
	repo, work string
	tfPath     string
	tf         *tfcli.CLI // with the provider built from this tree
	lab        *lab.Lab
	nodes      []lab.Node
	engines    []*client.Client // by node, on the node's unix socket
	workloads  string
	kafka      string
	labStart   time.Duration
	load0      string          // load average before the lab started
	others     map[string]bool // other labs seen on the machine during the run ("mblab1-n5", ...)
}

func runSwarmDeploy(b *testing.B) {
	s := newSwarmBench(b)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	res := &swarmResults{plans: envInt("MINIBROKER_BENCH_SWARM_PLANS", 3)}

	// The older revision's provider, when asked for, before this tree's.
	if ref := os.Getenv(envBaselineRef); ref != "" {
		res.ref = s.runRefProvider(ctx, ref, res.plans)
	}

	full := s.writeRoot(filepath.Join(s.work, "full"), rootModule, s.moduleData(swarmspec.ModeIsolated))
	swarmOnly := s.writeRoot(filepath.Join(s.work, "swarm"), swarmOnlyModule, s.moduleData(""))
	empty := s.writeRoot(filepath.Join(s.work, "empty"), emptyModule, s.moduleData(""))
	s.tf.MustRun(b, ctx, full, "get-full", "get", "-no-color")

	// (a) apply of the full layout, from nothing to every task running.
	res.apply = s.tf.Apply(b, ctx, full, "apply-full")
	res.applyPhases = tfcli.PhasesOf(res.apply.Runs[0])
	res.verify = s.verifyRunning(ctx, servicesFull)
	deployed := s.capture(ctx)

	// (b) plans with nothing to change, each beside the CLI's floor: a plan
	// of a root module with no resources, at the same moment (same load).
	for i := range res.plans {
		res.plan = append(res.plan, s.tf.PlanNoChange(b, ctx, full, fmt.Sprintf("plan-full-%d", i+1)))
		res.planFloor = append(res.planFloor, s.tf.PlanNoChange(b, ctx, empty, fmt.Sprintf("plan-empty-%d", i+1)))
	}

	// (c) destroy, then nothing may be left on any node.
	res.destroy = s.tf.Destroy(b, ctx, full, "destroy-full")
	res.leftAfterDestroy = s.checkNothingLeft(ctx, "after destroy of the full layout")

	// Baseline: the swarm alone through Terraform (swarm, joins, images, hub,
	// producer), then the 210 mirror and filter services deployed by
	// swarmctl on the manager's socket, removed the same way, then the swarm
	// destroyed.
	res.swarmApply = s.tf.Apply(b, ctx, swarmOnly, "apply-swarm")
	res.raw = s.rawDeploy(ctx, deployed)
	res.swarmDestroy = s.tf.Destroy(b, ctx, swarmOnly, "destroy-swarm")
	res.leftAfterBaseline = s.checkNothingLeft(ctx, "after the raw baseline and the swarm-only destroy")

	// The shared mode: 5 filter services instead of 100.
	if os.Getenv("MINIBROKER_BENCH_SWARM_SHARED") != "0" {
		shared := s.writeRoot(filepath.Join(s.work, "shared"), rootModule, s.moduleData(swarmspec.ModeShared))
		s.tf.MustRun(b, ctx, shared, "get-shared", "get", "-no-color")
		r := s.tf.Apply(b, ctx, shared, "apply-shared")
		res.sharedApply = &r
		res.sharedVerify = s.verifyRunning(ctx, servicesShared)
		res.sharedPlan = s.tf.PlanNoChange(b, ctx, shared, "plan-shared")
		d := s.tf.Destroy(b, ctx, shared, "destroy-shared")
		res.sharedDestroy = &d
		res.leftAfterShared = s.checkNothingLeft(ctx, "after destroy of the shared layout")
	}

	// The floor of loading the images: the same archives onto the same
	// nodes through their unix sockets, no SSH.
	res.imageLoad, res.imageBytes = s.rawImageLoad(ctx)
	res.leftAfterImages = s.checkNothingLeft(ctx, "after the raw image loads")

	b.ReportMetric(res.apply.Took.Seconds(), "apply_s")
	b.ReportMetric(float64(len(res.apply.Failures)), "apply_failed_attempts")
	b.ReportMetric(report.Median(res.plan).Seconds(), "plan_s")
	b.ReportMetric(res.destroy.Took.Seconds(), "destroy_s")
	b.ReportMetric(report.Median(res.planFloor).Seconds(), "plan_floor_s")
	b.ReportMetric(res.raw.running.Seconds(), "raw_210_services_s")
	if res.ref != nil {
		b.ReportMetric(report.Median(res.ref.plan).Seconds(), "plan_baseline_ref_s")
	}

	report.Write(b, s.report(res), os.Getenv("MINIBROKER_BENCH_SWARM_OUT"), "benchmarks-swarm.md")
}

func newSwarmBench(b *testing.B) *swarmBench {
	b.Helper()
	s := newTerraformBench(b, "MINIBROKER_BENCH_SWARM_DIR")
	s.load0 = sample.LoadAvg()
	began := time.Now()
	s.lab = lab.ForTest(b, swarmNodes)
	s.labStart = time.Since(began)
	s.tf = s.newCLI(filepath.Join(s.work, "provider"), s.work)
	s.setNodes(s.lab.Nodes())
	b.Logf("lab %d: %d nodes in %s; work dir %s; %s", s.lab.Number(), len(s.nodes), s.labStart.Round(time.Millisecond), s.work, s.tf.Version)
	return s
}

// newTerraformBench checks the prerequisites (root and the lab's tools, the
// Terraform CLI, the image archives), makes the work directory (dirEnv names
// the variable that keeps it) and builds the provider from this tree into
// its provider/. It starts no lab; newCLI then makes the CLI that uses the
// provider.
func newTerraformBench(b *testing.B, dirEnv string) *swarmBench {
	b.Helper()
	repo, err := filepath.Abs("..")
	must(b, err)
	s := &swarmBench{b: b, repo: repo}
	if err := lab.CheckPrereqs(); err != nil {
		b.Fatalf("%v (this benchmark runs a 12-node lab of Docker Engines)", err)
	}
	s.tfPath, err = tfcli.Find(repo)
	must(b, err)
	s.workloads = filepath.Join(repo, "bin/images/minibroker-workloads.tar")
	s.kafka = filepath.Join(repo, "bin/images/minibroker-kafka.tar")
	for _, p := range []string{s.workloads, s.kafka} {
		if _, err := os.Stat(p); err != nil {
			b.Fatalf("%s is missing: run `make image` first", p)
		}
	}

	if dir := os.Getenv(dirEnv); dir != "" {
		must(b, os.RemoveAll(dir))
		must(b, os.MkdirAll(dir, 0o755))
		s.work, err = filepath.Abs(dir)
		must(b, err)
	} else {
		s.work = b.TempDir()
	}
	must(b, os.MkdirAll(filepath.Join(s.work, "logs"), 0o755))
	must(b, tfcli.BuildProvider(context.Background(), repo, filepath.Join(s.work, "provider")))
	return s
}

// newCLI is the Terraform CLI with the provider in providerDir, its
// configuration and logs in dir, recording the CPU time of the lab's
// containers and noting other labs around every command.
func (s *swarmBench) newCLI(providerDir, dir string) *tfcli.CLI {
	tf, err := tfcli.New(context.Background(), tfcli.Options{Path: s.tfPath, ProviderDir: providerDir, Dir: dir,
		Cgroups: fmt.Sprintf("mblab%d-n", s.lab.Number()), Logf: s.b.Logf})
	must(s.b, err)
	tf.OnRun = s.noteOtherLabs
	return tf
}

// setNodes makes nodes the layout's hosts, in its order (manager, producer,
// filter hosts, consumer hosts), with a Docker client on each one's socket.
func (s *swarmBench) setNodes(nodes []lab.Node) {
	s.nodes, s.engines = nodes, nil
	for _, n := range nodes {
		cli, err := client.NewClientWithOpts(client.WithHost("unix://"+n.DockerSocket), client.WithAPIVersionNegotiation())
		must(s.b, err)
		s.b.Cleanup(func() { _ = cli.Close() })
		s.engines = append(s.engines, cli)
	}
}

// --- an older revision's provider ----------------------------------------

// refResult is the full layout applied, planned and destroyed with the
// provider of an older revision.
type refResult struct {
	ref             string
	apply, destroy  tfcli.Converged
	plan, planFloor []time.Duration
	left            []string
}

// runRefProvider builds the provider of git revision ref and, with it,
// from a Terraform directory of its own, applies the full layout, runs
// plans with nothing to change (each beside the empty module's), destroys
// it and checks that nothing is left.
func (s *swarmBench) runRefProvider(ctx context.Context, ref string, plans int) *refResult {
	dir := filepath.Join(s.work, "ref-"+regexp.MustCompile(`[^A-Za-z0-9._-]+`).ReplaceAllString(ref, "-"))
	providerDir, err := tfcli.BuildProviderRef(ctx, s.repo, ref, dir)
	must(s.b, err)
	tf := s.newCLI(providerDir, dir)
	s.b.Logf("the provider at %s, built into %s: the baseline of the plans", ref, providerDir)

	full := s.writeRoot(filepath.Join(dir, "full"), rootModule, s.moduleData(swarmspec.ModeIsolated))
	empty := s.writeRoot(filepath.Join(dir, "empty"), emptyModule, s.moduleData(""))
	tf.MustRun(s.b, ctx, full, "get-full", "get", "-no-color")
	r := &refResult{ref: ref}
	r.apply = tf.Apply(s.b, ctx, full, "apply-full")
	for i := range plans {
		r.plan = append(r.plan, tf.PlanNoChange(s.b, ctx, full, fmt.Sprintf("plan-full-%d", i+1)))
		r.planFloor = append(r.planFloor, tf.PlanNoChange(s.b, ctx, empty, fmt.Sprintf("plan-empty-%d", i+1)))
	}
	r.destroy = tf.Destroy(s.b, ctx, full, "destroy-full")
	r.left = s.checkNothingLeft(ctx, "after destroy of the full layout with the provider at "+ref)
	return r
}

// --- root modules ---------------------------------------------------------

type moduleData struct {
	Module, Key, KnownHosts, Workloads, Kafka, Mode string
	Manager, Producer, Interval                     string
	Filters, Consumers                              []string
	HubHeap, MirrorHeap, MirrorMakerHeap            int
	FiltersPerHost                                  int
	KafkaImage, WorkloadsImage                      string
}

// moduleData is the data of the root modules calling examples/any-swarm on
// the lab's nodes, with moduleSettings' values.
func (s *swarmBench) moduleData(mode string) moduleData {
	d := s.settings(mode)
	d.Manager, d.Producer = s.nodes[0].Addr, s.nodes[1].Addr
	for _, n := range s.nodes[2 : 2+filterHosts] {
		d.Filters = append(d.Filters, n.Addr)
	}
	for _, n := range s.nodes[2+filterHosts:] {
		d.Consumers = append(d.Consumers, n.Addr)
	}
	return d
}

// settings is moduleData without the hosts.
func (s *swarmBench) settings(mode string) moduleData {
	return moduleData{
		Module: filepath.Join(s.repo, "examples/any-swarm"), Key: s.lab.PrivateKeyFile(), KnownHosts: s.lab.KnownHostsFile(),
		Workloads: s.workloads, Kafka: s.kafka, Mode: mode,
		HubHeap: hubHeapMB, MirrorHeap: mirrorHeapMB, MirrorMakerHeap: mirrorMakerHeap,
		KafkaImage: kafkaImage, WorkloadsImage: workloadsImage, Interval: producerInterval(),
		FiltersPerHost: filtersPerHost,
	}
}

// rootModule calls examples/any-swarm as a user would, with the settings
// of moduleSettings.
const rootModule = `module "broker" {
  source = "{{.Module}}"

  manager_host   = "{{.Manager}}"
  producer_host  = "{{.Producer}}"
  filter_hosts   = [{{range $i, $a := .Filters}}{{if $i}}, {{end}}"{{$a}}"{{end}}]
  consumer_hosts = [{{range $i, $a := .Consumers}}{{if $i}}, {{end}}"{{$a}}"{{end}}]

  ssh_private_key_file = "{{.Key}}"
  known_hosts_file     = "{{.KnownHosts}}"
` + moduleSettings + "}\n"

// moduleSettings are the inputs examples/any-swarm and examples/aws share,
// as the benchmarks set them: the images from their archives, heaps that
// fit 11 JVMs on this machine and small alerts (cutout_bytes 0) so that the
// running producer and filters leave the cores to the deployment; the rest
// is the modules' defaults (10,000 alerts per visit).
const moduleSettings = `  image_archives       = ["{{.Workloads}}", "{{.Kafka}}"]
  kafka_image          = "{{.KafkaImage}}"
  workloads_image      = "{{.WorkloadsImage}}"

  hub_heap_mb          = {{.HubHeap}}
  mirror_heap_mb       = {{.MirrorHeap}}
  mirror_maker_heap_mb = {{.MirrorMakerHeap}}
  cutout_bytes         = 0
  visit_interval       = "{{.Interval}}"
  filter_mode          = "{{.Mode}}"
  filters_per_mirror   = {{.FiltersPerHost}}
  encrypt_network      = false # the lab's kernel cannot install IPsec states (docs/security.md)
`

// swarmOnlyModule is the module's minibroker_swarm alone, same settings.
const swarmOnlyModule = `terraform {
  required_providers {
    minibroker = { source = "minibroker/minibroker" }
  }
}

provider "minibroker" {
  ssh_private_key  = file("{{.Key}}")
  known_hosts_file = "{{.KnownHosts}}"
  kafka_image      = "{{.KafkaImage}}"
  workloads_image  = "{{.WorkloadsImage}}"
}

resource "minibroker_swarm" "main" {
  encrypt_network = false # the lab's kernel cannot install IPsec states (docs/security.md)
  hosts = [
    { address = "{{.Manager}}", role = "manager" },
    { address = "{{.Producer}}", role = "producer" },{{range .Filters}}
    { address = "{{.}}", role = "filter" },{{end}}{{range .Consumers}}
    { address = "{{.}}", role = "consumer" },{{end}}
  ]
  image_archives = ["{{.Workloads}}", "{{.Kafka}}"]
  hub            = { heap_mb = {{.HubHeap}} }
  producer = {
    alerts_per_visit = 10000
    interval         = "{{.Interval}}"
    visits           = 0
    cutout_bytes     = 0
  }
}
`

// emptyModule has the provider and no resources: the CLI's own plan floor.
const emptyModule = `terraform {
  required_providers {
    minibroker = { source = "minibroker/minibroker" }
  }
}

provider "minibroker" {
  ssh_private_key  = file("{{.Key}}")
  known_hosts_file = "{{.KnownHosts}}"
}
`

// idleInterval is the default time between the producer's visits. The
// producer is deployed like the rest (10,000 alerts per visit), but its
// first visit is at the next multiple of this interval, so the measurement
// is of the deployment alone: with the original 39 s, the deployed pipeline
// (100 isolated filters decoding every visit) takes both cores of a 2-core
// machine while the remaining tasks start, and the swarm manager begins
// answering DeadlineExceeded.
const idleInterval = "1000h"

// producerInterval is the producer's time between visits:
// MINIBROKER_BENCH_SWARM_INTERVAL, default idleInterval.
func producerInterval() string {
	if v := os.Getenv("MINIBROKER_BENCH_SWARM_INTERVAL"); v != "" {
		return v
	}
	return idleInterval
}

// writeRoot writes the root module tmpl, filled with data, as dir/main.tf
// and returns dir.
func (s *swarmBench) writeRoot(dir, tmpl string, data any) string {
	must(s.b, os.MkdirAll(dir, 0o755))
	var sb strings.Builder
	must(s.b, template.Must(template.New(filepath.Base(dir)).Parse(tmpl)).Execute(&sb, data))
	must(s.b, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(sb.String()), 0o644))
	return dir
}
