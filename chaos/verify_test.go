package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// placed is one alert of the stream as the test sees it.
type placed struct {
	visit     int64
	index     int64
	partition int32
	id        string
	snr       float64
}

type alertKey struct {
	visit int64
	index int64
}

// produced is what reached a broker's alerts topic: the first copy of each
// alert in partition and offset order, and how many copies came again.
type produced struct {
	run     string
	alerts  []placed // first copies, partition by partition in offset order
	count   map[int64]int64
	indexes map[alertKey]bool
	copies  map[int64]int // per visit: copies beyond the first
}

func readAlerts(ctx context.Context, bootstrap string) (*produced, error) {
	reg := alert.NewRegistry()
	reg.Add(alert.SyntheticSchema())
	dec := alert.NewDecoder(reg)
	p := &produced{count: map[int64]int64{}, indexes: map[alertKey]bool{}, copies: map[int64]int{}}
	err := kclient.ReadAll(ctx, bootstrap, nil, stream.AlertsTopic, func(m *kafka.Message) error {
		h := headers(m)
		visit, _ := strconv.ParseInt(h[stream.HeaderVisit], 10, 64)
		index, _ := strconv.ParseInt(h[stream.HeaderIndex], 10, 64)
		count, _ := strconv.ParseInt(h[stream.HeaderCount], 10, 64)
		if p.run == "" {
			p.run = h[stream.HeaderRun]
		} else if p.run != h[stream.HeaderRun] {
			return fmt.Errorf("alert of a second producer run %q (first %q)", h[stream.HeaderRun], p.run)
		}
		k := alertKey{visit, index}
		if p.indexes[k] {
			p.copies[visit]++
			return nil
		}
		p.indexes[k] = true
		p.count[visit] = count
		rec, _, err := dec.DecodeMessage(m.Value)
		if err != nil {
			return fmt.Errorf("decode alert %d of visit %d: %w", index, visit, err)
		}
		id, _ := alert.Lookup(rec, alert.DefaultIDPath)
		snr, _ := alert.Lookup(rec, "diaSource.snr")
		p.alerts = append(p.alerts, placed{visit: visit, index: index, partition: m.TopicPartition.Partition,
			id: fmt.Sprint(id), snr: snr.(float64)})
		return nil
	})
	return p, err
}

// missing returns, per visit, how many of its alerts p lacks.
func (p *produced) missing() map[int64]int64 {
	seen := map[int64]int64{}
	for k := range p.indexes {
		seen[k.visit]++
	}
	out := map[int64]int64{}
	for v, n := range p.count {
		if seen[v] < n {
			out[v] = n - seen[v]
		}
	}
	return out
}

func (p *produced) visits() []int64 {
	var vs []int64
	for v := range p.count {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// expected is what filter f must select from one visit: all matches when
// they fit under the cap; otherwise, per partition, a prefix of the
// partition's matches in offset order, cap in all.
type expected struct {
	matches     []placed
	byPartition map[int32][]string // match ids in offset order
}

func expect(p *produced, f snrFilter, visit int64) expected {
	e := expected{byPartition: map[int32][]string{}}
	for _, a := range p.alerts {
		if a.visit == visit && a.snr > f.threshold {
			e.matches = append(e.matches, a)
			e.byPartition[a.partition] = append(e.byPartition[a.partition], a.id)
		}
	}
	return e
}

// outputAlert is one filtered alert read back from an output topic.
type outputAlert struct {
	visit int64
	rank  int
	id    string
}

func readOutput(ctx context.Context, bootstrap, topic string) ([]outputAlert, error) {
	var out []outputAlert
	err := kclient.ReadAll(ctx, bootstrap, nil, topic, func(m *kafka.Message) error {
		h := headers(m)
		visit, _ := strconv.ParseInt(h[stream.HeaderVisit], 10, 64)
		rank, _ := strconv.Atoi(h[stream.HeaderRank])
		out = append(out, outputAlert{visit: visit, rank: rank, id: h[stream.HeaderID]})
		return nil
	})
	return out, err
}

// consumed is one line of a consumer's --out file.
type consumed struct {
	Visit int64  `json:"visit"`
	Rank  int    `json:"rank"`
	ID    string `json:"id"`
}

func readOutFile(path string) ([]consumed, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []consumed
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c consumed
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return nil, fmt.Errorf("%s: line %q: %w", path, sc.Text(), err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// visitCheck is the verdict on one filter and one visit.
type visitCheck struct {
	lost, duplicated, overCap int
	problems                  []string
}

// checkVisit compares what a filter wrote and its consumer got for a visit
// with the independent evaluation.
func checkVisit(f snrFilter, want expected, outs []outputAlert, got []consumed) visitCheck {
	var c visitCheck
	bad := func(format string, args ...any) { c.problems = append(c.problems, fmt.Sprintf(format, args...)) }

	ids := map[string]int{}
	for i, o := range outs {
		ids[o.id]++
		if o.rank != i+1 {
			bad("output %d has rank %d, want %d", i, o.rank, i+1)
		}
	}
	for id, n := range ids {
		if n > 1 {
			c.duplicated += n - 1
			bad("alert %s written %d times", id, n)
		}
	}
	if len(ids) > f.cap {
		c.overCap = len(ids) - f.cap
		bad("%d alerts written, cap %d", len(ids), f.cap)
	}
	wantN := min(len(want.matches), f.cap)
	if len(ids) < wantN {
		c.lost += wantN - len(ids)
		bad("%d alerts written, want %d (%d matches, cap %d)", len(ids), wantN, len(want.matches), f.cap)
	}
	for id := range ids {
		if !slices.ContainsFunc(want.matches, func(p placed) bool { return p.id == id }) {
			bad("alert %s written but it does not match", id)
		}
	}
	// Above the cap, each partition contributes a prefix of its matches.
	for part, matchIDs := range want.byPartition {
		taken := 0
		for _, id := range matchIDs {
			if ids[id] == 0 {
				break
			}
			taken++
		}
		for _, id := range matchIDs[taken:] {
			if ids[id] > 0 {
				bad("partition %d: alert %s selected after an earlier match that was not", part, id)
				break
			}
		}
	}

	// The consumer got each written alert once.
	gotIDs := map[string]int{}
	for _, g := range got {
		gotIDs[g.ID]++
	}
	for id, n := range gotIDs {
		if n > 1 {
			c.duplicated += n - 1
			bad("consumer wrote alert %s %d times", id, n)
		}
		if ids[id] == 0 {
			bad("consumer got alert %s that the filter did not write", id)
		}
	}
	for id := range ids {
		if gotIDs[id] == 0 {
			c.lost++
			bad("consumer never got alert %s", id)
		}
	}
	return c
}

// filterEvents returns every copy of the filter timing events, by filter
// and visit, and how many were copies of an earlier one.
func filterEvents(ctx context.Context, hub string) (map[string]map[int64][]timing.Event, int, error) {
	raw, err := pipeline.ReadTimingRaw(ctx, hub, nil, stream.TimingTopic)
	if err != nil {
		return nil, 0, err
	}
	_, repeats := timing.Dedup(raw)
	out := map[string]map[int64][]timing.Event{}
	for _, e := range raw {
		if e.Kind != timing.KindFilter {
			continue
		}
		if out[e.Name] == nil {
			out[e.Name] = map[int64][]timing.Event{}
		}
		out[e.Name][e.Visit] = append(out[e.Name][e.Visit], e)
	}
	return out, repeats, nil
}

func headers(m *kafka.Message) map[string]string {
	h := make(map[string]string, len(m.Headers))
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}
