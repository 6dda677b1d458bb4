// Package ec2bed is the EC2 test bed of the acceptance tests and the
// benchmarks: moto's server playing EC2 and SSM on loopback
// (internal/testbed/motoserver), an empty lab (internal/testbed/lab), a VPC
// and subnet with the lab's CIDR and an SSM parameter naming one of moto's
// AMIs (ec2lab.CreateNetwork), a fresh ed25519 key pair for the swarm to
// import, and the data plane (internal/testbed/ec2lab) that gives each
// instance moto runs in the subnet a lab node at its private IP. After a
// destroy, CheckNothingLeft says what is left on EC2 and in the lab.
//
// It is a test bed, never imported by shipped code. It needs root, `make
// moto` and the lab's tools; ForTest skips under -short.
//
//	b := ec2bed.ForTest(t, ctx, ec2bed.Options{})
//	b.SetEnv(t) // a provider served in-process talks to moto
//	... apply a swarm with aws = { subnet_id = b.Subnet, public_key = b.PublicKey, ... } ...
//	left, err := b.CheckNothingLeft(ctx)
package ec2bed

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/ec2lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/motoserver"
)

// Options configures ForTest.
type Options struct {
	// AMIParameter is the SSM parameter that names the AMI (Canonical's
	// /aws/service/... parameters cannot be written in moto). Default
	// "/minibroker-test/ami-id".
	AMIParameter string
	// KeyFile receives the key pair's private key, and KeyFile.pub its
	// public key. Default: id_ed25519 in a directory of t.TempDir().
	KeyFile string
	// Parallel is how many lab nodes the data plane brings up at once
	// (ec2lab.Options.Parallel; default 4).
	Parallel int
	// Unreachable picks instances that get no node (ec2lab.Options.Unreachable).
	Unreachable func(ec2types.Instance) bool
	// LogWriter receives the data plane's log. Default: t.Log.
	LogWriter io.Writer
}

// Bed is a running EC2 test bed.
type Bed struct {
	Lab   *lab.Lab
	Moto  *motoserver.Server
	AWS   aws.Config // for moto, with its test credentials
	EC2   *ec2.Client
	Plane *ec2lab.Plane
	// LabStarted is how long the (empty) lab took to start.
	LabStarted time.Duration
	// VPC and Subnet are moto's, with the lab's CIDR; AMIParameter names
	// the AMI.
	VPC, Subnet, AMIParameter string
	// KeyFile is the key pair's private key; PublicKey its public key in
	// authorized_keys form (also in KeyFile.pub).
	KeyFile, PublicKey string

	planeStopped bool
}

// ForTest starts the bed for t and stops it in t.Cleanup, the data plane
// before the lab. It fails t when anything cannot start; ctx bounds the
// set-up.
func ForTest(t testing.TB, ctx context.Context, opts Options) *Bed {
	t.Helper()
	began := time.Now()
	b := &Bed{Lab: lab.ForTest(t, 0), AMIParameter: opts.AMIParameter}
	b.LabStarted = time.Since(began)
	b.Moto = motoserver.ForTest(t)
	if b.AMIParameter == "" {
		b.AMIParameter = "/minibroker-test/ami-id"
	}
	var err error
	if b.AWS, err = b.Moto.AWSConfig(ctx); err != nil {
		t.Fatal(err)
	}
	b.EC2 = ec2.NewFromConfig(b.AWS)
	nw, err := ec2lab.CreateNetwork(ctx, b.AWS, b.Lab.Subnet(), b.AMIParameter)
	if err != nil {
		t.Fatal(err)
	}
	b.VPC, b.Subnet = nw.VPC, nw.Subnet

	b.KeyFile = opts.KeyFile
	if b.KeyFile == "" {
		b.KeyFile = filepath.Join(t.TempDir(), "id_ed25519")
	}
	if b.PublicKey, err = writeKeyPair(b.KeyFile); err != nil {
		t.Fatal(err)
	}

	logs := opts.LogWriter
	if logs == nil {
		logs = testLog{t}
	}
	b.Plane, err = ec2lab.Start(ctx, ec2lab.Options{EC2: b.EC2, Lab: b.Lab, SubnetID: b.Subnet,
		Parallel: opts.Parallel, Unreachable: opts.Unreachable, LogWriter: logs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.StopPlane(t) })
	return b
}

