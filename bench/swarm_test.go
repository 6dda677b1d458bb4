package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

// BenchmarkSwarmDeploy measures issue 3's deployment targets: "On the lab, an
// apply of the full 1+11 layout with 100 filters and 100 consumers converges
// in under 2 minutes; a plan with nothing to change takes under 5 s".
//
// On a 12-node lab (internal/testbed/lab: network namespaces on this machine, each
// with its own dockerd and sshd) it runs the real Terraform CLI, as a user
// would, on a root module that calls examples/any-swarm, with the provider
// built from this tree (dev_overrides): apply of the full layout (212
// services), plans with nothing to change, destroy (then checks every node's
// Docker socket for leftovers). In the same run it measures baselines: the
// CLI's own plan floor (a root module with no resources) and a raw Docker API
// floor for the 210 mirror and filter services (same specs, built with
// internal/swarmspec, created on the manager's unix socket 8 at a time, no
// Terraform, no SSH), the image loads through the nodes' sockets, plus a
// shared-mode apply.
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
	rawConcurrency  = 8
	pollEvery       = 200 * time.Millisecond
	settingsLabel   = "minibroker.settings" // the provider's import label (JSON of the swarmspec settings)
	applyTarget     = 2 * time.Minute
	planTarget      = 5 * time.Second
	kafkaImage      = "minibroker/kafka:dev"
	workloadsImage  = "minibroker/workloads:dev"
	hubHeapMB       = 384
	mirrorHeapMB    = 384
	mirrorMakerHeap = 256
)

type swarmBench struct {
	b          *testing.B
	repo, work string
	tfPath     string
	tfVersion  string
	env        []string
	lab        *lab.Lab
	nodes      []lab.Node
	engines    []*client.Client // by node, on the node's unix socket
	workloads  string
	kafka      string
	labStart   time.Duration
	load0      string          // load average before the lab started
	others     map[string]bool // other labs seen on the machine during the run ("mblab1-n5", ...)
}

// tfRun is one Terraform CLI command.
type tfRun struct {
	name         string
	began        time.Time
	took         time.Duration
	code         int
	lines        []tfLine
	busy         float64 // fraction of the machine's CPU time busy meanwhile
	cpu          float64 // the machine's busy CPU seconds meanwhile
	ctr          float64 // of which the lab's containers (all nodes)
	onKafkaHosts float64 // of which the manager's and filter hosts' containers (hub, mirrors, MirrorMaker 2, filters)
	out          string  // file with the output
}

type tfLine struct {
	at   time.Duration
	text string
}

func runSwarmDeploy(b *testing.B) {
	s := newSwarmBench(b)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	res := &swarmResults{plans: envInt("MINIBROKER_BENCH_SWARM_PLANS", 3)}

	full := s.writeRoot("full", rootModule, s.moduleData(swarmspec.ModeIsolated))
	swarmOnly := s.writeRoot("swarm", swarmOnlyModule, s.moduleData(""))
	empty := s.writeRoot("empty", emptyModule, s.moduleData(""))
	s.tfOK(ctx, full, "get-full", "get", "-no-color")

	// (a) apply of the full layout, from nothing to every task running.
	res.apply = s.apply(ctx, full, "apply-full")
	res.applyPhases = applyPhases(res.apply.runs[0])
	res.verify = s.verifyRunning(ctx, servicesFull)
	settings := s.recordSettings(ctx)

	// (b) plans with nothing to change, each beside the CLI's floor: a plan
	// of a root module with no resources, at the same moment (same load).
	for i := range res.plans {
		res.plan = append(res.plan, s.planNoChange(ctx, full, fmt.Sprintf("plan-full-%d", i+1)))
		res.planFloor = append(res.planFloor, s.planNoChange(ctx, empty, fmt.Sprintf("plan-empty-%d", i+1)))
	}

	// (c) destroy, then nothing may be left on any node.
	res.destroy = s.destroy(ctx, full, "destroy-full")
	res.leftAfterDestroy = s.checkNothingLeft(ctx, "after destroy of the full layout")

	// Baseline: the swarm alone through Terraform (swarm, joins, images, hub,
	// producer), then the 210 mirror and filter services with the raw Docker
	// API on the manager's socket, removed the same way, then the swarm
	// destroyed.
	res.swarmApply = s.apply(ctx, swarmOnly, "apply-swarm")
	res.raw = s.rawDeploy(ctx, settings)
	res.swarmDestroy = s.destroy(ctx, swarmOnly, "destroy-swarm")
	res.leftAfterBaseline = s.checkNothingLeft(ctx, "after the raw baseline and the swarm-only destroy")

	// (iii) the shared mode: 5 filter services instead of 100.
	if os.Getenv("MINIBROKER_BENCH_SWARM_SHARED") != "0" {
		shared := s.writeRoot("shared", rootModule, s.moduleData(swarmspec.ModeShared))
		s.tfOK(ctx, shared, "get-shared", "get", "-no-color")
		r := s.apply(ctx, shared, "apply-shared")
		res.sharedApply = &r
		res.sharedVerify = s.verifyRunning(ctx, servicesShared)
		res.sharedPlan = s.planNoChange(ctx, shared, "plan-shared")
		d := s.destroy(ctx, shared, "destroy-shared")
		res.sharedDestroy = &d
		res.leftAfterShared = s.checkNothingLeft(ctx, "after destroy of the shared layout")
	}

	// The floor of loading the images: the same archives onto the same
	// nodes through their unix sockets, no SSH.
	res.imageLoad, res.imageBytes = s.rawImageLoad(ctx)
	res.leftAfterImages = s.checkNothingLeft(ctx, "after the raw image loads")

	b.ReportMetric(res.apply.took.Seconds(), "apply_s")
	b.ReportMetric(float64(len(res.apply.failures)), "apply_failed_attempts")
	b.ReportMetric(median(res.plan).Seconds(), "plan_s")
	b.ReportMetric(res.destroy.took.Seconds(), "destroy_s")
	b.ReportMetric(median(res.planFloor).Seconds(), "plan_floor_s")
	b.ReportMetric(res.raw.running.Seconds(), "raw_210_services_s")

	writeReport(b, s.report(res), os.Getenv("MINIBROKER_BENCH_SWARM_OUT"), "benchmarks-swarm.md")
}

