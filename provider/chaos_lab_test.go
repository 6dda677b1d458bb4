package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/report"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/tfcli"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// Settings of a run, from the environment, as chaos/ reads them (`make
// chaos` sets them).
const (
	chaosEnvRounds = "MINIBROKER_CHAOS_ROUNDS" // rounds of every fault; default 1
	chaosEnvSeed   = "MINIBROKER_CHAOS_SEED"   // seed of the order, moments, down times and alerts; default 1
	chaosEnvOut    = "MINIBROKER_CHAOS_OUT"    // docs/reliability.md, to write the results into
)

// The stream of the lab run.
const (
	chaosAlerts   = 3000             // small alerts per visit
	chaosInterval = 12 * time.Second // between visits
	// chaosDeliverTimeout bounds the wait for a visit to reach every
	// consumer after a fault; a visit still short then is a loss, reported
	// by the verification.
	chaosDeliverTimeout = 3 * time.Minute
)

// The lab: one node per role.
const (
	clManager, clProducer, clFilter, clConsumer = 0, 1, 2, 3
	chaosLabNodes                               = 4
	chaosMirror                                 = "m0"
)

// chaosFilter is a filter of the run, with its condition written in Go:
// the test's own evaluation, independent of CEL and of the filter process.
type chaosFilter struct {
	group, name, expr string
	cap               int // negative: no cap
	match             func(rec map[string]any) bool
}

func snrAbove(x float64) func(map[string]any) bool {
	return func(rec map[string]any) bool {
		v, _ := alert.Lookup(rec, "diaSource.snr")
		f, ok := v.(float64)
		return ok && f > x
	}
}

func detectorBelow(n int64) func(map[string]any) bool {
	return func(rec map[string]any) bool {
		v, _ := alert.Lookup(rec, "diaSource.detector")
		d, ok := v.(int64)
		return ok && d < n
	}
}

// A shared group (one process for three filters: above the cap, without a
// cap, under the cap) and an isolated group (one process per filter) on
// the one mirror. Per 3,000 alerts about 220, 740, 150, 450 and 10 match.
var chaosFilters = []chaosFilter{
	{"gs", "bright", "alert.diaSource.snr > 50.0", 20, snrAbove(50)},
	{"gs", "snr20", "alert.diaSource.snr > 20.0", -1, snrAbove(20)},
	{"gs", "edge", "alert.diaSource.detector < 10", 500, detectorBelow(10)},
	{"gi", "snr30", "alert.diaSource.snr > 30.0", 100, snrAbove(30)},
	{"gi", "snr100", "alert.diaSource.snr > 100.0", 20, snrAbove(100)},
}

type chaosLabConfig struct {
	KeyFile, KnownHosts, Workloads, Kafka string
	Manager, Producer, Filter, Consumer   string
	Alerts                                int
	Interval                              string
	Seed                                  int
	Shared, Isolated                      []chaosFilter
}

const chaosLabTemplate = `
terraform {
  required_providers {
    minibroker = { source = "minibroker/minibroker" }
  }
}

provider "minibroker" {
  ssh_private_key  = file("{{.KeyFile}}")
  known_hosts_file = "{{.KnownHosts}}"
  kafka_image      = "minibroker/kafka:dev"
  workloads_image  = "minibroker/workloads:dev"
}

resource "minibroker_swarm" "lab" {
  encrypt_network = false # the lab's kernel cannot install IPsec states (docs/security.md)
  hosts = [
    { address = "{{.Manager}}", role = "manager" },
    { address = "{{.Producer}}", role = "producer" },
    { address = "{{.Filter}}", role = "filter" },
    { address = "{{.Consumer}}", role = "consumer" },
  ]
  address_pool   = "10.125.0.0/16"
  image_archives = ["{{.Workloads}}", "{{.Kafka}}"]
  hub = { heap_mb = 384 }
  producer = {
    alerts_per_visit = {{.Alerts}}
    interval         = "{{.Interval}}"
    cutout_bytes     = 0
    seed             = {{.Seed}}
  }
}

resource "minibroker_mirror" "m0" {
  swarm_id             = minibroker_swarm.lab.id
  manager_address      = minibroker_swarm.lab.manager_address
  kafka_credentials = minibroker_swarm.lab.kafka_credentials
  name                 = "m0"
  node_index           = 0
  heap_mb              = 384
  mirror_maker_heap_mb = 256
}

resource "minibroker_filter_group" "gs" {
  swarm_id        = minibroker_swarm.lab.id
  manager_address = minibroker_swarm.lab.manager_address
  kafka_credentials = minibroker_swarm.lab.kafka_credentials
  name            = "gs"
  mirror          = minibroker_mirror.m0.name
  mode            = "shared"
  filters = [{{range .Shared}}
    { name = "{{.name}}", expression = "{{.expr}}", max_per_visit = {{.cap}} },{{end}}
  ]
}

resource "minibroker_filter_group" "gi" {
  swarm_id        = minibroker_swarm.lab.id
  manager_address = minibroker_swarm.lab.manager_address
  kafka_credentials = minibroker_swarm.lab.kafka_credentials
  name            = "gi"
  mirror          = minibroker_mirror.m0.name
  mode            = "isolated"
  filters = [{{range .Isolated}}
    { name = "{{.name}}", expression = "{{.expr}}", max_per_visit = {{.cap}} },{{end}}
  ]
}
`

// chaosLab is the running bed: the lab, the engines the test reads
// directly, the Terraform root module and what the run found so far.
type chaosLab struct {
	lab                                      *lab.Lab
	nodes                                    []lab.Node
	mgr, producerNode, filterNode, consumers *client.Client
	tf                                       *tfcli.CLI
	dir                                      string
	seed                                     int

	mu       sync.Mutex
	expected map[int64]map[string]selection // by visit, by filter
	plans    []planResult                   // provider fault: the plans run
	notes    []string                       // what the faults saw, for the report
}

// selection is what one filter must select from one visit.
type selection struct {
	matches map[string]bool // ids of every matching alert
	want    int             // matches, or the cap when there are more
}

// planResult is one `terraform plan` the provider fault ran.
type planResult struct {
	what string
	code int
	took time.Duration
	err  string // Terraform's error summary
}

