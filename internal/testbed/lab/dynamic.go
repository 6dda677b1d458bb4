package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"
)

// NodeOptions configures AddNode.
type NodeOptions struct {
	// Name is the node's hostname. Default: derived from Addr in the manner
	// of EC2, e.g. "ip-198-18-3-77". It must be valid like Options.Prefix.
	Name string
	// Addr is the node's address: in Subnet(), neither its first (.0) nor
	// last (.255) address nor Gateway(), and no other node's.
	Addr netip.Addr
	// AuthorizedKeys is the content of root's authorized_keys on the node,
	// in OpenSSH's format. Empty means the lab's own key (PrivateKeyFile).
	AuthorizedKeys string
}

// AddNode starts a node at o.Addr and returns once its dockerd answers
// /_ping and its sshd accepts TCP connections on port 22; by then its host
// key is in KnownHostsFile and Nodes lists it. If ctx has no deadline,
// AddNode gives up after 2 minutes. On error nothing of the node is left.
// Close cancels AddNode calls in progress.
func (l *Lab) AddNode(ctx context.Context, o NodeOptions) (Node, error) {
	nd, err := l.claim(o)
	if err != nil {
		return Node{}, fmt.Errorf("lab %d: add node: %w", l.num, err)
	}
	defer l.ops.Done()

	began := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.closing, cancel)()

	if err := l.addNode(ctx, nd); err != nil {
		// Clean up even if ctx has ended.
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer ccancel()
		terr := l.teardown(cctx, nd)
		l.mu.Lock()
		if terr != nil {
			nd.state = nodeBroken // RemoveNode may retry; Close removes it
			err = errors.Join(err, fmt.Errorf("clean up: %w", terr))
		} else {
			delete(l.slots, nd.slot)
		}
		l.mu.Unlock()
		return Node{}, fmt.Errorf("lab %d: add node %s at %s: %w", l.num, nd.Name, nd.Addr, err)
	}
	l.log("lab %d: node %s at %s (slot %d) ready in %s", l.num, nd.Name, nd.Addr, nd.slot,
		time.Since(began).Round(time.Millisecond))
	return nd.Node, nil
}