// writeReport writes a benchmark's markdown to out, else beside
// MINIBROKER_BENCH_OUT as name, else only to the output.
func writeReport(b *testing.B, text, out, name string) {
	if out == "" && os.Getenv("MINIBROKER_BENCH_OUT") != "" {
		out = filepath.Join(filepath.Dir(os.Getenv("MINIBROKER_BENCH_OUT")), name)
	}
	if out == "" {
		fmt.Print("\n" + text)
		return
	}
	b.Log("\n" + text)
	must(b, os.MkdirAll(filepath.Dir(out), 0o755))
	must(b, os.WriteFile(out, []byte(text), 0o644))
	b.Logf("wrote %s", out)
}

func newSwarmBench(b *testing.B) *swarmBench {
	b.Helper()
	s := newTerraformBench(b, "MINIBROKER_BENCH_SWARM_DIR")
	s.load0 = loadAvg()
	began := time.Now()
	s.lab = lab.ForTest(b, swarmNodes)
	s.labStart = time.Since(began)
	s.setNodes(s.lab.Nodes())
	b.Logf("lab %d: %d nodes in %s; work dir %s; %s", s.lab.Number(), len(s.nodes), s.labStart.Round(time.Millisecond), s.work, s.tfVersion)
	return s
}

// newTerraformBench checks the prerequisites (root and the lab's tools, the
// Terraform CLI, the image archives), makes the work directory (dirEnv names
// the variable that keeps it), builds the provider from this tree and writes
// the CLI configuration that finds it. It starts no lab.
func newTerraformBench(b *testing.B, dirEnv string) *swarmBench {
	b.Helper()
	repo, err := filepath.Abs("..")
	must(b, err)
	s := &swarmBench{b: b, repo: repo}
	if err := lab.CheckPrereqs(); err != nil {
		b.Fatalf("%v (this benchmark runs a 12-node lab of Docker Engines)", err)
	}
	s.tfPath = os.Getenv("TF_ACC_TERRAFORM_PATH")
	if s.tfPath == "" {
		if p := filepath.Join(repo, ".cache/terraform/bin/terraform"); fileExists(p) {
			s.tfPath = p
		} else if p, err := exec.LookPath("terraform"); err == nil {
			s.tfPath = p
		}
	}
	if s.tfPath == "" {
		b.Fatal("no Terraform CLI: run `make terraform` (builds 1.5.7 into .cache/terraform) or set TF_ACC_TERRAFORM_PATH")
	}
	s.workloads = filepath.Join(repo, "bin/images/minibroker-workloads.tar")
	s.kafka = filepath.Join(repo, "bin/images/minibroker-kafka.tar")
	for _, p := range []string{s.workloads, s.kafka} {
		if !fileExists(p) {
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

	// The provider, built from this tree and found through dev_overrides, as
	// a developer runs it (`terraform init` is not used: it would look the
	// provider up in the registry; `terraform get` installs the module).
	provDir := filepath.Join(s.work, "provider")
	build := exec.Command("go", "build", "-o", filepath.Join(provDir, "terraform-provider-minibroker"), ".")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build of the provider: %v\n%s", err, out)
	}
	cliConfig := filepath.Join(s.work, "terraformrc")
	must(b, os.WriteFile(cliConfig, []byte(fmt.Sprintf(`provider_installation {
  dev_overrides {
    "minibroker/minibroker" = %q
  }
  direct {}
}
`, provDir)), 0o644))
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TF_") {
			continue
		}
		s.env = append(s.env, kv)
	}
	s.env = append(s.env, "TF_CLI_CONFIG_FILE="+cliConfig, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1",
		"TF_INPUT=0", "TF_LOG_PROVIDER=INFO")
	version := exec.Command(s.tfPath, "version")
	version.Env = s.env
	if v, err := version.Output(); err == nil {
		s.tfVersion, _, _ = strings.Cut(strings.TrimSpace(string(v)), "\n")
	}
	return s
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

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

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

func (s *swarmBench) writeRoot(name, tmpl string, data any) string {
	dir := filepath.Join(s.work, name)
	must(s.b, os.MkdirAll(dir, 0o755))
	var sb strings.Builder
	must(s.b, template.Must(template.New(name).Parse(tmpl)).Execute(&sb, data))
	must(s.b, os.WriteFile(filepath.Join(dir, "main.tf"), []byte(sb.String()), 0o644))
	return dir
}

// --- running the CLI ------------------------------------------------------

