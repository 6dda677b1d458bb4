package awsfleet

import (
	"context"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// EnsureSecurityGroup returns the fleet's security group in vpcID, creating
// it if needed, and makes its ingress rules exactly: SSH from adminCIDRs,
// and the Swarm and Kafka ports from members of the group.
func (c *Client) EnsureSecurityGroup(ctx context.Context, swarmID, namePrefix, vpcID string, adminCIDRs []string, tags map[string]string) (string, error) {
	ids, err := c.FindSecurityGroups(ctx, swarmID)
	if err != nil {
		return "", err
	}
	var id string
	switch len(ids) {
	case 0:
		name := namePrefix + "-" + swarmID
		out, err := c.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			GroupName:   aws.String(name),
			Description: aws.String("minibroker swarm " + swarmID + ": SSH from admins, Swarm and Kafka between members"),
			VpcId:       aws.String(vpcID),
			TagSpecifications: []ec2types.TagSpecification{
				tagSpec(ec2types.ResourceTypeSecurityGroup, tags, TagSwarm, swarmID, TagName, name)},
		})
		if err != nil {
			return "", fmt.Errorf("create security group %s in %s: %w", name, vpcID, err)
		}
		id = aws.ToString(out.GroupId)
	case 1:
		id = ids[0]
	default:
		return "", fmt.Errorf("swarm %s has %d security groups (%v); delete the extra ones", swarmID, len(ids), ids)
	}
	return id, c.syncIngress(ctx, id, adminCIDRs)
}

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
func IngressRules(groupID string, adminCIDRs []string) []rule {
	var out []rule
	for _, cidr := range adminCIDRs {
		out = append(out, rule{proto: "tcp", from: 22, to: 22, cidr: cidr, what: "ssh from admins"})
	}
	for _, p := range memberPorts {
		out = append(out, rule{proto: p.Proto, from: p.From, to: p.To, group: groupID, what: p.What})
	}
	return out
}

func (c *Client) syncIngress(ctx context.Context, groupID string, adminCIDRs []string) error {
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
	for _, r := range IngressRules(groupID, adminCIDRs) {
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
	owned, err := c.FindKeyPairs(ctx, swarmID)
	if err != nil {
		return err
	}
	for _, n := range owned {
		if n == name {
			return nil
		}
	}
	_, err = c.ec2.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{
		KeyName:           aws.String(name),
		PublicKeyMaterial: []byte(publicKey),
		TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeKeyPair, tags, TagSwarm, swarmID)},
	})
	if err != nil {
		return fmt.Errorf("import key pair %s: %w", name, err)
	}
	return nil
}

// RunInstance starts the instance for role/index. Its client token makes a
// retried call return the same instance instead of starting a second one.
func (c *Client) RunInstance(ctx context.Context, s Spec, role string, index int) (Instance, error) {
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
		ClientToken:  aws.String(clientToken(s.SwarmID, role, index, s.Attempt)),
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
			// Containers sit one hop behind the instance.
			HttpPutResponseHopLimit: aws.Int32(2),
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

// clientToken is unique per fleet, role, index and attempt (at most 64
// characters): the SDK's retries of one call start one instance, and a node
// started again after a scale-down gets a new instance.
func clientToken(swarmID, role string, index int, attempt string) string {
	t := fmt.Sprintf("%s-%s-%d-%s", swarmID, role, index, attempt)
	if len(t) > 64 {
		t = t[len(t)-64:]
	}
	return t
}
