package awsfleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

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
	PublicKey string
	// AdminCIDRs may reach SSH, ConsumerCIDRs the mirrors' external
	// Kafka listener (see Ingress).
	AdminCIDRs, ConsumerCIDRs []string
	// OldTags are the user's tags of an earlier Provision, replaced by
	// Spec.Tags on everything of the fleet; nil on the first one.
	OldTags map[string]string
	Slots   []Slot
	// Fresh is true when the swarm is being created. What carries its
	// identity (Spec.SwarmID, see Identity) is then what an interrupted
	// create left, and is adopted: the security group, the key pair, and
	// the live instances of wanted slots that are what this create would
	// start (type, AMI, subnet, key pair); other ones are surplus. A fleet
	// marked created (MarkCreated) is refused with a *TakenError, and
	// nothing of it is touched.
	Fresh bool
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
	// Adopted lists the instances a fresh Provision found, left by an
	// interrupted create, and kept.
	Adopted []string
	// Touched is true once a call that may create something on EC2 was
	// made: from then on, the fleet's state must be kept even on failure.
	Touched bool
}

// Provision makes the fleet match w: the security group with its rules,
// the key pair, the tags, and one live instance per slot (instances of the
// fleet whose slot is still wanted are kept, or adopted when w.Fresh;
// missing ones are started, concurrently). It does not wait for new
// instances to run.
func (c *Client) Provision(ctx context.Context, w Want) (Provisioned, error) {
	var p Provisioned
	subnet, err := c.FindSubnet(ctx, w.SubnetID)
	if err != nil {
		return p, err
	}
	p.SubnetID, w.SubnetID = subnet.ID, subnet.ID
	p.Touched = true
	if p.SecurityGroup, err = c.ensureGroup(ctx, w.SwarmID, w.NamePrefix, subnet.VpcID, Ingress{AdminCIDRs: w.AdminCIDRs, ConsumerCIDRs: w.ConsumerCIDRs}, w.Tags, w.Fresh); err != nil {
		// Refused before anything was created: nothing to keep.
		var taken *TakenError
		if errors.As(err, &taken) {
			taken.SubnetID, taken.Name = subnet.ID, w.NamePrefix
			if live, ferr := c.FindInstances(ctx, w.SwarmID); ferr == nil {
				for _, in := range live {
					if in.Alive() {
						taken.Instances = append(taken.Instances, in.ID)
					}
				}
			}
		}
		p.Touched = !errors.As(err, &taken) && !errors.As(err, new(untouched))
		return p, err
	}
	w.SecurityGroup = p.SecurityGroup
	if w.AMI == "" {
		if w.AMI, err = c.ResolveAMI(ctx, w.AMIParameter); err != nil {
			return p, err
		}
	}
	p.AMI = w.AMI
	keyReplaced := false
	if w.PublicKey != "" {
		name := w.NamePrefix + "-" + w.SwarmID
		if keyReplaced, err = c.importKey(ctx, w.SwarmID, name, w.PublicKey, w.Tags, w.Fresh); err != nil {
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
		_, dup := have[s]
		keep := in.Alive() && slices.Contains(w.Slots, s) && !dup
		if keep && w.Fresh {
			if why := mismatch(in, w.Spec, keyReplaced); why != "" {
				c.log.InfoContext(ctx, "not adopting an instance an interrupted apply left", "instance", in.ID, "why", why)
				keep = false
			} else {
				c.log.InfoContext(ctx, LogAdopted, "instance", in.ID, "role", in.Role, "index", in.Index)
				p.Adopted = append(p.Adopted, in.ID)
			}
		}
		if keep {
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
		in, err := c.launch(ctx, w.Spec, s)
		if in.ID != "" {
			mu.Lock()
			have[s] = in
			mu.Unlock()
		}
		if err != nil {
			return err
		}
		c.log.InfoContext(ctx, LogInstanceStarted, "instance", in.ID, "role", s.Role, "index", s.Index)
		return nil
	})
	for _, in := range have {
		p.Instances = append(p.Instances, in)
	}
	SortInstances(p.Instances)
	return p, err
}

// mismatch says why an instance an interrupted create left is not what
// this create would start ("" if it is).
func mismatch(in Instance, s Spec, keyReplaced bool) string {
	switch {
	case in.Type != s.InstanceType:
		return fmt.Sprintf("instance type %s, not %s", in.Type, s.InstanceType)
	case in.AMI != s.AMI:
		return fmt.Sprintf("AMI %s, not %s", in.AMI, s.AMI)
	case in.SubnetID != s.SubnetID:
		return fmt.Sprintf("subnet %s, not %s", in.SubnetID, s.SubnetID)
	case in.KeyName != s.KeyName:
		return fmt.Sprintf("key pair %q, not %q", in.KeyName, s.KeyName)
	case keyReplaced:
		return "launched with another public key"
	}
	return ""
}

// launch starts the instance of slot s with the slot's first client token;
// while EC2 answers with an instance that has ended since (an earlier
// instance of the slot had that token) or refuses the token for other
// parameters, it tries the next one. The walk is the same in every apply,
// so the next apply after a killed one gets the instance the killed one
// started. An instance started but not yet confirmed comes with the error.
func (c *Client) launch(ctx context.Context, spec Spec, s Slot) (Instance, error) {
	for n := range maxLaunches {
		in, err := c.RunInstance(ctx, spec, s.Role, s.Index, n)
		if errorCode(err) == "IdempotentParameterMismatch" {
			continue
		}
		if err != nil {
			return Instance{}, err
		}
		now, err := c.Instances(ctx, []string{in.ID})
		if err != nil {
			return in, err
		}
		if current, ok := ended(in, now, time.Now()); !ok {
			return current, nil
		}
	}
	return Instance{}, fmt.Errorf("run instance %s-%s-%d: the first %d client tokens of the slot were all used by earlier instances",
		spec.NamePrefix, s.Role, s.Index, maxLaunches)
}

// ended reports whether the instance RunInstances returned has ended
// since, given what DescribeInstances lists of it now; else it returns the
// instance as best known. One not listed is new (EC2 lists a new instance
// after a moment) unless it was launched long ago: EC2 lists a terminated
// instance for about an hour, but remembers its client token for longer.
func ended(in Instance, listed []Instance, now time.Time) (Instance, bool) {
	if len(listed) == 0 {
		return in, !in.Launched.IsZero() && now.Sub(in.Launched) > unlistedAfter
	}
	return listed[0], !listed[0].Alive()
}

// unlistedAfter is how long after its launch an instance EC2 does not list
// is taken for one that has ended (rather than one not listed yet); it
// leaves room for clock skew.
const unlistedAfter = 10 * time.Minute

// maxLaunches bounds the client tokens tried for one slot.
const maxLaunches = 32

// LogAdopted is logged for every instance (and a security group) a create
// adopts from an interrupted one.
const LogAdopted = "adopted from an interrupted apply"

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
