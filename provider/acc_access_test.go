package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/minibin"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/pyclients"
	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
)

// reader is one entry of minibroker_filter_group.readers.
type reader struct {
	Bootstrap     string `json:"bootstrap"`
	Topic         string `json:"topic"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	CACertificate string `json:"ca_certificate"`
	Properties    string `json:"properties"`
}

// readersOutput reads a filter group's readers from the state, all of
// it, as `terraform output -json` would give a user an output of it.
func readersOutput(s *terraform.State, group string) (map[string]reader, error) {
	rs, ok := s.RootModule().Resources[group]
	if !ok {
		return nil, fmt.Errorf("no %s in the state", group)
	}
	fields := map[string]map[string]string{}
	for k, v := range rs.Primary.Attributes {
		rest, ok := strings.CutPrefix(k, "readers.")
		if !ok || rest == "%" {
			continue
		}
		i := strings.LastIndex(rest, ".")
		name, field := rest[:i], rest[i+1:]
		if fields[name] == nil {
			fields[name] = map[string]string{}
		}
		fields[name][field] = v
	}
	readers := map[string]reader{}
	for name, f := range fields {
		readers[name] = reader{Bootstrap: f["bootstrap"], Topic: f["topic"], Username: f["username"], Password: f["password"],
			CACertificate: f["ca_certificate"], Properties: f["properties"]}
	}
	return readers, nil
}

// readerDir writes what a user writes on their laptop from the outputs:
// the CA file the properties name and the properties themselves.
func readerDir(t *testing.T, r reader) (dir, props string) {
	t.Helper()
	dir = t.TempDir()
	props = filepath.Join(dir, "reader.properties")
	if err := os.WriteFile(filepath.Join(dir, CAFileName), []byte(r.CACertificate), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(props, []byte(r.Properties), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, props
}

// outsideAlert is one alert pyclients.OutsideReader read: its visit and id
// (headers) and, with --registry, the decoded diaSourceId and schema id.
type outsideAlert struct {
	Visit    int64  `json:"visit"`
	ID       string `json:"id"`
	Decoded  string `json:"decoded"`
	SchemaID uint32 `json:"schema_id"`
}

// outsideReader runs pyclients.OutsideReader, Python's confluent-kafka
// from PyPI (`make pyclients`), from the host: outside every node's
// network namespace, as a user's laptop is. It returns the alerts read,
// the exit code and standard error.
func outsideReader(ctx context.Context, t *testing.T, dir, props, topic string, overrides ...string) ([]outsideAlert, int, string) {
	t.Helper()
	python, err := pyclients.Python(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(repoRoot(t), pyclients.OutsideReader)
	cmd := exec.CommandContext(ctx, python, append([]string{script, props, topic}, overrides...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("python reader: %v", err)
	}
	var out []outsideAlert
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var a outsideAlert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("python reader printed %q: %v", sc.Text(), err)
		}
		out = append(out, a)
	}
	return out, code, stderr.String()
}

// pythonReader runs outsideReader on a stream of the synthetic producer's
// alerts and returns the ids read by visit. Decoding through the registry
// (--registry), each alert must be the one its headers name, written with
// the synthetic schema's id.
func pythonReader(ctx context.Context, t *testing.T, dir, props, topic string, overrides ...string) (map[int64]map[string]bool, int, string) {
	t.Helper()
	alerts, code, stderr := outsideReader(ctx, t, dir, props, topic, overrides...)
	got := map[int64]map[string]bool{}
	for _, a := range alerts {
		if slices.Contains(overrides, "--registry") {
			if a.Decoded != a.ID || a.SchemaID != alert.SchemaID(alert.SyntheticSchema()) {
				t.Errorf("AvroDeserializer decoded alert %s as diaSourceId %q with schema id %d", a.ID, a.Decoded, a.SchemaID)
			}
		}
		if got[a.Visit] == nil {
			got[a.Visit] = map[string]bool{}
		}
		got[a.Visit][a.ID] = true
	}
	return got, code, stderr
}

// buildMinibroker builds the workloads binary for the host, the user's
// client on their laptop.
func buildMinibroker(t *testing.T) string { return minibin.Build(t, t.TempDir()) }

// checkOutsideReaders reads a filter's stream from outside the swarm as
// its owner would, with the readers output only: with Python's
// confluent-kafka it gets exactly the filter's selection; the same
// credentials are refused another filter's topic; a wrong password and a
// plaintext connection get nothing; `minibroker consume --format json`
// with the same properties file writes the same alerts, decoded, to a file.
func checkOutsideReaders(t *testing.T, cfg accConfig, minibroker string) func(*terraform.State) error {
	return func(s *terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
		defer cancel()
		readers, err := readersOutput(s, "minibroker_filter_group.g0")
		if err != nil {
			return err
		}
		f := cfg.G0[0]
		r, ok := readers[f.Name]
		if !ok {
			return fmt.Errorf("no reader for %s in %v", f.Name, readers)
		}
		if want := fmt.Sprintf("%s:%d", cfg.Nodes[nFilter0].Addr, 9095); r.Bootstrap != want || r.Topic != f.Name {
			return fmt.Errorf("reader of %s: bootstrap %s, topic %s; want %s, %s", f.Name, r.Bootstrap, r.Topic, want, f.Name)
		}
		dir, props := readerDir(t, r)

		got, code, stderr := pythonReader(ctx, t, dir, props, r.Topic)
		if code != 0 {
			return fmt.Errorf("python confluent-kafka reading %s: exit %d: %s", r.Topic, code, stderr)
		}
		visits := slices.Sorted(func(yield func(int64) bool) {
			for v := range got {
				if !yield(v) {
					return
				}
			}
		})
		if len(visits) < cfg.Visits-1 {
			return fmt.Errorf("python reader saw visits %v, want %d", visits, cfg.Visits)
		}
		var problems []string
		for i, v := range visits {
			problems = append(problems, compare(f, v, i == 0, selected(t, f.Expr, v, cfg.Alerts), got[v])...)
		}
		if len(problems) > 0 {
			return fmt.Errorf("python reader of %s:\n  %s", f.Name, strings.Join(problems, "\n  "))
		}
		t.Logf("outside reader (python confluent-kafka): %d visits of %s, each exactly the filter's selection", len(visits), f.Name)

		// The same, decoding each alert with Confluent's AvroDeserializer
		// and the swarm's schema registry, configured from the swarm's
		// schema_registry_properties only (the CA file is the same).
		sw := s.RootModule().Resources["minibroker_swarm.lab"].Primary.Attributes
		regProps := filepath.Join(dir, "registry.properties")
		if err := os.WriteFile(regProps, []byte(sw["schema_registry_properties"]), 0o600); err != nil {
			return err
		}
		if want := fmt.Sprintf("https://%s:%d", cfg.Nodes[nManager].Addr, swarmspec.DefaultRegistryPort); sw["schema_registry_url"] != want {
			return fmt.Errorf("schema_registry_url %q, want %q", sw["schema_registry_url"], want)
		}
		decoded, code, stderr := pythonReader(ctx, t, dir, props, r.Topic, "--registry", regProps)
		if code != 0 || len(decoded) < len(visits) {
			return fmt.Errorf("python AvroDeserializer with the schema registry: exit %d, %d visits: %s", code, len(decoded), stderr)
		}
		t.Logf("outside reader (python AvroDeserializer, schema registry at %s): %d visits decoded", sw["schema_registry_url"], len(decoded))

		alice, ok := readers[f.Name+"/alice"]
		if !ok || alice.Username == r.Username || alice.Password == r.Password || alice.Topic != r.Topic {
			return fmt.Errorf("named reader alice of %s: %+v", f.Name, alice.Username)
		}
		adir, aprops := readerDir(t, alice)
		if got, code, stderr := pythonReader(ctx, t, adir, aprops, r.Topic); code != 0 || len(got) < len(visits) {
			return fmt.Errorf("named reader alice of %s: exit %d, %d visits: %s", f.Name, code, len(got), stderr)
		}
		t.Logf("the named reader %s reads the same stream with its own credentials", alice.Username)

		other := cfg.G0[1].Name
		if _, code, stderr := pythonReader(ctx, t, dir, props, other); code != 3 || !strings.Contains(stderr, "TOPIC_AUTHORIZATION_FAILED") {
			return fmt.Errorf("the reader of %s reading %s: exit %d, %s; want TOPIC_AUTHORIZATION_FAILED", f.Name, other, code, stderr)
		}
		if _, code, stderr := pythonReader(ctx, t, dir, props, r.Topic, "sasl.password=not-"+r.Password); code != 3 ||
			!strings.Contains(strings.ToLower(stderr), "authentication") {
			return fmt.Errorf("a wrong password: exit %d, %s; want an authentication failure", code, stderr)
		}
		if got, code, stderr := pythonReader(ctx, t, dir, props, r.Topic, "security.protocol=PLAINTEXT"); code == 0 || len(got) > 0 {
			return fmt.Errorf("plaintext to the external port read %d visits (exit %d, %s)", len(got), code, stderr)
		}
		t.Logf("outside reader: another filter's topic, a wrong password and plaintext are refused")

		out := filepath.Join(dir, "alerts.jsonl")
		cmd := exec.CommandContext(ctx, minibroker, "consume", "--config", props, "--topic", r.Topic,
			"--group", r.Username+".cli", "--from-beginning", "--until-end", "--format", "json", "--out", out)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("minibroker consume with the reader's properties: %v\n%s", err, b)
		}
		lines, err := os.ReadFile(out)
		if err != nil {
			return err
		}
		written := map[int64]map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(string(lines)), "\n") {
			var a struct {
				Visit int64  `json:"visit"`
				ID    string `json:"id"`
				Alert struct {
					DiaSourceID json.Number `json:"diaSourceId"`
				} `json:"alert"`
			}
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				return fmt.Errorf("consume --out line %q: %w", line, err)
			}
			if a.Alert.DiaSourceID.String() != a.ID {
				return fmt.Errorf("consume --format json: alert %s decoded with diaSourceId %q", a.ID, a.Alert.DiaSourceID)
			}
			if written[a.Visit] == nil {
				written[a.Visit] = map[string]bool{}
			}
			written[a.Visit][a.ID] = true
		}
		for _, v := range visits {
			if !mapsEqual(written[v], got[v]) {
				return fmt.Errorf("minibroker consume wrote %d alerts of visit %d, python read %d", len(written[v]), v, len(got[v]))
			}
		}
		t.Logf("minibroker consume --format json with the reader's properties wrote the same %d visits, each alert decoded", len(visits))
		return nil
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// checkNoSecretInSpecs checks every service as `docker service inspect`
// shows it: no password of any Kafka user (derived, as the provider does,
// from the credentials output), no seed and no CA key in labels, command,
// args or env.
func checkNoSecretInSpecs(t *testing.T, mgr *client.Client) func(*terraform.State) error {
	return func(s *terraform.State) error {
		sw, ok := s.RootModule().Resources["minibroker_swarm.lab"]
		if !ok {
			return fmt.Errorf("no minibroker_swarm.lab in the state")
		}
		sec, err := security(sw.Primary.Attributes["kafka_credentials"])
		if err != nil {
			return err
		}
		services, err := mgr.ServiceList(context.Background(), swarm.ServiceListOptions{})
		if err != nil {
			return err
		}
		secrets := []string{sec.Seed, strings.Split(sec.CA.KeyPEM, "\n")[1], sec.Password(swarmspec.AdminUser), sec.Password(swarmspec.ProducerUser),
			sec.Password(swarmspec.MirrorMakerUser("m0")), sec.Password(swarmspec.SharedFiltersUser("g1")), sec.Password(swarmspec.ReaderUser("g0", "bright"))}
		for _, svc := range services {
			cs := svc.Spec.TaskTemplate.ContainerSpec
			shown, _ := json.Marshal([]any{svc.Spec.Labels, cs.Labels, cs.Command, cs.Args, cs.Env})
			for _, secret := range secrets {
				if strings.Contains(string(shown), secret) {
					return fmt.Errorf("service %s shows a secret in its labels, command, args or env", svc.Spec.Name)
				}
			}
		}
		t.Logf("no secret in the labels, command, args or env of %d services", len(services))
		return nil
	}
}

// checkNoAnonymousAccess runs clients without credentials inside the
// overlay network: Kafka's own console consumer and topic tool in
// MirrorMaker 2's container (the Kafka image) read nothing of a filtered
// stream and can neither create nor delete a topic, on the hub or a
// mirror; `minibroker produce` in a consumer's container (the workloads
// image) cannot write to the hub.
func checkNoAnonymousAccess(t *testing.T, cfg accConfig) func(*terraform.State) error {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		run := func(cli *client.Client, service string, cmd, env []string) (string, int, error) {
			for id := range runningContainers(ctx, cli, service) {
				stdout, stderr, code, err := execIn(ctx, cli, id, cmd, env)
				return stdout + stderr, code, err
			}
			return "", 0, fmt.Errorf("no running container of %s", service)
		}
		kafkaTool := func(class string, args ...string) (string, int, error) {
			script := "printf 'default.api.timeout.ms=15000\\nrequest.timeout.ms=5000\\n' > /tmp/anonymous.properties && exec timeout 60 " +
				"/opt/kafka/bin/kafka-run-class.sh " + class + " " + strings.Join(args, " ")
			return run(engine(t, cfg.Nodes[nFilter0]), swarmspec.MirrorMakerService("m0"), []string{"/bin/sh", "-c", script},
				[]string{"KAFKA_HEAP_OPTS=-Xmx128m", "KAFKA_JMX_OPTS=-Dcom.sun.management.jmxremote=false"})
		}
		out, _, err := kafkaTool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", "mb-mirror-m0:9092",
			"--topic", cfg.G0[0].Name, "--from-beginning", "--timeout-ms", "15000", "--consumer.config", "/tmp/anonymous.properties")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "Processed a total of 0 messages") {
			return fmt.Errorf("a console consumer without credentials on the overlay:\n%s", lastLines(out, 5))
		}
		for _, target := range []string{"mb-hub:9092", "mb-mirror-m0:9092"} {
			for _, op := range []string{"--create --topic intruder", "--delete --topic alerts"} {
				out, code, err := kafkaTool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", target,
					"--command-config", "/tmp/anonymous.properties", op)
				if err != nil {
					return err
				}
				if code == 0 {
					return fmt.Errorf("kafka-topics %s on %s without credentials succeeded:\n%s", op, target, lastLines(out, 5))
				}
			}
		}
		out, code, err := run(engine(t, cfg.Nodes[nConsumer]), swarmspec.ConsumerService("g0", cfg.G0[0].Name),
			[]string{swarmspec.WorkloadsBinary, "produce", "--bootstrap", "mb-hub:9092", "--visits", "1", "--alerts-per-visit", "1",
				"--interval", "1s", "--timing-topic", ""}, nil)
		if err != nil {
			return err
		}
		if code == 0 {
			return fmt.Errorf("a producer without credentials on the overlay wrote to the hub:\n%s", lastLines(out, 5))
		}
		t.Logf("without credentials, inside the overlay: nothing read, nothing produced, no topic created or deleted on the hub or a mirror")
		return nil
	}
}
