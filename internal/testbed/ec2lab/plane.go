package ec2lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

// Options configures Start.
type Options struct {
	// EC2 is a client of the moto server that plays EC2 (required).
	EC2 *ec2.Client
	// Lab is where nodes are added (required). The Plane never closes it.
	Lab *lab.Lab
	// SubnetID is the moto subnet to watch (required); its CIDR must lie
	// within Lab.Subnet().
	SubnetID string
	// Unreachable, if set, picks instances that must never answer: they get
	// no node.
	Unreachable func(types.Instance) bool
	// Poll is the interval between two DescribeInstances calls; default
	// 300 ms.
	Poll time.Duration
	// Parallel is how many nodes may be coming up at once; default 4.
	Parallel int
	// LogWriter, if set, receives one line per event.
	LogWriter io.Writer
}

// Status is where an instance stands with the Plane.
type Status string

const (
	StatusNoNode      Status = "no-node"     // not (or no longer) meant to have a node
	StatusStarting    Status = "starting"    // its node is being added
	StatusUp          Status = "up"          // its node runs
	StatusRemoving    Status = "removing"    // its node is being removed
	StatusUnreachable Status = "unreachable" // Options.Unreachable picked it: no node
	StatusFailed      Status = "failed"      // adding its node failed; not retried
)

// Instance is what the Plane knows of one instance of the subnet.
type Instance struct {
	ID string
	// State is the instance's state at the last poll ("gone" once moto no
	// longer lists it).
	State types.InstanceStateName
	// Addr is the instance's private IP (invalid if moto gave none).
	Addr   netip.Addr
	Status Status
	// Node is the lab node, set while Status is StatusUp or StatusRemoving.
	Node *lab.Node
	// Err is why bringing up the node failed (StatusFailed).
	Err error

	waitsFor string // the instance whose node holds Addr, while waiting for it
}

// stateGone is the State of an instance that moto no longer lists.
const stateGone types.InstanceStateName = "gone"

// EventKind says what happened.
type EventKind string

const (
	EventNodeAdded    EventKind = "node-added"
	EventNodeRemoved  EventKind = "node-removed"
	EventUnreachable  EventKind = "unreachable" // an instance got no node on purpose
	EventFailed       EventKind = "failed"      // adding or removing a node failed
	EventPollFailed   EventKind = "poll-failed" // DescribeInstances failed
	EventNoKeyPair    EventKind = "no-key-pair" // an instance without KeyName: its node takes the lab's key
	EventAddrConflict EventKind = "addr-wait"   // a new instance waits for the node at its address to go
)

// Event is one entry of the Plane's log.
type Event struct {
	Time       time.Time
	Kind       EventKind
	InstanceID string // empty for EventPollFailed
	Addr       netip.Addr
	Detail     string
}

func (e Event) String() string {
	s := fmt.Sprintf("%s %s", e.Time.Format("15:04:05.000"), e.Kind)
	if e.InstanceID != "" {
		s += " " + e.InstanceID
	}
	if e.Addr.IsValid() {
		s += " " + e.Addr.String()
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Plane watches one moto subnet and keeps a lab node per running instance.
type Plane struct {
	opts   Options
	subnet netip.Prefix // the moto subnet's CIDR
	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{} // asks the watcher for an early poll
	sem    chan struct{} // limits concurrent AddNode calls
	wg     sync.WaitGroup

	mu        sync.Mutex
	instances map[string]*Instance
	events    []Event
	errs      []error
	polls     uint64        // completed polls
	changed   chan struct{} // closed (and replaced) on every change

	closeOnce sync.Once
}

// Start checks the subnet and starts watching it. The first poll happens at
// once, in the background. Close stops watching.
func Start(ctx context.Context, opts Options) (*Plane, error) {
	if opts.EC2 == nil || opts.Lab == nil || opts.SubnetID == "" {
		return nil, errors.New("ec2lab: Options.EC2, Lab and SubnetID are required")
	}
	if opts.Poll <= 0 {
		opts.Poll = 300 * time.Millisecond
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	out, err := opts.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{opts.SubnetID}})
	if err != nil {
		return nil, fmt.Errorf("ec2lab: describe subnet %s: %w", opts.SubnetID, err)
	}
	if len(out.Subnets) != 1 {
		return nil, fmt.Errorf("ec2lab: describe subnet %s: got %d subnets", opts.SubnetID, len(out.Subnets))
	}
	cidr := aws.ToString(out.Subnets[0].CidrBlock)
	subnet, err := netip.ParsePrefix(cidr)
	if err != nil {
		return nil, fmt.Errorf("ec2lab: subnet %s has CIDR %q: %w", opts.SubnetID, cidr, err)
	}
	labNet := opts.Lab.Subnet()
	if subnet.Bits() < labNet.Bits() || !labNet.Contains(subnet.Addr()) {
		return nil, fmt.Errorf("ec2lab: subnet %s is %s, which is not within the lab's %s: create it with the lab's CIDR", opts.SubnetID, subnet, labNet)
	}

	// The watcher outlives Start's ctx: it runs until Close.
	wctx, cancel := context.WithCancel(context.Background())
	p := &Plane{
		opts:      opts,
		subnet:    subnet,
		ctx:       wctx,
		cancel:    cancel,
		kick:      make(chan struct{}, 1),
		sem:       make(chan struct{}, opts.Parallel),
		instances: map[string]*Instance{},
		changed:   make(chan struct{}),
	}
	p.wg.Add(1)
	go p.watch()
	return p, nil
}

// Close stops watching and waits for nodes being added or removed. Nodes
// stay in the lab (closing the lab removes them). It is safe to call more
// than once.
func (p *Plane) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.wg.Wait()
	})
	return nil
}

