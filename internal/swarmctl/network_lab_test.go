package swarmctl

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
)

// TestEncryptedNetwork creates the overlay network encrypted on a 2-node
// lab swarm, as the provider does with encrypt_network, and attaches a
// container on each node. The engines must set up IPsec for it: each
// node's kernel gets ESP policies for the VXLAN traffic to the other. If
// the kernel holds the ESP states too, the containers must reach each
// other; if it does not, the engine must have been refused them by the
// kernel ("function not implemented": this lab's kernel), which the test
// reports, and an encrypted overlay cannot carry traffic there. Asking for
// the network again without encryption is refused.
func TestEncryptedNetwork(t *testing.T) {
	l := lab.ForTest(t, 2)
	nodes := l.Nodes()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	mgr := formLabSwarm(ctx, t, l, "10.126.0.0/16").mgr
	const name = "enc"
	if _, err := mgr.EnsureNetwork(ctx, name, true); err != nil {
		t.Fatal(err)
	}
	// The manager's engine shows a new swarm network's options once its
	// own copy is in place: ask for a few seconds (CI once saw none at
	// first).
	var n network.Inspect
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		var err error
		if n, err = labEngine(t, nodes[0]).NetworkInspect(ctx, name, network.InspectOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, ok := n.Options[overlayEncrypted]; ok || time.Now().After(deadline) {
			break
		}
	}
	if _, ok := n.Options[overlayEncrypted]; !ok {
		t.Fatalf("network options %v: not encrypted", n.Options)
	}
	if _, err := mgr.EnsureNetwork(ctx, name, false); err == nil || !strings.Contains(err.Error(), "encryption") {
		t.Errorf("asking for %s unencrypted: %v, want a refusal naming the encryption", name, err)
	}

	var ips []string
	for i, nd := range nodes {
		cli := labEngine(t, nd)
		resp, err := cli.ContainerCreate(ctx, &container.Config{Image: images.DefaultKafkaTag, Entrypoint: []string{"/bin/sleep"}, Cmd: []string{"300"}},
			&container.HostConfig{NetworkMode: container.NetworkMode(name)}, nil, nil, "enc-"+nd.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		in, err := cli.ContainerInspect(ctx, resp.ID)
		if err != nil {
			t.Fatal(err)
		}
		ips = append(ips, in.NetworkSettings.Networks[name].IPAddress)
		t.Logf("%s: container at %s", nodes[i].Name, ips[i])
	}

	// The engines program IPsec once both ends have a task on the network.
	xfrm := func(nd lab.Node, what string) string {
		out, err := exec.CommandContext(ctx, "ip", "-n", nd.NetNS, "xfrm", what).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: ip xfrm %s: %v: %s", nd.Name, what, err, out)
		}
		return string(out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, nd := range nodes {
		for !strings.Contains(xfrm(nd, "policy"), "proto esp") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no ESP policy for the encrypted overlay in its kernel:\n%s", nd.Name, xfrm(nd, "policy"))
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// Then the ESP states, or the kernel's refusal of them in the engine's
	// log (which comes a moment after the policies).
	logPath := filepath.Join(nodes[0].Dir, "dockerd.log")
	refused := func() bool {
		b, err := os.ReadFile(logPath)
		return err == nil && strings.Contains(string(b), "function not implemented")
	}
	for !strings.Contains(xfrm(nodes[0], "state"), "proto esp") && !refused() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the engine set ESP policies but no ESP state, and its log does not say the kernel refused them", nodes[0].Name)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if strings.Contains(xfrm(nodes[0], "state"), "proto esp") {
		// The kernel can: the traffic goes through, encrypted.
		out, err := exec.CommandContext(ctx, "docker", "-H", "unix://"+nodes[1].DockerSocket, "exec", "enc-"+nodes[1].Name,
			"ping", "-c", "3", "-W", "2", ips[0]).CombinedOutput()
		if err != nil {
			t.Errorf("ping across the encrypted overlay: %v: %s", err, out)
		}
		return
	}
	t.Logf("this kernel refuses IPsec states (dockerd: \"function not implemented\"): the overlay is set up encrypted, " +
		"but cannot carry traffic here; encryption is verified up to the kernel's policies")
}
