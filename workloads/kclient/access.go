package kclient

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
)

// ScramIterations is the PBKDF2 iteration count of the SCRAM credentials
// ApplyAccess sets (Kafka accepts 4096 to 16384).
const ScramIterations = 8192

// AccessChanges is what ApplyAccess changed on one cluster.
type AccessChanges struct {
	Bootstrap                string
	UsersSet, UsersRemoved   []string
	ACLsCreated, ACLsRemoved int
}

// ApplyAccess makes each cluster of the plan hold exactly the plan's
// users and grants for names starting with plan.Owner (see access.Plan),
// connecting with conn (librdkafka settings of a super user). Passwords
// are set every time, so applying a plan also rotates them.
func ApplyAccess(ctx context.Context, plan access.Plan, conn map[string]string) ([]AccessChanges, error) {
	if err := plan.Check(); err != nil {
		return nil, err
	}
	var out []AccessChanges
	for _, c := range plan.Clusters {
		ch, err := applyCluster(ctx, plan.Owner, c, conn)
		out = append(out, ch)
		if err != nil {
			return out, fmt.Errorf("access for %s on %s: %w", plan.Owner, c.Bootstrap, err)
		}
	}
	return out, nil
}

func applyCluster(ctx context.Context, owner string, c access.ClusterPlan, conn map[string]string) (AccessChanges, error) {
	ch := AccessChanges{Bootstrap: c.Bootstrap}
	opts, err := FranzOpts(c.Bootstrap, conn)
	if err != nil {
		return ch, err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return ch, err
	}
	defer cl.Close()
	ad := kadm.NewClient(cl)

	// Users: set every listed one, remove the owner's others.
	have, err := ad.DescribeUserSCRAMs(ctx)
	if err == nil {
		err = have.Error()
	}
	if err != nil {
		return ch, fmt.Errorf("list SCRAM users: %w", err)
	}
	want := map[string]bool{}
	var upserts []kadm.UpsertSCRAM
	for _, u := range c.Users {
		want[u.Name] = true
		upserts = append(upserts, kadm.UpsertSCRAM{User: u.Name, Mechanism: kadm.ScramSha512, Iterations: ScramIterations, Password: u.Password})
		ch.UsersSet = append(ch.UsersSet, u.Name)
	}
	var dels []kadm.DeleteSCRAM
	for name, d := range have {
		if !strings.HasPrefix(name, owner) || want[name] {
			continue
		}
		for _, info := range d.CredInfos {
			dels = append(dels, kadm.DeleteSCRAM{User: name, Mechanism: info.Mechanism})
		}
		ch.UsersRemoved = append(ch.UsersRemoved, name)
	}
	sort.Strings(ch.UsersRemoved)
	if len(upserts)+len(dels) > 0 {
		res, err := ad.AlterUserSCRAMs(ctx, dels, upserts)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			return ch, fmt.Errorf("set SCRAM users: %w", err)
		}
	}

	// ACLs of the owner's principals: create what is missing, remove the rest.
	existing, err := describeACLs(ctx, cl)
	if err != nil {
		return ch, err
	}
	desired := map[aclEntry]bool{}
	for _, u := range c.Users {
		for _, g := range u.Grants {
			for _, op := range g.Operations {
				e, err := newACLEntry(u.Name, g, op)
				if err != nil {
					return ch, fmt.Errorf("user %q: %w", u.Name, err)
				}
				desired[e] = true
			}
		}
	}
	var stale []aclEntry
	for _, e := range existing {
		if strings.HasPrefix(e.Principal, "User:"+owner) && !desired[e] {
			stale = append(stale, e)
		}
		delete(desired, e)
	}
	if err := deleteACLs(ctx, cl, stale); err != nil {
		return ch, err
	}
	ch.ACLsRemoved = len(stale)
	var create []aclEntry
	for e := range desired {
		create = append(create, e)
	}
	if err := createACLs(ctx, cl, create); err != nil {
		return ch, err
	}
	ch.ACLsCreated = len(create)
	return ch, nil
}

// aclEntry is one allow binding, comparable so plans and brokers can be
// diffed.
type aclEntry struct {
	Type      kmsg.ACLResourceType
	Name      string
	Pattern   kmsg.ACLResourcePatternType
	Principal string
	Operation kmsg.ACLOperation
}

