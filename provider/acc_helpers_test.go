package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/lab"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/tfcli"
)

// factories serves the provider in-process to the Terraform CLI.
var factories = map[string]func() (tfprotov6.ProviderServer, error){
	"minibroker": providerserver.NewProtocol6WithError(New("test")()),
}

// repoRoot is the repository's top directory (tests run in provider/).
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// useTerraform points terraform-plugin-testing at a real Terraform CLI:
// TF_ACC_TERRAFORM_PATH, else the one `make terraform` builds, else the
// one on PATH. It fails, never skips, when there is none.
func useTerraform(t *testing.T) {
	t.Helper()
	path, err := tfcli.Find(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_ACC", "1")
	t.Setenv(tfcli.EnvPath, path)
	t.Setenv("CHECKPOINT_DISABLE", "1")
	t.Logf("terraform: %s", path)
}

// imageArchives returns the archives `make image` builds.
func imageArchives(t *testing.T) (workloads, kafka string) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "bin/images")
	workloads, kafka = filepath.Join(dir, "minibroker-workloads.tar"), filepath.Join(dir, "minibroker-kafka.tar")
	for _, p := range []string{workloads, kafka} {
		if !fileExists(p) {
			t.Fatalf("%s is missing: run `make image` first (make test does)", p)
		}
	}
	return workloads, kafka
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// engine returns a Docker client for a lab node's socket, bypassing SSH:
// the tests' own view of what runs where.
func engine(t testing.TB, n lab.Node) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost("unix://"+n.DockerSocket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// render fills a Terraform configuration template.
func render(t testing.TB, tmpl string, data any) string {
	t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(tmpl)).Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// received is one line a consumer logs per alert.
type received struct {
	Topic string `json:"topic"`
	Visit int64  `json:"visit"`
	Rank  int    `json:"rank"`
	ID    string `json:"id"`
}

// consumerLines reads the alerts a consumer service logged, by visit,
// without duplicates (a restarted task logs again).
func consumerLines(ctx context.Context, cli *client.Client, service string) (map[int64]map[string]bool, error) {
	rc, err := cli.ServiceLogs(ctx, service, container.LogsOptions{ShowStdout: true})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	out := map[int64]map[string]bool{}
	for _, line := range swarmctl.LogLines(rc) {
		i := strings.Index(line, "{")
		if i < 0 {
			continue
		}
		var r received
		if json.Unmarshal([]byte(line[i:]), &r) != nil || r.ID == "" {
			continue
		}
		if out[r.Visit] == nil {
			out[r.Visit] = map[string]bool{}
		}
		out[r.Visit][r.ID] = true
	}
	return out, nil
}

// runningTaskNode returns the node id of a service's running task.
func runningTaskNode(ctx context.Context, cli *client.Client, service string) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{})
		if err != nil {
			return "", err
		}
		svc, _, err := cli.ServiceInspectWithRaw(ctx, service, swarm.ServiceInspectOptions{})
		if err != nil {
			return "", fmt.Errorf("service %s: %w", service, err)
		}
		for _, task := range tasks {
			if task.ServiceID == svc.ID && task.Status.State == swarm.TaskStateRunning {
				return task.NodeID, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("service %s has no running task", service)
		}
		time.Sleep(time.Second)
	}
}
