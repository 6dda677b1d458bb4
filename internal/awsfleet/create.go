package awsfleet

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
)

// Ingress is who may reach the fleet from outside it.
type Ingress struct {
	// AdminCIDRs may reach SSH (22/tcp).
	AdminCIDRs []string
	// ConsumerCIDRs may reach the mirrors' external Kafka listener
	// (ConsumerPort/tcp), where filters' owners read their streams, and
	// the schema registry (RegistryPort/tcp), where their deserializers
	// look the schemas up.
	ConsumerCIDRs []string
}

// ConsumerPort is the mirrors' external listener port the group opens to
// Ingress.ConsumerCIDRs: the mirrors' default.
const ConsumerPort = kafkaconf.DefaultExternalPort

// RegistryPort is the schema registry's port the group opens to
// Ingress.ConsumerCIDRs: the swarm's default.
const RegistryPort = registry.DefaultPort

// EnsureSecurityGroup returns the fleet's security group in vpcID, creating
// it if needed, and makes its ingress rules exactly: SSH from the admins,
// the mirrors' external Kafka listener from the consumers, and the Swarm
// and Kafka ports from members of the group.
func (c *Client) EnsureSecurityGroup(ctx context.Context, swarmID, namePrefix, vpcID string, in Ingress, tags map[string]string) (string, error) {
	return c.ensureGroup(ctx, swarmID, namePrefix, vpcID, in, tags, false)
}

// ensureGroup is EnsureSecurityGroup; when fresh (the swarm is being
// created), a group marked created (MarkCreated) is refused with a
// *TakenError before anything about it changes.
func (c *Client) ensureGroup(ctx context.Context, swarmID, namePrefix, vpcID string, in Ingress, tags map[string]string, fresh bool) (string, error) {
	groups, err := c.securityGroups(ctx, swarmID)
	if err != nil {
		return "", err
	}
	var g ec2types.SecurityGroup
	switch len(groups) {
	case 0:
		if g, err = c.createGroup(ctx, swarmID, namePrefix+"-"+swarmID, vpcID, tags); err != nil {
			return "", err
		}
	case 1:
		g = groups[0]
	default:
		var ids []string
		for _, g := range groups {
			ids = append(ids, aws.ToString(g.GroupId))
		}
		return "", fmt.Errorf("swarm %s has %d security groups (%v); delete the extra ones", swarmID, len(ids), ids)
	}
	id := aws.ToString(g.GroupId)
	if created := tagValue(g.Tags, TagCreated); fresh && created != "" {
		return "", &TakenError{SwarmID: swarmID, SecurityGroup: id, Created: created}
	}
	return id, c.syncIngress(ctx, id, in)
}

// createGroup creates the fleet's security group name in vpcID. A group of
// that name already there (one that a killed apply created and that EC2
// does not list by tag yet) is the fleet's if it carries its tag.
func (c *Client) createGroup(ctx context.Context, swarmID, name, vpcID string, tags map[string]string) (ec2types.SecurityGroup, error) {
	tagged := tagSpec(ec2types.ResourceTypeSecurityGroup, tags, TagSwarm, swarmID, TagName, name)
	out, err := c.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(name),
		Description:       aws.String("minibroker swarm " + swarmID + ": SSH from admins, Swarm and Kafka between members"),
		VpcId:             aws.String(vpcID),
		TagSpecifications: []ec2types.TagSpecification{tagged},
	})
	if err == nil {
		return ec2types.SecurityGroup{GroupId: out.GroupId, GroupName: aws.String(name), Tags: tagged.Tags}, nil
	}
	if errorCode(err) != "InvalidGroup.Duplicate" {
		return ec2types.SecurityGroup{}, fmt.Errorf("create security group %s in %s: %w", name, vpcID, err)
	}
	for try := 0; ; try++ {
		found, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{
			{Name: aws.String("group-name"), Values: []string{name}}, {Name: aws.String("vpc-id"), Values: []string{vpcID}}}})
		if err != nil {
			return ec2types.SecurityGroup{}, fmt.Errorf("describe security group %s in %s: %w", name, vpcID, err)
		}
		if len(found.SecurityGroups) == 1 {
			g := found.SecurityGroups[0]
			if tagValue(g.Tags, TagSwarm) != swarmID {
				return g, untouched{fmt.Errorf("security group %s (%s) in %s is not swarm %s's (it lacks the tag %s=%s): "+
					"delete it, or set another aws.name_prefix", name, aws.ToString(g.GroupId), vpcID, swarmID, TagSwarm, swarmID)}
			}
			c.log.InfoContext(ctx, LogAdopted, "security_group", aws.ToString(g.GroupId), "swarm", swarmID)
			return g, nil
		}
		if try == findRetries {
			return ec2types.SecurityGroup{}, fmt.Errorf("create security group %s in %s: EC2 says it exists but does not list it", name, vpcID)
		}
		if err := c.sleep(ctx); err != nil {
			return ec2types.SecurityGroup{}, fmt.Errorf("find security group %s in %s: %w", name, vpcID, err)
		}
	}
}

// findRetries bounds how often a resource EC2 says exists is looked for
// again (a poll interval apart) before giving up.
const findRetries = 10

