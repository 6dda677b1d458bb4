package awsfleet_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/motoserver"
)

const testPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGy6hN8eJ0dV3a0m8lIuyxXxkNbwz2kqQ6m9Y6cG3QzB test"

// bed is a moto server with a VPC and subnet, and a fleet client on it.
type bed struct {
	fleet   *awsfleet.Client
	ec2     *ec2.Client
	subnet  string
	vpc     string
	ami     string
	cfg     aws.Config // moto's
	motoURL string
	poll    time.Duration
}

func newBed(t *testing.T) *bed {
	t.Helper()
	srv := motoserver.ForTest(t)
	ctx := context.Background()
	cfg, err := srv.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := &bed{fleet: awsfleet.New(cfg, awsfleet.WithPollInterval(50*time.Millisecond)), ec2: ec2.NewFromConfig(cfg),
		cfg: cfg, motoURL: srv.URL(), poll: 50 * time.Millisecond}
	vpc, err := b.ec2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.77.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	b.vpc = aws.ToString(vpc.Vpc.VpcId)
	sub, err := b.ec2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.77.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	b.subnet = aws.ToString(sub.Subnet.SubnetId)
	imgs, err := b.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("moto has no AMIs: %v", err)
	}
	b.ami = aws.ToString(imgs.Images[0].ImageId)
	// Canonical's /aws/service/... names cannot be written; a test
	// parameter stands in for it.
	if _, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/minibroker-test/ubuntu/ami-id"), Value: aws.String(b.ami), Type: "String"}); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResolveAMIAndFindSubnet(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	ami, err := b.fleet.ResolveAMI(ctx, "/minibroker-test/ubuntu/ami-id")
	if err != nil || ami != b.ami {
		t.Fatalf("ResolveAMI = %q, %v; want %q", ami, err, b.ami)
	}
	if _, err := b.fleet.ResolveAMI(ctx, "/minibroker-test/none"); err == nil ||
		!strings.Contains(err.Error(), "SSM parameter /minibroker-test/none") {
		t.Errorf("missing parameter: %v", err)
	}
	s, err := b.fleet.FindSubnet(ctx, b.subnet)
	if err != nil || s.VpcID != b.vpc || s.CIDR != "10.77.1.0/24" {
		t.Errorf("FindSubnet(%s) = %+v, %v", b.subnet, s, err)
	}
	def, err := b.fleet.FindSubnet(ctx, "")
	if err != nil || def.ID == "" || def.VpcID == b.vpc {
		t.Errorf("default subnet = %+v, %v; want one of moto's default VPC", def, err)
	}
	if _, err := b.fleet.FindSubnet(ctx, "subnet-00000000"); err == nil || !strings.Contains(err.Error(), "subnet-00000000") {
		t.Errorf("unknown subnet: %v", err)
	}
}

func TestSecurityGroupRulesAreExact(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	tags := map[string]string{"project": "alerts"}
	sg, err := b.fleet.EnsureSecurityGroup(ctx, "mb-test1", "minibroker", b.vpc,
		awsfleet.Ingress{AdminCIDRs: []string{"203.0.113.0/24", "198.51.100.7/32"}, ConsumerCIDRs: []string{"198.51.100.0/24"}}, tags)
	if err != nil {
		t.Fatal(err)
	}
	got := rules(t, b, sg)
	want := []string{
		"tcp 22-22 from 198.51.100.7/32", "tcp 22-22 from 203.0.113.0/24",
		"tcp 2377-2377 from " + sg, "tcp 7946-7946 from " + sg,
		"tcp 8081-8081 from 198.51.100.0/24", // the schema registry, from the consumers only
		"tcp 9092-9093 from " + sg,
		"tcp 9095-9095 from 198.51.100.0/24", // the mirrors' external listener, from the consumers only
		"udp 4789-4789 from " + sg, "udp 7946-7946 from " + sg,
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules\n got %q\nwant %q", got, want)
	}
	// Ensuring again finds the same group; a changed admin list is applied
	// in place, and no consumer CIDR closes the external listener.
	again, err := b.fleet.EnsureSecurityGroup(ctx, "mb-test1", "minibroker", b.vpc, awsfleet.Ingress{AdminCIDRs: []string{"192.0.2.0/28"}}, tags)
	if err != nil || again != sg {
		t.Fatalf("second ensure = %s, %v; want %s", again, err, sg)
	}
	got = rules(t, b, sg)
	if slices.Contains(got, "tcp 22-22 from 203.0.113.0/24") || !slices.Contains(got, "tcp 22-22 from 192.0.2.0/28") || len(got) != 6 ||
		slices.ContainsFunc(got, func(r string) bool { return strings.HasPrefix(r, "tcp 9095") || strings.HasPrefix(r, "tcp 8081") }) {
		t.Errorf("after changing admin CIDRs: %q", got)
	}
	out, err := b.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	if err != nil {
		t.Fatal(err)
	}
	if tag(out.SecurityGroups[0].Tags, awsfleet.TagSwarm) != "mb-test1" || tag(out.SecurityGroups[0].Tags, "project") != "alerts" {
		t.Errorf("group tags %v", out.SecurityGroups[0].Tags)
	}
}

