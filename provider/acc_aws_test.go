package provider

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	dockerswarm "github.com/docker/docker/api/types/swarm"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/ec2bed"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

// ec2Bed is the EC2 test bed (moto playing EC2 and SSM, a lab playing the
// instances, the data plane between them) with the provider, served
// in-process, pointed at moto.
type ec2Bed struct{ *ec2bed.Bed }

// newEC2Bed starts the bed and points this process's AWS SDK at moto.
// unreachable picks instances that never answer.
func newEC2Bed(t *testing.T, unreachable func(ec2types.Instance) bool) *ec2Bed {
	t.Helper()
	b := &ec2Bed{ec2bed.ForTest(t, context.Background(), ec2bed.Options{AMIParameter: "/minibroker-test/ubuntu/ami-id",
		Unreachable: unreachable})}
	b.SetEnv(t)
	return b
}

// checkNothingOnEC2 checks that moto holds nothing of any swarm: no
// instance that is not terminated, no security group but the VPC's
// default, no key pair; and that the data plane removed every node.
func (b *ec2Bed) checkNothingOnEC2() resource.TestCheckFunc {
	return func(*terraform.State) error {
		left, err := b.CheckNothingLeft(context.Background())
		if err != nil {
			return err
		}
		return left.Err()
	}
}

type awsAccConfig struct {
	KeyFile, KnownHosts, PublicKey, Subnet, AMIParam, AdminCIDR string
	Workloads, Kafka                                            string
	Producer                                                    bool
	ProducerNodes, FilterNodes, ConsumerNodes                   int
	Alerts, Visits                                              int
	ReadyTimeout                                                string
	Filters                                                     []accFilter
}

const awsTemplate = `
provider "minibroker" {
  ssh_private_key  = file("{{.KeyFile}}")
  known_hosts_file = "{{.KnownHosts}}"
  kafka_image      = "minibroker/kafka:dev"
  workloads_image  = "minibroker/workloads:dev"
}

resource "minibroker_swarm" "ec2" {
  encrypt_network = false # the lab's kernel cannot install IPsec states (docs/security.md)
  aws = {
    region            = "us-east-1"
    instance_type     = "m5.large"
    producer_nodes    = {{.ProducerNodes}}
    filter_nodes      = {{.FilterNodes}}
    consumer_nodes    = {{.ConsumerNodes}}
    ami_ssm_parameter = "{{.AMIParam}}"
    subnet_id         = "{{.Subnet}}"
    public_key        = "{{.PublicKey}}"
    admin_cidr_blocks = ["{{.AdminCIDR}}"]
    consumer_cidr_blocks = ["198.51.100.0/24"]
    root_volume_size  = 30
    connect_via       = "private_ip"
    tags              = { project = "minibroker-acc" }
    ready_timeout     = "{{.ReadyTimeout}}"
  }
  address_pool   = "10.124.0.0/16"
  image_archives = ["{{.Workloads}}", "{{.Kafka}}"]
  hub = { heap_mb = 384 }
  producer = {
    enabled          = {{.Producer}}
    alerts_per_visit = {{.Alerts}}
    interval         = "8s"
    visits           = {{.Visits}}
    cutout_bytes     = 0
  }
}
{{if .Filters}}
resource "minibroker_mirror" "m" {
  swarm_id             = minibroker_swarm.ec2.id
  manager_address      = minibroker_swarm.ec2.manager_address
  kafka_credentials = minibroker_swarm.ec2.kafka_credentials
  name                 = "m0"
  node_index           = 0
  heap_mb              = 384
  mirror_maker_heap_mb = 256
}

resource "minibroker_filter_group" "g0" {
  swarm_id        = minibroker_swarm.ec2.id
  manager_address = minibroker_swarm.ec2.manager_address
  kafka_credentials = minibroker_swarm.ec2.kafka_credentials
  name            = "g0"
  mirror          = minibroker_mirror.m.name
  mode            = "isolated"
  filters = [{{range .Filters}}
    { name = "{{.Name}}", expression = "{{.Expr}}", max_per_visit = {{.Cap}} },{{end}}
  ]
}
{{end}}`

