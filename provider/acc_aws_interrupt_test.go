package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/tfcli"
)

// interruptTemplate is a small swarm on EC2 (a manager and two consumer
// nodes; the hub only, so one image upload), applied by the real CLI with
// the provider built as a plugin of its own, which the test can kill.
const interruptTemplate = `
terraform {
  required_providers {
    minibroker = { source = "minibroker/minibroker" }
  }
}

provider "minibroker" {
  ssh_private_key  = file("{{.KeyFile}}")
  known_hosts_file = "{{.KnownHosts}}"
  kafka_image      = "minibroker/kafka:dev"
}

resource "minibroker_swarm" "ec2" {
  encrypt_network = false # the lab's kernel cannot install IPsec states (docs/security.md)
  # This test is about the nodes, not Kafka's users: no access job. The
  # manager still runs the schema registry, from the workloads image.
  kafka_auth = false
  aws = {
    region            = "us-east-1"
    instance_type     = "m5.large"
    producer_nodes    = 0
    filter_nodes      = 0
    consumer_nodes    = 2
    ami_ssm_parameter = "{{.AMIParam}}"
    subnet_id         = "{{.Subnet}}"
    public_key        = "{{.PublicKey}}"
    admin_cidr_blocks = ["{{.AdminCIDR}}"]
    root_volume_size  = 30
    connect_via       = "private_ip"
    ready_timeout     = "3m"
  }
  address_pool   = "10.124.0.0/16"
  image_archives = ["{{.Workloads}}", "{{.Kafka}}"]
  hub            = { heap_mb = 256 }
  producer       = { enabled = false }
}
`

// interruptSlots are the instances interruptTemplate asks for.
var interruptSlots = []string{"consumer 0", "consumer 1", "manager 0"} // sorted