// tf runs the Terraform CLI in dir, timing it from start to exit and
// stamping every output line with its time since the start.
func (s *swarmBench) tf(ctx context.Context, dir, name string, args ...string) tfRun {
	s.b.Helper()
	run := tfRun{name: name, out: filepath.Join(s.work, "logs", name+".out")}
	cmd := exec.CommandContext(ctx, s.tfPath, args...)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(s.env), "TF_LOG_PATH="+filepath.Join(s.work, "logs", name+".provider.log"))
	cmd.WaitDelay = 10 * time.Second
	r, w, err := os.Pipe()
	must(s.b, err)
	cmd.Stdout, cmd.Stderr = w, w
	s.noteOtherLabs()
	cpu0, ctr0 := readCPU(), s.containerCPU()
	start := time.Now()
	run.began = start
	if err := cmd.Start(); err != nil {
		s.b.Fatalf("terraform %s: %v", strings.Join(args, " "), err)
	}
	w.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			run.lines = append(run.lines, tfLine{time.Since(start), sc.Text()})
		}
	}()
	err = cmd.Wait()
	run.took = time.Since(start)
	cpu1, ctr1 := readCPU(), s.containerCPU()
	s.noteOtherLabs()
	run.busy = cpu1.busySince(cpu0)
	run.cpu = float64(cpu1.busy-cpu0.busy) / clockTicks
	kafkaHosts := map[string]bool{}
	for i, n := range s.nodes {
		if i < 1 || (i >= 2 && i < 2+filterHosts) {
			kafkaHosts[s.cgroupOf(n)] = true
		}
	}
	for cg, used := range ctr1 { // a node added meanwhile counts from 0; one removed meanwhile is not counted
		run.ctr += used - ctr0[cg]
		if kafkaHosts[cg] {
			run.onKafkaHosts += used - ctr0[cg]
		}
	}
	<-done
	r.Close()
	run.code = cmd.ProcessState.ExitCode()
	if err != nil && run.code < 0 {
		run.code = -1
	}
	var log strings.Builder
	for _, l := range run.lines {
		fmt.Fprintf(&log, "%8.3f %s\n", l.at.Seconds(), l.text)
	}
	_ = os.WriteFile(run.out, []byte(log.String()), 0o644)
	s.b.Logf("terraform %s (%s): exit %d in %.1f s, machine CPU %.0f %% busy", strings.Join(args, " "), name, run.code,
		run.took.Seconds(), 100*run.busy)
	return run
}

// tfOK is tf that fails the benchmark on a non-zero exit.
func (s *swarmBench) tfOK(ctx context.Context, dir, name string, args ...string) tfRun {
	s.b.Helper()
	run := s.tf(ctx, dir, name, args...)
	if run.code != 0 {
		s.b.Fatalf("terraform %s failed (exit %d); output in %s, provider log in %s:\n%s", strings.Join(args, " "),
			run.code, run.out, strings.TrimSuffix(run.out, ".out")+".provider.log", tail(run, 80))
	}
	return run
}

// converged is an apply or destroy, run again as a user would when an
// attempt fails; took is the wall time of all attempts together.
type converged struct {
	runs         []tfRun
	took         time.Duration
	busy         float64 // of the machine, over all attempts
	cpu          float64
	ctr          float64
	onKafkaHosts float64
	failures     []string // why each failed attempt failed, after how long
}

// maxAttempts bounds the applies or destroys run until one succeeds.
const maxAttempts = 3

// converge runs the command until it exits 0, at most maxAttempts times.
// A failed attempt is a result (reported with its error), not a benchmark
// failure; only when every attempt fails does the benchmark stop.
func (s *swarmBench) converge(ctx context.Context, dir, name string, args ...string) converged {
	s.b.Helper()
	var c converged
	var total float64
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		n := name
		if attempt > 1 {
			n = fmt.Sprintf("%s-attempt%d", name, attempt)
		}
		run := s.tf(ctx, dir, n, args...)
		c.runs = append(c.runs, run)
		c.took += run.took
		c.cpu += run.cpu
		c.ctr += run.ctr
		c.onKafkaHosts += run.onKafkaHosts
		total += run.took.Seconds()
		c.busy += run.busy * run.took.Seconds()
		if run.code == 0 {
			c.busy /= total
			return c
		}
		why := fmt.Sprintf("attempt %d failed after %s: %s", attempt, secs(run.took), errorSummary(run))
		c.failures = append(c.failures, why)
		s.b.Logf("terraform %s: %s (output in %s)", strings.Join(args, " "), why, run.out)
	}
	s.b.Fatalf("terraform %s failed %d times; last output in %s, provider log in %s:\n%s", strings.Join(args, " "), maxAttempts,
		c.runs[len(c.runs)-1].out, strings.TrimSuffix(c.runs[len(c.runs)-1].out, ".out")+".provider.log", tail(c.runs[len(c.runs)-1], 80))
	return c
}

// apply applies the root module in dir, again when an attempt fails.
func (s *swarmBench) apply(ctx context.Context, dir, name string) converged {
	s.b.Helper()
	return s.converge(ctx, dir, name, "apply", "-auto-approve", "-input=false", "-no-color")
}

// destroy destroys what the root module in dir created, again when an
// attempt fails.
func (s *swarmBench) destroy(ctx context.Context, dir, name string) converged {
	s.b.Helper()
	return s.converge(ctx, dir, name, "destroy", "-auto-approve", "-input=false", "-no-color")
}

// planNoChange runs a plan that must find nothing to change (else the
// benchmark fails once the rest has run) and returns its time.
func (s *swarmBench) planNoChange(ctx context.Context, dir, name string) time.Duration {
	s.b.Helper()
	p := s.tf(ctx, dir, name, "plan", "-detailed-exitcode", "-input=false", "-no-color")
	if p.code != 0 {
		s.b.Errorf("terraform plan (%s) exited %d (want 0: nothing to change); output in %s:\n%s", name, p.code, p.out, tail(p, 60))
	}
	return p.took
}

