package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/ec2bed"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/ec2lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/motoserver"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/report"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/sample"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/tfcli"
)

// BenchmarkEC2Deploy measures `minibroker_swarm`'s aws block: the 2018 1+11
// layout provisioned as 12 EC2 instances, beside the same layout on hosts
// the provider did not create.
//
// No AWS is involved: the EC2 bed (internal/testbed/ec2bed) runs moto's
// server (internal/testbed/motoserver) playing EC2 and SSM, and the data
// plane (internal/testbed/ec2lab) that brings up, for each instance moto
// runs in the benchmark's subnet, a lab node at the instance's private IP
// whose root accepts the key pair's public key. The real Terraform CLI, with
// the provider built from this tree (dev_overrides) and moto's endpoint and
// test credentials in its environment (none of the machine's AWS_*
// settings), applies examples/aws from a root module that calls it as a user
// would: connect_via "private_ip", subnet_id moto's subnet, a test SSM
// parameter holding a moto AMI, admin_cidr_blocks the lab's gateway,
// ssh_user "root", the image archives, and BenchmarkSwarmDeploy's heaps and
// idle producer. It measures the apply from nothing to 212 services running
// (and the part of it in minibroker_swarm: EC2 calls, waiting for the
// instances and for Docker over SSH, swarm formation, image loads, hub),
// plans with nothing to change, and destroy, after which moto must hold no
// instance that is not terminated, no security group but the VPC's default
// and no key pair, and the data plane must have removed every node.
//
// In the same run, the baseline: 12 lab nodes created directly
// (lab.AddNode, as many at a time as the data plane does), examples/any-swarm
// applied onto them, plans, destroy (then nothing may be left on any node),
// and the nodes removed (lab.RemoveNode).
//
// moto starts an instance at once, where real EC2 takes minutes to boot one
// and run cloud-init's Docker install: the figures are of everything else.
//
// Failed applies and destroys are run again up to 3 times, as in
// BenchmarkSwarmDeploy. It needs root, `make image`, `make terraform` and
// `make moto`; it fails, saying so, when one is missing, and skips only under
// -short. Run it alone:
//
//	go test ./bench -run XXX -bench BenchmarkEC2Deploy -benchtime 1x -timeout 60m -v
//
// Environment:
//   - MINIBROKER_BENCH_EC2_OUT: file for the markdown (default: beside
//     MINIBROKER_BENCH_OUT as benchmarks-ec2.md, else only the log); written
//     only for the full layout unless named here
//   - MINIBROKER_BENCH_EC2_DIR: keep the Terraform directories, CLI outputs,
//     provider logs and the data plane's log here instead of a temporary directory
//   - MINIBROKER_BENCH_EC2_FILTERS: filters per filter node (default 20, the
//     full layout; e.g. 2 for a quick smoke run of 32 services)
//   - MINIBROKER_BENCH_SWARM_PLANS, MINIBROKER_BENCH_SWARM_INTERVAL, TF_ACC_TERRAFORM_PATH:
//     as for BenchmarkSwarmDeploy
func BenchmarkEC2Deploy(b *testing.B) {
	if testing.Short() {
		b.Skip("needs root, moto, a lab, Terraform and the images; skipped under -short")
	}
	for range b.N {
		runEC2Deploy(b)
	}
}

// nodesAtOnce is how many lab nodes come up at a time, for the instances
// (the data plane's Parallel) and for the baseline's hosts alike.
const nodesAtOnce = 4

// ec2Bench is a swarmBench whose lab starts empty: the EC2 bed's moto
// plays EC2 and its data plane adds a node for each instance.
type ec2Bench struct {
	*swarmBench
	filtersPerHost int
	bed            *ec2bed.Bed
}

type ec2Results struct {
	filtersPerHost, services, plans int

	// examples/aws on moto + the data plane
	apply, destroy  tfcli.Converged
	applyPhases     tfcli.Phases
	destroyPhases   tfcli.Phases
	nodesUp         []time.Duration // when the data plane had each instance's node up, since the apply began
	verify          verifyResult
	plan            []time.Duration
	planeEmptied    time.Duration // after destroy returned, until the data plane had removed every node
	leftOnEC2       []string
	instancesOnMoto int // instances moto lists after destroy, all terminated

	// examples/any-swarm on 12 nodes added directly
	addNodes, removeNodes time.Duration
	base, baseDestroy     tfcli.Converged
	basePhases            tfcli.Phases
	baseDestroyPhases     tfcli.Phases
	baseVerify            verifyResult
	basePlan              []time.Duration
	leftAfterBaseDestroy  []string
}

