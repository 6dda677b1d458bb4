// Package awsfleet is the provider's thin adapter around EC2: it creates the
// instances of a swarm (with their security group and, optionally, an
// imported key pair), watches them, and removes everything again.
//
// A fleet's identity is derived from what configures it (Identity: its
// subnet and its name prefix), not drawn at random, and everything it
// creates carries the tag TagSwarm = that id. So what an apply killed at
// any point created is found again: the next create adopts it
// (Want.Fresh), and destroy removes it by tag (Sweep). A fleet whose
// create finished is marked (MarkCreated, the tag TagCreated on its
// security group); a create that finds a marked fleet with its identity
// refuses it (*TakenError) rather than adopt a swarm that another
// Terraform state may hold.
//
// Files: fleet.go (types, identity), provision.go (making a fleet what a
// swarm asks for, adopting leftovers, and finding what of it is left),
// find.go (lookups), create.go (security group, key pair, instances and
// their client tokens), tags.go (retagging, the created mark), wait.go
// (waiters), delete.go (termination and sweep), userdata.go (cloud-init).
package awsfleet

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
)

// Tags put on everything the fleet creates.
const (
	TagSwarm = "minibroker:swarm" // the resource's id (Identity)
	TagRole  = "minibroker:role"  // manager, producer, filter, consumer
	TagIndex = "minibroker:index" // number within the role
	TagName  = "Name"
	// TagCreated is on the security group of a fleet whose create
	// finished (MarkCreated), with the time it finished.
	TagCreated = "minibroker:created"
)

// Identity is the id of the fleet of a swarm in subnetID named name (its
// name prefix): "mb-" and 12 hex digits of a hash of both. The same
// configuration always gives the same id, so whatever a killed apply
// created is found by its tag; two swarms in one subnet need distinct
// names.
func Identity(subnetID, name string) string {
	sum := sha256.Sum256([]byte("minibroker swarm\x00" + subnetID + "\x00" + name))
	return "mb-" + hex.EncodeToString(sum[:6])
}

// TakenError is returned when a fleet is created (Want.Fresh) with the
// identity of one whose create finished: that swarm belongs to a Terraform
// state (another one, or this one which lost it) and is not adopted.
type TakenError struct {
	SwarmID, SubnetID, Name string
	SecurityGroup           string
	Created                 string // the TagCreated value
	Instances               []string
}

func (e *TakenError) Error() string {
	ins := "no live instance"
	if len(e.Instances) > 0 {
		ins = fmt.Sprintf("%d live instances (%s)", len(e.Instances), strings.Join(e.Instances, ", "))
	}
	return fmt.Sprintf("swarm %s already exists on EC2: security group %s and %s, tagged %s=%s, come from a swarm "+
		"with the same subnet (%s) and name prefix (%q) whose create finished at %s. It belongs to a Terraform state, "+
		"another one or this one which lost it, and is not adopted. To manage it from here, import it "+
		"(terraform import <resource address> <its manager's SSH address>); for a second swarm in this subnet, set "+
		"another aws.name_prefix; to start over, destroy it from the state that holds it.",
		e.SwarmID, e.SecurityGroup, ins, TagSwarm, e.SwarmID, e.SubnetID, e.Name, e.Created)
}

// DefaultAMIParameter is Canonical's public SSM parameter naming the current
// Ubuntu 24.04 LTS AMI (amd64, gp3 root) of the region.
const DefaultAMIParameter = "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"

// Ports opened between the members of a fleet (besides SSH from the admin
// CIDRs): Swarm's control plane, gossip and VXLAN data plane, and Kafka.
var memberPorts = []struct {
	Proto    string
	From, To int32
	What     string
}{
	{"tcp", 2377, 2377, "swarm management"},
	{"tcp", 7946, 7946, "swarm gossip"},
	{"udp", 7946, 7946, "swarm gossip"},
	{"udp", 4789, 4789, "swarm overlay (VXLAN)"},
	{"tcp", 9092, 9093, "kafka"},
}

// Client talks to EC2 and SSM of one region.
type Client struct {
	ec2  *ec2.Client
	ssm  *ssm.Client
	poll time.Duration
	log  *slog.Logger
}

// Option configures a Client.
type Option func(*Client)

// WithPollInterval sets how often waiters poll (default 5 s).
func WithPollInterval(d time.Duration) Option { return func(c *Client) { c.poll = d } }

// WithLogger sends what the client does to log, with the context of the
// call (default: nowhere).
func WithLogger(log *slog.Logger) Option { return func(c *Client) { c.log = log } }

// New returns a client for cfg (from config.LoadDefaultConfig, which honours
// profiles, the environment and AWS_ENDPOINT_URL[_EC2|_SSM]).
func New(cfg aws.Config, opts ...Option) *Client {
	c := &Client{ec2: ec2.NewFromConfig(cfg), ssm: ssm.NewFromConfig(cfg), poll: 5 * time.Second,
		log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Spec is what every instance of a fleet shares.
type Spec struct {
	SwarmID        string
	NamePrefix     string
	InstanceType   string
	AMI            string
	SubnetID       string
	SecurityGroup  string
	KeyName        string
	RootVolumeSize int32
	RootVolumeType string
	PublicIP       bool
	UserData       string
	Tags           map[string]string
}

// Instance is one instance of a fleet as EC2 reports it.
type Instance struct {
	ID, Role    string
	Index       int
	PrivateIP   string
	PublicIP    string
	State       string // pending, running, shutting-down, terminated, stopping, stopped
	StateReason string
	Type, AMI   string
	SubnetID    string
	KeyName     string
	Launched    time.Time // zero if EC2 did not say
}

// Alive reports whether the instance is, or is about to be, running.
func (i Instance) Alive() bool { return i.State == "pending" || i.State == "running" }

// Label names the instance in messages: "i-0abc (filter 2, 10.0.1.7)".
func (i Instance) Label() string {
	ip := i.PrivateIP
	if ip == "" {
		ip = "no address yet"
	}
	return fmt.Sprintf("%s (%s %d, %s)", i.ID, i.Role, i.Index, ip)
}

func fromEC2(in ec2types.Instance) Instance {
	out := Instance{
		ID: aws.ToString(in.InstanceId), PrivateIP: aws.ToString(in.PrivateIpAddress),
		PublicIP: aws.ToString(in.PublicIpAddress), Type: string(in.InstanceType), AMI: aws.ToString(in.ImageId),
		SubnetID: aws.ToString(in.SubnetId), KeyName: aws.ToString(in.KeyName), Launched: aws.ToTime(in.LaunchTime),
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	if in.StateReason != nil {
		out.StateReason = aws.ToString(in.StateReason.Message)
	}
	for _, t := range in.Tags {
		switch aws.ToString(t.Key) {
		case TagRole:
			out.Role = aws.ToString(t.Value)
		case TagIndex:
			out.Index, _ = strconv.Atoi(aws.ToString(t.Value))
		}
	}
	return out
}

// errorCode returns the AWS error code of err ("" if none).
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// tagValue returns the value of the tag key ("" if there is none).
func tagValue(tags []ec2types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

func tagFilter(key, value string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String("tag:" + key), Values: []string{value}}
}

// tagSpec tags a resource at creation with the fleet's tags plus extra.
func tagSpec(kind ec2types.ResourceType, common map[string]string, extra ...string) ec2types.TagSpecification {
	tags := map[string]string{}
	for k, v := range common {
		tags[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		tags[extra[i]] = extra[i+1]
	}
	ts := ec2types.TagSpecification{ResourceType: kind}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		ts.Tags = append(ts.Tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return ts
}