// claim checks o, then reserves its address and a slot for a new node, and
// registers the AddNode call with l.ops (the caller calls l.ops.Done).
func (l *Lab) claim(o NodeOptions) (*node, error) {
	addr := o.Addr.Unmap()
	sub := l.Subnet()
	switch {
	case !addr.IsValid():
		return nil, errors.New("no address given")
	case !sub.Contains(addr):
		return nil, fmt.Errorf("address %s is not in the lab's subnet %s", addr, sub)
	case addr == sub.Addr():
		return nil, fmt.Errorf("address %s is the subnet's network address", addr)
	case addr.As4()[3] == 255:
		return nil, fmt.Errorf("address %s is the subnet's broadcast address", addr)
	case addr == l.Gateway():
		return nil, fmt.Errorf("address %s is the gateway (the host)", addr)
	}
	name := o.Name
	if name == "" {
		name = "ip-" + strings.ReplaceAll(addr.String(), ".", "-")
	}
	if !reHostname.MatchString(name) {
		return nil, fmt.Errorf("name %q is not a valid hostname", name)
	}
	keys := o.AuthorizedKeys
	if keys != "" {
		if strings.TrimSpace(keys) == "" {
			return nil, errors.New("AuthorizedKeys holds no key")
		}
		if !strings.HasSuffix(keys, "\n") {
			keys += "\n"
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("lab is closed")
	}
	for _, other := range l.slots {
		if other.addr == addr {
			return nil, fmt.Errorf("address %s is in use by node %s", addr, other.Name)
		}
	}
	slot := l.freeSlot()
	if slot == 0 {
		return nil, fmt.Errorf("no free node slot (all %d in use)", maxSlot)
	}
	nd := l.newNode(slot, addr, name, keys)
	l.slots[slot] = nd
	l.ops.Add(1)
	return nd, nil
}

// freeSlot returns the lowest slot number that no node holds and of which
// nothing is left on the machine, or 0 if there is none. l.mu must be held.
func (l *Lab) freeSlot() int {
	for i := 1; i <= maxSlot; i++ {
		if _, used := l.slots[i]; !used && !nodeTraces(l.num, i) {
			return i
		}
	}
	return 0
}

// addNode creates and starts the claimed node nd, waits until it is ready,
// then lists it and its host key.
func (l *Lab) addNode(ctx context.Context, nd *node) error {
	l.mu.Lock()
	peers := make([]string, 0, len(l.nodes))
	for _, other := range l.nodes {
		peers = append(peers, netnsName(l.num, other.slot))
	}
	l.mu.Unlock()
	// The address may have been a removed node's, whose MAC address the
	// host and the other nodes may still have cached.
	if err := forgetNeighbour(ctx, l.num, nd.addr, peers); err != nil {
		return err
	}
	if err := l.launch(ctx, []*node{nd}); err != nil {
		return err
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab closed while the node started")
	}
	nd.state = nodeReady
	l.nodes = append(l.nodes, nd)
	if err := l.writeKnownHosts(); err != nil {
		nd.state = nodeStarting
		l.nodes = slices.DeleteFunc(l.nodes, func(x *node) bool { return x == nd })
		return err
	}
	return nil
}

// RemoveNode stops the node at addr and removes it completely: its
// processes, containers, cgroups, mounts, network namespace, veth and
// directory, and its line in KnownHostsFile. Nodes stops listing it at once.
// An address where no node runs, or one still being added or removed, is an
// error. If removal fails part way, RemoveNode may be called again, and
// Close removes what is left.
func (l *Lab) RemoveNode(ctx context.Context, addr netip.Addr) error {
	addr = addr.Unmap()
	nd, err := l.release(addr)
	if nd == nil {
		return fmt.Errorf("lab %d: remove node at %s: %w", l.num, addr, err)
	}
	defer l.ops.Done()

	began := time.Now()
	terr := l.teardown(ctx, nd)
	l.mu.Lock()
	if terr != nil {
		nd.state = nodeBroken
	} else {
		delete(l.slots, nd.slot)
	}
	l.mu.Unlock()
	if err := errors.Join(err, terr); err != nil {
		return fmt.Errorf("lab %d: remove node %s at %s: %w", l.num, nd.Name, nd.Addr, err)
	}
	l.log("lab %d: node %s at %s removed in %s", l.num, nd.Name, nd.Addr, time.Since(began).Round(time.Millisecond))
	return nil
}

// release marks the node at addr as being removed, unlists it, drops its
// host key from known_hosts and registers the RemoveNode call with l.ops (the
// caller calls l.ops.Done). It returns a nil node if there is none to remove
// at addr, and an error if known_hosts could not be written.
func (l *Lab) release(addr netip.Addr) (*node, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("lab is closed")
	}
	var nd *node
	for _, other := range l.slots {
		if other.addr == addr {
			nd = other
		}
	}
	if nd == nil {
		return nil, errors.New("no such node")
	}
	switch nd.state {
	case nodeStarting:
		return nil, fmt.Errorf("node %s is still starting", nd.Name)
	case nodeRemoving:
		return nil, fmt.Errorf("node %s is already being removed", nd.Name)
	}
	var err error
	if nd.state == nodeReady {
		l.nodes = slices.DeleteFunc(l.nodes, func(x *node) bool { return x == nd })
		err = l.writeKnownHosts()
	}
	nd.state = nodeRemoving
	l.ops.Add(1)
	return nd, err
}

// teardown stops node nd and removes everything of it from the machine. The
// directory goes last, and only if all else went well, so that what is left
// of a node whose removal failed can still be found (see nodeSlots).
func (l *Lab) teardown(ctx context.Context, nd *node) error {
	if err := stopNode(ctx, l.num, nd.slot, gracefulStop); err != nil {
		return err
	}
	var errs []error
	if err := nd.waitLauncher(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := removeNodeNetwork(ctx, l.num, nd.slot); err != nil {
		errs = append(errs, err)
	}
	if err := unmountUnder(nd.Dir); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := os.RemoveAll(nd.Dir); err != nil {
		return fmt.Errorf("remove node dir: %w", err)
	}
	return nil
}