// isolatedServices is the number of services of the 1+11 layout in
// isolated mode: hub, producer, 5 mirrors and 5 MirrorMaker 2, and a filter
// and a consumer per filter.
func isolatedServices(filtersPerHost int) int {
	return 1 + 1 + 2*filterHosts + 2*filterHosts*filtersPerHost
}

func runEC2Deploy(b *testing.B) {
	s := newEC2Bench(b)
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	res := &ec2Results{filtersPerHost: s.filtersPerHost, services: isolatedServices(s.filtersPerHost),
		plans: envInt("MINIBROKER_BENCH_SWARM_PLANS", 3)}

	// (1) apply of examples/aws, from nothing to every task running.
	awsRoot := s.writeRoot(filepath.Join(s.work, "aws"), awsRootModule, s.awsModuleData())
	s.tf.MustRun(b, ctx, awsRoot, "get-aws", "get", "-no-color")
	res.apply = s.tf.Apply(b, ctx, awsRoot, "apply-aws")
	res.applyPhases = tfcli.PhasesOf(res.apply.Runs[0])
	res.nodesUp = s.nodesUp(res.apply.Runs[0].Began)
	s.setNodes(s.instanceNodes(ctx, awsRoot))
	res.verify = s.verifyRunning(ctx, res.services)

	// (2) plans with nothing to change: each refresh of the swarm also asks
	// EC2 for its instances and security group.
	for i := range res.plans {
		res.plan = append(res.plan, s.tf.PlanNoChange(b, ctx, awsRoot, fmt.Sprintf("plan-aws-%d", i+1)))
	}

	// (3) destroy, then nothing of the swarm may be left on EC2 or in the lab.
	res.destroy = s.tf.Destroy(b, ctx, awsRoot, "destroy-aws")
	res.destroyPhases = tfcli.PhasesOf(res.destroy.Runs[0])
	res.planeEmptied, res.instancesOnMoto, res.leftOnEC2 = s.checkNothingOnEC2(ctx)
	s.setNodes(nil)

	// (4) the baseline: the same layout on 12 hosts the provider did not
	// create, made directly in the same lab. moto and the data plane keep
	// running (it polls moto every 300 ms), so that both sides share the
	// cores with the same background.
	res.addNodes = s.addNodes(ctx)
	d := s.moduleData(swarmspec.ModeIsolated)
	d.FiltersPerHost = s.filtersPerHost
	anySwarm := s.writeRoot(filepath.Join(s.work, "any-swarm"), rootModule, d)
	s.tf.MustRun(b, ctx, anySwarm, "get-any-swarm", "get", "-no-color")
	res.base = s.tf.Apply(b, ctx, anySwarm, "apply-any-swarm")
	res.basePhases = tfcli.PhasesOf(res.base.Runs[0])
	res.baseVerify = s.verifyRunning(ctx, res.services)
	for i := range res.plans {
		res.basePlan = append(res.basePlan, s.tf.PlanNoChange(b, ctx, anySwarm, fmt.Sprintf("plan-any-swarm-%d", i+1)))
	}
	res.baseDestroy = s.tf.Destroy(b, ctx, anySwarm, "destroy-any-swarm")
	res.baseDestroyPhases = tfcli.PhasesOf(res.baseDestroy.Runs[0])
	res.leftAfterBaseDestroy = s.checkNothingLeft(ctx, "after destroy of examples/any-swarm")
	res.removeNodes = s.removeNodes(ctx)
	s.bed.StopPlane(b)

	b.ReportMetric(res.apply.Took.Seconds(), "apply_s")
	b.ReportMetric(float64(len(res.apply.Failures)), "apply_failed_attempts")
	b.ReportMetric((res.applyPhases.SwarmDone - res.applyPhases.SwarmStart).Seconds(), "swarm_s")
	b.ReportMetric(report.Median(res.plan).Seconds(), "plan_s")
	b.ReportMetric(res.destroy.Took.Seconds(), "destroy_s")
	b.ReportMetric((res.addNodes + res.base.Took).Seconds(), "baseline_nodes_apply_s")

	out := os.Getenv("MINIBROKER_BENCH_EC2_OUT")
	if out == "" && s.filtersPerHost != filtersPerHost {
		b.Logf("%d filters per node, not the full layout: the report goes to the log only (set MINIBROKER_BENCH_EC2_OUT to write it)", s.filtersPerHost)
		b.Log("\n" + s.report(res))
		return
	}
	report.Write(b, s.report(res), out, "benchmarks-ec2.md")
}