// sleep waits one poll interval, or until ctx ends.
func (c *Client) sleep(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(c.poll):
		return nil
	}
}

// untouched wraps an error met before the fleet created anything, about
// something that is not the fleet's: the fleet's state need not be kept.
type untouched struct{ error }

func (u untouched) Unwrap() error { return u.error }

// rule is one ingress permission: a port range from a CIDR or a group.
type rule struct {
	proto    string
	from, to int32
	cidr     string // or
	group    string
	what     string
}

func (r rule) key() string {
	return fmt.Sprintf("%s/%d-%d/%s%s", r.proto, r.from, r.to, r.cidr, r.group)
}

func (r rule) permission() ec2types.IpPermission {
	p := ec2types.IpPermission{IpProtocol: aws.String(r.proto), FromPort: aws.Int32(r.from), ToPort: aws.Int32(r.to)}
	if r.cidr != "" {
		p.IpRanges = []ec2types.IpRange{{CidrIp: aws.String(r.cidr), Description: aws.String(r.what)}}
	} else {
		p.UserIdGroupPairs = []ec2types.UserIdGroupPair{{GroupId: aws.String(r.group), Description: aws.String(r.what)}}
	}
	return p
}

// IngressRules returns the rules a fleet's group must hold.
func IngressRules(groupID string, in Ingress) []rule {
	var out []rule
	for _, cidr := range in.AdminCIDRs {
		out = append(out, rule{proto: "tcp", from: 22, to: 22, cidr: cidr, what: "ssh from admins"})
	}
	for _, cidr := range in.ConsumerCIDRs {
		out = append(out, rule{proto: "tcp", from: ConsumerPort, to: ConsumerPort, cidr: cidr, what: "kafka (SASL_SSL) from filter owners"},
			rule{proto: "tcp", from: RegistryPort, to: RegistryPort, cidr: cidr, what: "schema registry (HTTPS) from filter owners"})
	}
	for _, p := range memberPorts {
		out = append(out, rule{proto: p.Proto, from: p.From, to: p.To, group: groupID, what: p.What})
	}
	return out
}

func (c *Client) syncIngress(ctx context.Context, groupID string, in Ingress) error {
	out, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{groupID}})
	if err != nil {
		return fmt.Errorf("describe security group %s: %w", groupID, err)
	}
	if len(out.SecurityGroups) != 1 {
		return fmt.Errorf("security group %s not found", groupID)
	}
	have := map[string]rule{}
	for _, p := range out.SecurityGroups[0].IpPermissions {
		base := rule{proto: aws.ToString(p.IpProtocol), from: aws.ToInt32(p.FromPort), to: aws.ToInt32(p.ToPort)}
		for _, r := range p.IpRanges {
			x := base
			x.cidr = aws.ToString(r.CidrIp)
			have[x.key()] = x
		}
		for _, g := range p.UserIdGroupPairs {
			x := base
			x.group = aws.ToString(g.GroupId)
			have[x.key()] = x
		}
	}
	var add, remove []ec2types.IpPermission
	want := map[string]bool{}
	for _, r := range IngressRules(groupID, in) {
		want[r.key()] = true
		if _, ok := have[r.key()]; !ok {
			add = append(add, r.permission())
		}
	}
	for k, r := range have {
		if !want[k] {
			remove = append(remove, r.permission())
		}
	}
	if len(remove) > 0 {
		if _, err := c.ec2.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{
			GroupId: aws.String(groupID), IpPermissions: remove}); err != nil {
			return fmt.Errorf("revoke old ingress rules of %s: %w", groupID, err)
		}
	}
	if len(add) > 0 {
		if _, err := c.ec2.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: aws.String(groupID), IpPermissions: add}); err != nil && errorCode(err) != "InvalidPermission.Duplicate" {
			return fmt.Errorf("authorize ingress rules of %s: %w", groupID, err)
		}
	}
	return nil
}

// ImportKeyPair imports publicKey (OpenSSH format) as key pair name, tagged
// as the fleet's. If the fleet already imported that name, it is kept.
func (c *Client) ImportKeyPair(ctx context.Context, swarmID, name, publicKey string, tags map[string]string) error {
	_, err := c.importKey(ctx, swarmID, name, publicKey, tags, false)
	return err
}

