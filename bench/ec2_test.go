package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/ec2lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/motoserver"
)

// BenchmarkEC2Deploy measures `minibroker_swarm`'s aws block: the 2018 1+11
// layout provisioned as 12 EC2 instances, beside the same layout on hosts
// the provider did not create.
//
// No AWS is involved: moto's server (internal/testbed/motoserver) plays EC2 and SSM
// and the data plane (internal/testbed/ec2lab) brings up, for each instance moto
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

// ec2Bench is a swarmBench whose lab starts empty: moto plays EC2 and the
// data plane adds a node for each instance.
type ec2Bench struct {
	*swarmBench
	filtersPerHost int
	moto           *motoserver.Server
	ec2            *ec2.Client
	plane          *ec2lab.Plane
	vpc, subnet    string
	amiParam       string
	keyFile        string // private key; the public key beside it (.pub) is imported as the swarm's key pair
	planeStopped   bool
}

type ec2Results struct {
	filtersPerHost, services, plans int

	// examples/aws on moto + the data plane
	apply, destroy  converged
	applyPhases     phases
	destroyPhases   phases
	nodesUp         []time.Duration // when the data plane had each instance's node up, since the apply began
	verify          verifyResult
	plan            []time.Duration
	planeEmptied    time.Duration // after destroy returned, until the data plane had removed every node
	leftOnEC2       []string
	instancesOnMoto int // instances moto lists after destroy, all terminated

	// examples/any-swarm on 12 nodes added directly
	addNodes, removeNodes time.Duration
	base, baseDestroy     converged
	basePhases            phases
	baseDestroyPhases     phases
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
	awsRoot := s.writeRoot("aws", awsRootModule, s.awsModuleData())
	s.tfOK(ctx, awsRoot, "get-aws", "get", "-no-color")
	res.apply = s.apply(ctx, awsRoot, "apply-aws")
	res.applyPhases = applyPhases(res.apply.runs[0])
	res.nodesUp = s.nodesUp(res.apply.runs[0].began)
	s.setNodes(s.instanceNodes(ctx, awsRoot))
	res.verify = s.verifyRunning(ctx, res.services)

	// (2) plans with nothing to change: each refresh of the swarm now asks
	// EC2 for its instances and security group too.
	for i := range res.plans {
		res.plan = append(res.plan, s.planNoChange(ctx, awsRoot, fmt.Sprintf("plan-aws-%d", i+1)))
	}

	// (3) destroy, then nothing of the swarm may be left on EC2 or in the lab.
	res.destroy = s.destroy(ctx, awsRoot, "destroy-aws")
	res.destroyPhases = applyPhases(res.destroy.runs[0])
	res.planeEmptied, res.instancesOnMoto, res.leftOnEC2 = s.checkNothingOnEC2(ctx)
	s.setNodes(nil)

	// (4) the baseline: the same layout on 12 hosts the provider did not
	// create, made directly in the same lab. moto and the data plane keep
	// running (it polls moto every 300 ms), so that both sides share the
	// cores with the same background.
	res.addNodes = s.addNodes(ctx)
	d := s.moduleData(swarmspec.ModeIsolated)
	d.FiltersPerHost = s.filtersPerHost
	anySwarm := s.writeRoot("any-swarm", rootModule, d)
	s.tfOK(ctx, anySwarm, "get-any-swarm", "get", "-no-color")
	res.base = s.apply(ctx, anySwarm, "apply-any-swarm")
	res.basePhases = applyPhases(res.base.runs[0])
	res.baseVerify = s.verifyRunning(ctx, res.services)
	for i := range res.plans {
		res.basePlan = append(res.basePlan, s.planNoChange(ctx, anySwarm, fmt.Sprintf("plan-any-swarm-%d", i+1)))
	}
	res.baseDestroy = s.destroy(ctx, anySwarm, "destroy-any-swarm")
	res.baseDestroyPhases = applyPhases(res.baseDestroy.runs[0])
	res.leftAfterBaseDestroy = s.checkNothingLeft(ctx, "after destroy of examples/any-swarm")
	res.removeNodes = s.removeNodes(ctx)
	s.stopPlane()

	b.ReportMetric(res.apply.took.Seconds(), "apply_s")
	b.ReportMetric(float64(len(res.apply.failures)), "apply_failed_attempts")
	b.ReportMetric((res.applyPhases.swarmDone - res.applyPhases.swarmStart).Seconds(), "swarm_s")
	b.ReportMetric(median(res.plan).Seconds(), "plan_s")
	b.ReportMetric(res.destroy.took.Seconds(), "destroy_s")
	b.ReportMetric((res.addNodes + res.base.took).Seconds(), "baseline_nodes_apply_s")

	out := os.Getenv("MINIBROKER_BENCH_EC2_OUT")
	if out == "" && s.filtersPerHost != filtersPerHost {
		b.Logf("%d filters per node, not the full layout: the report goes to the log only (set MINIBROKER_BENCH_EC2_OUT to write it)", s.filtersPerHost)
		b.Log("\n" + s.report(res))
		return
	}
	writeReport(b, s.report(res), out, "benchmarks-ec2.md")
}

