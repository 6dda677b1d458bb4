package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// LocalConfig configures the whole mini-broker in one process.
type LocalConfig struct {
	Bootstrap      string // "" runs on embedded brokers (kfake), one hub and one per mirror
	Mirrors        int
	Filters        int
	Shared         bool // one shared filter process per mirror instead of one per filter
	Visits         int
	Interval       time.Duration
	AlertsPerVisit int
	CutoutBytes    int
	Seed           int64
	Parallel       int
	Log            *slog.Logger
	// Settle bounds the wait, after the last visit, for every filter and
	// consumer to finish it.
	Settle time.Duration
}

// Local runs producer, hub, mirrors, filters and consumers, sends the
// visits, waits until every filter and consumer has finished them and
// returns the timing events of the run.
func Local(ctx context.Context, cfg LocalConfig) ([]timing.Event, error) {
	if cfg.Mirrors < 1 || cfg.Filters < 1 || cfg.Visits < 1 {
		return nil, fmt.Errorf("local: need at least one mirror, filter and visit (got %d, %d, %d)", cfg.Mirrors, cfg.Filters, cfg.Visits)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 60 * time.Second
	}
	hub, mirrors, suffixes, stop, err := localBrokers(cfg.Bootstrap, cfg.Mirrors)
	if err != nil {
		return nil, err
	}
	defer stop()
	if err := kclient.EnsureTopics(ctx, hub, nil,
		kclient.Topic{Name: stream.AlertsTopic, Partitions: stream.DefaultPartitions},
		kclient.Topic{Name: stream.SchemasTopic, Partitions: 1, Compacted: true},
		kclient.Topic{Name: stream.TimingTopic, Partitions: 1}); err != nil {
		return nil, err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &group{}
	ready := newReadiness()
	for m := range mirrors {
		g.go_(func() error {
			return Mirror(runCtx, MirrorConfig{Source: hub, Target: mirrors[m], Topics: []string{stream.AlertsTopic, stream.SchemasTopic},
				Suffix: suffixes[m], Name: fmt.Sprintf("mirror%d", m+1), Log: cfg.Log, Ready: ready.add()})
		})
	}
	specs := DemoSpecs(cfg.Filters)
	if cfg.Bootstrap != "" {
		for i := range specs { // mirrors share the cluster: keep outputs of separate runs apart
			specs[i].Output = fmt.Sprintf("%s%s", specs[i].Name, suffixes[i%cfg.Mirrors])
		}
	}
	for m := range mirrors {
		var mine []filter.Spec
		for i := m; i < len(specs); i += cfg.Mirrors {
			mine = append(mine, specs[i])
		}
		groups := [][]filter.Spec{mine}
		if !cfg.Shared {
			groups = groups[:0]
			for _, s := range mine {
				groups = append(groups, []filter.Spec{s})
			}
		}
		for k, gs := range groups {
			fc := FilterConfig{Bootstrap: mirrors[m], Input: stream.AlertsTopic + suffixes[m], Specs: gs,
				SchemasTopic: stream.SchemasTopic + suffixes[m], FromBeginning: true,
				TimingBootstrap: hub, TimingTopic: stream.TimingTopic, Log: cfg.Log, Ready: ready.add()}
			if cfg.Shared {
				fc.Name = fmt.Sprintf("shared-mirror%d-%d", m+1, k+1)
			}
			g.go_(func() error { return RunFilters(runCtx, fc) })
		}
		for _, s := range mine {
			cc := ConsumeConfig{Bootstrap: mirrors[m], Topic: s.Output, Name: "consumer-" + s.Name, FromBeginning: true,
				TimingBootstrap: hub, TimingTopic: stream.TimingTopic, Log: cfg.Log, Ready: ready.add()}
			g.go_(func() error { return Consume(runCtx, cc) })
		}
	}
	if err := ready.wait(ctx, 60*time.Second, g); err != nil {
		return nil, err
	}

	run := fmt.Sprintf("local-%d", time.Now().UnixNano())
	err = Produce(ctx, ProduceConfig{Bootstrap: hub, SchemasTopic: stream.SchemasTopic, Source: NewSynthetic(cfg.Seed, cfg.CutoutBytes),
		AlertsPerVisit: cfg.AlertsPerVisit, Interval: cfg.Interval, Visits: cfg.Visits, Parallel: cfg.Parallel, Run: run,
		TimingTopic: stream.TimingTopic, Partitions: stream.DefaultPartitions, Log: cfg.Log})
	if err != nil {
		return nil, err
	}
	evs, err := WaitComplete(ctx, hub, nil, stream.TimingTopic, run, cfg.Filters, cfg.Visits, cfg.Settle)
	cancel()
	if gerr := g.wait(); gerr != nil && !errors.Is(gerr, context.Canceled) {
		return evs, gerr
	}
	return evs, err
}

// localBrokers returns the hub and mirror bootstrap addresses: embedded
// brokers, or topic suffixes on the given cluster.
func localBrokers(bootstrap string, n int) (hub string, mirrors, suffixes []string, stop func(), err error) {
	mirrors, suffixes = make([]string, n), make([]string, n)
	if bootstrap != "" {
		for i := range mirrors {
			mirrors[i], suffixes[i] = bootstrap, fmt.Sprintf(".mirror%d", i+1)
		}
		return bootstrap, mirrors, suffixes, func() {}, nil
	}
	var clusters []*kfake.Cluster
	stop = func() {
		for _, c := range clusters {
			c.Close()
		}
	}
	start := func() (string, error) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.BrokerConfigs(map[string]string{"message.max.bytes": fmt.Sprint(kclient.MaxMessageBytes)}))
		if err != nil {
			return "", fmt.Errorf("embedded broker: %w", err)
		}
		clusters = append(clusters, c)
		return c.ListenAddrs()[0], nil
	}
	if hub, err = start(); err != nil {
		stop()
		return "", nil, nil, nil, err
	}
	for i := range mirrors {
		if mirrors[i], err = start(); err != nil {
			stop()
			return "", nil, nil, nil, err
		}
	}
	return hub, mirrors, suffixes, stop, nil
}

