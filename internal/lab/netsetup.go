package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
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

// createNetwork creates the bridge of lab n, one network namespace per node
// with a veth into the bridge, and the host firewall rules that let bridged
// node-to-node traffic through (the bridge is subject to iptables FORWARD
// when br_netfilter is loaded, whose policy is DROP once a host dockerd ran).
func createNetwork(ctx context.Context, n, nodes int) error {
	br := bridgeName(n)
	var b strings.Builder
	fmt.Fprintf(&b, "link add %s type bridge\n", br)
	fmt.Fprintf(&b, "addr add %s/24 dev %s\n", bridgeAddr(n), br)
	fmt.Fprintf(&b, "link set %s up\n", br)
	for i := 1; i <= nodes; i++ {
		fmt.Fprintf(&b, "netns add %s\n", netnsName(n, i))
		fmt.Fprintf(&b, "link add %s type veth peer name eth0 netns %s\n", vethName(n, i), netnsName(n, i))
		fmt.Fprintf(&b, "link set %s master %s up\n", vethName(n, i), br)
	}
	if err := run(ctx, b.String(), "ip", "-batch", "-"); err != nil {
		return fmt.Errorf("create bridge and namespaces: %w", err)
	}
	for i := 1; i <= nodes; i++ {
		in := fmt.Sprintf("link set lo up\naddr add %s/24 dev eth0\nlink set eth0 up\nroute add default via %s\n",
			nodeAddr(n, i), bridgeAddr(n))
		if err := run(ctx, in, "ip", "-n", netnsName(n, i), "-batch", "-"); err != nil {
			return fmt.Errorf("configure namespace %s: %w", netnsName(n, i), err)
		}
	}
	for _, r := range firewallRules(ctx, n) {
		args := append([]string{"-w", "-I"}, r...)
		if err := run(ctx, "", "iptables", args...); err != nil {
			return fmt.Errorf("add firewall rule: %w", err)
		}
	}
	return nil
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

// removeNetwork deletes every network object of lab n that exists. It is
// idempotent and does not depend on in-memory state.
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
	for _, name := range dirNames("/run/netns") {
		if m := reNetns.FindStringSubmatch(name); m != nil && m[1] == fmt.Sprint(n) {
			if err := run(ctx, "", "ip", "netns", "del", name); err != nil {
				errs = append(errs, err.Error())
			}
		}
	}
	for _, name := range dirNames("/sys/class/net") {
		if m := reLink.FindStringSubmatch(name); m != nil && m[1] == fmt.Sprint(n) && m[2] != "" {
			if err := run(ctx, "", "ip", "link", "del", name); err != nil && linkExists(name) {
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

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}
