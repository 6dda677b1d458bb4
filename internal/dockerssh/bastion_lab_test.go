package dockerssh

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

// TestBastionWithOpenSSH reaches a lab node's Docker Engine through another
// lab node used as the bastion, with real OpenSSH servers on both hops and
// known_hosts checking. The host's direct route to the target's SSH port is
// closed first, so only the path through the bastion can work.
func TestBastionWithOpenSSH(t *testing.T) {
	l := lab.ForTest(t, 2)
	nodes := l.Nodes()
	bastion, target := nodes[0], nodes[1]
	block := []string{"OUTPUT", "-d", target.Addr, "-p", "tcp", "--dport", "22", "-j", "REJECT", "--reject-with", "tcp-reset"}
	if out, err := exec.Command("iptables", append([]string{"-I"}, block...)...).CombinedOutput(); err != nil {
		t.Fatalf("iptables: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("iptables", append([]string{"-D"}, block...)...).Run() })

	key := l.PrivateKeyPEM()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	direct, err := NewPool(Config{User: "root", PrivateKeyPEM: key, KnownHostsFile: l.KnownHostsFile()})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if err := direct.Ping(ctx, Target{Address: target.Addr}); err == nil {
		t.Fatal("the target answered directly: the block does not work, so the test would prove nothing")
	}

	via, err := NewPool(Config{User: "root", PrivateKeyPEM: key, KnownHostsFile: l.KnownHostsFile(),
		Bastion: &Bastion{Address: bastion.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer via.Close()
	cli, _, err := via.Docker(ctx, Target{Address: target.Addr})
	if err != nil {
		t.Fatalf("through the bastion: %v", err)
	}
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != target.Name {
		t.Errorf("reached engine %q, want the target's %q", info.Name, target.Name)
	}
	if !strings.HasPrefix(via.bastionKeyFingerprint(), "SHA256:") {
		t.Errorf("bastion host key not recorded: %q", via.bastionKeyFingerprint())
	}
}

func (p *Pool) bastionKeyFingerprint() string {
	k, _ := p.BastionHostKey()
	return k.Fingerprint
}