// TestAccSwarmOnEC2Interrupted interrupts `terraform apply` of a swarm on
// EC2 (moto and lab nodes) as soon as its instances exist on EC2, and
// checks that the next apply and destroy leave nothing behind:
//
//   - SIGKILL: terraform and the provider plugin are killed, so nothing
//     reaches the state. The next apply adopts the instances, security
//     group and key pair the killed one created (the swarm's id is derived
//     from the subnet and name prefix), and exactly the configured
//     instances exist. An apply of the same configuration in another state
//     is then refused, and touches nothing. Destroy leaves nothing.
//   - SIGINT (Ctrl-C, to terraform's process group): the provider is
//     cancelled, and saves what exists in the state; the resource is
//     tainted and the next apply replaces it, leaving exactly the
//     configured instances. The identity is the same as in the first
//     subtest, whose terminated instances are not adopted.
func TestAccSwarmOnEC2Interrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, moto, a lab and Terraform; skipped under -short")
	}
	ctx := context.Background()
	tfPath, err := tfcli.Find(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	workloads, kafka := imageArchives(t)
	b := newEC2Bed(t, nil)
	work := t.TempDir()
	providerDir := filepath.Join(work, "provider")
	began := time.Now()
	if err := tfcli.BuildProvider(ctx, repoRoot(t), providerDir); err != nil {
		t.Fatal(err)
	}
	t.Logf("provider built in %s", time.Since(began).Round(time.Millisecond))
	tf, err := tfcli.New(ctx, tfcli.Options{Path: tfPath, ProviderDir: providerDir, Dir: work, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	tf.Env = b.CommandEnv(tf.Env)
	config := render(t, interruptTemplate, awsAccConfig{
		KeyFile: b.KeyFile, KnownHosts: b.Lab.KnownHostsFile(), PublicKey: b.PublicKey, Subnet: b.Subnet,
		AMIParam: b.AMIParameter, AdminCIDR: b.Lab.Gateway().String() + "/32", Kafka: kafka, Workloads: workloads})
	root := func(name string) string {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	id := awsfleet.Identity(b.Subnet, "minibroker")
	applyArgs := []string{"apply", "-auto-approve", "-input=false", "-no-color"}
	destroyArgs := []string{"destroy", "-auto-approve", "-input=false", "-no-color"}

	t.Run("SIGKILL", func(t *testing.T) {
		sweepOnFailure(t, b, id)
		dir := root("kill")
		run := startTerraform(t, tf, dir, "apply-killed", applyArgs...)
		atKill := b.waitForInstances(t, run, id)
		plugins := run.pluginPIDs(t, filepath.Join(providerDir, tfcli.ProviderBinary))
		at := time.Since(run.began)
		if len(plugins) == 0 {
			t.Fatalf("no provider plugin process under terraform (pid %d)", run.cmd.Process.Pid)
		}
		for _, pid := range append(plugins, run.cmd.Process.Pid) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill %d: %v", pid, err)
			}
		}
		run.wait(t, time.Minute)
		waitGone(t, plugins)
		t.Logf("killed terraform and provider %v %.1f s into the apply, with %d instances on EC2: %v",
			plugins, at.Seconds(), len(atKill), atKill)
		if n := stateResources(t, dir); n != 0 {
			t.Fatalf("the killed apply saved %d resources; the test wants none saved", n)
		}

		apply := tf.MustRun(t, ctx, dir, "apply-after-kill", applyArgs...)
		t.Logf("the next apply took %.1f s", apply.Took.Seconds())
		if got := stateID(t, dir); got != id {
			t.Errorf("swarm id %q, want %s (from the subnet and name prefix)", got, id)
		}
		live := b.checkFleet(t, id)
		for _, in := range atKill {
			if !slices.Contains(live, in) {
				t.Errorf("instance %s of the killed apply was not adopted (live: %v)", in, live)
			}
		}
		if n := len(tfcli.ProviderLogTimes(apply, awsfleet.LogAdopted)); n < len(atKill) {
			t.Errorf("the provider logged %d adoptions, want at least %d", n, len(atKill))
		}
		if all := b.tagged(t, id); len(all) != len(interruptSlots) {
			t.Errorf("moto holds %v with the swarm's tag; want only the %d live ones", all, len(interruptSlots))
		}
		if err := b.checkSwarmNodes(t, len(interruptSlots))(nil); err != nil {
			t.Error(err)
		}

		// The same configuration in another state: refused, nothing
		// touched, nothing saved.
		other := root("other-state")
		refused, err := tf.Run(ctx, other, "apply-other-state", applyArgs...)
		if err != nil {
			t.Fatal(err)
		}
		if text := oneLine(refused.Text()); refused.Code == 0 || !strings.Contains(text, "swarm "+id+" already exists on EC2") ||
			!strings.Contains(text, "another aws.name_prefix") {
			t.Errorf("apply of the same swarm in another state: exit %d\n%s", refused.Code, refused.Tail(30))
		}
		t.Logf("refused in %.1f s: %s", refused.Took.Seconds(), refused.ErrorSummary())
		if n := stateResources(t, other); n != 0 {
			t.Errorf("the refused apply saved %d resources", n)
		}
		if again := b.checkFleet(t, id); !slices.Equal(again, live) {
			t.Errorf("the refused apply changed the fleet: %v, then %v", live, again)
		}

		tf.MustRun(t, ctx, dir, "destroy-after-kill", destroyArgs...)
		b.checkNothingAfterDestroy(t)
	})

	t.Run("SIGINT", func(t *testing.T) {
		sweepOnFailure(t, b, id)
		dir := root("interrupt")
		before := b.tagged(t, id) // the first subtest's, terminated
		run := startTerraform(t, tf, dir, "apply-interrupted", applyArgs...)
		atInterrupt := b.waitForInstances(t, run, id)
		plugins := run.pluginPIDs(t, filepath.Join(providerDir, tfcli.ProviderBinary))
		at := time.Since(run.began)
		// As Ctrl-C in a terminal: to the foreground process group.
		if err := syscall.Kill(-run.cmd.Process.Pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		code := run.wait(t, 3*time.Minute)
		waitGone(t, plugins)
		t.Logf("interrupted %.1f s into the apply with %d instances on EC2 (%v); terraform exited %d after %.1f s",
			at.Seconds(), len(atInterrupt), atInterrupt, code, time.Since(run.began).Seconds())
		text := oneLine(run.text(t))
		if i := strings.Index(text, "Error: "); i >= 0 {
			t.Logf("the interrupted apply said: %s", text[i:])
		}
		if code == 0 || !strings.Contains(text, "Interrupt received") || !strings.Contains(text, "Cannot create swarm") {
			t.Errorf("interrupted apply: exit %d\n%s", code, run.text(t))
		}
		if got, status := stateID(t, dir), stateStatus(t, dir); got != id || status != "tainted" {
			t.Fatalf("after the interrupt the state holds swarm %q (%q); want %s, tainted", got, status, id)
		}

		apply := tf.MustRun(t, ctx, dir, "apply-after-interrupt", applyArgs...)
		t.Logf("the next apply took %.1f s", apply.Took.Seconds())
		if !strings.Contains(apply.Text(), "is tainted, so must be replaced") {
			t.Errorf("the next apply did not replace the tainted swarm:\n%s", apply.Tail(40))
		}
		live := b.checkFleet(t, id)
		for _, in := range atInterrupt {
			if slices.Contains(live, in) {
				t.Errorf("instance %s of the interrupted apply is still live after the replacement", in)
			}
		}
		for _, in := range before {
			if slices.Contains(live, strings.Fields(in)[0]) {
				t.Errorf("instance %s of the destroyed fleet came back", in)
			}
		}
		if err := b.checkSwarmNodes(t, len(interruptSlots))(nil); err != nil {
			t.Error(err)
		}
		tf.MustRun(t, ctx, dir, "destroy-after-interrupt", destroyArgs...)
		b.checkNothingAfterDestroy(t)
	})
}

// bgRun is a terraform command running in the background, in a process
// group of its own.
type bgRun struct {
	cmd   *exec.Cmd
	out   string
	began time.Time
	done  chan struct{}
}

// startTerraform starts terraform with args in dir, its output in
// LOGS/name.out and the provider's log in LOGS/name.provider.log. The
// process group is killed at the end of t if it still runs.
func startTerraform(t *testing.T, tf *tfcli.CLI, dir, name string, args ...string) *bgRun {
	t.Helper()
	r := &bgRun{out: filepath.Join(tf.Logs, name+".out"), done: make(chan struct{})}
	f, err := os.Create(r.out)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(tf.Path, args...)
	r.cmd.Dir = dir
	r.cmd.Env = append(slices.Clone(tf.Env), "TF_LOG_PATH="+filepath.Join(tf.Logs, name+".provider.log"))
	r.cmd.Stdout, r.cmd.Stderr = f, f
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.began = time.Now()
	if err := r.cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	go func() {
		_ = r.cmd.Wait()
		f.Close()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
	})
	return r
}

// wait waits for the command to end and returns its exit code (-1 when a
// signal ended it).
func (r *bgRun) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(limit):
		t.Fatalf("terraform %v still runs after %s:\n%s", r.cmd.Args[1:], limit, r.text(t))
	}
	return r.cmd.ProcessState.ExitCode()
}