// TestChaosLabFaults applies a mini-broker with the real Terraform CLI onto
// a lab swarm of 4 Docker Engines (manager with the hub, producer, one
// filter node with a mirror, a shared group of 3 filters and an isolated
// group of 2, consumer node), lets the producer send small synthetic visits
// every 12 s, and injects, each at a seeded random moment while a visit
// passes, `docker service update --force` of the hub and of the mirror's
// broker, a crash of the filter node's dockerd, the filter node offline
// (its dockerd stopped for 20-35 s) and, the provider's fault, the
// manager's dockerd stopped while its sshd answers: `terraform plan` must
// fail without planning a create, and once dockerd runs again the plan
// must be empty. Every visit after the warm-up is checked per filter
// against the test's own evaluation of the filter over the regenerated
// alerts: the consumer got every match (or exactly the cap), ranks 1..k
// once each, and the filter reported the visit complete once. Results go
// to docs/reliability.md when MINIBROKER_CHAOS_OUT is set.
func TestChaosLabFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, a lab of 4 Docker Engines and Terraform; skipped under -short")
	}
	rounds := chaosEnvInt(t, chaosEnvRounds, 1)
	seed := chaosEnvInt(t, chaosEnvSeed, 1)
	rng := rand.New(rand.NewPCG(uint64(seed), 12))
	plan := chaosSchedule(rounds, rng)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute+time.Duration(len(plan))*5*time.Minute)
	defer cancel()
	began := time.Now()

	tfPath, err := tfcli.Find(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	workloads, kafka := imageArchives(t)
	if src := newerThan(t, filepath.Join(repoRoot(t), "workloads"), workloads); src != "" {
		// The figures would be those of older workloads (`make chaos` and
		// `make test` build the image first).
		msg := fmt.Sprintf("%s is older than %s: run `make image-workloads`", workloads, src)
		if os.Getenv(chaosEnvOut) != "" {
			t.Fatal(msg)
		}
		t.Log("warning: " + msg)
	}
	l := lab.ForTest(t, chaosLabNodes)
	nodes := l.Nodes()
	work, err := os.MkdirTemp("", "chaos-lab-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept %s (Terraform outputs and provider logs under logs/)", work)
			return
		}
		_ = os.RemoveAll(work)
	})
	providerDir := filepath.Join(work, "provider")
	if err := tfcli.BuildProvider(ctx, repoRoot(t), providerDir); err != nil {
		t.Fatal(err)
	}
	tf, err := tfcli.New(ctx, tfcli.Options{Path: tfPath, ProviderDir: providerDir, Dir: work, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	cfg := chaosLabConfig{
		KeyFile: l.PrivateKeyFile(), KnownHosts: l.KnownHostsFile(), Workloads: workloads, Kafka: kafka,
		Manager: nodes[clManager].Addr, Producer: nodes[clProducer].Addr, Filter: nodes[clFilter].Addr,
		Consumer: nodes[clConsumer].Addr, Alerts: chaosAlerts, Interval: chaosInterval.String(), Seed: seed,
	}
	for _, f := range chaosFilters {
		if f.group == "gs" {
			cfg.Shared = append(cfg.Shared, f)
		} else {
			cfg.Isolated = append(cfg.Isolated, f)
		}
	}
	b := &chaosLab{lab: l, nodes: nodes, tf: tf, dir: filepath.Join(work, "root"), seed: seed,
		mgr: engine(t, nodes[clManager]), producerNode: engine(t, nodes[clProducer]), filterNode: engine(t, nodes[clFilter]), consumers: engine(t, nodes[clConsumer]),
		expected: map[int64]map[string]selection{}}
	if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "main.tf"), []byte(render(t, chaosLabTemplate, chaosTemplateData(cfg))), 0o644); err != nil {
		t.Fatal(err)
	}
	applied := tf.Apply(t, ctx, b.dir, "apply")
	t.Logf("applied in %s", applied.Took.Round(time.Second))
	t.Cleanup(func() {
		if t.Failed() {
			b.logServices(t)
		}
	})

	// Warm-up: the producer started with the swarm, before the filters
	// and consumers; the first visit that every consumer got whole ends it.
	warm, err := b.firstWholeVisit(ctx, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	firstChecked := warm + 1
	// A fault strikes while a visit passes: at a moment drawn uniformly
	// from the time the warm-up visit took from its start to its last
	// alert at a consumer.
	flow, err := b.visitFlow(ctx, warm)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warm-up: visit %d reached every consumer whole, the last alert %s after its start; checking the visits after it",
		warm, flow.Round(time.Millisecond))
	flow = min(max(flow, 300*time.Millisecond), 3*time.Second)

	// One fault per visit. The next fault waits until the visit the last
	// one struck and the next visit after it have reached every consumer
	// whole (or chaosDeliverTimeout has passed for either): the pipeline
	// runs steadily again.
	var done []labInjection
	var last int64
	for _, f := range plan {
		start, err := b.nextVisit(ctx, time.Now().Add(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		at := start.Add(time.Duration(rng.Int64N(int64(flow))))
		if err := sleepUntil(ctx, at); err != nil {
			t.Fatal(err)
		}
		inj := labInjection{fault: f.name, visit: start.UnixMilli(), at: time.Now()}
		inj.failed = f.inject(ctx, b, rng)
		inj.back = time.Since(inj.at)
		if inj.failed != nil {
			t.Errorf("%s at visit %d: %v", f.name, inj.visit, inj.failed)
		}
		t.Logf("%s struck visit %d at +%s; running again after %s", f.name, inj.visit,
			inj.at.Sub(start).Round(time.Millisecond), inj.back.Round(time.Millisecond))
		done = append(done, inj)
		if err := b.waitDelivered(ctx, inj.visit, chaosDeliverTimeout); err != nil {
			t.Logf("%s: visit %d: %v", f.name, inj.visit, err)
		}
		// The next visit the producer sends (a hub outage may have made it
		// skip a slot).
		last, err = b.sentVisit(ctx, time.Now(), chaosDeliverTimeout)
		if err == nil {
			err = b.waitDelivered(ctx, last, chaosDeliverTimeout)
		}
		if err != nil {
			b.noteHangingTransactions(ctx, f.name)
			b.keepServiceLogs(ctx)
			// Not steady again: the faults left would tell nothing more.
			t.Errorf("%s: the pipeline did not recover: the visit after, %d: %v", f.name, last, err)
			break
		}
	}

	b.noteClosedHanging(ctx)
	res := b.verify(ctx, t, done, firstChecked, last)
	// After every fault the swarm is as configured: the plan is empty.
	res.finalPlan = tf.PlanNoChange(t, ctx, b.dir, "plan-after-faults")
	destroyed := tf.Destroy(t, ctx, b.dir, "destroy")
	res.destroy = destroyed.Took
	res.rounds, res.seed, res.took = rounds, seed, time.Since(began)
	res.plans, res.notes = b.plans, b.notes
	text := res.markdown()
	t.Log("\n" + text)
	if out := os.Getenv(chaosEnvOut); out != "" {
		if err := report.WriteBetweenMarkers(out, chaosLabBegin, chaosLabEnd, text); err != nil {
			t.Fatal(err)
		}
	}
}

// Markers of the generated section in docs/reliability.md.
const (
	chaosLabBegin = "<!-- chaos-lab:begin (generated by make chaos) -->"
	chaosLabEnd   = "<!-- chaos-lab:end -->"
)

// chaosTemplateData makes the filters' fields visible to the template.
func chaosTemplateData(c chaosLabConfig) map[string]any {
	conv := func(fs []chaosFilter) []map[string]any {
		var out []map[string]any
		for _, f := range fs {
			out = append(out, map[string]any{"name": f.name, "expr": f.expr, "cap": f.cap})
		}
		return out
	}
	return map[string]any{
		"KeyFile": c.KeyFile, "KnownHosts": c.KnownHosts, "Workloads": c.Workloads, "Kafka": c.Kafka,
		"Manager": c.Manager, "Producer": c.Producer, "Filter": c.Filter, "Consumer": c.Consumer,
		"Alerts": c.Alerts, "Interval": c.Interval, "Seed": c.Seed,
		"Shared": conv(c.Shared), "Isolated": conv(c.Isolated),
	}
}

// labFault is one kind of failure the test injects.
type labFault struct {
	name, how string
	// inject breaks the part and returns once it runs again.
	inject func(ctx context.Context, b *chaosLab, rng *rand.Rand) error
}

// Services on the filter node (the mirror's node).
var filterNodeServices = func() []string {
	out := []string{swarmspec.MirrorKafkaService(chaosMirror), swarmspec.MirrorMakerService(chaosMirror),
		swarmspec.SharedFilterService("gs")}
	for _, f := range chaosFilters {
		if f.group == "gi" {
			out = append(out, swarmspec.FilterService(f.group, f.name))
		}
	}
	return out
}()

var labFaults = []labFault{
	{name: "hub task replaced", how: "`docker service update --force mb-hub` (through the manager's API)",
		inject: func(ctx context.Context, b *chaosLab, _ *rand.Rand) error {
			old := runningContainers(ctx, b.mgr, swarmspec.HubService)
			if err := forceServiceUpdate(ctx, b.mgr, swarmspec.HubService); err != nil {
				return err
			}
			return waitBack(ctx, b.mgr, []string{swarmspec.HubService}, old)
		}},
	{name: "mirror broker task replaced", how: "`docker service update --force mb-mirror-m0`",
		inject: func(ctx context.Context, b *chaosLab, _ *rand.Rand) error {
			svc := swarmspec.MirrorKafkaService(chaosMirror)
			old := runningContainers(ctx, b.filterNode, svc)
			if err := forceServiceUpdate(ctx, b.mgr, svc); err != nil {
				return err
			}
			err := waitBack(ctx, b.filterNode, []string{svc}, old)
			for id := range old {
				lines := strings.Split(containerLog(ctx, b.filterNode, id), "\n")
				b.noteSkippedMarkers("mirror broker task replaced", lines)
				b.keepLog("mirror-"+id[:12]+".log", lines)
			}
			return err
		}},
	{name: "filter node's dockerd crashes", how: "`lab.RestartDocker`: SIGKILL, started again at once; the mirror broker, MirrorMaker 2 and every filter get new tasks",
		inject: func(ctx context.Context, b *chaosLab, _ *rand.Rand) error {
			old := runningContainers(ctx, b.filterNode, filterNodeServices...)
			mirrors := runningContainers(ctx, b.filterNode, swarmspec.MirrorKafkaService(chaosMirror))
			if err := b.lab.RestartDocker(ctx, b.nodes[clFilter].Addr); err != nil {
				if err := b.startAgain(ctx, "filter node's dockerd crashes", b.nodes[clFilter].Addr, err); err != nil {
					return err
				}
			}
			err := waitBack(ctx, b.filterNode, filterNodeServices, old)
			for id := range mirrors {
				lines := strings.Split(containerLog(ctx, b.filterNode, id), "\n")
				b.noteSkippedMarkers("filter node's dockerd crashes", lines)
				b.keepLog("mirror-"+id[:12]+".log", lines)
			}
			return err
		}},
	{name: "filter node offline", how: "`lab.StopDocker` (SIGTERM: dockerd stops every container, then itself) for 20-35 s, then `lab.StartDocker`; Swarm sees the node down",
		inject: func(ctx context.Context, b *chaosLab, rng *rand.Rand) error {
			old := runningContainers(ctx, b.filterNode, filterNodeServices...)
			mirrors := runningContainers(ctx, b.filterNode, swarmspec.MirrorKafkaService(chaosMirror))
			began := time.Now()
			if err := b.lab.StopDocker(ctx, b.nodes[clFilter].Addr); err != nil {
				return err
			}
			// The stopped broker's log, from the node's disk: dockerd removes
			// the old task's container when it starts again.
			for id := range mirrors {
				lines := jsonLogLines(filepath.Join(b.nodes[clFilter].Dir, "docker", "containers", id, id+"-json.log"))
				b.noteSkippedMarkers("filter node offline", lines)
				b.keepLog("mirror-"+id[:12]+".log", lines)
			}
			down := 20*time.Second + time.Duration(rng.Int64N(int64(15*time.Second)))
			// Meanwhile, watch the manager mark the node down.
			var seenDown time.Duration
			for time.Now().Before(began.Add(down)) {
				if seenDown == 0 && nodeState(ctx, b.mgr, b.nodes[clFilter].Name) == swarm.NodeStateDown {
					seenDown = time.Since(began)
				}
				if err := sleepCtx(ctx, min(time.Second, time.Until(began.Add(down)))); err != nil {
					return err
				}
			}
			if seenDown > 0 {
				b.note("filter node offline for %s: Swarm marked it down after %s", report.Secs(down), report.Secs(seenDown))
			} else {
				b.note("filter node offline for %s: Swarm did not mark it down meanwhile", report.Secs(down))
			}
			if err := b.lab.StartDocker(ctx, b.nodes[clFilter].Addr); err != nil {
				if err := b.startAgain(ctx, "filter node offline", b.nodes[clFilter].Addr, err); err != nil {
					return err
				}
			}
			return waitBack(ctx, b.filterNode, filterNodeServices, old)
		}},
	{name: "manager's dockerd stopped, then `terraform plan`", how: "`lab.StopDocker` on the manager (the hub and Swarm's control plane stop; sshd answers); `terraform plan` must fail and plan no create; `lab.StartDocker`; the next plan must be empty",
		inject: managerDown,
	},
}

// managerDown is the provider's fault: a plan while the manager's engine
// is stopped must fail, keeping the swarm in state (before c90a8f7 refresh
// dropped it and planned a second swarm), and once the engine runs again
// the plan must be empty.
func managerDown(ctx context.Context, b *chaosLab, _ *rand.Rand) error {
	old := runningContainers(ctx, b.mgr, swarmspec.HubService)
	addr := b.nodes[clManager].Addr
	if err := b.lab.StopDocker(ctx, addr); err != nil {
		return err
	}
	var problems []string
	n := len(b.plans)
	p, err := b.tf.Run(ctx, b.dir, fmt.Sprintf("plan-manager-down-%d", n), "plan", "-detailed-exitcode", "-input=false", "-no-color")
	if err != nil {
		problems = append(problems, err.Error())
	} else {
		out := p.Text()
		b.addPlan(planResult{what: "manager's dockerd stopped", code: p.Code, took: p.Took, err: p.ErrorSummary()})
		switch {
		case p.Code != 1:
			problems = append(problems, fmt.Sprintf("plan with the manager's dockerd stopped exited %d, want 1 (an error):\n%s", p.Code, p.Tail(40)))
		case !strings.Contains(out, "Cannot read swarm"):
			problems = append(problems, fmt.Sprintf("plan with the manager's dockerd stopped failed without \"Cannot read swarm\":\n%s", p.Tail(40)))
		}
		for _, planned := range []string{"will be created", "must be replaced", "will be destroyed", "Plan:"} {
			if strings.Contains(out, planned) {
				problems = append(problems, fmt.Sprintf("plan with the manager's dockerd stopped planned something (%q):\n%s", planned, p.Tail(60)))
			}
		}
	}
	if err := b.lab.StartDocker(ctx, addr); err != nil {
		if err := b.startAgain(ctx, "manager's dockerd stopped", addr, err); err != nil {
			return errors.Join(append([]error{err}, stringErrors(problems)...)...)
		}
	}
	if err := waitBack(ctx, b.mgr, []string{swarmspec.HubService}, old); err != nil {
		problems = append(problems, err.Error())
	}
	// The engine answers again: the plan must be empty. While the manager
	// is still starting, refresh may fail (and must, rather than plan
	// anything); try again then.
	deadline := time.Now().Add(3 * time.Minute)
	for attempt := 1; ; attempt++ {
		p, err := b.tf.Run(ctx, b.dir, fmt.Sprintf("plan-manager-back-%d-%d", n, attempt), "plan", "-detailed-exitcode", "-input=false", "-no-color")
		if err != nil {
			problems = append(problems, err.Error())
			break
		}
		b.addPlan(planResult{what: fmt.Sprintf("manager's dockerd running again (attempt %d)", attempt), code: p.Code, took: p.Took, err: p.ErrorSummary()})
		if p.Code == 0 {
			break
		}
		if p.Code == 2 {
			problems = append(problems, fmt.Sprintf("plan once the manager's dockerd runs again is not empty:\n%s", p.Tail(60)))
			break
		}
		if time.Now().After(deadline) {
			problems = append(problems, fmt.Sprintf("plan still fails 3 minutes after the manager's dockerd started again:\n%s", p.Tail(40)))
			break
		}
		if err := sleepCtx(ctx, 5*time.Second); err != nil {
			return err
		}
	}
	return errors.Join(stringErrors(problems)...)
}

// startAgain starts a node's dockerd once more when it did not come up
// (a test-bed failure, noted: under load its containerd may not start in
// time, "failed to start containerd: timeout waiting for containerd to
// start"), and returns an error if it still does not.
func (b *chaosLab) startAgain(ctx context.Context, fault, addr string, cause error) error {
	b.note("%s: the lab's dockerd did not come up (%s); started it again", fault, lastLines(cause.Error(), 1))
	if err := b.lab.StopDocker(ctx, addr); err != nil && !strings.Contains(err.Error(), "runs no dockerd") {
		return errors.Join(cause, err)
	}
	if err := b.lab.StartDocker(ctx, addr); err != nil {
		return errors.Join(cause, err)
	}
	return nil
}

// nodeState is the state the manager gives the node of that hostname
// ("" when it cannot tell).
func nodeState(ctx context.Context, mgr *client.Client, hostname string) swarm.NodeState {
	list, err := mgr.NodeList(ctx, swarm.NodeListOptions{})
	if err != nil {
		return ""
	}
	for _, n := range list {
		if n.Description.Hostname == hostname {
			return n.Status.State
		}
	}
	return ""
}

// cancelledMarkers is what Kafka's transaction coordinator logs when it
// stops with a transaction prepared but its markers not yet written: the
// next coordinator must write them.
const cancelledMarkers = "cancel sending transaction markers"

// noteSkippedMarkers notes the lines of a stopped broker's log saying
// that it stopped before writing a transaction's markers.
func (b *chaosLab) noteSkippedMarkers(fault string, lines []string) {
	var hits []string
	for _, l := range lines {
		if strings.Contains(l, cancelledMarkers) {
			hits = append(hits, strings.TrimSpace(l))
		}
	}
	if len(hits) > 0 {
		b.note("%s: the mirror broker stopped with %d transaction(s) prepared and their markers unwritten: `%s`",
			fault, len(hits), strings.ReplaceAll(lastLines(hits[0], 1), "`", "'"))
	}
}

// noteHangingTransactions notes every partition of the mirror (the filters'
// outputs and state topics, and __consumer_offsets, which holds the
// offsets a filter commits in its transactions) with a transaction open
// for over a minute: Kafka's coordinator has moved on, no marker will
// come, and read_committed readers and the group's committed offsets stay
// behind it (kafka-transactions.sh abort releases it).
func (b *chaosLab) noteHangingTransactions(ctx context.Context, when string) {
	ids := runningContainers(ctx, b.filterNode, swarmspec.MirrorKafkaService(chaosMirror))
	var id string
	for c := range ids {
		id = c
	}
	if id == "" {
		return
	}
	type part struct {
		topic string
		n     int
	}
	var parts []part
	for n := range 8 { // kafkaconf.DefaultOffsetsTopicPartitions
		parts = append(parts, part{"__consumer_offsets", n})
	}
	for _, f := range chaosFilters {
		parts = append(parts, part{f.name, 0})
	}
	for _, st := range []string{"gs", "snr30", "snr100"} {
		parts = append(parts, part{st + "-state", 0})
	}
	var hanging []string
	for _, p := range parts {
		out, _, _, err := execIn(ctx, b.filterNode, id, []string{images.KafkaRunClassScript,
			"org.apache.kafka.tools.TransactionsCommand", "--bootstrap-server", loopbackBroker,
			"describe-producers", "--topic", p.topic, "--partition", strconv.Itoa(p.n)},
			[]string{"KAFKA_HEAP_OPTS=-Xmx128m", "KAFKA_JMX_OPTS=-Dcom.sun.management.jmxremote=false"})
		if err != nil {
			continue
		}
		// ProducerId ProducerEpoch LatestCoordinatorEpoch LastSequence LastTimestamp CurrentTransactionStartOffset
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) != 6 || f[5] == "None" || f[0] == "ProducerId" {
				continue
			}
			last, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil || time.Since(time.UnixMilli(last)) < time.Minute {
				continue
			}
			hanging = append(hanging, fmt.Sprintf("%s-%d from offset %s (producer %s epoch %s, last write %s ago)",
				p.topic, p.n, f[5], f[0], f[1], time.Since(time.UnixMilli(last)).Round(time.Second)))
		}
	}
	if len(hanging) > 0 {
		b.note("%s: transactions left open on the mirror: %s", when, strings.Join(hanging, "; "))
	}
}

