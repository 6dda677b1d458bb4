package ec2lab

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Network is what a test needs in moto before it launches instances onto a
// lab: a VPC and a subnet with the lab's CIDR, and an SSM parameter naming
// one of moto's AMIs.
type Network struct {
	VPC, Subnet  string
	AMIParameter string
}

// CreateNetwork creates a Network for the lab subnet cidr, with the AMI id
// in SSM parameter amiParameter: Canonical's /aws/service/... parameters
// cannot be written in moto, so a parameter of the caller's stands in.
func CreateNetwork(ctx context.Context, cfg aws.Config, cidr netip.Prefix, amiParameter string) (Network, error) {
	cli := ec2.NewFromConfig(cfg)
	vpc, err := cli.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr.String())})
	if err != nil {
		return Network{}, fmt.Errorf("ec2lab: create VPC %s: %w", cidr, err)
	}
	sub, err := cli.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(cidr.String())})
	if err != nil {
		return Network{}, fmt.Errorf("ec2lab: create subnet %s: %w", cidr, err)
	}
	imgs, err := cli.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	if err != nil {
		return Network{}, fmt.Errorf("ec2lab: describe images: %w", err)
	}
	if len(imgs.Images) == 0 {
		return Network{}, fmt.Errorf("ec2lab: moto lists no AMIs")
	}
	if _, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(amiParameter),
		Value: imgs.Images[0].ImageId, Type: "String"}); err != nil {
		return Network{}, fmt.Errorf("ec2lab: put SSM parameter %s: %w", amiParameter, err)
	}
	return Network{VPC: aws.ToString(vpc.Vpc.VpcId), Subnet: aws.ToString(sub.Subnet.SubnetId), AMIParameter: amiParameter}, nil
}