// errorSummary is the distinct error details Terraform printed, one line each.
func errorSummary(r tfRun) string {
	var out []string
	seen := map[string]int{}
	for i, l := range r.lines {
		if !strings.HasPrefix(l.text, "Error: ") {
			continue
		}
		// The detail follows the "with ..." and "on ..." lines and a blank.
		var detail []string
		for _, m := range r.lines[i+1:] {
			t := strings.TrimSpace(m.text)
			if strings.HasPrefix(m.text, "Error: ") || strings.HasPrefix(t, "Releasing state lock") {
				break
			}
			if t == "" || strings.HasPrefix(t, "with ") || strings.HasPrefix(t, "on ") || strings.Contains(t, " resource \"") {
				if len(detail) > 0 {
					break
				}
				continue
			}
			detail = append(detail, t)
		}
		msg := strings.TrimPrefix(l.text, "Error: ") + ": " + strings.Join(detail, " ")
		if seen[msg] == 0 {
			out = append(out, msg)
		}
		seen[msg]++
	}
	if len(out) == 0 {
		return fmt.Sprintf("exit %d", r.code)
	}
	for i, msg := range out {
		out[i] = fmt.Sprintf("%d× %s", seen[msg], msg)
	}
	return strings.Join(out, "; ")
}

func tail(r tfRun, n int) string {
	lines := r.lines[max(0, len(r.lines)-n):]
	var out []string
	for _, l := range lines {
		out = append(out, l.text)
	}
	return strings.Join(out, "\n")
}

// resourceEvent is when Terraform said it started and finished a resource.
type resourceEvent struct {
	addr        string
	start, done time.Duration
	took        string // as Terraform printed it
}

// The lines where Terraform starts and finishes a resource, in an apply
// and in a destroy.
var (
	reStarting = regexp.MustCompile(`^(\S+): (?:Creating\.\.\.|Destroying\.\.\. \[id=.*\])$`)
	reFinished = regexp.MustCompile(`^(\S+): (?:Creation|Destruction) complete after (\S+)`)
)

// phases of an apply of the full layout (or of its destroy), from its
// output.
type phases struct {
	events     []resourceEvent
	firstStart time.Duration // CLI start-up, refresh and plan inside the apply (or destroy)
	swarmStart time.Duration // minibroker_swarm started
	swarmDone  time.Duration // minibroker_swarm complete
	lastDone   time.Duration // last mirror or filter group complete
	total      time.Duration
	// From the provider's log: when the last service create call was made;
	// when the swarm was initialised on the manager (every host answered
	// over SSH by then); on EC2, when the first and the last RunInstances
	// call returned (0 without instances).
	lastCreate, swarmInit       time.Duration
	firstInstance, lastInstance time.Duration
}

func applyPhases(r tfRun) phases {
	p := applyEvents(r)
	last := func(ts []time.Duration) time.Duration {
		if len(ts) == 0 {
			return 0
		}
		return ts[len(ts)-1]
	}
	p.lastCreate = last(providerLogTimes(r, "creating service"))
	p.swarmInit = last(providerLogTimes(r, "initialising swarm"))
	if started := providerLogTimes(r, "instance started"); len(started) > 0 {
		p.firstInstance, p.lastInstance = started[0], last(started)
	}
	return p
}

// providerLogTimes returns when, since the run began and in order, the
// provider logged msg (TF_LOG_PROVIDER=INFO writes lines such as
// "<RFC 3339 time> [INFO]  provider.terraform-provider-minibroker: creating service: ...").
func providerLogTimes(r tfRun, msg string) []time.Duration {
	b, err := os.ReadFile(strings.TrimSuffix(r.out, ".out") + ".provider.log")
	if err != nil {
		return nil
	}
	var out []time.Duration
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, ": "+msg+":") {
			continue
		}
		ts, _, _ := strings.Cut(l, " ")
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			out = append(out, t.Sub(r.began))
		}
	}
	slices.Sort(out)
	return out
}

func applyEvents(r tfRun) phases {
	by := map[string]*resourceEvent{}
	var order []string
	for _, l := range r.lines {
		if m := reStarting.FindStringSubmatch(l.text); m != nil {
			by[m[1]] = &resourceEvent{addr: m[1], start: l.at}
			order = append(order, m[1])
		} else if m := reFinished.FindStringSubmatch(l.text); m != nil && by[m[1]] != nil {
			by[m[1]].done, by[m[1]].took = l.at, m[2]
		}
	}
	p := phases{total: r.took, firstStart: -1}
	for _, a := range order {
		e := *by[a]
		p.events = append(p.events, e)
		if p.firstStart < 0 || e.start < p.firstStart {
			p.firstStart = e.start
		}
		if strings.Contains(a, "minibroker_swarm.") {
			p.swarmStart, p.swarmDone = e.start, e.done
		} else {
			p.lastDone = max(p.lastDone, e.done)
		}
	}
	return p
}

func (p phases) summary(kind string) (lo, hi time.Duration, n int) {
	for _, e := range p.events {
		if !strings.Contains(e.addr, kind) || e.done == 0 {
			continue
		}
		d := e.done - e.start
		if n == 0 || d < lo {
			lo = d
		}
		hi = max(hi, d)
		n++
	}
	return lo, hi, n
}

// --- checks through the nodes' Docker sockets -----------------------------

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

// verifyRunning checks, on the manager's socket, that want managed services
// exist and each has a running task.
func (s *swarmBench) verifyRunning(ctx context.Context, want int) verifyResult {
	mgr := s.engines[0]
	began := time.Now()
	var v verifyResult
	for {
		svcs, err := mgr.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmspec.LabelManaged+"=true"))})
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
		v.services, v.waited.Seconds(), len(v.restarted), firstFew(v.restarted, 8))
	return v
}

// deployed is what the Terraform apply created for the mirrors and filter
// groups: their settings (from the provider's import label, exactly the
// swarmspec inputs) and each service's spec hash.
type deployed struct {
	mirrors []labelled[swarmspec.Mirror]
	groups  []labelled[swarmspec.FilterGroup]
	hashes  map[string]string
}

