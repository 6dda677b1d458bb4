package ec2lab_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/ec2lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/motoserver"
)

// TestPlane runs instances in moto and checks that each gets a real lab node
// that takes SSH logins with the instance's key pair, that an instance
// marked unreachable gets none, that terminating an instance removes its
// node, and that an instance moto put on the lab's gateway address is
// refused. On the way it checks the moto behaviour the package comment
// describes.
func TestPlane(t *testing.T) {
	l := lab.ForTest(t, 0)
	moto := motoserver.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg, err := moto.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := ec2.NewFromConfig(cfg)

	// The VPC and subnet take the lab's /24.
	cidr := l.Subnet().String()
	vpc, err := client.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
	if err != nil {
		t.Fatalf("CreateVpc: %v", err)
	}
	sub, err := client.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(cidr)})
	if err != nil {
		t.Fatalf("CreateSubnet: %v", err)
	}
	subnetID := aws.ToString(sub.Subnet.SubnetId)

	// A fresh key pair, imported into moto; only its private half signs in.
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	const keyName = "ec2lab-test"
	material := string(ssh.MarshalAuthorizedKey(sshPub)) // "ssh-ed25519 AAAA...\n"
	if _, err := client.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String(keyName), PublicKeyMaterial: []byte(material)}); err != nil {
		t.Fatalf("ImportKeyPair: %v", err)
	}
	t.Run("moto returns imported key material", func(t *testing.T) {
		out, err := client.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{keyName}, IncludePublicKey: aws.Bool(true)})
		if err != nil {
			t.Fatalf("DescribeKeyPairs: %v", err)
		}
		if len(out.KeyPairs) != 1 || aws.ToString(out.KeyPairs[0].PublicKey) != material {
			t.Fatalf("DescribeKeyPairs(IncludePublicKey) = %+v, want public key %q", out.KeyPairs, material)
		}
	})

	ami := anyImage(ctx, t, client)
	plane, err := ec2lab.Start(ctx, ec2lab.Options{
		EC2:         client,
		Lab:         l,
		SubnetID:    subnetID,
		Unreachable: ec2lab.ByTag(ec2lab.TagUnreachable, "true"),
		LogWriter:   testLog{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		plane.Close()
		if t.Failed() {
			for _, e := range plane.Events() {
				t.Logf("event: %s", e)
			}
		}
	})

	userData := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hello from user data\n"))
	began := time.Now()
	run, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId:      aws.String(ami),
		InstanceType: types.InstanceTypeT3Micro,
		MinCount:     aws.Int32(2),
		MaxCount:     aws.Int32(2),
		SubnetId:     aws.String(subnetID),
		KeyName:      aws.String(keyName),
		UserData:     aws.String(userData),
	})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	var ids []string
	for _, inst := range run.Instances {
		ids = append(ids, aws.ToString(inst.InstanceId))
	}

	t.Run("moto instance behaviour", func(t *testing.T) {
		// Addresses from .4 on (.1-.3 reserved), states, user data.
		var addrs []string
		for _, inst := range run.Instances {
			addrs = append(addrs, aws.ToString(inst.PrivateIpAddress))
			if inst.State.Name != types.InstanceStateNamePending {
				t.Errorf("RunInstances: %s is %s, want pending", aws.ToString(inst.InstanceId), inst.State.Name)
			}
		}
		slices.Sort(addrs)
		base := l.Subnet().Addr().As4()
		want := []string{
			netip.AddrFrom4([4]byte{base[0], base[1], base[2], 4}).String(),
			netip.AddrFrom4([4]byte{base[0], base[1], base[2], 5}).String(),
		}
		if !slices.Equal(addrs, want) {
			t.Errorf("private IPs %v, want %v", addrs, want)
		}
		for _, inst := range describe(ctx, t, client, ids...) {
			if inst.State.Name != types.InstanceStateNameRunning {
				t.Errorf("DescribeInstances right after RunInstances: %s is %s, want running", aws.ToString(inst.InstanceId), inst.State.Name)
			}
		}
		attr, err := client.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
			InstanceId: aws.String(ids[0]), Attribute: types.InstanceAttributeNameUserData,
		})
		if err != nil {
			t.Fatalf("DescribeInstanceAttribute(userData): %v", err)
		}
		if got := aws.ToString(attr.UserData.Value); got != userData {
			t.Errorf("user data = %q, want %q as given to RunInstances", got, userData)
		}
	})

	nodes := map[string]lab.Node{}
	for _, id := range ids {
		n, err := plane.WaitNode(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		nodes[id] = n
	}
	t.Logf("both nodes up %s after RunInstances", time.Since(began).Round(time.Millisecond))
	if len(plane.Nodes()) != 2 {
		t.Errorf("plane.Nodes() = %v, want 2 nodes", plane.Nodes())
	}

	hostKeys, err := knownhosts.New(l.KnownHostsFile())
	if err != nil {
		t.Fatalf("known_hosts of the lab: %v", err)
	}
	for _, inst := range describe(ctx, t, client, ids...) {
		id := aws.ToString(inst.InstanceId)
		addr := aws.ToString(inst.PrivateIpAddress)
		t.Run("ssh "+id, func(t *testing.T) {
			if nodes[id].Name != id || nodes[id].Addr != addr {
				t.Errorf("node %+v, want name %s at %s", nodes[id], id, addr)
			}
			checkHostname(ctx, t, l, addr, signer, id)
			// Only the instance's key pair gets in.
			_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
			other, _ := ssh.NewSignerFromKey(otherPriv)
			if _, err := sshRun(ctx, addr, other, hostKeys, "true"); err == nil {
				t.Errorf("%s accepted a key that is not the instance's", addr)
			}
		})
	}

	t.Run("unreachable instance gets no node", func(t *testing.T) {
		out, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId:  aws.String(ami),
			MinCount: aws.Int32(1),
			MaxCount: aws.Int32(1),
			SubnetId: aws.String(subnetID),
			KeyName:  aws.String(keyName),
			TagSpecifications: []types.TagSpecification{{
				ResourceType: types.ResourceTypeInstance,
				Tags:         []types.Tag{{Key: aws.String(ec2lab.TagUnreachable), Value: aws.String("true")}},
			}},
		})
		if err != nil {
			t.Fatalf("RunInstances: %v", err)
		}
		id := aws.ToString(out.Instances[0].InstanceId)
		addr := aws.ToString(out.Instances[0].PrivateIpAddress)
		if err := plane.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		in := instance(t, plane, id)
		if in.Status != ec2lab.StatusUnreachable || in.Node != nil {
			t.Errorf("unreachable instance: %+v, want status unreachable and no node", in)
		}
		if _, err := plane.WaitNode(ctx, id); err == nil {
			t.Errorf("WaitNode(%s) succeeded for an unreachable instance", id)
		}
		if labHasNode(l, addr) {
			t.Errorf("the lab has a node at %s, the unreachable instance's address", addr)
		}
	})

	t.Run("terminate removes the node", func(t *testing.T) {
		gone, kept := ids[0], ids[1]
		if _, err := client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}}); err != nil {
			t.Fatalf("TerminateInstances: %v", err)
		}
		start := time.Now()
		if err := plane.WaitNoNode(ctx, gone); err != nil {
			t.Fatal(err)
		}
		t.Logf("node of %s gone %s after TerminateInstances", gone, time.Since(start).Round(time.Millisecond))
		if labHasNode(l, nodes[gone].Addr) {
			t.Errorf("the lab still has a node at %s", nodes[gone].Addr)
		}
		if _, ok := plane.Nodes()[gone]; ok {
			t.Errorf("plane.Nodes() still lists %s", gone)
		}
		if !hasEvent(plane, ec2lab.EventNodeRemoved, gone) {
			t.Errorf("no %s event for %s", ec2lab.EventNodeRemoved, gone)
		}
		checkHostname(ctx, t, l, nodes[kept].Addr, signer, kept)
	})

	t.Run("stop and start", func(t *testing.T) {
		id := ids[1]
		if _, err := client.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}}); err != nil {
			t.Fatalf("StopInstances: %v", err)
		}
		if err := plane.WaitNoNode(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := client.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}}); err != nil {
			t.Fatalf("StartInstances: %v", err)
		}
		n, err := plane.WaitNode(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if n.Addr != nodes[id].Addr {
			t.Errorf("restarted node at %s, want the instance's address %s", n.Addr, nodes[id].Addr)
		}
		checkHostname(ctx, t, l, n.Addr, signer, id) // a new host key, in known_hosts again
	})

	t.Run("address reuse", func(t *testing.T) {
		// With DeleteOnTermination moto hands a terminated instance's
		// address to the next instance at once, while the old node may
		// still be there: the new node must wait for it.
		old, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId:  aws.String(ami),
			MinCount: aws.Int32(1),
			MaxCount: aws.Int32(1),
			KeyName:  aws.String(keyName),
			NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{
				DeviceIndex: aws.Int32(0), SubnetId: aws.String(subnetID), DeleteOnTermination: aws.Bool(true),
			}},
		})
		if err != nil {
			t.Fatalf("RunInstances: %v", err)
		}
		oldID, addr := aws.ToString(old.Instances[0].InstanceId), aws.ToString(old.Instances[0].PrivateIpAddress)
		if _, err := plane.WaitNode(ctx, oldID); err != nil {
			t.Fatal(err)
		}
		if _, err := client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{oldID}}); err != nil {
			t.Fatalf("TerminateInstances: %v", err)
		}
		next, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId:  aws.String(ami),
			MinCount: aws.Int32(1),
			MaxCount: aws.Int32(1),
			SubnetId: aws.String(subnetID),
			KeyName:  aws.String(keyName),
		})
		if err != nil {
			t.Fatalf("RunInstances: %v", err)
		}
		nextID := aws.ToString(next.Instances[0].InstanceId)
		if got := aws.ToString(next.Instances[0].PrivateIpAddress); got != addr {
			t.Errorf("moto gave the next instance %s, not the terminated one's %s", got, addr)
		}
		if err := plane.WaitNoNode(ctx, oldID); err != nil {
			t.Fatal(err)
		}
		n, err := plane.WaitNode(ctx, nextID)
		if err != nil {
			t.Fatal(err)
		}
		checkHostname(ctx, t, l, n.Addr, signer, nextID)
	})

	if err := plane.Err(); err != nil {
		t.Fatalf("plane: %v", err)
	}

	t.Run("gateway address refused", func(t *testing.T) {
		// moto gives any address asked for, even the lab's gateway.
		gw := l.Gateway().String()
		out, err := client.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId:          aws.String(ami),
			MinCount:         aws.Int32(1),
			MaxCount:         aws.Int32(1),
			SubnetId:         aws.String(subnetID),
			PrivateIpAddress: aws.String(gw),
		})
		if err != nil {
			t.Fatalf("RunInstances at %s: %v", gw, err)
		}
		id := aws.ToString(out.Instances[0].InstanceId)
		if _, err := plane.WaitNode(ctx, id); err == nil || !strings.Contains(err.Error(), "gateway") {
			t.Errorf("WaitNode(%s at %s): error %v, want one about the gateway", id, gw, err)
		}
		if err := plane.Err(); err == nil || !strings.Contains(err.Error(), id) {
			t.Errorf("plane.Err() = %v, want the refused instance %s", err, id)
		}
	})
}