// TestAccSwarmOnEC2 provisions the swarm's nodes through the EC2 API
// (moto) and checks everything end to end: the instances come up as lab
// nodes at their private IPs, alerts flow to the consumers, moto holds the
// expected instances, tags, security group rules, IMDSv2 and user data;
// scaling is in place, an instance terminated outside Terraform shows in
// the next plan and is replaced, and destroy leaves nothing on EC2.
func TestAccSwarmOnEC2(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, moto, a lab and Terraform; skipped under -short")
	}
	useTerraform(t)
	workloads, kafka := imageArchives(t)
	b := newEC2Bed(t, nil)
	cfg := awsAccConfig{
		KeyFile: b.KeyFile, KnownHosts: b.Lab.KnownHostsFile(), PublicKey: b.PublicKey, Subnet: b.Subnet,
		AMIParam: b.AMIParameter, AdminCIDR: b.Lab.Gateway().String() + "/32", Workloads: workloads, Kafka: kafka,
		ProducerNodes: 1, FilterNodes: 1, ConsumerNodes: 1, Alerts: 300, Visits: 3, ReadyTimeout: "3m",
		Filters: []accFilter{
			{"bright", "alert.diaSource.snr > 50.0", -1},
			{"low_detectors", "alert.diaSource.detector < 10", 20},
		},
	}
	withProducer := cfg
	withProducer.Producer = true
	twoConsumers := withProducer
	twoConsumers.ConsumerNodes = 2

	var swarmID string
	var terminated string // instance terminated behind Terraform's back
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             b.checkNothingOnEC2(),
		Steps: []resource.TestStep{
			{
				Config: render(t, awsTemplate, cfg),
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("minibroker_swarm.ec2", "instances.#", "4"),
					resource.TestCheckResourceAttr("minibroker_swarm.ec2", "hosts.#", "4"),
					resource.TestMatchResourceAttr("minibroker_swarm.ec2", "aws.key_name", regexp.MustCompile(`^minibroker-mb-[0-9a-f]{12}$`)),
					resource.TestMatchResourceAttr("minibroker_swarm.ec2", "id", regexp.MustCompile(`^mb-[0-9a-f]{12}$`)),
					resource.TestCheckResourceAttrPair("minibroker_mirror.m", "swarm_id", "minibroker_swarm.ec2", "id"),
					func(s *terraform.State) error {
						swarmID = s.RootModule().Resources["minibroker_swarm.ec2"].Primary.ID
						return nil
					},
					b.checkFleetInMoto(t, &swarmID, cfg),
				),
			},
			{
				// The producer starts in place; the consumers get exactly
				// their filters' selections.
				Config: render(t, awsTemplate, withProducer),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("minibroker_swarm.ec2", plancheck.ResourceActionUpdate),
				}},
				Check: func(s *terraform.State) error {
					mgr := engine(t, b.managerNode(t))
					return checkAlertsFlow(t, mgr, accConfig{Alerts: cfg.Alerts, Visits: cfg.Visits, G0: cfg.Filters})(s)
				},
			},
			{
				// Import by the manager's address restores the aws block,
				// the instances and the security group.
				ResourceName: "minibroker_swarm.ec2",
				ImportState:  true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) {
					return s.RootModule().Resources["minibroker_swarm.ec2"].Primary.Attributes["manager_address"], nil
				},
				ImportStateVerify: true,
				// Sensitive and derived credentials are in no label (see acc_test.go).
				ImportStateVerifyIgnore: []string{"image_archives", "timeouts", "kafka_credentials", "report_properties", "ca_certificate",
					"schema_registry_properties"},
			},
			{
				// One more consumer node: an in-place update that starts an
				// instance and joins it.
				Config: render(t, awsTemplate, twoConsumers),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("minibroker_swarm.ec2", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("minibroker_swarm.ec2", "instances.#", "5"),
					resource.TestCheckResourceAttr("minibroker_swarm.ec2", "nodes_by_role.consumer.#", "2"),
					b.checkSwarmNodes(t, 5),
				),
			},
			{
				// Behind Terraform's back: a consumer instance terminated.
				// The plan shows it and the apply replaces it.
				PreConfig: func() {
					in := b.instance(t, swarmID, "consumer", 1)
					terminated = in
					if _, err := b.EC2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{in}}); err != nil {
						t.Fatal(err)
					}
				},
				Config: render(t, awsTemplate, twoConsumers),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("minibroker_swarm.ec2", plancheck.ResourceActionUpdate),
					plancheck.ExpectKnownValue("minibroker_swarm.ec2", tfjsonpath.New("aws").AtMapKey("consumer_nodes"), knownvalue.Int64Exact(2)),
				}},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("minibroker_swarm.ec2", "instances.#", "5"),
					func(*terraform.State) error {
						if in := b.instance(t, swarmID, "consumer", 1); in == terminated {
							return fmt.Errorf("consumer 1 is still the terminated %s", in)
						}
						return nil
					},
					b.checkSwarmNodes(t, 5),
				),
			},
			{
				// Back to one consumer node: drained, gone from the swarm,
				// terminated.
				Config: render(t, awsTemplate, withProducer),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("minibroker_swarm.ec2", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(
					resource.TestCheckResourceAttr("minibroker_swarm.ec2", "instances.#", "4"),
					b.checkSwarmNodes(t, 4),
					func(*terraform.State) error {
						live, err := awsfleet.New(b.AWS).FindInstances(context.Background(), swarmID)
						if err != nil {
							return err
						}
						if len(live) != 4 {
							return fmt.Errorf("%d live instances after scaling down, want 4", len(live))
						}
						return nil
					},
				),
			},
		},
	})
}