func newEC2Bench(b *testing.B) *ec2Bench {
	b.Helper()
	s := &ec2Bench{swarmBench: newTerraformBench(b, "MINIBROKER_BENCH_EC2_DIR"), amiParam: "/minibroker-bench/ami-id",
		filtersPerHost: envInt("MINIBROKER_BENCH_EC2_FILTERS", filtersPerHost)}
	s.load0 = loadAvg()
	began := time.Now()
	s.lab = lab.ForTest(b, 0)
	s.labStart = time.Since(began)
	s.moto = motoserver.ForTest(b)

	// The CLI, and the provider it starts, talk to moto and to nothing else:
	// none of this machine's AWS settings (AWS_PROFILE, AWS_ENDPOINT_URL_EC2,
	// ...) reach them.
	s.env = slices.DeleteFunc(s.env, func(kv string) bool { return strings.HasPrefix(kv, "AWS_") })
	s.env = append(s.env, s.moto.Env()...)

	ctx := context.Background()
	cfg, err := s.moto.AWSConfig(ctx)
	must(b, err)
	s.ec2 = ec2.NewFromConfig(cfg)
	nw, err := ec2lab.CreateNetwork(ctx, cfg, s.lab.Subnet(), s.amiParam)
	must(b, err)
	s.vpc, s.subnet = nw.VPC, nw.Subnet
	s.keyFile = writeKeyPair(b, filepath.Join(s.work, "id_ed25519"))

	planeLog, err := os.Create(filepath.Join(s.work, "logs", "ec2lab.log"))
	must(b, err)
	b.Cleanup(func() { planeLog.Close() })
	s.plane, err = ec2lab.Start(ctx, ec2lab.Options{EC2: s.ec2, Lab: s.lab, SubnetID: s.subnet, Parallel: nodesAtOnce, LogWriter: planeLog})
	must(b, err)
	b.Cleanup(s.stopPlane)
	b.Logf("lab %d (empty) in %s; moto at %s, subnet %s (%s); work dir %s; %s", s.lab.Number(), s.labStart.Round(time.Millisecond),
		s.moto.URL(), s.subnet, s.lab.Subnet(), s.work, s.tfVersion)
	return s
}

// stopPlane stops the data plane (nodes it added stay in the lab), failing
// the benchmark with whatever went wrong in it. Safe to call again.
func (s *ec2Bench) stopPlane() {
	if s.planeStopped {
		return
	}
	s.planeStopped = true
	must(s.b, s.plane.Close())
	if err := s.plane.Err(); err != nil {
		s.b.Errorf("EC2 data plane: %v", err)
	}
}