// importKey is ImportKeyPair; when fresh (the swarm is being created), a
// pair of the fleet's with another public key (left by a killed apply
// before the key was changed) is imported again, and replaced says so:
// instances launched with it are not adopted.
func (c *Client) importKey(ctx context.Context, swarmID, name, publicKey string, tags map[string]string, fresh bool) (replaced bool, err error) {
	owned, err := c.keyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{tagFilter(TagSwarm, swarmID)}})
	if err != nil {
		return false, err
	}
	for try := 0; ; try++ {
		for _, k := range owned {
			if aws.ToString(k.KeyName) != name {
				continue
			}
			if have := aws.ToString(k.PublicKey); !fresh || have == "" || sameKey(have, publicKey) {
				return replaced, nil
			}
			c.log.InfoContext(ctx, "importing the key pair again: an interrupted apply imported another public key", "key_pair", name)
			if err := c.DeleteKeyPair(ctx, name); err != nil {
				return replaced, err
			}
			replaced = true
		}
		_, err = c.ec2.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
			KeyName:           aws.String(name),
			PublicKeyMaterial: []byte(publicKey),
			TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeKeyPair, tags, TagSwarm, swarmID)},
		})
		switch {
		case err == nil:
			return replaced, nil
		case errorCode(err) != "InvalidKeyPair.Duplicate" || try == findRetries:
			return replaced, fmt.Errorf("import key pair %s: %w", name, err)
		}
		// Imported by a killed apply and not listed by tag yet, or someone
		// else's.
		if owned, err = c.keyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}}); err != nil {
			return replaced, err
		}
		for _, k := range owned {
			if tagValue(k.Tags, TagSwarm) != swarmID {
				return replaced, fmt.Errorf("key pair %s exists and is not swarm %s's (it lacks the tag %s=%s): delete it, "+
					"or set another aws.name_prefix", name, swarmID, TagSwarm, swarmID)
			}
		}
		if len(owned) == 0 {
			if err := c.sleep(ctx); err != nil {
				return replaced, fmt.Errorf("find key pair %s: %w", name, err)
			}
		}
	}
}

// sameKey reports whether two OpenSSH public keys are the same key (type
// and data; comments aside).
func sameKey(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	return len(fa) >= 2 && len(fb) >= 2 && fa[0] == fb[0] && fa[1] == fb[1]
}

// RunInstance starts the instance for role/index, the launch-th one of the
// slot in this fleet (counting from 0). Its client token (clientToken) makes
// a call repeated, by the SDK or by the next apply after a killed one,
// return the same instance instead of starting a second one; EC2 may then
// return an instance that has ended since (see Provision).
func (c *Client) RunInstance(ctx context.Context, s Spec, role string, index, launch int) (Instance, error) {
	dev, err := c.rootDevice(ctx, s.AMI)
	if err != nil {
		return Instance{}, err
	}
	name := fmt.Sprintf("%s-%s-%d", s.NamePrefix, role, index)
	idx := strconv.Itoa(index)
	tags := func(kind ec2types.ResourceType) ec2types.TagSpecification {
		return tagSpec(kind, s.Tags, TagSwarm, s.SwarmID, TagRole, role, TagIndex, idx, TagName, name)
	}
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String(s.AMI),
		InstanceType: ec2types.InstanceType(s.InstanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		KeyName:      aws.String(s.KeyName),
		ClientToken:  aws.String(clientToken(s.SwarmID, s.SecurityGroup, role, index, launch)),
		UserData:     aws.String(base64.StdEncoding.EncodeToString([]byte(s.UserData))),
		NetworkInterfaces: []ec2types.InstanceNetworkInterfaceSpecification{{
			DeviceIndex:              aws.Int32(0),
			SubnetId:                 aws.String(s.SubnetID),
			Groups:                   []string{s.SecurityGroup},
			AssociatePublicIpAddress: aws.Bool(s.PublicIP),
			DeleteOnTermination:      aws.Bool(true),
		}},
		MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{
			HttpTokens:   ec2types.HttpTokensStateRequired, // IMDSv2 only
			HttpEndpoint: ec2types.InstanceMetadataEndpointStateEnabled,
			// 1: the instance itself gets a token, while its containers,
			// one hop further, cannot read its metadata or role credentials.
			HttpPutResponseHopLimit: aws.Int32(1),
		},
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{
			DeviceName: aws.String(dev),
			Ebs: &ec2types.EbsBlockDevice{
				VolumeSize:          aws.Int32(s.RootVolumeSize),
				VolumeType:          ec2types.VolumeType(s.RootVolumeType),
				Encrypted:           aws.Bool(true),
				DeleteOnTermination: aws.Bool(true),
			},
		}},
		TagSpecifications: []ec2types.TagSpecification{tags(ec2types.ResourceTypeInstance), tags(ec2types.ResourceTypeVolume)},
	}
	out, err := c.ec2.RunInstances(ctx, in)
	if err != nil {
		return Instance{}, fmt.Errorf("run instance %s (%s, %s): %w", name, s.InstanceType, s.AMI, err)
	}
	if len(out.Instances) != 1 {
		return Instance{}, fmt.Errorf("run instance %s: EC2 returned %d instances", name, len(out.Instances))
	}
	return fromEC2(out.Instances[0]), nil
}

// clientToken is the same for the same fleet, security group, slot and
// launch (at most 64 characters), and nothing in it depends on the apply:
// the SDK's retries of one call, and the next apply's call after a killed
// one, start one instance. The security group stands for the fleet's
// lifetime (a fleet created again after a destroy has a new one), and
// launch counts the instances a slot has had in it (a node started again
// after a scale-down or a termination gets a new instance).
func clientToken(swarmID, group, role string, index, launch int) string {
	t := fmt.Sprintf("%s-%s-%s-%d-%d", swarmID, strings.TrimPrefix(group, "sg-"), role, index, launch)
	if len(t) > 64 {
		t = t[len(t)-64:]
	}
	return t
}