func newEC2Bench(b *testing.B) *ec2Bench {
	b.Helper()
	s := &ec2Bench{swarmBench: newTerraformBench(b, "MINIBROKER_BENCH_EC2_DIR"),
		filtersPerHost: envInt("MINIBROKER_BENCH_EC2_FILTERS", filtersPerHost)}
	s.load0 = sample.LoadAvg()
	planeLog, err := os.Create(filepath.Join(s.work, "logs", "ec2lab.log"))
	must(b, err)
	b.Cleanup(func() { planeLog.Close() })
	s.bed = ec2bed.ForTest(b, context.Background(), ec2bed.Options{AMIParameter: "/minibroker-bench/ami-id",
		KeyFile: filepath.Join(s.work, "id_ed25519"), Parallel: nodesAtOnce, LogWriter: planeLog})
	s.lab, s.labStart = s.bed.Lab, s.bed.LabStarted

	// The CLI, and the provider it starts, talk to moto and to nothing else:
	// none of this machine's AWS settings (AWS_PROFILE, AWS_ENDPOINT_URL_EC2,
	// ...) reach them.
	s.tf = s.newCLI(filepath.Join(s.work, "provider"), s.work)
	s.tf.Env = s.bed.CommandEnv(s.tf.Env)
	b.Logf("lab %d (empty) in %s; moto at %s, subnet %s (%s); work dir %s; %s", s.lab.Number(), s.labStart.Round(time.Millisecond),
		s.bed.Moto.URL(), s.bed.Subnet, s.lab.Subnet(), s.work, s.tf.Version)
	return s
}

// --- the root module -----------------------------------------------------

type awsModuleData struct {
	moduleData
	Subnet, AMIParam, AdminCIDR string
}

func (s *ec2Bench) awsModuleData() awsModuleData {
	d := awsModuleData{moduleData: s.settings(swarmspec.ModeIsolated), Subnet: s.bed.Subnet, AMIParam: s.bed.AMIParameter,
		AdminCIDR: s.lab.Gateway().String() + "/32"}
	d.Module = filepath.Join(s.repo, "examples/aws")
	d.Key = s.bed.KeyFile
	d.FiltersPerHost = s.filtersPerHost
	return d
}

// awsRootModule calls examples/aws as a user would from inside the VPC
// (connect_via "private_ip"): moto's subnet, where the data plane gives each
// instance a lab node at its private IP; an AMI from a test SSM parameter;
// SSH from the lab's gateway, where Terraform runs; root, the lab nodes'
// user. The public key beside the private key is imported as the key pair.
// It passes on two of the module's outputs, which the benchmark checks.
const awsRootModule = `module "broker" {
  source = "{{.Module}}"

  subnet_id         = "{{.Subnet}}"
  connect_via       = "private_ip"
  ami_ssm_parameter = "{{.AMIParam}}"
  admin_cidr_blocks = ["{{.AdminCIDR}}"]
  ssh_user          = "root"

  ssh_private_key_file = "{{.Key}}"
` + moduleSettings + `}

output "instances" {
  value = module.broker.instances
}

output "ssh_manager" {
  value = module.broker.ssh_manager
}
`

// --- instances and their nodes ---------------------------------------------

// instanceOutput is an instance as examples/aws's instances output lists it.
type instanceOutput struct {
	ID        string `json:"id"`
	Role      string `json:"role"`
	Index     int    `json:"index"`
	PrivateIP string `json:"private_ip"`
}