// writeKeyPair writes a new ed25519 private key to file and its public key
// to file.pub, as ssh-keygen would, and returns file.
func writeKeyPair(b *testing.B, file string) string {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	must(b, err)
	block, err := ssh.MarshalPrivateKey(priv, "minibroker-bench")
	must(b, err)
	must(b, os.WriteFile(file, pem.EncodeToMemory(block), 0o600))
	sp, err := ssh.NewPublicKey(pub)
	must(b, err)
	must(b, os.WriteFile(file+".pub", ssh.MarshalAuthorizedKey(sp), 0o644))
	return file
}

// --- the root module -----------------------------------------------------

type awsModuleData struct {
	moduleData
	Subnet, AMIParam, AdminCIDR string
}

func (s *ec2Bench) awsModuleData() awsModuleData {
	d := awsModuleData{moduleData: s.settings(swarmspec.ModeIsolated), Subnet: s.subnet, AMIParam: s.amiParam,
		AdminCIDR: s.lab.Gateway().String() + "/32"}
	d.Module = filepath.Join(s.repo, "examples/aws")
	d.Key = s.keyFile
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
	out := s.tfOK(ctx, dir, "output-aws", "output", "-json")
	var text strings.Builder
	for _, l := range out.lines {
		text.WriteString(l.text + "\n")
	}
	var outputs struct {
		Instances struct {
			Value []instanceOutput `json:"value"`
		} `json:"instances"`
		SSHManager struct {
			Value string `json:"value"`
		} `json:"ssh_manager"`
	}
	must(s.b, json.Unmarshal([]byte(text.String()), &outputs))
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
	byID := s.plane.Nodes()
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
	for _, e := range s.plane.Events() {
		if e.Kind == ec2lab.EventNodeAdded && e.Time.After(since) {
			out = append(out, e.Time.Sub(since))
		}
	}
	slices.Sort(out)
	return out
}