// StopPlane stops the data plane (the nodes it added stay in the lab until
// it closes) and fails t with whatever went wrong in it. It may be called
// again.
func (b *Bed) StopPlane(t testing.TB) {
	t.Helper()
	if b.planeStopped {
		return
	}
	b.planeStopped = true
	if err := b.Plane.Close(); err != nil {
		t.Error(err)
	}
	if err := b.Plane.Err(); err != nil {
		t.Errorf("EC2 data plane: %v", err)
	}
}

// SetEnv points this process's AWS SDK at moto for the rest of t (for a
// provider served in-process): none of the machine's profiles, endpoints
// or session tokens apply.
func (b *Bed) SetEnv(t testing.TB) {
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL_SSM", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	for _, kv := range b.Moto.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// CommandEnv is env for a child process (the Terraform CLI, and the
// provider it starts) that must talk to moto and to nothing else: without
// any AWS_* variable of env, with moto's endpoint and test credentials.
func (b *Bed) CommandEnv(env []string) []string {
	env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "AWS_") })
	return append(env, b.Moto.Env()...)
}

// Leftovers is what CheckNothingLeft found.
type Leftovers struct {
	// Listed is how many instances moto lists (terminated ones stay
	// listed).
	Listed int
	// Emptied is how long the data plane took to remove every node.
	Emptied time.Duration
	// Left is what is left: instances not terminated, security groups
	// but the VPC's default, key pairs, lab nodes.
	Left []string
}

// Err is nil when nothing was left, else an error listing what was.
func (l Leftovers) Err() error {
	if len(l.Left) == 0 {
		return nil
	}
	return fmt.Errorf("left on EC2 after destroy:\n  %s", strings.Join(l.Left, "\n  "))
}

// CheckNothingLeft checks, after a destroy, that moto holds no instance
// that is not terminated, no security group in the VPC but its default and
// no key pair, and waits (up to a minute) until the data plane has removed
// every node and the lab has none. An error means moto could not be asked.
func (b *Bed) CheckNothingLeft(ctx context.Context) (Leftovers, error) {
	var l Leftovers
	out, err := b.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	if err != nil {
		return l, err
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			l.Listed++
			if in.State.Name != ec2types.InstanceStateNameTerminated {
				l.Left = append(l.Left, fmt.Sprintf("instance %s is %s", aws.ToString(in.InstanceId), in.State.Name))
			}
		}
	}
	sgs, err := b.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{b.VPC}}}})
	if err != nil {
		return l, err
	}
	for _, g := range sgs.SecurityGroups {
		if aws.ToString(g.GroupName) != "default" {
			l.Left = append(l.Left, fmt.Sprintf("security group %s (%s)", aws.ToString(g.GroupId), aws.ToString(g.GroupName)))
		}
	}
	keys, err := b.EC2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{})
	if err != nil {
		return l, err
	}
	for _, k := range keys.KeyPairs {
		l.Left = append(l.Left, "key pair "+aws.ToString(k.KeyName))
	}
	began := time.Now()
	for len(b.nodesLeft()) > 0 && time.Since(began) < time.Minute && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	l.Emptied = time.Since(began)
	l.Left = append(l.Left, b.nodesLeft()...)
	return l, nil
}

// nodesLeft lists the nodes of instances that the data plane has not
// finished removing, and the lab's nodes. (A node leaves the lab's list as
// its removal begins; the removal is done when the data plane says the
// instance has no node.)
func (b *Bed) nodesLeft() []string {
	var out []string
	for _, in := range b.Plane.Instances() {
		if in.Status == ec2lab.StatusStarting || in.Status == ec2lab.StatusUp || in.Status == ec2lab.StatusRemoving {
			out = append(out, fmt.Sprintf("lab node of %s (%s) is %s", in.ID, in.Addr, in.Status))
		}
	}
	for _, n := range b.Lab.Nodes() {
		out = append(out, fmt.Sprintf("lab node %s (%s) still in the lab", n.Name, n.Addr))
	}
	return out
}

// testLog turns the data plane's log lines into t.Log lines.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
