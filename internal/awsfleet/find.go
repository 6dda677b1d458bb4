package awsfleet

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// FindInstances returns the fleet's instances that are not terminated,
// ordered by role and index.
func (c *Client) FindInstances(ctx context.Context, swarmID string) ([]Instance, error) {
	return c.describe(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		tagFilter(TagSwarm, swarmID),
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "shutting-down", "stopping", "stopped"}},
	}})
}

// Instances describes the given instances; ones EC2 no longer knows are
// left out.
func (c *Client) Instances(ctx context.Context, ids []string) ([]Instance, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// Filtering by id, unlike InstanceIds, tolerates unknown ids.
	return c.describe(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-id"), Values: ids}}})
}

func (c *Client) describe(ctx context.Context, in *ec2.DescribeInstancesInput) ([]Instance, error) {
	var out []Instance
	p := ec2.NewDescribeInstancesPaginator(c.ec2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				out = append(out, fromEC2(in))
			}
		}
	}
	SortInstances(out)
	return out, nil
}

// SortInstances orders instances by role (as swarmspec.Roles lists them),
// then index, then id.
func SortInstances(is []Instance) {
	sort.SliceStable(is, func(a, b int) bool {
		x, y := is[a], is[b]
		if x.Role != y.Role {
			return slices.Index(swarmspec.Roles, x.Role) < slices.Index(swarmspec.Roles, y.Role)
		}
		if x.Index != y.Index {
			return x.Index < y.Index
		}
		return x.ID < y.ID
	})
}

// Subnet is a subnet and its VPC.
type Subnet struct {
	ID, VpcID, CIDR, AZ string
}

// FindSubnet looks up a subnet by id; with an empty id it picks the
// default VPC's default subnet in the first availability zone.
func (c *Client) FindSubnet(ctx context.Context, id string) (Subnet, error) {
	in := &ec2.DescribeSubnetsInput{}
	if id != "" {
		in.SubnetIds = []string{id}
	} else {
		in.Filters = []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}
	}
	out, err := c.ec2.DescribeSubnets(ctx, in)
	if err != nil {
		if id != "" {
			return Subnet{}, fmt.Errorf("subnet %s: %w", id, err)
		}
		return Subnet{}, fmt.Errorf("find the default subnet: %w", err)
	}
	if len(out.Subnets) == 0 {
		if id != "" {
			return Subnet{}, fmt.Errorf("subnet %s not found", id)
		}
		return Subnet{}, fmt.Errorf("the region has no default VPC with a default subnet: set aws.subnet_id")
	}
	subs := out.Subnets
	slices.SortFunc(subs, func(a, b ec2types.Subnet) int {
		if c := cmp.Compare(aws.ToString(a.AvailabilityZone), aws.ToString(b.AvailabilityZone)); c != 0 {
			return c
		}
		return cmp.Compare(aws.ToString(a.SubnetId), aws.ToString(b.SubnetId))
	})
	s := subs[0]
	return Subnet{ID: aws.ToString(s.SubnetId), VpcID: aws.ToString(s.VpcId), CIDR: aws.ToString(s.CidrBlock),
		AZ: aws.ToString(s.AvailabilityZone)}, nil
}

// ResolveAMI reads an AMI id from an SSM parameter such as
// DefaultAMIParameter.
func (c *Client) ResolveAMI(ctx context.Context, parameter string) (string, error) {
	out, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(parameter)})
	if err != nil {
		return "", fmt.Errorf("read the AMI id from SSM parameter %s: %w", parameter, err)
	}
	if out.Parameter == nil || aws.ToString(out.Parameter.Value) == "" {
		return "", fmt.Errorf("SSM parameter %s is empty", parameter)
	}
	return aws.ToString(out.Parameter.Value), nil
}

// rootDevice returns the device name of an AMI's root volume.
func (c *Client) rootDevice(ctx context.Context, ami string) (string, error) {
	out, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{ami}})
	if err != nil {
		return "", fmt.Errorf("describe AMI %s: %w", ami, err)
	}
	if len(out.Images) == 0 {
		return "", fmt.Errorf("AMI %s not found in this region", ami)
	}
	dev := aws.ToString(out.Images[0].RootDeviceName)
	if dev == "" {
		return "", fmt.Errorf("AMI %s has no root device name", ami)
	}
	return dev, nil
}

// FindSecurityGroups returns the ids of the fleet's security groups.
func (c *Client) FindSecurityGroups(ctx context.Context, swarmID string) ([]string, error) {
	groups, err := c.securityGroups(ctx, swarmID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, g := range groups {
		ids = append(ids, aws.ToString(g.GroupId))
	}
	return ids, nil
}

// securityGroups returns the fleet's security groups, with their tags.
func (c *Client) securityGroups(ctx context.Context, swarmID string) ([]ec2types.SecurityGroup, error) {
	out, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{tagFilter(TagSwarm, swarmID)}})
	if err != nil {
		return nil, fmt.Errorf("describe security groups: %w", err)
	}
	return out.SecurityGroups, nil
}

// FindKeyPairs returns the names of the key pairs the fleet imported.
func (c *Client) FindKeyPairs(ctx context.Context, swarmID string) ([]string, error) {
	keys, err := c.keyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{tagFilter(TagSwarm, swarmID)}})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, k := range keys {
		names = append(names, aws.ToString(k.KeyName))
	}
	return names, nil
}

// keyPairs describes key pairs with their public keys; a name that is not
// there is no error.
func (c *Client) keyPairs(ctx context.Context, in *ec2.DescribeKeyPairsInput) ([]ec2types.KeyPairInfo, error) {
	in.IncludePublicKey = aws.Bool(true)
	out, err := c.ec2.DescribeKeyPairs(ctx, in)
	switch {
	case errorCode(err) == "InvalidKeyPair.NotFound":
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("describe key pairs: %w", err)
	}
	return out.KeyPairs, nil
}