var (
	resourceTypes = map[string]kmsg.ACLResourceType{
		access.Topic: kmsg.ACLResourceTypeTopic, access.Group: kmsg.ACLResourceTypeGroup,
		access.TransactionalID: kmsg.ACLResourceTypeTransactionalId, access.Cluster: kmsg.ACLResourceTypeCluster,
	}
	operations = map[string]kmsg.ACLOperation{
		access.Read: kmsg.ACLOperationRead, access.Write: kmsg.ACLOperationWrite, access.Create: kmsg.ACLOperationCreate,
		access.Describe: kmsg.ACLOperationDescribe, access.DescribeConfigs: kmsg.ACLOperationDescribeConfigs,
		access.AlterConfigs: kmsg.ACLOperationAlterConfigs, access.ClusterAction: kmsg.ACLOperationClusterAction,
		access.Alter: kmsg.ACLOperationAlter, access.All: kmsg.ACLOperationAll,
	}
)

func newACLEntry(user string, g access.Grant, op string) (aclEntry, error) {
	rt, ok := resourceTypes[g.Resource]
	if !ok {
		return aclEntry{}, fmt.Errorf("unknown resource type %q", g.Resource)
	}
	o, ok := operations[op]
	if !ok {
		return aclEntry{}, fmt.Errorf("unknown operation %q on %s %q", op, g.Resource, g.Name)
	}
	pattern := kmsg.ACLResourcePatternTypeLiteral
	if g.Pattern == access.Prefixed {
		pattern = kmsg.ACLResourcePatternTypePrefixed
	}
	return aclEntry{Type: rt, Name: g.Name, Pattern: pattern, Principal: "User:" + user, Operation: o}, nil
}

// describeACLs returns every allow binding for any host "*" on the cluster.
func describeACLs(ctx context.Context, cl *kgo.Client) ([]aclEntry, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType = kmsg.ACLResourceTypeAny
	req.ResourcePatternType = kmsg.ACLResourcePatternTypeAny
	req.Operation = kmsg.ACLOperationAny
	req.PermissionType = kmsg.ACLPermissionTypeAllow
	resp, err := req.RequestWith(ctx, cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return nil, fmt.Errorf("describe ACLs: %w", err)
	}
	var out []aclEntry
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			if a.Host != "*" {
				continue
			}
			out = append(out, aclEntry{Type: r.ResourceType, Name: r.ResourceName, Pattern: r.ResourcePatternType,
				Principal: a.Principal, Operation: a.Operation})
		}
	}
	return out, nil
}

func createACLs(ctx context.Context, cl *kgo.Client, es []aclEntry) error {
	if len(es) == 0 {
		return nil
	}
	req := kmsg.NewPtrCreateACLsRequest()
	for _, e := range es {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = e.Type, e.Name, e.Pattern
		c.Principal, c.Host, c.Operation, c.PermissionType = e.Principal, "*", e.Operation, kmsg.ACLPermissionTypeAllow
		req.Creations = append(req.Creations, c)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create ACLs: %w", err)
	}
	var errs []error
	for i, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			errs = append(errs, fmt.Errorf("create ACL %+v: %w (%s)", es[i], err, deref(r.ErrorMessage)))
		}
	}
	return errors.Join(errs...)
}

func deleteACLs(ctx context.Context, cl *kgo.Client, es []aclEntry) error {
	if len(es) == 0 {
		return nil
	}
	req := kmsg.NewPtrDeleteACLsRequest()
	for _, e := range es {
		f := kmsg.NewDeleteACLsRequestFilter()
		name, principal, host := e.Name, e.Principal, "*"
		f.ResourceType, f.ResourceName, f.ResourcePatternType = e.Type, &name, e.Pattern
		f.Principal, f.Host, f.Operation, f.PermissionType = &principal, &host, e.Operation, kmsg.ACLPermissionTypeAllow
		req.Filters = append(req.Filters, f)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("delete ACLs: %w", err)
	}
	var errs []error
	for i, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			errs = append(errs, fmt.Errorf("delete ACL %+v: %w (%s)", es[i], err, deref(r.ErrorMessage)))
		}
	}
	return errors.Join(errs...)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
