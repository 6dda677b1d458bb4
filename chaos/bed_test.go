package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/childproc"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/minibin"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// The pipeline under test.
const (
	alertsPerVisit = 5000
	visitInterval  = 8 * time.Second
	sharedProcess  = "Shared"
)

// snrFilter is a filter the test can evaluate on its own: alerts whose
// diaSource.snr is above a threshold, at most cap per visit.
type snrFilter struct {
	name      string
	threshold float64
	cap       int
	shared    bool
	// slow first compares every pair of the alert's earlier sources (a
	// test that always passes, about 0.3 ms an alert), so that its shared
	// process moves it to the slow lane (workloads/pipeline/filter_lane.go)
	// and the faults strike while it is behind the others.
	slow bool
}

// slowPrefix is the slow filters' always-true pairwise test.
const slowPrefix = "(alert.prvDiaSources == null || alert.prvDiaSources.all(x, alert.prvDiaSources.all(y, " +
	"x.psfFlux + y.psfFlux > -1.0e30))) && "

func (f snrFilter) spec() filter.Spec {
	s := filter.Spec{Name: f.name, Output: f.name, MaxPerVisit: f.cap,
		Expr: fmt.Sprintf("alert.diaSource.snr > %.1f", f.threshold)}
	if f.slow {
		s.Expr = slowPrefix + s.Expr
		s.TimeBudget = filter.MaxTimeBudget // slow, not a runaway: never quarantined
	}
	return s
}

// filters: some above their cap in every visit, some below it, in both modes.
var filters = []snrFilter{
	{name: "IsoCapped", threshold: 90, cap: 20},
	{name: "IsoUnder", threshold: 100, cap: 20},
	{name: "SharedWide", threshold: 60, cap: 20, shared: true},
	{name: "SharedRare", threshold: 100.2, cap: 20, shared: true},
	{name: "SharedTight", threshold: 95, cap: 5, shared: true},
	{name: "SharedSlow", threshold: 80, cap: 20, shared: true, slow: true},
}

// bed is the real Kafka bed with supervised minibroker processes.
type bed struct {
	t           *testing.T
	dir         string
	bin         string
	hub, mirror *kafkabed.Broker
	mm          *kafkabed.MirrorMaker
	producer    *supervised
	filters     map[string]*supervised // by process name
	consumers   map[string]*supervised // by the filter they read
}

func (b *bed) outFile(filterName string) string {
	return filepath.Join(b.dir, "consume-"+filterName+".jsonl")
}

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd) // this package sits at the repository root
}

func startBed(t *testing.T) *bed {
	dir := t.TempDir()
	if os.Getenv(kafkabed.EnvKeepBed) == "1" { // keep the processes' logs too
		var err error
		if dir, err = os.MkdirTemp("", "chaos-"); err != nil {
			t.Fatal(err)
		}
		t.Logf("keeping %s (%s=1)", dir, kafkabed.EnvKeepBed)
	}
	b := &bed{t: t, dir: dir, filters: map[string]*supervised{}, consumers: map[string]*supervised{}}
	b.bin = minibin.Build(t, dir)
	b.hub = kafkabed.StartBrokerT(t)
	b.mirror = kafkabed.StartBrokerT(t)
	b.mm = kafkabed.StartMirrorMakerT(t, b.hub, b.mirror)
	t.Cleanup(b.stopAll)

	common := []string{"--timing-bootstrap", b.hub.Bootstrap(), "--timing-topic", stream.TimingTopic}
	var shared []filter.Spec
	for _, f := range filters {
		if f.shared {
			shared = append(shared, f.spec())
			continue
		}
		s := f.spec()
		b.filters[f.name] = b.start("filter-"+f.name, append([]string{"filter", "--bootstrap", b.mirror.Bootstrap(),
			"--name", s.Name, "--expr", s.Expr, "--max-per-visit", fmt.Sprint(s.MaxPerVisit), "--from-beginning"}, common...)...)
	}
	specsPath := filepath.Join(dir, "shared.yaml")
	data, err := yaml.Marshal(filter.File{Filters: shared})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(specsPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	b.filters[sharedProcess] = b.start("filter-"+sharedProcess, append([]string{"filter", "--bootstrap", b.mirror.Bootstrap(),
		"--name", sharedProcess, "--filters", specsPath, "--from-beginning"}, common...)...)
	for _, f := range filters {
		b.consumers[f.name] = b.start("consume-"+f.name, append([]string{"consume", "--bootstrap", b.mirror.Bootstrap(),
			"--topic", f.name, "--from-beginning", "--out", b.outFile(f.name)}, common...)...)
	}
	b.producer = b.start("produce", append([]string{"produce", "--bootstrap", b.hub.Bootstrap(),
		"--alerts-per-visit", fmt.Sprint(alertsPerVisit), "--interval", visitInterval.String(), "--cutout-bytes", "0",
		"--visits", "0"}, common...)...)
	return b
}

func (b *bed) start(name string, args ...string) *supervised {
	b.t.Helper()
	p, err := supervise(name, b.bin, filepath.Join(b.dir, name+".log"), args...)
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// stopAll stops every process, consumers last, and reports any that
// needed SIGKILL to stop: a clean stop commits what was handled.
func (b *bed) stopAll() {
	all := []*supervised{b.producer}
	for _, p := range b.filters {
		all = append(all, p)
	}
	for _, p := range b.consumers {
		all = append(all, p)
	}
	for _, p := range all {
		if p != nil && !p.stop() {
			b.t.Errorf("%s ignored SIGTERM for %s; log:\n%s", p.name, stopGrace, childproc.TailFile(p.logPath, 20))
		}
	}
}

// logs returns the last lines of the named processes' logs.
func (b *bed) logs(names ...string) string {
	var s strings.Builder
	for _, n := range names {
		fmt.Fprintf(&s, "\n--- %s ---\n%s", n, childproc.TailFile(filepath.Join(b.dir, n+".log"), 15))
	}
	return s.String()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