func (r *bgRun) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func (r *bgRun) text(t *testing.T) string {
	b, err := os.ReadFile(r.out)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pluginPIDs finds the processes under terraform (by /proc's parent
// links) that run binary: the provider plugin.
func (r *bgRun) pluginPIDs(t *testing.T, binary string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	for todo := children[r.cmd.Process.Pid]; len(todo) > 0; todo = todo[1:] {
		pid := todo[0]
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == binary {
			out = append(out, pid)
		}
		todo = append(todo, children[pid]...)
	}
	return out
}

// waitGone waits until the processes are gone (or zombies).
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil || strings.Contains(string(stat[strings.LastIndexByte(string(stat), ')')+1:]), " Z ") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("provider process %d still runs", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// waitForInstances waits until moto holds a live instance tagged with the
// swarm's id, RunInstances having returned to the provider or not, and
// returns the live ones.
func (b *ec2Bed) waitForInstances(t *testing.T, run *bgRun, swarmID string) []string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, err := b.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + awsfleet.TagSwarm), Values: []string{swarmID}},
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}}}})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				ids = append(ids, aws.ToString(in.InstanceId))
			}
		}
		if len(ids) > 0 {
			slices.Sort(ids)
			return ids
		}
		if !run.running() || time.Now().After(deadline) {
			t.Fatalf("no instance tagged %s=%s on moto; terraform running: %v\n%s", awsfleet.TagSwarm, swarmID, run.running(), run.text(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tagged lists every instance moto holds with the swarm's tag, terminated
// ones too, as "id state".
func (b *ec2Bed) tagged(t *testing.T, swarmID string) []string {
	t.Helper()
	out, err := b.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + awsfleet.TagSwarm), Values: []string{swarmID}}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			got = append(got, aws.ToString(in.InstanceId)+" "+string(in.State.Name))
		}
	}
	slices.Sort(got)
	return got
}