// instanceNodes returns the lab nodes of the swarm's instances in the
// layout's order (manager, producer, filter 0–4, consumer 0–4), from the
// module's instances output; it checks that the ssh_manager output logs in
// as root to the manager's private IP.
func (s *ec2Bench) instanceNodes(ctx context.Context, dir string) []lab.Node {
	var outputs struct {
		Instances struct {
			Value []instanceOutput `json:"value"`
		} `json:"instances"`
		SSHManager struct {
			Value string `json:"value"`
		} `json:"ssh_manager"`
	}
	must(s.b, s.tf.MustRun(s.b, ctx, dir, "output-aws", "output", "-json").DecodeJSON(&outputs))
	ins := outputs.Instances.Value
	order := map[string]int{swarmspec.RoleManager: 0, swarmspec.RoleProducer: 1, swarmspec.RoleFilter: 2, swarmspec.RoleConsumer: 3}
	slices.SortFunc(ins, func(x, y instanceOutput) int {
		if order[x.Role] != order[y.Role] {
			return order[x.Role] - order[y.Role]
		}
		return x.Index - y.Index
	})
	if len(ins) != swarmNodes {
		s.b.Fatalf("the instances output lists %d instances, want %d", len(ins), swarmNodes)
	}
	byID := s.bed.Plane.Nodes()
	var nodes []lab.Node
	for _, in := range ins {
		n, ok := byID[in.ID]
		if !ok || n.Addr != in.PrivateIP {
			s.b.Fatalf("instance %s (%s %d, %s) has no lab node at its private IP (the data plane's: %+v)", in.ID, in.Role, in.Index, in.PrivateIP, n)
		}
		nodes = append(nodes, n)
	}
	if want := " root@" + ins[0].PrivateIP; !strings.HasSuffix(outputs.SSHManager.Value, want) {
		s.b.Errorf("output ssh_manager is %q; want it to end in %q (ssh_user root, connect_via private_ip)", outputs.SSHManager.Value, want)
	}
	return nodes
}

// nodesUp returns when the data plane had each instance's node up, since
// since, in order.
func (s *ec2Bench) nodesUp(since time.Time) []time.Duration {
	var out []time.Duration
	for _, e := range s.bed.Plane.Events() {
		if e.Kind == ec2lab.EventNodeAdded && e.Time.After(since) {
			out = append(out, e.Time.Sub(since))
		}
	}
	slices.Sort(out)
	return out
}

// checkNothingOnEC2 checks, after destroy, that nothing of the swarm is
// left on EC2 or in the lab (ec2bed.Bed.CheckNothingLeft, which waits up to
// a minute for the data plane to remove every node). It returns how long
// that wait took, how many (terminated) instances moto still lists, and
// what was left.
func (s *ec2Bench) checkNothingOnEC2(ctx context.Context) (emptied time.Duration, listed int, left []string) {
	l, err := s.bed.CheckNothingLeft(ctx)
	must(s.b, err)
	if err := l.Err(); err != nil {
		s.b.Errorf("after destroy of examples/aws: %v", err)
	} else {
		s.b.Logf("after destroy of examples/aws: %d instances listed, all terminated; no security group but default, no key pair; "+
			"the data plane removed every node %.1f s after destroy returned", l.Listed, l.Emptied.Seconds())
	}
	return l.Emptied, l.Listed, l.Left
}

// --- the baseline's hosts --------------------------------------------------

// baselineAddr is the address of the baseline's node i: 198.18.N.101 and
// up, clear of the instances' addresses (moto hands them out from .4).
func (s *ec2Bench) baselineAddr(i int) netip.Addr {
	a := s.lab.Subnet().Addr().As4()
	a[3] = byte(101 + i)
	return netip.AddrFrom4(a)
}

// addNodes creates the baseline's 12 hosts, nodesAtOnce at a time as the
// data plane does for instances, taking the lab's own key, and makes them
// the layout's nodes.
func (s *ec2Bench) addNodes(ctx context.Context) time.Duration {
	nodes := make([]lab.Node, swarmNodes)
	start := time.Now()
	err := parallel.ForEach(ctx, nodesAtOnce, indexes(swarmNodes), func(ctx context.Context, i int) error {
		var err error
		nodes[i], err = s.lab.AddNode(ctx, lab.NodeOptions{Name: fmt.Sprintf("node%d", i+1), Addr: s.baselineAddr(i)})
		return err
	})
	took := time.Since(start)
	must(s.b, err)
	s.setNodes(nodes)
	s.b.Logf("lab.AddNode: %d nodes, %d at a time, in %.1f s", len(nodes), nodesAtOnce, took.Seconds())
	return took
}

