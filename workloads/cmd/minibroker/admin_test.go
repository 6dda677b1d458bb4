package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// `minibroker admin` applies a plan file with the admin's properties
// file, as the swarm's access task runs it; the user it creates can then
// consume its topic with its own properties file (and not before), and a
// plan that reaches past its owner is refused before any broker is
// dialled.
func TestAdminAppliesAPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	ca, err := kafkabed.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	b := kafkabed.StartBrokerT(t, kafkabed.WithSecurity(ca, true, ""))
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	props := func(m map[string]string) []byte { return []byte(kafkaconf.Properties(m).Render("test")) }
	adminProps := write("admin.properties", props(b.AdminSettings()))

	const user, pw, topic = "ops.reader", "a-long-enough-password", "Filter001"
	if err := b.CreateTopic(t.Context(), topic, 1, nil); err != nil {
		t.Fatal(err)
	}
	userProps := write("user.properties", props(b.ClientSettings(user, pw)))
	consume := func() result {
		return runCLI(t, 20*time.Second, "consume", "--bootstrap", b.Bootstrap(), "--config", userProps, "--topic", topic,
			"--group", user, "--until-end", "--timing-topic", "", "--out", filepath.Join(dir, "out.jsonl"))
	}
	// librdkafka reports the SCRAM failure in its own log; the command
	// sees the broker as unreachable until its deadline.
	if r := consume(); r.code != 1 || !strings.Contains(r.stderr, "waiting for topic") {
		t.Fatalf("consume before the plan was applied: %s", r)
	}

	plan := access.Plan{Owner: "ops.", Clusters: []access.ClusterPlan{{Bootstrap: b.Bootstrap(), Users: []access.User{
		{Name: user, Password: pw, Grants: access.ReaderGrants(topic, stream.SchemasTopic, user)},
	}}}}
	data, _ := json.Marshal(plan)
	if r := runCLI(t, time.Minute, "admin", "--plan", write("plan.json", data), "--config", adminProps); r.code != 0 {
		t.Fatalf("admin: %s", r)
	}
	if r := consume(); r.code != 0 {
		t.Errorf("consume as %s: %s", user, r)
	}

	plan.Clusters[0].Users[0].Name = "other.report"
	data, _ = json.Marshal(plan)
	if r := runCLI(t, time.Minute, "admin", "--plan", write("bad.json", data), "--config", adminProps); r.code != 2 ||
		!strings.Contains(r.stderr, "owner's prefix") {
		t.Errorf("a plan naming another owner's user: %s", r)
	}
}