type labelled[T any] struct {
	raw string
	v   T
}

func (s *swarmBench) recordSettings(ctx context.Context) deployed {
	svcs, err := s.engines[0].ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmspec.LabelManaged+"=true"))})
	must(s.b, err)
	d := deployed{hashes: map[string]string{}}
	seen := map[string]bool{}
	for _, svc := range svcs {
		l := svc.Spec.Labels
		owner := l[swarmspec.LabelOwner]
		if owner == swarmspec.OwnerSwarm {
			continue
		}
		d.hashes[svc.Spec.Name] = l[swarmspec.LabelSpecHash]
		raw := l[settingsLabel]
		if raw == "" || seen[owner] {
			continue
		}
		seen[owner] = true
		switch {
		case strings.HasPrefix(owner, "mirror/"):
			var m swarmspec.Mirror
			must(s.b, json.Unmarshal([]byte(raw), &m))
			d.mirrors = append(d.mirrors, labelled[swarmspec.Mirror]{raw, m})
		case strings.HasPrefix(owner, "filter_group/"):
			var g swarmspec.FilterGroup
			must(s.b, json.Unmarshal([]byte(raw), &g))
			d.groups = append(d.groups, labelled[swarmspec.FilterGroup]{raw, g})
		}
	}
	if len(d.mirrors) != filterHosts || len(d.groups) != filterHosts || len(d.hashes) != servicesFull-2 {
		s.b.Fatalf("read back %d mirrors, %d filter groups, %d services; want %d, %d, %d", len(d.mirrors), len(d.groups),
			len(d.hashes), filterHosts, filterHosts, servicesFull-2)
	}
	return d
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
			n := s.nodes[i]
			info, err := cli.Info(ctx)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", n.Name, err))
				continue
			}
			if info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
				problems = append(problems, fmt.Sprintf("%s: swarm %s", n.Name, info.Swarm.LocalNodeState))
			}
			cs, err := cli.ContainerList(ctx, container.ListOptions{All: true})
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", n.Name, err))
			}
			for _, c := range cs {
				problems = append(problems, fmt.Sprintf("%s: container %v (%s, %s)", n.Name, c.Names, c.Image, c.State))
			}
			nets, err := cli.NetworkList(ctx, network.ListOptions{})
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", n.Name, err))
			}
			for _, nw := range nets {
				if !slices.Contains([]string{"bridge", "host", "none"}, nw.Name) {
					problems = append(problems, fmt.Sprintf("%s: network %s", n.Name, nw.Name))
				}
			}
			imgs, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("reference", "minibroker/*"))})
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", n.Name, err))
			}
			for _, img := range imgs {
				problems = append(problems, fmt.Sprintf("%s: image %v", n.Name, img.RepoTags))
			}
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

// --- the raw Docker API baseline -----------------------------------------

type rawResult struct {
	services     int
	configs      time.Duration // configs created
	created      time.Duration // every service created (API calls returned)
	running      time.Duration // every service with a running task, from the start
	removed      time.Duration // services removed and their tasks gone, configs removed
	hashesSame   int
	hashesDiffer []string
}