// Err returns every failure so far (adding or removing a node, polling), or
// nil.
func (p *Plane) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return errors.Join(p.errs...)
}

// Events returns a copy of the log of what happened, oldest first.
func (p *Plane) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// Instances returns what the Plane knows of every instance it has seen,
// sorted by id.
func (p *Plane) Instances() []Instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Instance, 0, len(p.instances))
	for _, in := range p.instances {
		c := *in
		if in.Node != nil {
			nd := *in.Node
			c.Node = &nd
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Nodes returns the running nodes by instance id.
func (p *Plane) Nodes() map[string]lab.Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]lab.Node{}
	for id, in := range p.instances {
		if in.Status == StatusUp {
			out[id] = *in.Node
		}
	}
	return out
}

// Sync waits until a poll that began after the call has been handled, so
// that every instance moto listed at the call has been seen (its node may
// still be coming up). A failed poll counts too: check Err.
func (p *Plane) Sync(ctx context.Context) error {
	p.mu.Lock()
	target := p.polls + 2 // the poll under way may have begun before the call
	p.mu.Unlock()
	p.poke()
	return p.waitUntil(ctx, "a full poll", func() (bool, error) { return p.polls >= target, nil })
}

// WaitNode waits until the instance's node is up and returns it. It fails at
// once if bringing the node up failed or the instance is unreachable.
func (p *Plane) WaitNode(ctx context.Context, instanceID string) (lab.Node, error) {
	var node lab.Node
	err := p.waitUntil(ctx, "node of "+instanceID, func() (bool, error) {
		in := p.instances[instanceID]
		switch {
		case in == nil:
			return false, nil
		case in.Status == StatusUp:
			node = *in.Node
			return true, nil
		case in.Status == StatusFailed:
			return false, fmt.Errorf("ec2lab: node of %s: %w", instanceID, in.Err)
		case in.Status == StatusUnreachable:
			return false, fmt.Errorf("ec2lab: %s is unreachable: it gets no node", instanceID)
		}
		return false, nil
	})
	return node, err
}

// WaitNoNode waits until the instance has no node (nor one coming up or
// going).
func (p *Plane) WaitNoNode(ctx context.Context, instanceID string) error {
	return p.waitUntil(ctx, "no node for "+instanceID, func() (bool, error) {
		in := p.instances[instanceID]
		if in == nil {
			return true, nil
		}
		switch in.Status {
		case StatusStarting, StatusUp, StatusRemoving:
			return false, nil
		}
		return true, nil
	})
}

// waitUntil calls cond (under p.mu) after every change until it is true or
// fails, or ctx ends.
func (p *Plane) waitUntil(ctx context.Context, what string, cond func() (bool, error)) error {
	for {
		p.mu.Lock()
		ok, err := cond()
		changed := p.changed
		p.mu.Unlock()
		if ok || err != nil {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("ec2lab: wait for %s: %w", what, ctx.Err())
		case <-p.ctx.Done():
			return fmt.Errorf("ec2lab: wait for %s: plane closed", what)
		}
	}
}

// notifyLocked wakes every waiter; p.mu must be held.
func (p *Plane) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Plane) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// eventLocked records an event (and, for failures, an error); p.mu must be
// held.
func (p *Plane) eventLocked(kind EventKind, id string, addr netip.Addr, detail string) {
	e := Event{Time: time.Now(), Kind: kind, InstanceID: id, Addr: addr, Detail: detail}
	p.events = append(p.events, e)
	if p.opts.LogWriter != nil {
		fmt.Fprintf(p.opts.LogWriter, "ec2lab: %s\n", e)
	}
}

