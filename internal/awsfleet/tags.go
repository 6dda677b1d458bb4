package awsfleet

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Retag changes the user's tags on everything of the fleet (instances,
// their volumes, the security group and key pairs) from old to tags. The
// fleet's own tags are never touched.
func (c *Client) Retag(ctx context.Context, swarmID string, old, tags map[string]string) error {
	var set []ec2types.Tag
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if v, ok := old[k]; !ok || v != tags[k] {
			set = append(set, ec2types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
	}
	var unset []ec2types.Tag
	for _, k := range slices.Sorted(maps.Keys(old)) {
		if _, ok := tags[k]; !ok {
			unset = append(unset, ec2types.Tag{Key: aws.String(k)})
		}
	}
	if len(set) == 0 && len(unset) == 0 {
		return nil
	}
	ids, err := c.taggedResources(ctx, swarmID)
	if err != nil {
		return err
	}
	for chunk := range slices.Chunk(ids, 200) {
		if len(set) > 0 {
			if _, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: chunk, Tags: set}); err != nil {
				return fmt.Errorf("tag %v: %w", chunk, err)
			}
		}
		if len(unset) > 0 {
			if _, err := c.ec2.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: chunk, Tags: unset}); err != nil {
				return fmt.Errorf("untag %v: %w", chunk, err)
			}
		}
	}
	return nil
}

// taggedResources lists the ids of everything tagged with swarmID.
func (c *Client) taggedResources(ctx context.Context, swarmID string) ([]string, error) {
	var ids []string
	p := ec2.NewDescribeTagsPaginator(c.ec2, &ec2.DescribeTagsInput{Filters: []ec2types.Filter{
		{Name: aws.String("key"), Values: []string{TagSwarm}},
		{Name: aws.String("value"), Values: []string{swarmID}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe tags: %w", err)
		}
		for _, t := range page.Tags {
			ids = append(ids, aws.ToString(t.ResourceId))
		}
	}
	return ids, nil
}

// MarkCreated marks the fleet as one whose create finished (TagCreated on
// its security group): from then on a create with its identity refuses it
// instead of adopting it (Want.Fresh).
func (c *Client) MarkCreated(ctx context.Context, swarmID string) error {
	groups, err := c.FindSecurityGroups(ctx, swarmID)
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		return fmt.Errorf("swarm %s has no security group (tagged %s=%s) to mark as created", swarmID, TagSwarm, swarmID)
	}
	if _, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: groups, Tags: []ec2types.Tag{
		{Key: aws.String(TagCreated), Value: aws.String(time.Now().UTC().Format(time.RFC3339))}}}); err != nil {
		return fmt.Errorf("mark swarm %s as created (tag %v): %w", swarmID, groups, err)
	}
	return nil
}