// rawDeploy creates the mirrors' and filter groups' services with the
// Docker API on the manager's unix socket (no Terraform, no SSH), from the
// same swarmspec inputs the provider used, rawConcurrency at a time; waits
// until every one has a running task; then removes them all and waits until
// their tasks are gone.
func (s *swarmBench) rawDeploy(ctx context.Context, dep deployed) rawResult {
	mgr := s.engines[0]
	nets, err := mgr.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmspec.LabelOwner+"="+swarmspec.OwnerSwarm))})
	must(s.b, err)
	if len(nets) != 1 {
		s.b.Fatalf("swarm-only apply: %d minibroker networks, want 1", len(nets))
	}
	netName := nets[0].Name

	type item struct {
		owner string
		d     swarmspec.Desired
	}
	var items []item
	withSettings := func(d *swarmspec.Desired, raw string) { // as the provider does
		d.Spec.Labels[settingsLabel] = raw
		d.Spec.Labels[swarmspec.LabelSpecHash] = swarmspec.Hash(d.Spec, d.Configs)
	}
	for _, m := range dep.mirrors {
		spec := m.v
		spec.Kafka.Network = netName
		ds := swarmspec.MirrorSpecs(spec)
		withSettings(&ds[0], m.raw)
		for _, d := range ds {
			items = append(items, item{swarmspec.MirrorOwner(spec.Name), d})
		}
	}
	for _, g := range dep.groups {
		spec := g.v
		spec.Network = netName
		ds, err := swarmspec.FilterGroupSpecs(spec)
		must(s.b, err)
		for i := range ds {
			withSettings(&ds[i], g.raw)
			items = append(items, item{swarmspec.FilterGroupOwner(spec.Name), ds[i]})
		}
	}
	res := rawResult{services: len(items)}
	for _, it := range items {
		if dep.hashes[it.d.Name()] == it.d.Spec.Labels[swarmspec.LabelSpecHash] {
			res.hashesSame++
		} else {
			res.hashesDiffer = append(res.hashesDiffer, it.d.Name())
		}
	}
	if len(res.hashesDiffer) > 0 {
		s.b.Errorf("raw baseline: %d specs differ from what the provider deployed: %v", len(res.hashesDiffer), res.hashesDiffer)
	}

	start := time.Now()
	configIDs := map[string]string{}
	var configList []string
	for _, it := range items {
		for _, c := range it.d.Configs {
			if _, ok := configIDs[c.Name]; ok {
				continue
			}
			resp, err := mgr.ConfigCreate(ctx, swarm.ConfigSpec{
				Annotations: swarm.Annotations{Name: c.Name, Labels: map[string]string{swarmspec.LabelManaged: "true", swarmspec.LabelOwner: it.owner}},
				Data:        c.Data,
			})
			must(s.b, err)
			configIDs[c.Name] = resp.ID
			configList = append(configList, resp.ID)
		}
	}
	res.configs = time.Since(start)
	ids := make([]string, len(items))
	parallel(s.b, len(items), func(i int) error {
		spec := items[i].d.Spec
		cs := *spec.TaskTemplate.ContainerSpec
		cs.Configs = nil
		for _, r := range spec.TaskTemplate.ContainerSpec.Configs {
			ref := *r
			ref.ConfigID = configIDs[r.ConfigName]
			cs.Configs = append(cs.Configs, &ref)
		}
		spec.TaskTemplate.ContainerSpec = &cs
		resp, err := mgr.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
		if err != nil {
			return fmt.Errorf("create %s: %w", spec.Name, err)
		}
		ids[i] = resp.ID
		return nil
	})
	res.created = time.Since(start)
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for {
		tasks, err := mgr.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", "running"))})
		if err != nil {
			s.transient(start, 10*time.Minute, "raw baseline: list tasks", err)
			continue
		}
		running := map[string]bool{}
		for _, t := range tasks {
			if want[t.ServiceID] && t.Status.State == swarm.TaskStateRunning {
				running[t.ServiceID] = true
			}
		}
		if len(running) == len(want) {
			break
		}
		if time.Since(start) > 10*time.Minute {
			s.b.Fatalf("raw baseline: %d of %d services running after 10 minutes", len(running), len(want))
		}
		time.Sleep(pollEvery)
	}
	res.running = time.Since(start)
	s.b.Logf("raw Docker API: %d services (%d configs) created in %.1f s, all running after %.1f s; spec hashes equal to the provider's: %d/%d",
		len(ids), len(configList), res.created.Seconds(), res.running.Seconds(), res.hashesSame, len(items))

	start = time.Now()
	parallel(s.b, len(ids), func(i int) error { return mgr.ServiceRemove(ctx, ids[i]) })
	for {
		tasks, err := mgr.TaskList(ctx, swarm.TaskListOptions{})
		if err != nil {
			s.transient(start, 5*time.Minute, "raw baseline: list tasks", err)
			continue
		}
		left := 0
		for _, t := range tasks {
			if want[t.ServiceID] {
				left++
			}
		}
		if left == 0 {
			break
		}
		if time.Since(start) > 5*time.Minute {
			s.b.Fatalf("raw baseline: %d tasks of removed services still there after 5 minutes", left)
		}
		time.Sleep(pollEvery)
	}
	for _, id := range configList {
		for {
			err := mgr.ConfigRemove(ctx, id)
			if err == nil || client.IsErrNotFound(err) {
				break
			}
			s.transient(start, 5*time.Minute, "raw baseline: remove config", err)
		}
	}
	res.removed = time.Since(start)
	s.b.Logf("raw Docker API: %d services removed, tasks gone, configs removed in %.1f s", len(ids), res.removed.Seconds())
	return res
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