// noteClosedHanging notes each transaction that a filter, starting a
// session, found left open by Kafka and closed (from the logs of every
// filter container on the filter node, running or not).
func (b *chaosLab) noteClosedHanging(ctx context.Context) {
	for _, s := range filterNodeServices {
		list, err := b.filterNode.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+s))})
		if err != nil {
			continue
		}
		for _, c := range list {
			for _, line := range strings.Split(containerLog(ctx, b.filterNode, c.ID), "\n") {
				if strings.Contains(line, pipeline.LogClosedHanging) {
					b.note("%s: %s", s, strings.TrimSpace(line))
				}
			}
		}
	}
}

// keepLog writes the lines of a replaced container's log beside
// Terraform's logs (kept when the test fails).
func (b *chaosLab) keepLog(name string, lines []string) {
	_ = os.WriteFile(filepath.Join(b.tf.Logs, name), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// keepServiceLogs keeps the logs of every container of the filter node's
// services and of the consumers, for a pipeline that did not recover.
func (b *chaosLab) keepServiceLogs(ctx context.Context) {
	keep := func(cli *client.Client, service string) {
		list, err := cli.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+service))})
		if err != nil {
			return
		}
		for _, c := range list {
			b.keepLog(service+"-"+c.ID[:12]+".log", strings.Split(containerLog(ctx, cli, c.ID), "\n"))
		}
	}
	for _, s := range filterNodeServices {
		keep(b.filterNode, s)
	}
	for _, f := range chaosFilters {
		keep(b.consumers, swarmspec.ConsumerService(f.group, f.name))
	}
}