// anyImage returns the id of some AMI moto knows.
func anyImage(ctx context.Context, t *testing.T, client *ec2.Client) string {
	t.Helper()
	out, err := client.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Filters: []types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}},
	})
	if err != nil {
		t.Fatalf("DescribeImages: %v", err)
	}
	if len(out.Images) == 0 {
		t.Fatal("moto knows no x86_64 image")
	}
	return aws.ToString(out.Images[0].ImageId)
}

func describe(ctx context.Context, t *testing.T, client *ec2.Client, ids ...string) []types.Instance {
	t.Helper()
	out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
	if err != nil {
		t.Fatalf("DescribeInstances: %v", err)
	}
	var insts []types.Instance
	for _, r := range out.Reservations {
		insts = append(insts, r.Instances...)
	}
	if len(insts) != len(ids) {
		t.Fatalf("DescribeInstances(%v): got %d instances", ids, len(insts))
	}
	return insts
}

func instance(t *testing.T, p *ec2lab.Plane, id string) ec2lab.Instance {
	t.Helper()
	for _, in := range p.Instances() {
		if in.ID == id {
			return in
		}
	}
	t.Fatalf("the plane has not seen %s", id)
	return ec2lab.Instance{}
}

func labHasNode(l *lab.Lab, addr string) bool {
	for _, n := range l.Nodes() {
		if n.Addr == addr {
			return true
		}
	}
	return false
}