// instance returns the id of the live instance of a role and index.
func (b *ec2Bed) instance(t *testing.T, swarmID, role string, index int) string {
	t.Helper()
	live, err := awsfleet.New(b.AWS).FindInstances(context.Background(), swarmID)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range live {
		if in.Role == role && in.Index == index && in.Alive() {
			return in.ID
		}
	}
	t.Fatalf("no live %s %d instance in %v", role, index, live)
	return ""
}

// managerNode returns the lab node playing the manager instance.
func (b *ec2Bed) managerNode(t *testing.T) lab.Node {
	t.Helper()
	var managerID string
	out, err := b.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + awsfleet.TagRole), Values: []string{"manager"}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			managerID = aws.ToString(in.InstanceId)
		}
	}
	n, ok := b.Plane.Nodes()[managerID]
	if !ok {
		t.Fatalf("the manager instance %q has no lab node", managerID)
	}
	return n
}

// checkSwarmNodes checks, on the manager's own engine, that the swarm has
// exactly n nodes, all ready.
func (b *ec2Bed) checkSwarmNodes(t *testing.T, n int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		nodes, err := engine(t, b.managerNode(t)).NodeList(context.Background(), dockerswarm.NodeListOptions{})
		if err != nil {
			return err
		}
		var states []string
		for _, nd := range nodes {
			states = append(states, nd.Status.Addr+" "+string(nd.Status.State))
			if nd.Status.State != dockerswarm.NodeStateReady {
				return fmt.Errorf("swarm nodes: %v", states)
			}
		}
		if len(nodes) != n {
			return fmt.Errorf("swarm has %d nodes (%v), want %d", len(nodes), states, n)
		}
		return nil
	}
}