// jsonLogLines returns the lines of a container's json-file log.
func jsonLogLines(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, raw := range strings.Split(string(data), "\n") {
		var l struct {
			Log string `json:"log"`
		}
		if json.Unmarshal([]byte(raw), &l) == nil {
			out = append(out, strings.TrimRight(l.Log, "\n"))
		}
	}
	return out
}

// note records a line for the report.
func (b *chaosLab) note(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

func (b *chaosLab) addPlan(p planResult) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plans = append(b.plans, p)
}

func stringErrors(msgs []string) []error {
	var out []error
	for _, m := range msgs {
		out = append(out, errors.New(m))
	}
	return out
}

// labInjection is one fault as it happened.
type labInjection struct {
	fault  string
	visit  int64 // the visit it struck (its scheduled start, in ms)
	at     time.Time
	back   time.Duration // until inject returned: the part runs again
	failed error
}

// chaosSchedule returns rounds × every fault, in a seeded random order.
func chaosSchedule(rounds int, rng *rand.Rand) []labFault {
	var out []labFault
	for range rounds {
		out = append(out, labFaults...)
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// nextVisit returns when the producer starts its first visit after t. It
// starts a visit every interval from its first one (at a multiple of the
// interval), and when a visit ends late (a hub outage holds its alerts)
// it goes on from the time it logged as next_visit_at; so the last visit
// it logged sent, or that next start, whichever is later, anchors the
// cadence. It reads the producer's log from its node's engine.
func (b *chaosLab) nextVisit(ctx context.Context, after time.Time) (time.Time, error) {
	log, err := b.producerLog(ctx)
	if err != nil {
		return time.Time{}, err
	}
	var anchor time.Time
	for _, line := range log {
		var at time.Time
		if m := reVisitSent.FindStringSubmatch(line); m != nil {
			ms, _ := strconv.ParseInt(m[1], 10, 64)
			at = time.UnixMilli(ms)
		} else if m := reNextVisitAt.FindStringSubmatch(line); m != nil {
			at, _ = time.Parse(time.RFC3339Nano, strings.Trim(m[1], `"`))
		}
		if at.After(anchor) {
			anchor = at
		}
	}
	if anchor.IsZero() {
		return time.Time{}, errors.New("the producer has logged no visit start yet")
	}
	if !after.After(anchor) {
		return anchor, nil
	}
	n := (after.Sub(anchor) + chaosInterval - 1) / chaosInterval
	return anchor.Add(n * chaosInterval), nil
}

// producerLog returns the lines the running producer logged.
func (b *chaosLab) producerLog(ctx context.Context) ([]string, error) {
	list, err := b.producerNode.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", "com.docker.swarm.service.name="+swarmspec.ProducerService), filters.Arg("status", "running"))})
	if err != nil {
		return nil, err
	}
	if len(list) != 1 {
		return nil, fmt.Errorf("%d running producers", len(list))
	}
	return strings.Split(containerLog(ctx, b.producerNode, list[0].ID), "\n"), nil
}

// sentVisit waits until the producer has sent a visit that starts at or
// after after, and returns the first such.
func (b *chaosLab) sentVisit(ctx context.Context, after time.Time, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	for {
		log, err := b.producerLog(ctx)
		if err == nil {
			var first int64
			for _, line := range log {
				if m := reVisitSent.FindStringSubmatch(line); m != nil {
					v, _ := strconv.ParseInt(m[1], 10, 64)
					if v >= after.UnixMilli() && (first == 0 || v < first) {
						first = v
					}
				}
			}
			if first != 0 {
				return first, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the producer sent no visit starting after %s within %s (%v)", after.Format(time.RFC3339), timeout, err)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return 0, err
		}
	}
}

// visitFlow returns how long a visit took from its start until the last
// of its alerts reached a consumer.
func (b *chaosLab) visitFlow(ctx context.Context, visit int64) (time.Duration, error) {
	outs, err := b.allOutputs(ctx)
	if err != nil {
		return 0, err
	}
	var last time.Time
	for _, lines := range outs {
		for _, l := range lines {
			if l.Visit == visit && l.Arrived.After(last) {
				last = l.Arrived
			}
		}
	}
	if last.IsZero() {
		return 0, fmt.Errorf("no consumer got an alert of visit %d", visit)
	}
	return last.Sub(time.UnixMilli(visit)), nil
}

// The producer's log lines that tell its cadence.
var (
	reVisitSent   = regexp.MustCompile(`msg="visit sent".* visit=(\d+)`)
	reNextVisitAt = regexp.MustCompile(`(?:first_visit_at|next_visit_at)=("[^"]*"|\S+)`)
)

// expect returns, by filter, what each must select from a visit: the
// producer's alerts regenerated with its generator and seed, decoded, and
// each filter's condition evaluated in Go.
func (b *chaosLab) expect(visit int64) (map[string]selection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.expected[visit]; ok {
		return e, nil
	}
	src := pipeline.NewSynthetic(int64(b.seed), 0)
	dec := alert.NewDecoder(alert.NewRegistry(alert.SyntheticSchema()))
	out := map[string]selection{}
	for _, f := range chaosFilters {
		out[f.name] = selection{matches: map[string]bool{}}
	}
	var buf []byte
	for i := range chaosAlerts {
		msg, err := src.Alert(buf[:0], visit, i)
		if err != nil {
			return nil, err
		}
		buf = msg
		rec, _, err := dec.DecodeMessage(msg)
		if err != nil {
			return nil, fmt.Errorf("alert %d of visit %d: %w", i, visit, err)
		}
		id, _ := alert.Lookup(rec, alert.DefaultIDPath)
		for _, f := range chaosFilters {
			if f.match(rec) {
				out[f.name].matches[fmt.Sprint(id)] = true
			}
		}
	}
	for _, f := range chaosFilters {
		s := out[f.name]
		s.want = len(s.matches)
		if f.cap >= 0 && s.want > f.cap {
			s.want = f.cap
		}
		out[f.name] = s
	}
	b.expected[visit] = out
	return out, nil
}

// consumerLine is one line a consumer service prints per alert (`consume
// --out -`).
type consumerLine struct {
	Run     string    `json:"run"`
	Visit   int64     `json:"visit"`
	Rank    int       `json:"rank"`
	ID      string    `json:"id"`
	Arrived time.Time `json:"arrived"`
}

// consumerOutput reads every line the consumer of filter f printed, from
// every container its service had on the consumer node (a restarted task
// prints again what it reads again), read from that node's engine so that
// it needs no manager.
func (b *chaosLab) consumerOutput(ctx context.Context, f chaosFilter) ([]consumerLine, error) {
	service := swarmspec.ConsumerService(f.group, f.name)
	list, err := b.consumers.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+service))})
	if err != nil {
		return nil, err
	}
	var out []consumerLine
	for _, c := range list {
		rc, err := b.consumers.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true})
		if err != nil {
			return nil, fmt.Errorf("logs of %s (%s): %w", service, c.ID[:12], err)
		}
		for _, line := range swarmctl.LogLines(rc) {
			var l consumerLine
			if json.Unmarshal([]byte(line), &l) == nil && l.ID != "" {
				out = append(out, l)
			}
		}
		rc.Close()
	}
	return out, nil
}