func (p *Plane) failLocked(kind EventKind, id string, addr netip.Addr, err error) {
	p.eventLocked(kind, id, addr, err.Error())
	p.errs = append(p.errs, err)
}

// watch polls until Close.
func (p *Plane) watch() {
	defer p.wg.Done()
	t := time.NewTicker(p.opts.Poll)
	defer t.Stop()
	for {
		p.poll()
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
	}
}

// poll lists the subnet's instances once and starts whatever node additions
// and removals that calls for.
func (p *Plane) poll() {
	listed, err := p.describe()
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.notifyLocked()
	defer func() { p.polls++ }()
	if err != nil {
		if p.ctx.Err() == nil {
			p.failLocked(EventPollFailed, "", netip.Addr{}, fmt.Errorf("ec2lab: poll subnet %s: %w", p.opts.SubnetID, err))
		}
		return
	}

	// Removals first, so that their addresses free up for additions.
	for id, in := range p.instances {
		inst, ok := listed[id]
		if !ok {
			in.State = stateGone
		} else {
			in.State = inst.State.Name
		}
		if in.Status == StatusUp && !wantsNode(in.State) {
			in.Status = StatusRemoving
			p.wg.Add(1)
			go p.removeNode(id, in.Addr, *in.Node)
		}
	}

	ids := make([]string, 0, len(listed))
	for id := range listed {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic order of additions and events
	for _, id := range ids {
		inst := listed[id]
		in := p.instances[id]
		if in == nil {
			in = &Instance{ID: id, State: inst.State.Name, Status: StatusNoNode}
			p.instances[id] = in
		}
		if a, err := netip.ParseAddr(aws.ToString(inst.PrivateIpAddress)); err == nil {
			in.Addr = a
		}
		if !wantsNode(in.State) {
			if in.Status == StatusUnreachable {
				in.Status = StatusNoNode
			}
			continue
		}
		if in.Status != StatusNoNode && in.Status != StatusUnreachable {
			continue // starting, up, removing (its state flipped back) or failed
		}
		if p.opts.Unreachable != nil && p.opts.Unreachable(inst) {
			if in.Status != StatusUnreachable {
				in.Status = StatusUnreachable
				p.eventLocked(EventUnreachable, id, in.Addr, "Options.Unreachable: no node")
			}
			continue
		}
		if err := p.checkAddr(in.Addr); err != nil {
			in.Status, in.Err = StatusFailed, err
			p.failLocked(EventFailed, id, in.Addr, fmt.Errorf("ec2lab: instance %s: %w", id, err))
			continue
		}
		if holder := p.holderLocked(in.Addr, id); holder != "" {
			if in.waitsFor != holder {
				p.eventLocked(EventAddrConflict, id, in.Addr, "the node of "+holder+" still holds the address")
			}
			in.waitsFor = holder
			continue
		}
		in.Status, in.waitsFor = StatusStarting, ""
		p.wg.Add(1)
		go p.addNode(id, in.Addr, aws.ToString(inst.KeyName))
	}
}

// describe returns the subnet's instances by id.
func (p *Plane) describe() (map[string]types.Instance, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	in := &ec2.DescribeInstancesInput{
		Filters: []types.Filter{{Name: aws.String("subnet-id"), Values: []string{p.opts.SubnetID}}},
	}
	listed := map[string]types.Instance{}
	pages := ec2.NewDescribeInstancesPaginator(p.opts.EC2, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range out.Reservations {
			for _, inst := range r.Instances {
				// The filter should see to it; moto's filters are its own.
				if aws.ToString(inst.SubnetId) != p.opts.SubnetID || inst.State == nil {
					continue
				}
				listed[aws.ToString(inst.InstanceId)] = inst
			}
		}
	}
	return listed, nil
}

// wantsNode reports whether an instance in state s should have a node.
func wantsNode(s types.InstanceStateName) bool {
	return s == types.InstanceStateNamePending || s == types.InstanceStateNameRunning
}

// checkAddr refuses an address a lab node cannot have.
func (p *Plane) checkAddr(a netip.Addr) error {
	labNet := p.opts.Lab.Subnet()
	switch {
	case !a.IsValid():
		return errors.New("no private IP address")
	case !a.Is4():
		return fmt.Errorf("private IP %s is not IPv4", a)
	case !labNet.Contains(a):
		return fmt.Errorf("private IP %s is outside the lab's %s", a, labNet)
	case a == p.opts.Lab.Gateway():
		return fmt.Errorf("private IP %s is the lab's gateway (the host's bridge address)", a)
	case a == labNet.Masked().Addr():
		return fmt.Errorf("private IP %s is the network address of %s", a, labNet)
	case a == lastAddr(labNet):
		return fmt.Errorf("private IP %s is the broadcast address of %s", a, labNet)
	}
	return nil
}

// lastAddr returns the highest address of an IPv4 prefix.
func lastAddr(pfx netip.Prefix) netip.Addr {
	b := pfx.Masked().Addr().As4()
	host := uint32(1)<<(32-pfx.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// holderLocked returns the id of another instance whose node has, gets or
// is giving up address a (or failed to give it up), or "".
func (p *Plane) holderLocked(a netip.Addr, self string) string {
	for id, in := range p.instances {
		if id != self && in.Addr == a && (in.Status == StatusStarting || in.Node != nil) {
			return id
		}
	}
	return ""
}

// addNode brings up the node of one instance.
func (p *Plane) addNode(id string, addr netip.Addr, keyName string) {
	defer p.wg.Done()
	select {
	case p.sem <- struct{}{}:
		defer func() { <-p.sem }()
	case <-p.ctx.Done():
		p.finishAdd(id, addr, lab.Node{}, p.ctx.Err())
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Minute)
	defer cancel()
	keys, err := p.authorizedKeys(ctx, id, addr, keyName)
	if err != nil {
		p.finishAdd(id, addr, lab.Node{}, err)
		return
	}
	began := time.Now()
	node, err := p.opts.Lab.AddNode(ctx, lab.NodeOptions{Name: id, Addr: addr, AuthorizedKeys: keys})
	if err != nil {
		err = fmt.Errorf("add lab node at %s: %w", addr, err)
	} else {
		p.mu.Lock()
		p.eventLocked(EventNodeAdded, id, addr, fmt.Sprintf("node %s up in %s", node.Name, time.Since(began).Round(time.Millisecond)))
		p.mu.Unlock()
	}
	p.finishAdd(id, addr, node, err)
}

// authorizedKeys returns the public key of the instance's key pair, read
// from moto, in authorized_keys format.
func (p *Plane) authorizedKeys(ctx context.Context, id string, addr netip.Addr, keyName string) (string, error) {
	if keyName == "" {
		p.mu.Lock()
		p.eventLocked(EventNoKeyPair, id, addr, "launched without a key pair: the node takes the lab's own key")
		p.mu.Unlock()
		return "", nil
	}
	out, err := p.opts.EC2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{
		KeyNames:         []string{keyName},
		IncludePublicKey: aws.Bool(true),
	})
	if err != nil {
		return "", fmt.Errorf("describe key pair %q: %w", keyName, err)
	}
	if len(out.KeyPairs) != 1 || aws.ToString(out.KeyPairs[0].PublicKey) == "" {
		return "", fmt.Errorf("key pair %q: moto returned %d key pairs and no public key", keyName, len(out.KeyPairs))
	}
	return trimNewline(aws.ToString(out.KeyPairs[0].PublicKey)) + "\n", nil
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// finishAdd records the outcome of addNode.
func (p *Plane) finishAdd(id string, addr netip.Addr, node lab.Node, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.notifyLocked()
	in := p.instances[id]
	switch {
	case err == nil:
		in.Status, in.Node = StatusUp, &node
	case p.ctx.Err() != nil:
		// Closing: not a failure of the node. Nothing more will happen.
		in.Status = StatusNoNode
	default:
		in.Status, in.Err = StatusFailed, err
		p.failLocked(EventFailed, id, addr, fmt.Errorf("ec2lab: instance %s: %w", id, err))
	}
	p.poke() // its state may have changed meanwhile
}

// removeNode removes the node of an instance that went away.
func (p *Plane) removeNode(id string, addr netip.Addr, node lab.Node) {
	defer p.wg.Done()
	// Removal is not cut short by Close: a half-removed node helps no one.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	err := p.opts.Lab.RemoveNode(ctx, addr)
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.notifyLocked()
	in := p.instances[id]
	if err != nil {
		// Keep the address held: the node may still be there.
		in.Status, in.Err = StatusFailed, err
		p.failLocked(EventFailed, id, addr, fmt.Errorf("ec2lab: instance %s (%s): remove lab node %s: %w", id, in.State, node.Name, err))
		return
	}
	in.Status, in.Node = StatusNoNode, nil
	p.eventLocked(EventNodeRemoved, id, addr, fmt.Sprintf("instance %s; node %s removed in %s", in.State, node.Name, time.Since(began).Round(time.Millisecond)))
	p.poke()
}
