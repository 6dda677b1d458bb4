package awsfleet

import (
	"context"
	"slices"
	"sync"

	"github.com/minibroker/terraform-provider-minibroker/internal/parallel"
)

// Slot is one node a fleet should have: an instance of role with index.
type Slot struct {
	Role  string
	Index int
}

// Want is the fleet a swarm asks for.
type Want struct {
	// Spec is shared by every instance. Empty SubnetID picks the default
	// subnet (FindSubnet); empty AMI reads AMIParameter (ResolveAMI);
	// SecurityGroup is the fleet's own and is filled in by Provision;
	// KeyName is filled in when PublicKey is imported.
	Spec
	AMIParameter string
	// PublicKey, when set, is imported as the key pair NamePrefix-SwarmID
	// that the fleet owns.
	PublicKey  string
	AdminCIDRs []string
	// OldTags are the user's tags of an earlier Provision, replaced by
	// Spec.Tags on everything of the fleet; nil on the first one.
	OldTags map[string]string
	Slots   []Slot
}

// Provisioned is what Provision found and made; on failure, as much as
// exists so far.
type Provisioned struct {
	SubnetID, SecurityGroup, AMI, KeyName string
	// Listed is true once the fleet's instances were listed; from then on
	// Instances holds one live instance per wanted slot that has one,
	// sorted (SortInstances). Just started ones may not run yet
	// (WaitRunning).
	Listed    bool
	Instances []Instance
	// Surplus lists instances no slot wants, to terminate once their
	// nodes have left the swarm.
	Surplus []string
	// Touched is true once a call that may create something on EC2 was
	// made: from then on, the fleet's state must be kept even on failure.
	Touched bool
}

// Provision makes the fleet match w: the security group with its rules,
// the key pair, the tags, and one live instance per slot (instances of the
// fleet whose slot is still wanted are kept; missing ones are started,
// concurrently). It does not wait for new instances to run.
func (c *Client) Provision(ctx context.Context, w Want) (Provisioned, error) {
	var p Provisioned
	subnet, err := c.FindSubnet(ctx, w.SubnetID)
	if err != nil {
		return p, err
	}
	p.SubnetID, w.SubnetID = subnet.ID, subnet.ID
	p.Touched = true
	if p.SecurityGroup, err = c.EnsureSecurityGroup(ctx, w.SwarmID, w.NamePrefix, subnet.VpcID, w.AdminCIDRs, w.Tags); err != nil {
		return p, err
	}
	w.SecurityGroup = p.SecurityGroup
	if w.AMI == "" {
		if w.AMI, err = c.ResolveAMI(ctx, w.AMIParameter); err != nil {
			return p, err
		}
	}
	p.AMI = w.AMI
	if w.PublicKey != "" {
		name := w.NamePrefix + "-" + w.SwarmID
		if err := c.ImportKeyPair(ctx, w.SwarmID, name, w.PublicKey, w.Tags); err != nil {
			return p, err
		}
		w.KeyName = name
	}
	p.KeyName = w.KeyName
	if w.OldTags != nil {
		if err := c.Retag(ctx, w.SwarmID, w.OldTags, w.Tags); err != nil {
			return p, err
		}
	}

	existing, err := c.FindInstances(ctx, w.SwarmID)
	if err != nil {
		return p, err
	}
	p.Listed = true
	have := map[Slot]Instance{}
	for _, in := range existing {
		s := Slot{in.Role, in.Index}
		if _, dup := have[s]; in.Alive() && slices.Contains(w.Slots, s) && !dup {
			have[s] = in
		} else {
			p.Surplus = append(p.Surplus, in.ID)
		}
	}
	var missing []Slot
	for _, s := range w.Slots {
		if _, ok := have[s]; !ok {
			missing = append(missing, s)
		}
	}
	var mu sync.Mutex
	err = parallel.ForEach(ctx, runParallel, missing, func(ctx context.Context, s Slot) error {
		in, err := c.RunInstance(ctx, w.Spec, s.Role, s.Index)
		if err != nil {
			return err
		}
		c.log.InfoContext(ctx, LogInstanceStarted, "instance", in.ID, "role", s.Role, "index", s.Index)
		mu.Lock()
		have[s] = in
		mu.Unlock()
		return nil
	})
	for _, in := range have {
		p.Instances = append(p.Instances, in)
	}
	SortInstances(p.Instances)
	return p, err
}

// LogInstanceStarted is logged for every instance Provision starts; the
// benchmarks time the fleet's start by it.
const LogInstanceStarted = "instance started"

// runParallel bounds the RunInstances calls in flight.
const runParallel = 8

// IDs lists the instances' ids.
func IDs(ins []Instance) []string {
	out := make([]string, 0, len(ins))
	for _, in := range ins {
		out = append(out, in.ID)
	}
	return out
}

// Current is what of a fleet is on EC2 now.
type Current struct {
	// Instances are the live instances (pending or running), sorted.
	Instances      []Instance
	SecurityGroups []string
}

// Current finds the live instances of the fleet, those with the ids given
// (as recorded earlier) and those tagged with swarmID, and its security
// groups.
func (c *Client) Current(ctx context.Context, swarmID string, ids []string) (Current, error) {
	var cur Current
	known, err := c.Instances(ctx, ids)
	if err != nil {
		return cur, err
	}
	tagged, err := c.FindInstances(ctx, swarmID)
	if err != nil {
		return cur, err
	}
	if cur.SecurityGroups, err = c.FindSecurityGroups(ctx, swarmID); err != nil {
		return cur, err
	}
	seen := map[string]bool{}
	for _, in := range append(known, tagged...) {
		if !seen[in.ID] && in.Alive() {
			seen[in.ID] = true
			cur.Instances = append(cur.Instances, in)
		}
	}
	SortInstances(cur.Instances)
	return cur, nil
}