// checkFleetInMoto checks what EC2 holds of the swarm: the instances, their
// tags, type, key pair, subnet, IMDSv2, encrypted root volumes and user
// data, and the security group's rules.
func (b *ec2Bed) checkFleetInMoto(t *testing.T, swarmID *string, cfg awsAccConfig) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		ctx := context.Background()
		attrs := s.RootModule().Resources["minibroker_swarm.ec2"].Primary.Attributes
		sg := attrs["security_group_id"]
		out, err := b.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + awsfleet.TagSwarm), Values: []string{*swarmID}}}})
		if err != nil {
			return err
		}
		var problems, names []string
		for _, r := range out.Reservations {
			for _, in := range r.Instances {
				id := aws.ToString(in.InstanceId)
				names = append(names, tagOf(in.Tags, "Name"))
				want := map[string]string{"project": "minibroker-acc", awsfleet.TagSwarm: *swarmID}
				for k, v := range want {
					if tagOf(in.Tags, k) != v {
						problems = append(problems, fmt.Sprintf("%s: tag %s = %q, want %q", id, k, tagOf(in.Tags, k), v))
					}
				}
				if string(in.InstanceType) != "m5.large" || aws.ToString(in.SubnetId) != b.Subnet ||
					aws.ToString(in.KeyName) != attrs["aws.key_name"] {
					problems = append(problems, fmt.Sprintf("%s: type %s subnet %s key %s", id, in.InstanceType, aws.ToString(in.SubnetId), aws.ToString(in.KeyName)))
				}
				// The groups are the primary interface's (moto 5.2.5 lists
				// them there only, EC2 also on the instance).
				var groups []string
				for _, ni := range in.NetworkInterfaces {
					for _, g := range ni.Groups {
						groups = append(groups, aws.ToString(g.GroupId))
					}
				}
				for _, g := range in.SecurityGroups {
					if aws.ToString(g.GroupId) != sg {
						groups = append(groups, aws.ToString(g.GroupId))
					}
				}
				if !slices.Equal(groups, []string{sg}) {
					problems = append(problems, fmt.Sprintf("%s: security groups %v, want only %s", id, groups, sg))
				}
				if in.MetadataOptions == nil || in.MetadataOptions.HttpTokens != ec2types.HttpTokensStateRequired {
					problems = append(problems, id+": IMDSv2 not required")
				}
				ud, err := b.EC2.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: in.InstanceId,
					Attribute: ec2types.InstanceAttributeNameUserData})
				if err != nil {
					return err
				}
				text, _ := base64.StdEncoding.DecodeString(aws.ToString(ud.UserData.Value))
				if !strings.HasPrefix(string(text), "#cloud-config") || !strings.Contains(string(text), "packages: [docker.io]") {
					problems = append(problems, fmt.Sprintf("%s: user data %q", id, text))
				}
				vols, err := b.EC2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
					{Name: aws.String("attachment.instance-id"), Values: []string{id}}}})
				if err != nil {
					return err
				}
				for _, v := range vols.Volumes {
					if !aws.ToBool(v.Encrypted) || aws.ToInt32(v.Size) != 30 {
						problems = append(problems, fmt.Sprintf("%s: volume %s encrypted=%v size=%d", id, aws.ToString(v.VolumeId), aws.ToBool(v.Encrypted), aws.ToInt32(v.Size)))
					}
				}
			}
		}
		slices.Sort(names)
		if want := []string{"minibroker-consumer-0", "minibroker-filter-0", "minibroker-manager-0", "minibroker-producer-0"}; !slices.Equal(names, want) {
			problems = append(problems, fmt.Sprintf("instances %v, want %v", names, want))
		}
		groups, err := b.EC2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
		if err != nil {
			return err
		}
		var rules []string
		for _, p := range groups.SecurityGroups[0].IpPermissions {
			r := fmt.Sprintf("%s %d-%d", aws.ToString(p.IpProtocol), aws.ToInt32(p.FromPort), aws.ToInt32(p.ToPort))
			for _, c := range p.IpRanges {
				rules = append(rules, r+" "+aws.ToString(c.CidrIp))
			}
			for _, g := range p.UserIdGroupPairs {
				who := "members"
				if aws.ToString(g.GroupId) != sg {
					who = aws.ToString(g.GroupId)
				}
				rules = append(rules, r+" "+who)
			}
		}
		slices.Sort(rules)
		// SSH from the admins, the schema registry and the mirrors'
		// external listener from the consumers only, Swarm and Kafka
		// between members.
		wantRules := []string{"tcp 22-22 " + cfg.AdminCIDR, "tcp 2377-2377 members", "tcp 7946-7946 members",
			"tcp 8081-8081 198.51.100.0/24", "tcp 9092-9093 members", "tcp 9095-9095 198.51.100.0/24", "udp 4789-4789 members", "udp 7946-7946 members"}
		if !slices.Equal(rules, wantRules) {
			problems = append(problems, fmt.Sprintf("security group rules\n    %v\n  want\n    %v", rules, wantRules))
		}
		if len(problems) > 0 {
			return fmt.Errorf("on EC2:\n  %s", strings.Join(problems, "\n  "))
		}
		return nil
	}
}