// allOutputs reads every consumer's lines, by filter.
func (b *chaosLab) allOutputs(ctx context.Context) (map[string][]consumerLine, error) {
	out := map[string][]consumerLine{}
	for _, f := range chaosFilters {
		lines, err := b.consumerOutput(ctx, f)
		if err != nil {
			return nil, err
		}
		out[f.name] = lines
	}
	return out, nil
}

// deliveredWhole reports whether every consumer has as many distinct
// alerts of visit as its filter must select.
func (b *chaosLab) deliveredWhole(ctx context.Context, visit int64, outs map[string][]consumerLine) (bool, string, error) {
	want, err := b.expect(visit)
	if err != nil {
		return false, "", err
	}
	var short []string
	for _, f := range chaosFilters {
		ids := map[string]bool{}
		for _, l := range outs[f.name] {
			if l.Visit == visit {
				ids[l.ID] = true
			}
		}
		if len(ids) < want[f.name].want {
			short = append(short, fmt.Sprintf("%s %d/%d", f.name, len(ids), want[f.name].want))
		}
	}
	return len(short) == 0, strings.Join(short, ", "), nil
}

// waitDelivered waits until every consumer has visit whole.
func (b *chaosLab) waitDelivered(ctx context.Context, visit int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if start := time.UnixMilli(visit); deadline.Before(start.Add(timeout)) {
		deadline = start.Add(timeout)
	}
	var last string
	for {
		if time.Now().After(time.UnixMilli(visit)) {
			outs, err := b.allOutputs(ctx)
			if err == nil {
				var ok bool
				ok, last, err = b.deliveredWhole(ctx, visit, outs)
				if err != nil {
					return err
				}
				if ok {
					return nil
				}
			} else {
				last = err.Error()
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not delivered whole within %s: %s", timeout, last)
		}
		if err := sleepCtx(ctx, 3*time.Second); err != nil {
			return err
		}
	}
}

// firstWholeVisit waits for the first visit every consumer got whole.
func (b *chaosLab) firstWholeVisit(ctx context.Context, timeout time.Duration) (int64, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		outs, err := b.allOutputs(ctx)
		if err != nil {
			last = err.Error()
		} else {
			visits := map[int64]bool{}
			for _, lines := range outs {
				for _, l := range lines {
					visits[l.Visit] = true
				}
			}
			sorted := slices.Sorted(func(yield func(int64) bool) {
				for v := range visits {
					if !yield(v) {
						return
					}
				}
			})
			for _, v := range sorted {
				ok, short, err := b.deliveredWhole(ctx, v, outs)
				if err != nil {
					return 0, err
				}
				if ok {
					return v, nil
				}
				last = fmt.Sprintf("visit %d: %s", v, short)
			}
		}
		if err := sleepCtx(ctx, 3*time.Second); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("no visit reached every consumer whole within %s (last: %s)", timeout, last)
}

// timingEvents reads every event of the timing topic on the hub, repeats
// included, with Kafka's console consumer run in the hub's container: the
// hub listens on the overlay network only.
func (b *chaosLab) timingEvents(ctx context.Context) ([]timing.Event, error) {
	ids := runningContainers(ctx, b.mgr, swarmspec.HubService)
	if len(ids) != 1 {
		return nil, fmt.Errorf("%d running containers of %s", len(ids), swarmspec.HubService)
	}
	var id string
	for c := range ids {
		id = c
	}
	stdout, stderr, code, err := execIn(ctx, b.mgr, id, []string{images.KafkaRunClassScript,
		"org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", loopbackBroker,
		"--topic", stream.TimingTopic, "--from-beginning", "--timeout-ms", "8000"},
		[]string{"KAFKA_HEAP_OPTS=-Xmx128m", "KAFKA_JMX_OPTS=-Dcom.sun.management.jmxremote=false"})
	if err != nil {
		return nil, err
	}
	var evs []timing.Event
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e timing.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("timing event %q: %w", line, err)
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		return nil, fmt.Errorf("console consumer (exit %d) read no timing event: %s", code, lastLines(stderr, 10))
	}
	return evs, nil
}

