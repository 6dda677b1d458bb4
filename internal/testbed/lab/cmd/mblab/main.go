// Command mblab starts, lists and removes lab nodes (see package internal/testbed/lab).
//
//	mblab up N [PREFIX]   start N nodes (hostnames PREFIX1..N, default node1..;
//	                      N may be 0 for an empty lab and bridge),
//	                      print how to reach them, keep running until
//	                      SIGINT/SIGTERM/SIGHUP, then remove the lab
//	mblab ls              list the labs on this machine and their owners
//	mblab down [LAB...]   remove the given labs (numbers), or every lab,
//	                      also those whose owner still runs
//
// A lab whose owner died (e.g. `mblab up` killed with SIGKILL) loses its nodes
// at once and the rest is removed by the next `mblab up` or test. Must run as
// root.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mblab:", err)
		os.Exit(1)
	}
}

func usage() error {
	return fmt.Errorf("usage: mblab up N [PREFIX] | mblab ls | mblab down [LAB...]")
}

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "mblab: "+format+"\n", args...) }

func run(args []string) error {
	if len(args) == 0 {
		return usage()
	}
	switch args[0] {
	case "up":
		if len(args) < 2 || len(args) > 3 {
			return usage()
		}
		n, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("bad node count %q: %w", args[1], err)
		}
		opts := lab.Options{Nodes: n, LogWriter: os.Stderr}
		if len(args) == 3 {
			opts.Prefix = args[2]
		}
		return up(opts)
	case "ls":
		for _, in := range lab.List() {
			state := "owner gone (stale)"
			if in.OwnerAlive {
				state = "owner running"
			}
			fmt.Printf("lab %d\t%s\towner %q\t%s\n", in.Num, in.Dir, in.Owner, state)
		}
		return nil
	case "down":
		var nums []int
		for _, a := range args[1:] {
			n, err := strconv.Atoi(a)
			if err != nil {
				return fmt.Errorf("bad lab number %q: %w", a, err)
			}
			nums = append(nums, n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		return lab.Down(ctx, logf, nums...)
	default:
		return usage()
	}
}

func up(opts lab.Options) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-sigs; cancel() }()

	l, err := lab.Start(ctx, opts)
	if err != nil {
		return err
	}
	nodes := l.Nodes()
	fmt.Printf("lab %d: %d nodes on %s (host %s)\n", l.Number(), len(nodes), l.Subnet(), l.Gateway())
	for _, n := range nodes {
		fmt.Printf("  %-8s %-15s docker: unix://%s\n", n.Name, n.Addr, n.DockerSocket)
	}
	fmt.Printf("ssh user:    %s\n", l.SSHUser())
	fmt.Printf("ssh key:     %s\n", l.PrivateKeyFile())
	fmt.Printf("known_hosts: %s\n", l.KnownHostsFile())
	if len(nodes) > 0 {
		first := nodes[0]
		fmt.Printf("try:         ssh -i %s -o UserKnownHostsFile=%s %s@%s hostname\n",
			l.PrivateKeyFile(), l.KnownHostsFile(), l.SSHUser(), first.Addr)
		fmt.Printf("             docker -H unix://%s info\n", first.DockerSocket)
	}
	fmt.Println("running; press Ctrl-C (or send SIGTERM) to remove the lab")

	<-ctx.Done()
	logf("stopping")
	return l.Close()
}