func tagOf(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// TestAccSwarmOnEC2NodeNeverAnswers: an instance that never answers on SSH
// (the data plane gives it no node) ends the apply with an error naming
// it, and destroy then leaves nothing on EC2.
func TestAccSwarmOnEC2NodeNeverAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("needs root, moto, a lab and Terraform; skipped under -short")
	}
	useTerraform(t)
	workloads, kafka := imageArchives(t)
	b := newEC2Bed(t, func(in ec2types.Instance) bool { return tagOf(in.Tags, "Name") == "minibroker-consumer-1" })
	cfg := awsAccConfig{
		KeyFile: b.KeyFile, KnownHosts: b.Lab.KnownHostsFile(), PublicKey: b.PublicKey, Subnet: b.Subnet,
		AMIParam: b.AMIParameter, AdminCIDR: b.Lab.Gateway().String() + "/32", Workloads: workloads, Kafka: kafka,
		ProducerNodes: 0, ConsumerNodes: 2, Alerts: 1, Visits: 1, ReadyTimeout: "40s",
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: factories,
		CheckDestroy:             b.checkNothingOnEC2(),
		Steps: []resource.TestStep{{
			Config:      render(t, awsTemplate, cfg),
			ExpectError: regexp.MustCompile(`(?s)instance i-[0-9a-f]+ \(consumer 1,\s+198\.18\.\d+\.\d+\):\s+Docker did\s+not\s+answer\s+over\s+SSH.*within\s+aws.ready_timeout\s+\(40s\)`),
		}},
	})
}

// TestAccSwarmAWSValidation: mistakes in the aws block fail the plan with a
// message naming the attribute, before anything talks to AWS.
func TestAccSwarmAWSValidation(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Terraform; skipped under -short")
	}
	useTerraform(t)
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("unused"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		want       string
	}{
		{"neither hosts nor aws", ``, `(?s)No nodes.*Set hosts \(machines you already have\) or aws`},
		{"both", `hosts = [{ address = "10.0.0.1", role = "manager" }, { address = "10.0.0.2", role = "consumer" }]
  aws = { public_key = "ssh-ed25519 AAAA", admin_cidr_blocks = ["10.0.0.0/8"] }
  producer = { enabled = false }`, `(?s)Both hosts and aws.*not both`},
		{"no key", `aws = { admin_cidr_blocks = ["10.0.0.0/8"] }`, `(?s)One key pair.*aws\.key_name.*aws\.public_key`},
		{"host bits in CIDR", `aws = { key_name = "k", admin_cidr_blocks = ["203.0.113.7/24"] }`, `(?s)Invalid CIDR block.*203\.0\.113\.7/24`},
		{"no producer node", `aws = { key_name = "k", admin_cidr_blocks = ["203.0.113.0/24"], producer_nodes = 0 }`, `(?s)No producer node.*aws\.producer_nodes is 0`},
		{"bad connect_via", `aws = { key_name = "k", admin_cidr_blocks = ["203.0.113.0/24"], connect_via = "dns" }`, `(?s)aws\.connect_via.*value must be one of`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: factories,
				Steps: []resource.TestStep{{
					Config: fmt.Sprintf(`
provider "minibroker" {
  ssh_private_key = "unused"
  host_key_policy = "trust_on_first_use"
}
resource "minibroker_swarm" "s" {
  %s
}`, c.body),
					PlanOnly:    true,
					ExpectError: regexp.MustCompile(c.want),
				}},
			})
		})
	}
}