func TestInstancesLifecycleAndSweep(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	const id = "mb-test2"
	tags := map[string]string{"project": "alerts"}
	sg, err := b.fleet.EnsureSecurityGroup(ctx, id, "mb", b.vpc, awsfleet.Ingress{AdminCIDRs: []string{"203.0.113.0/24"}}, tags)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.fleet.ImportKeyPair(ctx, id, "mb-"+id, testPublicKey, tags); err != nil {
		t.Fatal(err)
	}
	if err := b.fleet.ImportKeyPair(ctx, id, "mb-"+id, testPublicKey, tags); err != nil {
		t.Fatalf("importing the fleet's own key again: %v", err)
	}
	spec := awsfleet.Spec{SwarmID: id, NamePrefix: "mb", InstanceType: "m4.4xlarge", AMI: b.ami, SubnetID: b.subnet,
		SecurityGroup: sg, KeyName: "mb-" + id, RootVolumeSize: 100, RootVolumeType: "gp3",
		UserData: awsfleet.UserData("ubuntu"), Tags: tags}
	var ids []string
	for _, s := range []struct {
		role  string
		index int
	}{{"manager", 0}, {"filter", 1}, {"filter", 0}} {
		in, err := b.fleet.RunInstance(ctx, spec, s.role, s.index, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	// (moto 5.2.5 ignores ClientToken: TestClientTokensFollowTheSlot checks
	// the tokens behind a proxy that honours them.)
	running, err := b.fleet.WaitRunning(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, in := range running {
		order = append(order, in.Role+"-"+string(rune('0'+in.Index)))
		if in.PrivateIP == "" || !strings.HasPrefix(in.PrivateIP, "10.77.1.") || in.PublicIP != "" {
			t.Errorf("%s: private %q public %q", in.Label(), in.PrivateIP, in.PublicIP)
		}
	}
	if !slices.Equal(order, []string{"manager-0", "filter-0", "filter-1"}) {
		t.Errorf("order %v", order)
	}

	// What EC2 holds: tags, IMDSv2, encrypted root volume, user data.
	out, err := b.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[:1]})
	if err != nil {
		t.Fatal(err)
	}
	in := out.Reservations[0].Instances[0]
	for k, v := range map[string]string{"Name": "mb-manager-0", awsfleet.TagSwarm: id, awsfleet.TagRole: "manager",
		awsfleet.TagIndex: "0", "project": "alerts"} {
		if got := tag(in.Tags, k); got != v {
			t.Errorf("tag %s = %q, want %q", k, got, v)
		}
	}
	if in.MetadataOptions == nil {
		t.Fatal("no metadata options")
	}
	if in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired ||
		aws.ToInt32(in.MetadataOptions.HttpPutResponseHopLimit) != 1 {
		t.Errorf("metadata options: tokens %v, hop limit %d; want IMDSv2 required and a hop limit of 1 (no container reaches it)",
			in.MetadataOptions.HttpTokens, aws.ToInt32(in.MetadataOptions.HttpPutResponseHopLimit))
	}
	if aws.ToString(in.KeyName) != "mb-"+id || string(in.InstanceType) != "m4.4xlarge" {
		t.Errorf("key %s type %s", aws.ToString(in.KeyName), in.InstanceType)
	}
	vols, err := b.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: ids[:1]}}})
	if err != nil || len(vols.Volumes) != 1 {
		t.Fatalf("volumes: %v %v", vols, err)
	}
	v := vols.Volumes[0]
	if !aws.ToBool(v.Encrypted) || aws.ToInt32(v.Size) != 100 || v.VolumeType != ec2types.VolumeTypeGp3 || tag(v.Tags, awsfleet.TagSwarm) != id {
		t.Errorf("root volume: encrypted %v size %d type %s tags %v", aws.ToBool(v.Encrypted), aws.ToInt32(v.Size), v.VolumeType, v.Tags)
	}
	attr, err := b.ec2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{
		InstanceId: aws.String(ids[0]), Attribute: ec2types.InstanceAttributeNameUserData})
	if err != nil {
		t.Fatal(err)
	}
	ud, err := base64.StdEncoding.DecodeString(aws.ToString(attr.UserData.Value))
	if err != nil || string(ud) != awsfleet.UserData("ubuntu") {
		t.Errorf("user data %q, %v", ud, err)
	}

	// Tags change in place, the fleet's own stay.
	if err := b.fleet.Retag(ctx, id, tags, map[string]string{"team": "rubin"}); err != nil {
		t.Fatal(err)
	}
	out, _ = b.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids[2:]})
	if it := out.Reservations[0].Instances[0]; tag(it.Tags, "team") != "rubin" || tag(it.Tags, "project") != "" || tag(it.Tags, awsfleet.TagSwarm) != id {
		t.Errorf("after retag: %v", it.Tags)
	}

	// An instance terminated outside is seen as such.
	if _, err := b.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids[1:2]}); err != nil {
		t.Fatal(err)
	}
	live, err := b.fleet.FindInstances(ctx, id)
	if err != nil || len(live) != 2 {
		t.Errorf("FindInstances after one terminated: %v, %v", live, err)
	}
	if _, err := b.fleet.WaitRunning(ctx, ids); err == nil || !strings.Contains(err.Error(), "terminated instead of running") {
		t.Errorf("WaitRunning with a terminated instance: %v", err)
	}

	// Sweep leaves nothing of the fleet, found by tag alone.
	if err := b.fleet.Sweep(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	if live, _ := b.fleet.FindInstances(ctx, id); len(live) != 0 {
		t.Errorf("instances left: %v", live)
	}
	if g, _ := b.fleet.FindSecurityGroups(ctx, id); len(g) != 0 {
		t.Errorf("groups left: %v", g)
	}
	if k, _ := b.fleet.FindKeyPairs(ctx, id); len(k) != 0 {
		t.Errorf("key pairs left: %v", k)
	}
	if err := b.fleet.Sweep(ctx, id, ids); err != nil {
		t.Errorf("second sweep: %v", err)
	}
}