func firstFew(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return strings.Join(s[:n], ", ") + fmt.Sprintf(", … (%d more)", len(s)-n)
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
	err := parallelErr(len(s.engines), func(i int) error {
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
	err = parallelErr(len(s.engines), func(i int) error {
		for _, ref := range []string{kafkaImage, workloadsImage} {
			if _, err := s.engines[i].ImageRemove(ctx, ref, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
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

// parallel runs fn(0..n-1), rawConcurrency at a time, failing on any error.
func parallel(b *testing.B, n int, fn func(int) error) {
	must(b, parallelErr(n, fn))
}

// parallelErr runs fn(0..n-1), rawConcurrency at a time, and joins the errors.
func parallelErr(n int, fn func(int) error) error { return parallelLimit(rawConcurrency, n, fn) }

// parallelLimit runs fn(0..n-1), limit at a time, and joins the errors.
func parallelLimit(limit, n int, fn func(int) error) error {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// --- machine CPU ----------------------------------------------------------

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

// clockTicks is USER_HZ, the unit of /proc/stat (100 on Linux).
const clockTicks = 100

// containerCPU returns the CPU seconds used so far by the containers of
// each node of the lab, by the node's cgroup (the lab gives the dockerd of
// the node in slot I the cgroup parent mblabN-nI), whether the node is one
// of s.nodes or not (the EC2 data plane's nodes come and go with their
// instances); a cgroup that cannot be read is left out.
func (s *swarmBench) containerCPU() map[string]float64 {
	out := map[string]float64{}
	prefix := fmt.Sprintf("mblab%d-n", s.lab.Number())
	v1, _ := filepath.Glob("/sys/fs/cgroup/cpuacct/" + prefix + "*/cpuacct.usage")
	for _, f := range v1 {
		if b, err := os.ReadFile(f); err == nil {
			ns, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
			out[filepath.Base(filepath.Dir(f))] = ns / 1e9
		}
	}
	v2, _ := filepath.Glob("/sys/fs/cgroup/" + prefix + "*/cpu.stat")
	for _, f := range v2 {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
				us, _ := strconv.ParseFloat(v, 64)
				out[filepath.Base(filepath.Dir(f))] = us / 1e6
			}
		}
	}
	return out
}

// cgroupOf is the cgroup of a node's containers: mblabN-nI for the node in
// slot I, whose directory is /tmp/mblabN/nI.
func (s *swarmBench) cgroupOf(n lab.Node) string {
	return fmt.Sprintf("mblab%d-%s", s.lab.Number(), filepath.Base(n.Dir))
}

type cpuSample struct{ busy, total uint64 }

func readCPU() cpuSample {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSample{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var s cpuSample
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest time is already in user
			break
		}
		s.total += n
		if i != 3 && i != 4 { // idle, iowait
			s.busy += n
		}
	}
	return s
}

func (s cpuSample) busySince(prev cpuSample) float64 {
	if s.total <= prev.total {
		return 0
	}
	return float64(s.busy-prev.busy) / float64(s.total-prev.total)
}

// --- the report -----------------------------------------------------------

type swarmResults struct {
	plans                      int
	apply, destroy             converged
	applyPhases                phases
	verify                     verifyResult
	plan, planFloor            []time.Duration
	leftAfterDestroy           []string
	swarmApply, swarmDestroy   converged
	raw                        rawResult
	leftAfterBaseline          []string
	sharedApply, sharedDestroy *converged
	sharedVerify               verifyResult
	sharedPlan                 time.Duration
	leftAfterImages            []string
	imageLoad                  time.Duration
	imageBytes                 int64
	leftAfterShared            []string
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func (s *swarmBench) report(res *swarmResults) string {
	var r report
	r.f("## Swarm deployment (issue 3)\n\n")
	r.f("Generated by `go test ./bench -run XXX -bench BenchmarkSwarmDeploy -benchtime 1x` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	s.machineNotes(&r)
	r.f("- Lab: %d nodes, all on this machine (internal/testbed/lab: each node its own network namespace, dockerd and sshd), started in %s;\n",
		len(s.nodes), secs(s.labStart))
	r.f("  the provider reaches each over SSH as it would a real host. %s, provider built from this tree (dev_overrides).\n", s.tfVersion)
	s.otherLabsNote(&r)
	r.f("- Layout: `examples/any-swarm` (the 2018 1+11 deployment): node1 manager (hub Kafka), node2 producer, node3–7 filter hosts\n")
	r.f("  (a mirror Kafka, its MirrorMaker 2 and %d isolated filters each), node8–12 consumer hosts (%d consumers): %d services.\n",
		filtersPerHost, filterHosts*filtersPerHost, servicesFull)
	heapsAndProducer(&r)
	r.f("- Apply ends when every task runs (the provider waits for them); the benchmark then checks on the manager's socket\n")
	r.f("  that all %d services have a running task, and after destroy that no node has a swarm, container, network or image left.\n\n", servicesFull)

	ph := res.applyPhases
	compDone := ph.lastDone - ph.swarmDone
	swarmPart := ph.swarmDone - ph.firstStart
	planMed, planMax := median(res.plan), slices.Max(res.plan)
	floorMed, floorMax := median(res.planFloor), slices.Max(res.planFloor)
	rawTotal := res.swarmApply.took + res.raw.running
	r.f("| measure | ours (Terraform CLI + provider over SSH) | baseline | target |\n|---|---:|---:|---|\n")
	r.f("| apply, full layout: nothing → %d services running | %s%s | %s: swarm-only apply %s + raw Docker API %s | < %s: %s |\n",
		servicesFull, secs(res.apply.took), attempts(res.apply), secs(rawTotal), secs(res.swarmApply.took), secs(res.raw.running),
		secs(applyTarget), met(res.apply.took < applyTarget && len(res.apply.failures) == 0))
	r.f("| ↳ `minibroker_swarm`: SSH to 12 nodes, swarm init + 11 joins, images loaded, network, hub + producer | %s | swarm-only apply (same resource, alone): %s | |\n",
		secs(swarmPart), secs(res.swarmApply.took))
	if res.imageLoad > 0 {
		r.f("| ↳↳ of which the image loads (%.0f MB: Kafka onto 6 nodes, workloads onto 11) | – | raw Docker API on the nodes' sockets, 8 nodes at a time: %s | |\n",
			float64(res.imageBytes)/1e6, secs(res.imageLoad))
	}
	compCell := secs(compDone)
	if len(res.apply.failures) > 0 {
		compCell = "first attempt failed (see below)"
	}
	r.f("| ↳ 5 mirrors + 5 filter groups: %d services to running | %s | raw Docker API on the manager's unix socket, %d at a time: %s | |\n",
		res.raw.services, compCell, rawConcurrency, secs(res.raw.running))
	if ph.lastCreate > 0 && len(res.apply.failures) == 0 {
		r.f("| ↳↳ of which until the last service was created (API calls) | %s | %s | |\n", secs(ph.lastCreate-ph.swarmDone), secs(res.raw.created))
		r.f("| ↳↳ of which Swarm starting the tasks | %s | %s | |\n", secs(ph.lastDone-ph.lastCreate), secs(res.raw.running-res.raw.created))
	}
	if len(res.apply.failures) == 0 {
		r.f("| ↳ CLI start, plan inside apply / state saved at the end | %s / %s | | |\n", secs(ph.firstStart), secs(res.apply.took-ph.lastDone))
	}
	r.f("| plan, nothing to change (median of %d; max) | %s (max %s) | empty root module, same CLI and provider: %s (max %s) | < %s: %s |\n",
		len(res.plan), secs(planMed), secs(planMax), secs(floorMed), secs(floorMax), secs(planTarget), met(planMax < planTarget))
	r.f("| destroy, full layout | %s%s | raw removal of the %d services %s + swarm-only destroy %s = %s | |\n",
		secs(res.destroy.took), attempts(res.destroy), res.raw.services, secs(res.raw.removed), secs(res.swarmDestroy.took), secs(res.raw.removed+res.swarmDestroy.took))
	if res.sharedApply != nil {
		r.f("| apply, shared mode (%d services: 5 filter services instead of 100) | %s%s | | |\n", servicesShared, secs(res.sharedApply.took),
			attempts(*res.sharedApply))
		r.f("| plan, shared mode, nothing to change | %s | | |\n", secs(res.sharedPlan))
		r.f("| destroy, shared mode | %s | | |\n", secs(res.sharedDestroy.took))
	}
	r.f("\n")

	var failed []string
	for _, c := range []struct {
		what string
		c    *converged
	}{{"apply, full layout", &res.apply}, {"destroy, full layout", &res.destroy}, {"swarm-only apply", &res.swarmApply},
		{"swarm-only destroy", &res.swarmDestroy}, {"apply, shared mode", res.sharedApply}, {"destroy, shared mode", res.sharedDestroy}} {
		if c.c == nil {
			continue
		}
		for _, f := range c.c.failures {
			failed = append(failed, fmt.Sprintf("- %s: %s; applied again, as a user would\n", c.what, f))
		}
	}
	if len(failed) > 0 {
		r.f("Failed attempts (the times above include them):\n\n%s\n", strings.Join(failed, ""))
	}
	r.f("Raw numbers:\n\n")
	if len(res.apply.failures) > 0 {
		r.f("- the per-resource times below are of the first attempt, and only of the resources it completed\n")
	}
	r.f("- apply: %s wall, machine CPU %.0f %% busy (%.0f CPU-s, of which the containers %.0f: hub, mirrors, MirrorMaker 2 and filters %.0f;\n",
		secs(res.apply.took), 100*res.apply.busy, res.apply.cpu, res.apply.ctr, res.apply.onKafkaHosts)
	r.f("  the rest is the 12 engines, the kernel, SSH, Terraform and the provider); ")
	for _, kind := range []string{"minibroker_swarm.", "minibroker_mirror.", "minibroker_filter_group."} {
		lo, hi, n := ph.summary(kind)
		r.f("%s ×%d %s–%s; ", strings.Trim(kind, "."), n, secs(lo), secs(hi))
	}
	r.f("after it returned, all %d services were running; %d had had more than one task (restarted or rescheduled)\n",
		res.verify.services, len(res.verify.restarted))
	r.f("- plans: %s; empty-module plans: %s\n", joinSecs(res.plan), joinSecs(res.planFloor))
	r.f("- destroy: %s wall, machine CPU %.0f %% busy; left on the nodes afterwards: %s\n", secs(res.destroy.took), 100*res.destroy.busy,
		leftovers(res.leftAfterDestroy))
	r.f("- swarm-only apply %s (CPU %.0f %%), destroy %s; left afterwards: %s\n", secs(res.swarmApply.took), 100*res.swarmApply.busy,
		secs(res.swarmDestroy.took), leftovers(res.leftAfterBaseline))
	r.f("- raw Docker API: %d configs in %s, %d services created (API calls done) in %s, all running at %s; removed with tasks gone in %s;\n",
		2*filterHosts, secs(res.raw.configs), res.raw.services, secs(res.raw.created), secs(res.raw.running), secs(res.raw.removed))
	r.f("  specs identical to the provider's (spec-hash label): %d/%d\n", res.raw.hashesSame, res.raw.services)
	if res.sharedApply != nil {
		r.f("- shared mode: apply %s (CPU %.0f %%), %d services running, plan %s, destroy %s; left afterwards: %s\n", secs(res.sharedApply.took),
			100*res.sharedApply.busy, res.sharedVerify.services, secs(res.sharedPlan), secs(res.sharedDestroy.took), leftovers(res.leftAfterShared))
	}
	r.f("\n")
	return r.String()
}

// machineNotes is the report's line on the machine.
func (s *swarmBench) machineNotes(r *report) {
	r.f("- Machine: %s, %d cores, %s RAM, %s; load average before the run: %s\n", cpuModel(), runtime.NumCPU(), memTotal(),
		cmdOut("uname", "-sr"), s.load0)
}

// otherLabsNote says whether other labs shared the machine.
func (s *swarmBench) otherLabsNote(r *report) {
	if len(s.others) == 0 {
		r.f("- No other lab ran on the machine during the measurements.\n")
	} else {
		r.f("- **Other labs shared the machine during the run** (their nodes: %s): figures are pessimistic.\n",
			strings.Join(slices.Sorted(maps.Keys(s.others)), ", "))
	}
}

// heapsAndProducer continues the layout's line: the heaps and what the
// producer does while the deployment is measured.
func heapsAndProducer(r *report) {
	r.f("  11 JVMs on %d cores: hub and mirror heaps %d MiB, MirrorMaker 2 %d MiB. The producer is deployed with 10,000 small alerts\n",
		runtime.NumCPU(), hubHeapMB, mirrorMakerHeap)
	if producerInterval() == idleInterval {
		r.f("  (cutout_bytes 0) per visit, but %s between visits: it runs and sends nothing while the deployment is measured.\n", idleInterval)
		r.f("  (With the original 39 s the deployed filters take both cores while the last tasks start; MINIBROKER_BENCH_SWARM_INTERVAL=39s.)\n")
	} else {
		r.f("  (cutout_bytes 0) per visit, one visit every %s: the deployed pipeline runs while the deployment is measured.\n", producerInterval())
	}
}

// attempts notes, after a time, that it took more than one attempt.
func attempts(c converged) string {
	if len(c.failures) == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d attempts: the first failed after %s, see below)", len(c.runs), secs(c.runs[0].took))
}

func leftovers(p []string) string {
	if len(p) == 0 {
		return "nothing"
	}
	return "**" + strings.Join(p, "; ") + "**"
}

func joinSecs(ds []time.Duration) string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%.2f", d.Seconds()))
	}
	return strings.Join(out, ", ") + " s"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
