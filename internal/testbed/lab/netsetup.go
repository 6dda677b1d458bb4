package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// run executes a command and returns its error with the command line and
// output attached. stdin may be empty.
func run(ctx context.Context, stdin string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// createBridge creates the bridge of lab n with the host's address on it and
// the host firewall rules that let bridged node-to-node traffic through (the
// bridge is subject to iptables FORWARD when br_netfilter is loaded, whose
// policy is DROP once a host dockerd ran). The rules match the bridge, not
// addresses, so they hold for nodes at any address of the lab's subnet.
func createBridge(ctx context.Context, n int) error {
	br := bridgeName(n)
	in := fmt.Sprintf("link add %s type bridge\naddr add %s dev %s\nlink set %s up\n",
		br, netip.PrefixFrom(gateway(n), subnet(n).Bits()), br, br)
	if err := run(ctx, in, "ip", "-batch", "-"); err != nil {
		return fmt.Errorf("create bridge %s: %w", br, err)
	}
	for _, r := range firewallRules(ctx, n) {
		args := append([]string{"-w", "-I"}, r...)
		if err := run(ctx, "", "iptables", args...); err != nil {
			return fmt.Errorf("add firewall rule: %w", err)
		}
	}
	return nil
}

// addNodeNetworks gives each of nodes (of lab n) its network namespace and a
// veth from the bridge into it, named eth0 there, carrying the node's address
// and a default route via the host.
func addNodeNetworks(ctx context.Context, n int, nodes []*node) error {
	var b strings.Builder
	for _, nd := range nodes {
		fmt.Fprintf(&b, "netns add %s\n", netnsName(n, nd.slot))
		fmt.Fprintf(&b, "link add %s type veth peer name eth0 netns %s\n", vethName(n, nd.slot), netnsName(n, nd.slot))
		fmt.Fprintf(&b, "link set %s master %s up\n", vethName(n, nd.slot), bridgeName(n))
	}
	if err := run(ctx, b.String(), "ip", "-batch", "-"); err != nil {
		return fmt.Errorf("create network namespaces and veths: %w", err)
	}
	for _, nd := range nodes {
		in := fmt.Sprintf("link set lo up\naddr add %s dev eth0\nlink set eth0 up\nroute add default via %s\n",
			netip.PrefixFrom(nd.addr, subnet(n).Bits()), gateway(n))
		if err := run(ctx, in, "ip", "-n", netnsName(n, nd.slot), "-batch", "-"); err != nil {
			return fmt.Errorf("configure namespace %s: %w", netnsName(n, nd.slot), err)
		}
	}
	return nil
}

// removeNodeNetwork deletes the veth and network namespace of node slot i of
// lab n, whichever exist. The veth goes first: deleting it removes both ends
// at once, whereas a deleted namespace is cleaned up asynchronously.
func removeNodeNetwork(ctx context.Context, n, i int) error {
	var errs []error
	if veth := vethName(n, i); linkExists(veth) {
		if err := run(ctx, "", "ip", "link", "del", veth); err != nil && linkExists(veth) {
			errs = append(errs, err)
		}
	}
	if _, err := os.Lstat(netnsPath(n, i)); err == nil {
		if err := run(ctx, "", "ip", "netns", "del", netnsName(n, i)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove network of %s: %w", netnsName(n, i), errors.Join(errs...))
	}
	return nil
}

// forgetNeighbour drops addr from the ARP caches of the host (on lab n's
// bridge) and of the network namespaces netnsNames, so that a node started
// at the address of a removed one is reached at once, not after the stale
// entry of the old one has timed out.
func forgetNeighbour(ctx context.Context, n int, addr netip.Addr, netnsNames []string) error {
	if err := flushNeighbour(ctx, "ip", "neigh", "flush", "to", addr.String(), "dev", bridgeName(n)); err != nil {
		return fmt.Errorf("flush neighbour %s: %w", addr, err)
	}
	for _, ns := range netnsNames {
		if err := flushNeighbour(ctx, "ip", "-n", ns, "neigh", "flush", "to", addr.String()); err != nil {
			return fmt.Errorf("flush neighbour %s in %s: %w", addr, ns, err)
		}
	}
	return nil
}

// flushNeighbour runs an `ip neigh flush`. The entry may vanish between the
// dump and the flush (it expired, or a concurrent AddNode flushed it):
// iproute2 then fails with "No such file or directory", which means done.
func flushNeighbour(ctx context.Context, args ...string) error {
	err := run(ctx, "", args[0], args[1:]...)
	if err != nil && strings.Contains(err.Error(), "No such file or directory") {
		return nil
	}
	return err
}

// firewallRules are the host iptables rules of lab n (chain first): bridged
// traffic between nodes is accepted; nodes cannot be routed elsewhere.
func firewallRules(ctx context.Context, n int) [][]string {
	br := bridgeName(n)
	rules := [][]string{
		{"FORWARD", "-i", br, "!", "-o", br, "-j", "DROP"},
		{"FORWARD", "-i", br, "-o", br, "-j", "ACCEPT"},
	}
	// DOCKER-USER exists when a host dockerd runs (or ran); it is consulted
	// before Docker's own rules, which would otherwise drop our traffic.
	if run(ctx, "", "iptables", "-w", "-S", "DOCKER-USER") == nil {
		rules = append(rules, []string{"DOCKER-USER", "-i", br, "-o", br, "-j", "ACCEPT"})
	}
	return rules
}

// removeNetwork deletes every network object of lab n that exists: firewall
// rules, veths, network namespaces (of all nodes, however added) and the
// bridge. It is idempotent and does not depend on in-memory state.
func removeNetwork(ctx context.Context, n int) error {
	br := bridgeName(n)
	var errs []string
	for _, r := range firewallRules(ctx, n) {
		// Delete every copy of the rule (a crashed start may have added it twice).
		for k := 0; k < 10; k++ {
			if run(ctx, "", "iptables", append([]string{"-w", "-D"}, r...)...) != nil {
				break
			}
		}
	}
	// Veths before namespaces: see removeNodeNetwork.
	for _, name := range dirNames("/sys/class/net") {
		if m := reLink.FindStringSubmatch(name); m != nil && m[1] == fmt.Sprint(n) && m[2] != "" { // a veth
			if err := run(ctx, "", "ip", "link", "del", name); err != nil && linkExists(name) {
				errs = append(errs, err.Error())
			}
		}
	}
	for _, name := range dirNames("/run/netns") {
		if m := reNetns.FindStringSubmatch(name); m != nil && m[1] == fmt.Sprint(n) {
			if err := run(ctx, "", "ip", "netns", "del", name); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	if linkExists(br) {
		if err := run(ctx, "", "ip", "link", "del", br); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove network of lab %d: %s", n, strings.Join(errs, "; "))
	}
	return nil
}

// linkExists reports whether a network interface of that name exists in our
// network namespace.
func linkExists(name string) bool {
	_, err := os.Lstat(filepath.Join("/sys/class/net", name))
	return err == nil
}