func hasEvent(p *ec2lab.Plane, kind ec2lab.EventKind, id string) bool {
	for _, e := range p.Events() {
		if e.Kind == kind && e.InstanceID == id {
			return true
		}
	}
	return false
}

// checkHostname logs in to addr with key and checks that `hostname` says want.
func checkHostname(ctx context.Context, t *testing.T, l *lab.Lab, addr string, key ssh.Signer, want string) {
	t.Helper()
	hostKeys, err := knownhosts.New(l.KnownHostsFile())
	if err != nil {
		t.Fatalf("known_hosts of the lab: %v", err)
	}
	out, err := sshRun(ctx, addr, key, hostKeys, "hostname")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out); got != want {
		t.Errorf("hostname on %s = %q, want %q", addr, got, want)
	}
}

// sshRun runs cmd as root on a lab node, checking its host key against the
// lab's known_hosts.
func sshRun(ctx context.Context, addr string, key ssh.Signer, hostKeys ssh.HostKeyCallback, cmd string) (string, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hostPort := net.JoinHostPort(addr, "22")
	conn, err := d.DialContext(dctx, "tcp", hostPort)
	if err != nil {
		return "", fmt.Errorf("dial %s: %w", hostPort, err)
	}
	if dl, ok := dctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, hostPort, &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: hostKeys,
	})
	if err != nil {
		conn.Close()
		return "", fmt.Errorf("ssh %s: %w", hostPort, err)
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return "", fmt.Errorf("ssh session on %s: %w", hostPort, err)
	}
	defer sess.Close()
	out, err := sess.CombinedOutput(cmd)
	if err != nil {
		return string(out), fmt.Errorf("run %q on %s: %w (output %q)", cmd, hostPort, err, out)
	}
	return string(out), nil
}

// testLog turns the plane's log lines into t.Log lines.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