func TestUserDataInstallsAndStartsDocker(t *testing.T) {
	ud := awsfleet.UserData("ubuntu")
	for _, want := range []string{"#cloud-config\n", "packages: [docker.io]", "DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1",
		`[usermod, -aG, docker, "ubuntu"]`, "[systemctl, enable, docker]", "[systemctl, restart, docker]"} {
		if !strings.Contains(ud, want) {
			t.Errorf("user data lacks %q:\n%s", want, ud)
		}
	}
	if strings.Contains(awsfleet.UserData("root"), "usermod") {
		t.Error("root needs no docker group")
	}
}

func rules(t *testing.T, b *bed, sg string) []string {
	t.Helper()
	out, err := b.ec2.DescribeSecurityGroups(context.Background(), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range out.SecurityGroups[0].IpPermissions {
		base := aws.ToString(p.IpProtocol) + " " + itoa(aws.ToInt32(p.FromPort)) + "-" + itoa(aws.ToInt32(p.ToPort)) + " from "
		for _, r := range p.IpRanges {
			got = append(got, base+aws.ToString(r.CidrIp))
		}
		for _, g := range p.UserIdGroupPairs {
			got = append(got, base+aws.ToString(g.GroupId))
		}
	}
	slices.Sort(got)
	return got
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func tag(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// Provision makes the fleet what a swarm asks for, keeps what it can on the
// next call, and hands back as surplus what is no longer wanted; Current
// sees what is left.
func TestProvisionKeepsWhatItCanAndNamesTheSurplus(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	want := awsfleet.Want{
		Spec: awsfleet.Spec{SwarmID: "mb-000000000abc", NamePrefix: "t", InstanceType: "t3.micro",
			SubnetID: b.subnet, RootVolumeSize: 8, RootVolumeType: "gp3"},
		AMIParameter: "/minibroker-test/ubuntu/ami-id",
		PublicKey:    testPublicKey,
		AdminCIDRs:   []string{"203.0.113.0/24"},
		Slots:        []awsfleet.Slot{{Role: "manager"}, {Role: "filter"}, {Role: "filter", Index: 1}},
	}
	first, err := b.fleet.Provision(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Touched || !first.Listed || first.SecurityGroup == "" || first.AMI != b.ami || first.KeyName != "t-mb-000000000abc" ||
		first.SubnetID != b.subnet || len(first.Instances) != 3 || len(first.Surplus) != 0 {
		t.Fatalf("first provision: %+v", first)
	}
	if got := first.Instances[2]; got.Role != "filter" || got.Index != 1 {
		t.Errorf("instances not in role and index order: %+v", first.Instances)
	}

	// One filter fewer, a consumer more: two instances kept, one started,
	// one surplus.
	want.Slots = []awsfleet.Slot{{Role: "manager"}, {Role: "filter"}, {Role: "consumer"}}
	second, err := b.fleet.Provision(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Instances) != 3 || second.Instances[0].ID != first.Instances[0].ID || second.Instances[1].ID != first.Instances[1].ID {
		t.Errorf("kept instances changed: first %v, second %v", awsfleet.IDs(first.Instances), awsfleet.IDs(second.Instances))
	}
	if !slices.Equal(second.Surplus, []string{first.Instances[2].ID}) {
		t.Errorf("surplus %v, want the second filter %s", second.Surplus, first.Instances[2].ID)
	}
	if err := b.fleet.Terminate(ctx, second.Surplus); err != nil {
		t.Fatal(err)
	}
	cur, err := b.fleet.Current(ctx, want.SwarmID, awsfleet.IDs(first.Instances))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(awsfleet.IDs(cur.Instances), awsfleet.IDs(second.Instances)) ||
		!slices.Equal(cur.SecurityGroups, []string{first.SecurityGroup}) {
		t.Errorf("current %v %v, want %v and %s", awsfleet.IDs(cur.Instances), cur.SecurityGroups, awsfleet.IDs(second.Instances), first.SecurityGroup)
	}
}