// removeNodes removes the baseline's hosts, nodesAtOnce at a time.
func (s *ec2Bench) removeNodes(ctx context.Context) time.Duration {
	nodes := s.nodes
	s.setNodes(nil)
	start := time.Now()
	must(s.b, parallel.ForEach(ctx, nodesAtOnce, nodes, func(ctx context.Context, n lab.Node) error {
		return s.lab.RemoveNode(ctx, netip.MustParseAddr(n.Addr))
	}))
	took := time.Since(start)
	s.b.Logf("lab.RemoveNode: %d nodes in %.1f s", len(nodes), took.Seconds())
	return took
}

// --- the report ------------------------------------------------------------

// motoVersion is the version of the moto package beside moto_server.
func motoVersion() string {
	bin, err := motoserver.Binary()
	if err != nil {
		return "unknown"
	}
	return report.Command(filepath.Join(filepath.Dir(bin), "python"), "-c", "import importlib.metadata as m; print(m.version('moto'))")
}

// breakdown is an apply's phases as report cells; "–" where the log did
// not tell (a failed first attempt, a missing provider log).
type breakdown struct{ swarm, untilInit, afterInit, components, cli string }

func breakdownOf(c tfcli.Converged, ph tfcli.Phases) breakdown {
	d := breakdown{"–", "–", "–", "–", "–"}
	if len(c.Failures) > 0 {
		d.components = "first attempt failed (see below)"
		return d
	}
	d.swarm = secs(ph.SwarmDone - ph.SwarmStart)
	if ph.SwarmInit > 0 {
		d.untilInit = secs(ph.SwarmInit - ph.SwarmStart)
		d.afterInit = secs(ph.SwarmDone - ph.SwarmInit)
	}
	d.components = secs(ph.LastDone - ph.SwarmDone)
	d.cli = fmt.Sprintf("%s / %s", secs(ph.FirstStart), secs(ph.Total-ph.LastDone))
	return d
}

