package awsfleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// Terminate terminates the instances and waits until they are gone.
// Unknown ids are ignored.
func (c *Client) Terminate(ctx context.Context, ids []string) error {
	live, err := c.Instances(ctx, ids)
	if err != nil {
		return err
	}
	var todo []string
	for _, in := range live {
		if in.State != "terminated" {
			todo = append(todo, in.ID)
		}
	}
	for chunk := range slices.Chunk(todo, 500) {
		if _, err := c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: chunk}); err != nil &&
			errorCode(err) != "InvalidInstanceID.NotFound" {
			return fmt.Errorf("terminate instances %v: %w", chunk, err)
		}
	}
	return c.WaitTerminated(ctx, todo)
}

// DeleteSecurityGroup deletes a group, retrying while terminating
// instances still hold it.
func (c *Client) DeleteSecurityGroup(ctx context.Context, id string) error {
	for {
		_, err := c.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
		switch {
		case err == nil, errorCode(err) == "InvalidGroup.NotFound":
			return nil
		case errorCode(err) != "DependencyViolation":
			return fmt.Errorf("delete security group %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete security group %s: still in use: %w", id, errors.Join(err, ctx.Err()))
		case <-time.After(c.poll):
		}
	}
}

// DeleteKeyPair deletes a key pair the fleet imported.
func (c *Client) DeleteKeyPair(ctx context.Context, name string) error {
	if _, err := c.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(name)}); err != nil &&
		errorCode(err) != "InvalidKeyPair.NotFound" {
		return fmt.Errorf("delete key pair %s: %w", name, err)
	}
	return nil
}

// Sweep removes everything of the fleet: the given instance ids and every
// instance, security group and key pair tagged with swarmID, so that
// leftovers of an interrupted apply go too.
func (c *Client) Sweep(ctx context.Context, swarmID string, instanceIDs []string) error {
	tagged, err := c.FindInstances(ctx, swarmID)
	if err != nil {
		return err
	}
	ids := slices.Clone(instanceIDs)
	for _, in := range tagged {
		ids = append(ids, in.ID)
	}
	slices.Sort(ids)
	if err := c.Terminate(ctx, slices.Compact(ids)); err != nil {
		return err
	}
	groups, err := c.FindSecurityGroups(ctx, swarmID)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if err := c.DeleteSecurityGroup(ctx, g); err != nil {
			return err
		}
	}
	keys, err := c.FindKeyPairs(ctx, swarmID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := c.DeleteKeyPair(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