// checkFleet checks, through the EC2 API, that exactly the configured
// instances of the swarm are live (one per slot, none without the tag in
// the subnet), and that one security group (marked created) and one key
// pair exist; it returns the live instances' ids.
func (b *ec2Bed) checkFleet(t *testing.T, swarmID string) []string {
	t.Helper()
	ctx := context.Background()
	out, err := b.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("subnet-id"), Values: []string{b.Subnet}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped", "shutting-down"}}}})
	if err != nil {
		t.Fatal(err)
	}
	var ids, slots []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
			if tagOf(in.Tags, awsfleet.TagSwarm) != swarmID {
				t.Errorf("instance %s (%s) is not the swarm's: tags %v", aws.ToString(in.InstanceId), in.State.Name, in.Tags)
			}
			slots = append(slots, tagOf(in.Tags, awsfleet.TagRole)+" "+tagOf(in.Tags, awsfleet.TagIndex))
		}
	}
	slices.Sort(slots)
	if !slices.Equal(slots, interruptSlots) {
		t.Errorf("live instances in the subnet: %v (%v); want exactly %v", ids, slots, interruptSlots)
	}
	groups, err := b.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{b.VPC}}}})
	if err != nil {
		t.Fatal(err)
	}
	var own []string
	for _, g := range groups.SecurityGroups {
		if aws.ToString(g.GroupName) == "default" {
			continue
		}
		own = append(own, aws.ToString(g.GroupId))
		if tagOf(g.Tags, awsfleet.TagSwarm) != swarmID || tagOf(g.Tags, awsfleet.TagCreated) == "" {
			t.Errorf("security group %s (%s): tags %v; want %s=%s and %s", aws.ToString(g.GroupId), aws.ToString(g.GroupName),
				g.Tags, awsfleet.TagSwarm, swarmID, awsfleet.TagCreated)
		}
	}
	if len(own) != 1 {
		t.Errorf("security groups %v; want one", own)
	}
	keys, err := b.EC2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.KeyPairs) != 1 || aws.ToString(keys.KeyPairs[0].KeyName) != "minibroker-"+swarmID {
		t.Errorf("key pairs %+v; want minibroker-%s only", keys.KeyPairs, swarmID)
	}
	slices.Sort(ids)
	return ids
}

// checkNothingAfterDestroy checks that nothing of any swarm is left on
// EC2 or in the lab.
func (b *ec2Bed) checkNothingAfterDestroy(t *testing.T) {
	t.Helper()
	left, err := b.CheckNothingLeft(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := left.Err(); err != nil {
		t.Error(err)
	}
	t.Logf("after destroy: %d instances listed on moto, all terminated; the data plane emptied in %s", left.Listed, left.Emptied.Round(time.Millisecond))
}

// sweepOnFailure removes what is tagged with the swarm's id when t fails,
// so that the next subtest starts from nothing.
func sweepOnFailure(t *testing.T, b *ec2Bed, swarmID string) {
	t.Cleanup(func() {
		if t.Failed() {
			if err := awsfleet.New(b.AWS, awsfleet.WithPollInterval(200*time.Millisecond)).Sweep(context.Background(), swarmID, nil); err != nil {
				t.Logf("sweeping %s: %v", swarmID, err)
			}
		}
	})
}

// tfState is the part of a terraform.tfstate the tests read.
type tfState struct {
	Resources []struct {
		Type      string `json:"type"`
		Instances []struct {
			Status     string         `json:"status"`
			Attributes map[string]any `json:"attributes"`
		} `json:"instances"`
	} `json:"resources"`
}

func readState(t *testing.T, dir string) tfState {
	t.Helper()
	var s tfState
	b, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if errors.Is(err, os.ErrNotExist) {
		return s
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return s
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%s/terraform.tfstate: %v", dir, err)
	}
	return s
}

// stateResources counts the resource instances in dir's state.
func stateResources(t *testing.T, dir string) int {
	n := 0
	for _, r := range readState(t, dir).Resources {
		n += len(r.Instances)
	}
	return n
}

// stateID is the id of the swarm in dir's state ("" if none).
func stateID(t *testing.T, dir string) string {
	for _, r := range readState(t, dir).Resources {
		if r.Type == "minibroker_swarm" && len(r.Instances) == 1 {
			id, _ := r.Instances[0].Attributes["id"].(string)
			return id
		}
	}
	return ""
}

// stateStatus is the status of the swarm in dir's state ("tainted", or "").
func stateStatus(t *testing.T, dir string) string {
	for _, r := range readState(t, dir).Resources {
		if r.Type == "minibroker_swarm" && len(r.Instances) == 1 {
			return r.Instances[0].Status
		}
	}
	return ""
}

// oneLine joins Terraform's wrapped error text into one line.
func oneLine(s string) string {
	s = strings.NewReplacer("│", " ", "╷", " ", "╵", " ").Replace(s)
	return strings.Join(strings.Fields(s), " ")
}