// labFigures are what the verification found for one fault: over the
// visits from the one it struck until the next fault's.
type labFigures struct {
	times      int
	visits     int
	lost       int // alerts the consumer never got, of those the filter must select
	duplicated int // an alert twice at different ranks, or two alerts at one rank
	wrong      int // alerts selected that do not match, or beyond the cap
	rereads    int // lines a restarted consumer printed again (same alert, same rank)
	incomplete int // filter × visit without exactly one completion event with the right counts
	back       []time.Duration
	recovery   []time.Duration
	nextDone   []time.Duration // from the fault until every filter had finished the visit after the struck one
}

type labResult struct {
	rounds, seed   int
	took           time.Duration
	visits, alerts int
	perFault       map[string]*labFigures
	order          []string
	timingRepeats  int
	problems       []string
	plans          []planResult
	finalPlan      time.Duration
	destroy        time.Duration
	notes          []string
}

const noFault = "(visits before the first fault)"

// verify checks every visit from firstChecked to lastChecked, per filter,
// against the test's own evaluation.
func (b *chaosLab) verify(ctx context.Context, t *testing.T, done []labInjection, firstChecked, lastChecked int64) *labResult {
	res := &labResult{perFault: map[string]*labFigures{noFault: {}}, order: []string{noFault}}
	for _, f := range labFaults {
		res.perFault[f.name] = &labFigures{}
		res.order = append(res.order, f.name)
	}

	// Every filter must have reported every checked visit complete; wait
	// for the events (the last visit may still be on its way).
	var raw []timing.Event
	var err error
	deadline := time.Now().Add(3 * time.Minute)
	for {
		raw, err = b.timingEvents(ctx)
		if err == nil && allReported(raw, firstChecked, lastChecked) {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("timing events: %v", err)
			}
			t.Errorf("not every filter reported every visit complete within 3 minutes")
			break
		}
		if err := sleepCtx(ctx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	evs, repeats := timing.Dedup(raw)
	res.timingRepeats = repeats
	produced := map[int64]timing.Event{}
	completed := map[string]map[int64][]timing.Event{}
	for _, e := range evs {
		switch e.Kind {
		case timing.KindProduce:
			produced[e.Visit] = e
		case timing.KindFilter:
			if completed[e.Name] == nil {
				completed[e.Name] = map[int64][]timing.Event{}
			}
			completed[e.Name][e.Visit] = append(completed[e.Name][e.Visit], e)
		}
	}
	outs, err := b.allOutputs(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The visits: every one the producer reported sent, and any a consumer
	// saw, in the checked range.
	inRange := func(v int64) bool { return v >= firstChecked && v <= lastChecked }
	visitSet := map[int64]bool{}
	for v := range produced {
		if inRange(v) {
			visitSet[v] = true
		}
	}
	for _, lines := range outs {
		for _, l := range lines {
			if inRange(l.Visit) {
				visitSet[l.Visit] = true
			}
		}
	}
	visits := slices.Sorted(func(yield func(int64) bool) {
		for v := range visitSet {
			if !yield(v) {
				return
			}
		}
	})
	res.visits = len(visits)

	// A fault struck the latest visit the producer had started by then.
	for i, inj := range done {
		var latest int64
		for v := range produced {
			if v <= inj.at.UnixMilli() && v > latest {
				latest = v
			}
		}
		if latest != 0 {
			done[i].visit = latest
		}
		fig := res.perFault[inj.fault]
		fig.times++
		fig.back = append(fig.back, inj.back)
	}
	faultOf := func(v int64) string {
		name := noFault
		for _, inj := range done {
			if inj.visit <= v {
				name = inj.fault
			}
		}
		return name
	}

	bad := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		t.Error(msg)
		if len(res.problems) < 12 {
			res.problems = append(res.problems, msg)
		}
	}
	for _, v := range visits {
		fig := res.perFault[faultOf(v)]
		fig.visits++
		p, ok := produced[v]
		if !ok {
			bad("visit %d (%s): consumers got alerts of it but the producer never reported it sent", v, faultOf(v))
		} else {
			res.alerts += p.Alerts
			if p.Alerts != chaosAlerts {
				bad("visit %d: the producer reported %d alerts sent, want %d", v, p.Alerts, chaosAlerts)
			}
		}
		want, err := b.expect(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range chaosFilters {
			c := checkLabVisit(f, want[f.name], outs[f.name], v)
			fig.lost += c.lost
			fig.duplicated += c.duplicated
			fig.wrong += c.wrong
			fig.rereads += c.rereads
			ev := completed[f.name][v]
			switch {
			case len(ev) != 1:
				fig.incomplete++
				c.problems = append(c.problems, fmt.Sprintf("%d completion events", len(ev)))
			case ev[0].Alerts != chaosAlerts || ev[0].Matched != len(want[f.name].matches) || ev[0].Selected != want[f.name].want:
				fig.incomplete++
				c.problems = append(c.problems, fmt.Sprintf("completion event counts alerts %d, matched %d, selected %d; want %d, %d, %d",
					ev[0].Alerts, ev[0].Matched, ev[0].Selected, chaosAlerts, len(want[f.name].matches), want[f.name].want))
			}
			if len(c.problems) > 0 {
				bad("%s visit %d (fault: %s): %s", f.name, v, faultOf(v), strings.Join(c.problems, "; "))
			}
		}
	}

	// Recovery: from the fault until every filter had finished the visit
	// it struck (0 when it was already through).
	for _, inj := range done {
		var finished time.Time
		complete := true
		for _, f := range chaosFilters {
			ev := completed[f.name][inj.visit]
			if len(ev) == 0 {
				complete = false
				continue
			}
			if ev[0].End.After(finished) {
				finished = ev[0].End
			}
		}
		if complete {
			res.perFault[inj.fault].recovery = append(res.perFault[inj.fault].recovery, max(0, finished.Sub(inj.at)))
		}
		var next int64
		for v := range produced {
			if v > inj.visit && (next == 0 || v < next) {
				next = v
			}
		}
		if done, ok := allFinished(completed, next); ok {
			res.perFault[inj.fault].nextDone = append(res.perFault[inj.fault].nextDone, done.Sub(inj.at))
		}
	}
	return res
}

// allFinished returns when the last filter finished visit, if every one
// did.
func allFinished(completed map[string]map[int64][]timing.Event, visit int64) (time.Time, bool) {
	var finished time.Time
	for _, f := range chaosFilters {
		ev := completed[f.name][visit]
		if len(ev) == 0 {
			return time.Time{}, false
		}
		if ev[0].End.After(finished) {
			finished = ev[0].End
		}
	}
	return finished, true
}

// allReported reports whether every filter has a completion event for
// every visit the producer reported sent in the range.
func allReported(raw []timing.Event, first, last int64) bool {
	have := map[string]map[int64]bool{}
	var sent []int64
	for _, e := range raw {
		switch e.Kind {
		case timing.KindProduce:
			if e.Visit >= first && e.Visit <= last {
				sent = append(sent, e.Visit)
			}
		case timing.KindFilter:
			if have[e.Name] == nil {
				have[e.Name] = map[int64]bool{}
			}
			have[e.Name][e.Visit] = true
		}
	}
	if len(sent) == 0 {
		return false
	}
	for _, f := range chaosFilters {
		for _, v := range sent {
			if !have[f.name][v] {
				return false
			}
		}
	}
	return true
}

// labCheck is the verdict on one filter and one visit.
type labCheck struct {
	lost, duplicated, wrong, rereads int
	problems                         []string
}

// checkLabVisit compares what filter f's consumer printed for visit with
// what the filter must select: every match when they fit under the cap,
// otherwise exactly cap of them; ranks 1..k, each once, each with one
// alert. A line repeated whole (same alert, same rank) is a consumer
// re-read, not a duplicate of the filter.
func checkLabVisit(f chaosFilter, want selection, lines []consumerLine, visit int64) labCheck {
	var c labCheck
	bad := func(format string, args ...any) { c.problems = append(c.problems, fmt.Sprintf(format, args...)) }
	type ranked struct {
		id   string
		rank int
	}
	seen := map[ranked]int{}
	for _, l := range lines {
		if l.Visit == visit {
			seen[ranked{l.ID, l.Rank}]++
		}
	}
	ranksOf := map[string][]int{}
	idsAt := map[int][]string{}
	for r, n := range seen {
		c.rereads += n - 1
		ranksOf[r.id] = append(ranksOf[r.id], r.rank)
		idsAt[r.rank] = append(idsAt[r.rank], r.id)
	}
	for id, ranks := range ranksOf {
		if len(ranks) > 1 {
			c.duplicated += len(ranks) - 1
			slices.Sort(ranks)
			bad("alert %s at ranks %v", id, ranks)
		}
		if !want.matches[id] {
			c.wrong++
			bad("alert %s selected but it does not match %q", id, f.expr)
		}
	}
	for rank, ids := range idsAt {
		if len(ids) > 1 {
			c.duplicated += len(ids) - 1
			slices.Sort(ids)
			bad("rank %d held by %d alerts %v", rank, len(ids), ids)
		}
	}
	k := len(ranksOf)
	if k > want.want {
		c.wrong += k - want.want
		bad("%d alerts, want %d (%d match, cap %d)", k, want.want, len(want.matches), f.cap)
	}
	if k < want.want {
		c.lost += want.want - k
		bad("%d alerts, want %d (%d match, cap %d)", k, want.want, len(want.matches), f.cap)
	}
	var missing []int
	for r := 1; r <= k; r++ {
		if len(idsAt[r]) == 0 {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		bad("ranks %v of 1..%d missing", firstInts(missing, 10), k)
	}
	for r := range idsAt {
		if r < 1 || r > k {
			bad("rank %d outside 1..%d", r, k)
		}
	}
	return c
}

func firstInts(s []int, n int) []int {
	slices.Sort(s)
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (r *labResult) markdown() string {
	var m report.Markdown
	m.F("Generated by `make chaos` (`TestChaosLabFaults`) on %s (seed %d, %d round(s) of every fault, %s). Do not edit: run it again.\n\n",
		report.Stamp(), r.seed, r.rounds, r.took.Round(time.Second))
	m.F("`provider` `TestChaosLabFaults`: the real Terraform CLI applies a mini-broker onto a lab swarm of 4 Docker Engines "+
		"(manager with the hub, producer, one filter node with mirror `m0`, its MirrorMaker 2, a shared group of 3 filters in one "+
		"process and an isolated group of 2, consumer node with one consumer per filter printing `--out -`). The producer sends "+
		"%d small synthetic alerts (seed %d) every %s; each fault strikes at a seeded random moment while a visit passes (within the time the warm-up visit took "+
		"from its start to its last alert at a consumer), once "+
		"the previous fault's visit and the one after it have reached every consumer. Checked: the %d visits after the "+
		"warm-up (%d alerts), per filter "+
		"against the test's own evaluation of its condition over the regenerated alerts: every match when they fit under the "+
		"cap, otherwise exactly cap of them; ranks 1..k once each (the consumers' lines, from their containers' logs); one "+
		"completion event per filter and visit with the right counts (the timing topic, read in the hub's container).\n\n",
		chaosAlerts, r.seed, chaosInterval, r.visits, r.alerts)
	m.F("| fault | how | injected | visits | alerts lost | duplicates | wrong or over cap | consumer re-reads | completions not once | part back (mean) | recovery mean | recovery max | next visit done (mean) |\n")
	m.F("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	hows := map[string]string{noFault: "none: the visits after the warm-up"}
	for _, f := range labFaults {
		hows[f.name] = f.how
	}
	for _, name := range r.order {
		f := r.perFault[name]
		injected := strconv.Itoa(f.times)
		if name == noFault {
			injected = "–"
		}
		m.F("| %s | %s | %s | %d | %d | %d | %d | %d | %d | %s | %s | %s | %s |\n", name, hows[name], injected, f.visits, f.lost,
			f.duplicated, f.wrong, f.rereads, f.incomplete, labMeanSecs(f.back), labMeanSecs(f.recovery), labMaxSecs(f.recovery),
			labMeanSecs(f.nextDone))
	}
	m.F("\nA fault's row counts the visits from the one it struck until the next fault's. Part back: until the struck part "+
		"ran again (a new task's Kafka logged `%s`; every task of the node running). Recovery: from the fault until every "+
		"filter had finished the visit it struck (0 when it was through already); next visit done: until every filter had "+
		"finished the visit after it (one interval, %s, later, plus a second or two without a fault). Consumer re-reads: "+
		"lines a restarted consumer printed again (same alert, same rank; `--out -` cannot be read back), not duplicates. %d completion events were sent again by a restarted "+
		"filter (counted once).\n\n", images.KafkaServerStartedLine, chaosInterval, r.timingRepeats)
	m.F("Plans of the provider fault:\n\n")
	for _, p := range r.plans {
		summary := p.err
		if summary == "" {
			summary = "no error"
		}
		if len(summary) > 160 {
			summary = summary[:160] + "…"
		}
		summary = strings.ReplaceAll(summary, "\n", " ")
		m.F("- %s: exit %d in %s (%s)\n", p.what, p.code, report.Secs(p.took), summary)
	}
	if len(r.notes) > 0 {
		m.F("\nOn the way:\n\n")
		for _, n := range r.notes {
			m.F("- %s\n", n)
		}
	}
	m.F("\nAfter the faults `terraform plan` was empty (%s) and destroy took %s.\n", report.Secs(r.finalPlan), report.Secs(r.destroy))
	if len(r.problems) > 0 {
		m.F("\nProblems (first %d):\n\n", len(r.problems))
		for _, p := range r.problems {
			m.F("- %s\n", p)
		}
	}
	return m.String()
}

func labMeanSecs(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return report.Secs(sum / time.Duration(len(ds)))
}

func labMaxSecs(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	return report.Secs(slices.Max(ds))
}

// runningContainers returns the ids of the running containers of the
// services on an engine.
func runningContainers(ctx context.Context, cli *client.Client, services ...string) map[string]bool {
	out := map[string]bool{}
	for _, s := range services {
		list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
			filters.Arg("label", "com.docker.swarm.service.name="+s), filters.Arg("status", "running"))})
		if err != nil {
			continue
		}
		for _, c := range list {
			out[c.ID] = true
		}
	}
	return out
}

// kafkaServices are the brokers: back once Kafka serves.
var kafkaServices = map[string]bool{swarmspec.HubService: true, swarmspec.MirrorKafkaService(chaosMirror): true}

// waitBack waits until every service runs a container on the engine that
// is not one of old, and each Kafka one has logged that it serves.
func waitBack(ctx context.Context, cli *client.Client, services []string, old map[string]bool) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var missing []string
		for _, s := range services {
			list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
				filters.Arg("label", "com.docker.swarm.service.name="+s), filters.Arg("status", "running"))})
			if err != nil {
				missing = append(missing, s+" ("+err.Error()+")")
				continue
			}
			ok := false
			for _, c := range list {
				if old[c.ID] {
					continue
				}
				if kafkaServices[s] && !strings.Contains(containerLog(ctx, cli, c.ID), images.KafkaServerStartedLine) {
					continue
				}
				ok = true
			}
			if !ok {
				missing = append(missing, s)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not back within 5 minutes: %s", strings.Join(missing, ", "))
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
}