// WaitComplete reads the timing topic until, for run, every one of filters
// has finished each of visits and every consumer has received every alert
// its filter selected, or until settle passes. It returns the run's events.
func WaitComplete(ctx context.Context, bootstrap string, conn map[string]string, topic, run string, filters, visits int, settle time.Duration) ([]timing.Event, error) {
	deadline := time.Now().Add(settle)
	for {
		all, err := ReadTiming(ctx, bootstrap, conn, topic)
		if err != nil {
			return nil, err
		}
		evs := ForRun(all, run)
		missing := missingEvents(evs, filters, visits)
		if missing == "" {
			return evs, nil
		}
		if time.Now().After(deadline) {
			return evs, fmt.Errorf("run %s incomplete after %s: %s", run, settle, missing)
		}
		if err := sleepUntil(ctx, time.Now().Add(250*time.Millisecond)); err != nil {
			return evs, err
		}
	}
}

// ForRun keeps the events of one producer run.
func ForRun(evs []timing.Event, run string) []timing.Event {
	var out []timing.Event
	for _, e := range evs {
		if e.Run == run {
			out = append(out, e)
		}
	}
	return out
}

// missingEvents describes what a run still lacks, or returns "": every
// produced visit finished by every filter, and every alert a filter selected
// received by its consumer.
func missingEvents(evs []timing.Event, filters, visits int) string {
	type key struct {
		topic string
		visit int64
	}
	produced := map[int64]bool{}
	finished := map[int64]map[string]bool{} // visit -> filters done
	want, got := map[key]int{}, map[key]int{}
	for _, e := range evs {
		switch e.Kind {
		case timing.KindProduce:
			produced[e.Visit] = true
		case timing.KindFilter:
			if finished[e.Visit] == nil {
				finished[e.Visit] = map[string]bool{}
			}
			finished[e.Visit][e.Name] = true
			want[key{e.Source, e.Visit}] = e.Selected
		case timing.KindConsume:
			got[key{e.Source, e.Visit}]++
		}
	}
	if len(produced) < visits {
		return fmt.Sprintf("%d of %d visits produced", len(produced), visits)
	}
	for v := range produced {
		if n := len(finished[v]); n < filters {
			return fmt.Sprintf("visit %d finished by %d of %d filters", v, n, filters)
		}
	}
	for k, n := range want {
		if got[k] < n {
			return fmt.Sprintf("consumer of %s has %d of %d alerts of visit %d", k.topic, got[k], n, k.visit)
		}
	}
	return ""
}

// group runs goroutines and keeps the first error.
type group struct {
	wg   sync.WaitGroup
	once sync.Once
	err  error
	errc chan struct{}
	mu   sync.Mutex
}

func (g *group) go_(fn func() error) {
	g.mu.Lock()
	if g.errc == nil {
		g.errc = make(chan struct{})
	}
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := fn(); err != nil {
			g.once.Do(func() { g.err = err; close(g.errc) })
		}
	}()
}

func (g *group) failed() <-chan struct{} { return g.errc }

func (g *group) wait() error {
	g.wg.Wait()
	return g.err
}

// readiness counts components that must be ready before the producer starts.
type readiness struct {
	mu      sync.Mutex
	pending int
	done    chan struct{}
}

func newReadiness() *readiness { return &readiness{done: make(chan struct{})} }

func (r *readiness) add() func() {
	r.mu.Lock()
	r.pending++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.pending--; r.pending == 0 {
			close(r.done)
		}
	}
}

func (r *readiness) wait(ctx context.Context, timeout time.Duration, g *group) error {
	r.mu.Lock()
	if r.pending == 0 {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.done:
		return nil
	case <-g.failed():
		return g.err
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		r.mu.Lock()
		defer r.mu.Unlock()
		return fmt.Errorf("%d components not ready after %s", r.pending, timeout)
	}
}