func (s *ec2Bench) report(res *ec2Results) string {
	var r report.Markdown
	r.F("## Swarm on EC2 instances (`aws` block) beside the same swarm on existing hosts\n\n")
	r.F("Generated by `go test ./bench -run XXX -bench BenchmarkEC2Deploy -benchtime 1x` on %s.\n\n", report.Stamp())
	s.machineNotes(&r)
	r.F("- No AWS: moto's server %s (internal/testbed/motoserver) plays EC2 and SSM on loopback. For each instance moto runs in the benchmark's\n", motoVersion())
	r.F("  subnet (VPC and subnet with the lab's CIDR, %s), the data plane (internal/testbed/ec2lab) brings up a lab node at the instance's\n", s.lab.Subnet())
	r.F("  private IP, %d at a time: its own network namespace, dockerd and sshd on this machine, root accepting the key pair's public key.\n", nodesAtOnce)
	r.F("  %s and the provider built from this tree (dev_overrides) get moto's endpoint and test credentials in their environment,\n", s.tf.Version)
	r.F("  and none of the machine's AWS settings.\n")
	s.otherLabsNote(&r)
	if res.filtersPerHost != filtersPerHost {
		r.F("- **Smoke run, not the full layout: %d filters per filter node.**\n", res.filtersPerHost)
	}
	r.F("- Layout: the 2018 1+11 deployment, %d services (manager with the hub Kafka, producer, %d filter nodes with a mirror Kafka, its\n",
		res.services, filterHosts)
	r.F("  MirrorMaker 2 and %d isolated filters each, %d consumer nodes with %d consumers), twice:\n", res.filtersPerHost, swarmNodes-2-filterHosts,
		filterHosts*res.filtersPerHost)
	r.F("  - `examples/aws` from a root module that calls it as a user would: 12 instances (the module's default type), subnet_id = the\n")
	r.F("    benchmark's subnet, connect_via = \"private_ip\", ami_ssm_parameter = a test parameter holding one of moto's AMIs (Canonical's\n")
	r.F("    /aws/service/... parameter cannot be written in moto), admin_cidr_blocks = [the lab's gateway/32], ssh_user = \"root\",\n")
	r.F("    image_archives = bin/images/*.tar, a new key pair imported from its public key;\n")
	r.F("  - the baseline: `examples/any-swarm` on 12 lab nodes created directly (lab.AddNode, %d at a time, as the data plane does),\n", nodesAtOnce)
	r.F("    hosts the provider did not create, in the same lab, after the EC2 run; moto and the data plane (polling moto every 300 ms)\n")
	r.F("    keep running meanwhile, so that both sides share the cores with the same background.\n")
	heapsAndProducer(&r)
	r.F("- Apply ends when every task runs (the provider waits for them); the benchmark then checks on the manager's socket that all\n")
	r.F("  %d services have a running task. After the EC2 destroy it checks that moto holds no instance that is not terminated, no\n", res.services)
	r.F("  security group but the VPC's default and no key pair, and that the data plane removed every node; after the baseline's\n")
	r.F("  destroy, that no node has a swarm, container, network or image left.\n\n")

	r.F("**What moto does not model.** moto boots nothing: an instance is running as soon as RunInstances returns, and the data plane's\n")
	r.F("node (a network namespace, dockerd and sshd, up in seconds) stands in for it. On real EC2, booting the instances and cloud-init's\n")
	r.F("`apt` install of Docker (the nodes' user data) take minutes, which the provider waits for (`aws.ready_timeout`, 10 min by\n")
	r.F("default); this benchmark does not measure that and gives no figure for it. Likewise at destroy: moto terminates at once, where\n")
	r.F("EC2 takes a while, which the provider waits for before it deletes the security group. moto also answers on loopback within milliseconds,\n")
	r.F("without EC2's network latency, request throttling and eventual consistency; SSH and the image uploads cross a local bridge, not\n")
	r.F("a network; and all 12 nodes, moto and Terraform share this machine's %d cores, where each m4.4xlarge has 16 vCPUs. What is\n", runtime.NumCPU())
	r.F("measured is everything else: the provider's EC2 calls and waits around them, and the same deployment as on existing hosts.\n\n")

	ph, bph := res.applyPhases, res.basePhases
	ec2Cells, baseCells := breakdownOf(res.apply, ph), breakdownOf(res.base, bph)
	r.F("| measure | `examples/aws`: 12 instances on moto, their nodes by the data plane | baseline: `examples/any-swarm` on 12 lab nodes made directly |\n|---|---:|---:|\n")
	r.F("| 12 hosts up | inside the apply (below) | 12 × lab.AddNode, %d at a time: %s |\n", nodesAtOnce, secs(res.addNodes))
	r.F("| apply: nothing → %d services running | %s%s | %s%s |\n", res.services, secs(res.apply.Took), attempts(res.apply),
		secs(res.base.Took), attempts(res.base))
	r.F("| hosts + apply | %s | %s |\n", secs(res.apply.Took), secs(res.addNodes+res.base.Took))
	r.F("| ↳ `minibroker_swarm` | %s | %s |\n", ec2Cells.swarm, baseCells.swarm)
	r.F("| ↳↳ until swarm init: on EC2 the security group, key pair, AMI from SSM, 12 RunInstances, waiting for running and for Docker over SSH; then SSH to the 12 hosts | %s | %s |\n",
		ec2Cells.untilInit, baseCells.untilInit)
	if len(res.apply.Failures) == 0 && ph.LastInstance > 0 && len(res.nodesUp) > 0 {
		r.F("| ↳↳↳ RunInstances returned (first – last), since the apply began | %s – %s | |\n", secs(ph.FirstInstance), secs(ph.LastInstance))
		r.F("| ↳↳↳ the data plane's nodes up (the boot's stand-in; first – last), since the apply began | %s – %s | |\n",
			secs(res.nodesUp[0]), secs(res.nodesUp[len(res.nodesUp)-1]))
	}
	r.F("| ↳↳ swarm init + 11 joins, images loaded, network, hub + producer | %s | %s |\n", ec2Cells.afterInit, baseCells.afterInit)
	r.F("| ↳ %d mirrors + %d filter groups: %d services to running | %s | %s |\n", filterHosts, filterHosts, res.services-2,
		ec2Cells.components, baseCells.components)
	r.F("| ↳ CLI start, plan inside apply / state saved at the end | %s | %s |\n", ec2Cells.cli, baseCells.cli)
	r.F("| plan, nothing to change (median of %d; max) | %s (max %s) | %s (max %s) |\n", len(res.plan), secs(report.Median(res.plan)),
		secs(slices.Max(res.plan)), secs(report.Median(res.basePlan)), secs(slices.Max(res.basePlan)))
	r.F("| destroy | %s%s | %s%s |\n", secs(res.destroy.Took), attempts(res.destroy), secs(res.baseDestroy.Took), attempts(res.baseDestroy))
	if len(res.destroy.Failures) == 0 && len(res.baseDestroy.Failures) == 0 {
		dph, bdph := res.destroyPhases, res.baseDestroyPhases
		r.F("| ↳ filter groups, then mirrors: %d services removed | %s | %s |\n", res.services-2, secs(dph.LastDone-dph.FirstStart),
			secs(bdph.LastDone-bdph.FirstStart))
		r.F("| ↳ `minibroker_swarm`: on EC2 instances terminated, security group and key pair deleted; on hosts hub and producer removed, nodes leave the swarm, images and networks removed | %s | %s |\n",
			secs(dph.SwarmDone-dph.SwarmStart), secs(bdph.SwarmDone-bdph.SwarmStart))
	}
	r.F("| ↳ then: until the data plane had removed every node / 12 × lab.RemoveNode | %s | %s |\n", secs(res.planeEmptied), secs(res.removeNodes))
	r.F("| left afterwards | %s | on the nodes: %s |\n", ec2Leftovers(res), report.Leftovers(res.leftAfterBaseDestroy))
	r.F("\n")

	failedAttempts(&r, []namedConverged{{"apply, examples/aws", &res.apply}, {"destroy, examples/aws", &res.destroy},
		{"apply, examples/any-swarm", &res.base}, {"destroy, examples/any-swarm", &res.baseDestroy}})
	r.F("Raw numbers:\n\n")
	for _, a := range []struct {
		what string
		c    tfcli.Converged
		ph   tfcli.Phases
		v    verifyResult
	}{{"examples/aws apply", res.apply, ph, res.verify}, {"examples/any-swarm apply", res.base, bph, res.baseVerify}} {
		r.F("- %s: %s wall, machine CPU %.0f %% busy (%.0f CPU-s, of which the lab's containers %.0f); %s", a.what, secs(a.c.Took),
			100*a.c.Usage.Busy(), a.c.Usage.CPU, a.c.Usage.CgroupCPU(nil), resourceSpans(a.ph))
		r.F("after it returned, all %d services were running; %d had had more than one task", a.v.services, len(a.v.restarted))
		if len(a.v.restarted) > 0 {
			r.F(" (%s; the tasks that ended: %s)", report.FirstFew(a.v.restarted, 4), a.v.endedSummary())
		}
		r.F("\n")
	}
	r.F("- plans: examples/aws %s; examples/any-swarm %s. On EC2 each refresh of the swarm also makes 3 EC2 requests (DescribeInstances\n",
		report.JoinSecs(res.plan), report.JoinSecs(res.basePlan))
	r.F("  twice, DescribeSecurityGroups: readFleet in provider/swarm_aws.go), which moto answers on loopback; against EC2 each is a round trip\n")
	r.F("  over the network\n")
	r.F("- destroy: examples/aws %s (CPU %.0f %%), examples/any-swarm %s (CPU %.0f %%)\n", secs(res.destroy.Took), 100*res.destroy.Usage.Busy(),
		secs(res.baseDestroy.Took), 100*res.baseDestroy.Usage.Busy())
	r.F("\n")
	return r.String()
}

func ec2Leftovers(res *ec2Results) string {
	if len(res.leftOnEC2) > 0 {
		return report.Leftovers(res.leftOnEC2)
	}
	return fmt.Sprintf("on moto nothing (%d instances listed, all terminated; no security group but default, no key pair); in the lab no node",
		res.instancesOnMoto)
}