func containerLog(ctx context.Context, cli *client.Client, id string) string {
	rc, err := cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return ""
	}
	defer rc.Close()
	return strings.Join(swarmctl.LogLines(rc), "\n")
}

// forceServiceUpdate does what `docker service update --force` does: a new
// task with the same spec.
func forceServiceUpdate(ctx context.Context, mgr *client.Client, service string) error {
	svc, _, err := mgr.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
	if err != nil {
		return err
	}
	spec := svc.Spec
	spec.TaskTemplate.ForceUpdate++
	_, err = mgr.ServiceUpdate(ctx, svc.ID, svc.Version, spec, swarm.ServiceUpdateOptions{})
	return err
}

// execIn runs cmd in a container and returns its output and exit code.
func execIn(ctx context.Context, cli *client.Client, id string, cmd, env []string) (string, string, int, error) {
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, Env: env, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return "", "", 0, err
	}
	resp, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return "", "", 0, err
	}
	defer resp.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, resp.Reader); err != nil {
		return "", "", 0, err
	}
	res, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return "", "", 0, err
	}
	return stdout.String(), stderr.String(), res.ExitCode, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logServices logs the last lines of every filter's and MirrorMaker 2's
// containers, for a failed run.
func (b *chaosLab) logServices(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, s := range filterNodeServices {
		list, err := b.filterNode.ContainerList(ctx, container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+s))})
		if err != nil {
			t.Logf("%s: %v", s, err)
			continue
		}
		for _, c := range list {
			t.Logf("%s container %s (%s), last lines:\n%s", s, c.ID[:12], c.Status, lastLines(containerLog(ctx, b.filterNode, c.ID), 25))
		}
	}
}

func sleepUntil(ctx context.Context, at time.Time) error { return sleepCtx(ctx, time.Until(at)) }

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// newerThan returns a Go source file under dir changed after the file
// built from it, if any.
func newerThan(t *testing.T, dir, built string) string {
	t.Helper()
	info, err := os.Stat(built)
	if err != nil {
		t.Fatal(err)
	}
	var newer string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || newer != "" {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.ModTime().After(info.ModTime()) {
			newer = path
		}
		return nil
	})
	return newer
}

func chaosEnvInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// loopbackBroker is a broker's own loopback listener, inside its
// container: PLAINTEXT, and a super user on a secured broker.
var loopbackBroker = fmt.Sprintf("127.0.0.1:%d", kafkaconf.DefaultInterBrokerPort)