// checkNothingOnEC2 checks, after destroy, that moto holds no instance that
// is not terminated, no security group in the VPC but its default and no
// key pair, and waits (up to a minute) for the data plane to remove every
// node. It returns how long that wait took, how many (terminated)
// instances moto still lists, and what was left.
func (s *ec2Bench) checkNothingOnEC2(ctx context.Context) (emptied time.Duration, listed int, left []string) {
	out, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	must(s.b, err)
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			listed++
			if in.State.Name != ec2types.InstanceStateNameTerminated {
				left = append(left, fmt.Sprintf("instance %s is %s", aws.ToString(in.InstanceId), in.State.Name))
			}
		}
	}
	sgs, err := s.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{s.vpc}}}})
	must(s.b, err)
	for _, g := range sgs.SecurityGroups {
		if aws.ToString(g.GroupName) != "default" {
			left = append(left, fmt.Sprintf("security group %s (%s)", aws.ToString(g.GroupId), aws.ToString(g.GroupName)))
		}
	}
	keys, err := s.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	must(s.b, err)
	for _, k := range keys.KeyPairs {
		left = append(left, "key pair "+aws.ToString(k.KeyName))
	}
	// A node leaves the lab's list as its removal begins; the removal is
	// done when the data plane says the instance has no node.
	withNode := func() []string {
		var out []string
		for _, in := range s.plane.Instances() {
			if in.Status == ec2lab.StatusStarting || in.Status == ec2lab.StatusUp || in.Status == ec2lab.StatusRemoving {
				out = append(out, fmt.Sprintf("lab node of %s (%s) is %s", in.ID, in.Addr, in.Status))
			}
		}
		for _, n := range s.lab.Nodes() {
			out = append(out, fmt.Sprintf("lab node %s (%s) still in the lab", n.Name, n.Addr))
		}
		return out
	}
	began := time.Now()
	for len(withNode()) > 0 && time.Since(began) < time.Minute {
		time.Sleep(pollEvery)
	}
	emptied = time.Since(began)
	left = append(left, withNode()...)
	if len(left) > 0 {
		s.b.Errorf("after destroy of examples/aws, left behind:\n  %s", strings.Join(left, "\n  "))
	} else {
		s.b.Logf("after destroy of examples/aws: %d instances listed, all terminated; no security group but default, no key pair; "+
			"the data plane removed every node %.1f s after destroy returned", listed, emptied.Seconds())
	}
	return emptied, listed, left
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
	err := parallelLimit(nodesAtOnce, swarmNodes, func(i int) error {
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
	must(s.b, parallelLimit(nodesAtOnce, len(nodes), func(i int) error {
		return s.lab.RemoveNode(ctx, netip.MustParseAddr(nodes[i].Addr))
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
	return cmdOut(filepath.Join(filepath.Dir(bin), "python"), "-c", "import importlib.metadata as m; print(m.version('moto'))")
}

// breakdown is an apply's phases as report cells; "–" where the log did
// not tell (a failed first attempt, a missing provider log).
type breakdown struct{ swarm, untilInit, afterInit, components, cli string }

func breakdownOf(c converged, ph phases) breakdown {
	d := breakdown{"–", "–", "–", "–", "–"}
	if len(c.failures) > 0 {
		d.components = "first attempt failed (see below)"
		return d
	}
	d.swarm = secs(ph.swarmDone - ph.swarmStart)
	if ph.swarmInit > 0 {
		d.untilInit = secs(ph.swarmInit - ph.swarmStart)
		d.afterInit = secs(ph.swarmDone - ph.swarmInit)
	}
	d.components = secs(ph.lastDone - ph.swarmDone)
	d.cli = fmt.Sprintf("%s / %s", secs(ph.firstStart), secs(ph.total-ph.lastDone))
	return d
}

func (s *ec2Bench) report(res *ec2Results) string {
	var r report
	r.f("## Swarm on EC2 instances (`aws` block) beside the same swarm on existing hosts\n\n")
	r.f("Generated by `go test ./bench -run XXX -bench BenchmarkEC2Deploy -benchtime 1x` on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	s.machineNotes(&r)
	r.f("- No AWS: moto's server %s (internal/testbed/motoserver) plays EC2 and SSM on loopback. For each instance moto runs in the benchmark's\n", motoVersion())
	r.f("  subnet (VPC and subnet with the lab's CIDR, %s), the data plane (internal/testbed/ec2lab) brings up a lab node at the instance's\n", s.lab.Subnet())
	r.f("  private IP, %d at a time: its own network namespace, dockerd and sshd on this machine, root accepting the key pair's public key.\n", nodesAtOnce)
	r.f("  %s and the provider built from this tree (dev_overrides) get moto's endpoint and test credentials in their environment,\n", s.tfVersion)
	r.f("  and none of the machine's AWS settings.\n")
	s.otherLabsNote(&r)
	if res.filtersPerHost != filtersPerHost {
		r.f("- **Smoke run, not the full layout: %d filters per filter node.**\n", res.filtersPerHost)
	}
	r.f("- Layout: the 2018 1+11 deployment, %d services (manager with the hub Kafka, producer, %d filter nodes with a mirror Kafka, its\n",
		res.services, filterHosts)
	r.f("  MirrorMaker 2 and %d isolated filters each, %d consumer nodes with %d consumers), twice:\n", res.filtersPerHost, swarmNodes-2-filterHosts,
		filterHosts*res.filtersPerHost)
	r.f("  - `examples/aws` from a root module that calls it as a user would: 12 instances (the module's default type), subnet_id = the\n")
	r.f("    benchmark's subnet, connect_via = \"private_ip\", ami_ssm_parameter = a test parameter holding one of moto's AMIs (Canonical's\n")
	r.f("    /aws/service/... parameter cannot be written in moto), admin_cidr_blocks = [the lab's gateway/32], ssh_user = \"root\",\n")
	r.f("    image_archives = bin/images/*.tar, a new key pair imported from its public key;\n")
	r.f("  - the baseline: `examples/any-swarm` on 12 lab nodes created directly (lab.AddNode, %d at a time, as the data plane does),\n", nodesAtOnce)
	r.f("    hosts the provider did not create, in the same lab, after the EC2 run; moto and the data plane (polling moto every 300 ms)\n")
	r.f("    keep running meanwhile, so that both sides share the cores with the same background.\n")
	heapsAndProducer(&r)
	r.f("- Apply ends when every task runs (the provider waits for them); the benchmark then checks on the manager's socket that all\n")
	r.f("  %d services have a running task. After the EC2 destroy it checks that moto holds no instance that is not terminated, no\n", res.services)
	r.f("  security group but the VPC's default and no key pair, and that the data plane removed every node; after the baseline's\n")
	r.f("  destroy, that no node has a swarm, container, network or image left.\n\n")

	r.f("**What moto does not model.** moto boots nothing: an instance is running as soon as RunInstances returns, and the data plane's\n")
	r.f("node (a network namespace, dockerd and sshd, up in seconds) stands in for it. On real EC2, booting the instances and cloud-init's\n")
	r.f("`apt` install of Docker (the nodes' user data) take minutes, which the provider waits for (`aws.ready_timeout`, 10 min by\n")
	r.f("default); this benchmark does not measure that and gives no figure for it. Likewise at destroy: moto terminates at once, where\n")
	r.f("EC2 takes a while, which the provider waits for before it deletes the security group. moto also answers on loopback within milliseconds,\n")
	r.f("without EC2's network latency, request throttling and eventual consistency; SSH and the image uploads cross a local bridge, not\n")
	r.f("a network; and all 12 nodes, moto and Terraform share this machine's %d cores, where each m4.4xlarge has 16 vCPUs. What is\n", runtime.NumCPU())
	r.f("measured is everything else: the provider's EC2 calls and waits around them, and the same deployment as on existing hosts.\n\n")

	ph, bph := res.applyPhases, res.basePhases
	ec2Cells, baseCells := breakdownOf(res.apply, ph), breakdownOf(res.base, bph)
	r.f("| measure | `examples/aws`: 12 instances on moto, their nodes by the data plane | baseline: `examples/any-swarm` on 12 lab nodes made directly |\n|---|---:|---:|\n")
	r.f("| 12 hosts up | inside the apply (below) | 12 × lab.AddNode, %d at a time: %s |\n", nodesAtOnce, secs(res.addNodes))
	r.f("| apply: nothing → %d services running | %s%s | %s%s |\n", res.services, secs(res.apply.took), attempts(res.apply),
		secs(res.base.took), attempts(res.base))
	r.f("| hosts + apply | %s | %s |\n", secs(res.apply.took), secs(res.addNodes+res.base.took))
	r.f("| ↳ `minibroker_swarm` | %s | %s |\n", ec2Cells.swarm, baseCells.swarm)
	r.f("| ↳↳ until swarm init: on EC2 the security group, key pair, AMI from SSM, 12 RunInstances, waiting for running and for Docker over SSH; then SSH to the 12 hosts | %s | %s |\n",
		ec2Cells.untilInit, baseCells.untilInit)
	if len(res.apply.failures) == 0 && ph.lastInstance > 0 && len(res.nodesUp) > 0 {
		r.f("| ↳↳↳ RunInstances returned (first – last), since the apply began | %s – %s | |\n", secs(ph.firstInstance), secs(ph.lastInstance))
		r.f("| ↳↳↳ the data plane's nodes up (the boot's stand-in; first – last), since the apply began | %s – %s | |\n",
			secs(res.nodesUp[0]), secs(res.nodesUp[len(res.nodesUp)-1]))
	}
	r.f("| ↳↳ swarm init + 11 joins, images loaded, network, hub + producer | %s | %s |\n", ec2Cells.afterInit, baseCells.afterInit)
	r.f("| ↳ %d mirrors + %d filter groups: %d services to running | %s | %s |\n", filterHosts, filterHosts, res.services-2,
		ec2Cells.components, baseCells.components)
	r.f("| ↳ CLI start, plan inside apply / state saved at the end | %s | %s |\n", ec2Cells.cli, baseCells.cli)
	r.f("| plan, nothing to change (median of %d; max) | %s (max %s) | %s (max %s) |\n", len(res.plan), secs(median(res.plan)),
		secs(slices.Max(res.plan)), secs(median(res.basePlan)), secs(slices.Max(res.basePlan)))
	r.f("| destroy | %s%s | %s%s |\n", secs(res.destroy.took), attempts(res.destroy), secs(res.baseDestroy.took), attempts(res.baseDestroy))
	if len(res.destroy.failures) == 0 && len(res.baseDestroy.failures) == 0 {
		dph, bdph := res.destroyPhases, res.baseDestroyPhases
		r.f("| ↳ filter groups, then mirrors: %d services removed | %s | %s |\n", res.services-2, secs(dph.lastDone-dph.firstStart),
			secs(bdph.lastDone-bdph.firstStart))
		r.f("| ↳ `minibroker_swarm`: on EC2 instances terminated, security group and key pair deleted; on hosts hub and producer removed, nodes leave the swarm, images and networks removed | %s | %s |\n",
			secs(dph.swarmDone-dph.swarmStart), secs(bdph.swarmDone-bdph.swarmStart))
	}
	r.f("| ↳ then: until the data plane had removed every node / 12 × lab.RemoveNode | %s | %s |\n", secs(res.planeEmptied), secs(res.removeNodes))
	r.f("| left afterwards | %s | on the nodes: %s |\n", ec2Leftovers(res), leftovers(res.leftAfterBaseDestroy))
	r.f("\n")

	var failed []string
	for _, c := range []struct {
		what string
		c    converged
	}{{"apply, examples/aws", res.apply}, {"destroy, examples/aws", res.destroy}, {"apply, examples/any-swarm", res.base},
		{"destroy, examples/any-swarm", res.baseDestroy}} {
		for _, f := range c.c.failures {
			failed = append(failed, fmt.Sprintf("- %s: %s; applied again, as a user would\n", c.what, f))
		}
	}
	if len(failed) > 0 {
		r.f("Failed attempts (the times above include them):\n\n%s\n", strings.Join(failed, ""))
	}
	r.f("Raw numbers:\n\n")
	for _, a := range []struct {
		what string
		c    converged
		ph   phases
		v    verifyResult
	}{{"examples/aws apply", res.apply, ph, res.verify}, {"examples/any-swarm apply", res.base, bph, res.baseVerify}} {
		r.f("- %s: %s wall, machine CPU %.0f %% busy (%.0f CPU-s, of which the lab's containers %.0f); ", a.what, secs(a.c.took),
			100*a.c.busy, a.c.cpu, a.c.ctr)
		for _, kind := range []string{"minibroker_swarm.", "minibroker_mirror.", "minibroker_filter_group."} {
			lo, hi, n := a.ph.summary(kind)
			r.f("%s ×%d %s–%s; ", strings.Trim(kind, "."), n, secs(lo), secs(hi))
		}
		r.f("after it returned, all %d services were running; %d had had more than one task", a.v.services, len(a.v.restarted))
		if len(a.v.restarted) > 0 {
			r.f(" (%s; the tasks that ended: %s)", firstFew(a.v.restarted, 4), a.v.endedSummary())
		}
		r.f("\n")
	}
	r.f("- plans: examples/aws %s; examples/any-swarm %s. On EC2 each refresh of the swarm also makes 3 EC2 requests (DescribeInstances\n",
		joinSecs(res.plan), joinSecs(res.basePlan))
	r.f("  twice, DescribeSecurityGroups: readFleet in provider/swarm_aws.go), which moto answers on loopback; against EC2 each is a round trip\n")
	r.f("  over the network\n")
	r.f("- destroy: examples/aws %s (CPU %.0f %%), examples/any-swarm %s (CPU %.0f %%)\n", secs(res.destroy.took), 100*res.destroy.busy,
		secs(res.baseDestroy.took), 100*res.baseDestroy.busy)
	r.f("\n")
	return r.String()
}

func ec2Leftovers(res *ec2Results) string {
	if len(res.leftOnEC2) > 0 {
		return leftovers(res.leftOnEC2)
	}
	return fmt.Sprintf("on moto nothing (%d instances listed, all terminated; no security group but default, no key pair); in the lab no node",
		res.instancesOnMoto)
}
