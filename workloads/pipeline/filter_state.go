package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/timing"
)

// What a filter process remembers between alerts, and how much of it.
const (
	// maxOpenVisits bounds the visits a filter tallies at once: a visit
	// whose first alerts went by before the filter started never completes,
	// and must not be kept forever.
	maxOpenVisits = 64
	// maxDoneVisits is how many completed visits a filter remembers, to
	// recognise a copy of one of their alerts (MirrorMaker 2 copies again
	// what it had not committed when it restarts) and drop it.
	maxDoneVisits = 64
	// savedCapVisits is how many visits' cap counts per filter are saved
	// with each transaction: a restarted filter resumes their ranks. Older
	// visits are complete, so their copies are dropped before the cap.
	savedCapVisits = 16
	// stateVersion is the version of the state record's format.
	stateVersion = 1
	// stateKey is the key of the state record in the compacted state topic.
	stateKey = "state"
)

type visitKey struct {
	Run   string `json:"run"`
	Visit int64  `json:"visit"`
}

// visitTally counts what a filter process did with one visit.
type visitTally struct {
	// count is the visit's alert count (header mb-count); 0 for a visit
	// whose alerts carry no headers, which closes as handleHeaderless says.
	count, seen, dead, dups int
	// parked counts the visit's alerts waiting for their schema
	// (resolveParked): the visit is not complete before they are filtered.
	parked            int
	matched, selected []int // per filter
	bytes             int64
	// indexes has bit i set once the visit's alert i (header mb-index) has
	// been handled: a second copy is a duplicate.
	indexes []byte
	// Header-less visits only: the earliest and latest record timestamps
	// of their alerts (when the upstream wrote them), and when the filter
	// handled the latest one.
	first, sent, last time.Time
}

// arrived records the times of a header-less visit's alert handled at now.
func (t *visitTally) arrived(stamp time.Time, kind kafka.TimestampType, now time.Time) {
	t.last = now
	if kind == kafka.TimestampNotAvailable || stamp.IsZero() {
		return
	}
	if t.first.IsZero() || stamp.Before(t.first) {
		t.first = stamp
	}
	if stamp.After(t.sent) {
		t.sent = stamp
	}
}

func newTally(count, filters int) *visitTally {
	return &visitTally{count: count, matched: make([]int, filters), selected: make([]int, filters),
		indexes: make([]byte, (count+7)/8)}
}

// firstSight marks alert index of the visit as handled and reports whether
// it was not already. Indexes outside the visit are not tracked.
func (t *visitTally) firstSight(index int64, ok bool) bool {
	if !ok || index < 0 || index >= int64(t.count) {
		return true
	}
	b, bit := index/8, byte(1)<<(index%8)
	if t.indexes[b]&bit != 0 {
		return false
	}
	t.indexes[b] |= bit
	return true
}

// visitBook is a filter process's memory of visits: the open ones with
// their tallies, the recently completed ones, and the timing events of
// completed visits not yet sent.
type visitBook struct {
	open    map[visitKey]*visitTally
	done    []visitKey // oldest first
	pending []timing.Event
	// newest holds, per input partition, the newest visit of a header-less
	// alert read there (handleHeaderless).
	newest map[int32]int64
	// lane is the slow lane (filter_lane.go): where its filters stand,
	// their held events, and the alerts queued for them.
	lane *lane
}

// newVisitBook returns an empty book, its lane disabled (at least once).
func newVisitBook() *visitBook {
	return &visitBook{open: map[visitKey]*visitTally{}, newest: map[int32]int64{}, lane: newLane(false)}
}

func (b *visitBook) isDone(k visitKey) bool { return slices.Contains(b.done, k) }

// current returns the open header-less visit that received an alert last,
// if any: the one an undecodable alert (whose visit is unknown) is counted
// in. Several are open while partitions deliver different visits.
func (b *visitBook) current() *visitTally {
	var cur *visitTally
	for _, t := range b.open {
		if t.count == 0 && (cur == nil || t.last.After(cur.last)) {
			cur = t
		}
	}
	return cur
}

func (b *visitBook) complete(k visitKey) {
	delete(b.open, k)
	b.done = append(b.done, k)
	if len(b.done) > maxDoneVisits {
		b.done = slices.Delete(b.done, 0, len(b.done)-maxDoneVisits)
	}
}

// pendingID names a pending completion event: one per visit and filter.
type pendingID struct {
	visitKey
	name string
}

func pendingKey(e timing.Event) pendingID { return pendingID{visitKey{e.Run, e.Visit}, e.Name} }

// savedState is the record a filter process writes to its state topic in
// every transaction. Per-filter figures are keyed by filter name, so a
// process restarted with filters added or removed keeps the others'.
type savedState struct {
	Version int                            `json:"version"`
	Open    []savedVisit                   `json:"open,omitempty"`
	Done    []visitKey                     `json:"done,omitempty"`
	Caps    map[string][]filter.VisitCount `json:"caps,omitempty"`
	Pending []timing.Event                 `json:"pending,omitempty"`
	Newest  map[int32]int64                `json:"newest,omitempty"`
	// Budgets are the filters' time budgets (use of recent visits,
	// quarantines).
	Budgets map[string]filter.BudgetState `json:"budgets,omitempty"`
	Lane    *savedLane                    `json:"lane,omitempty"`
}

// savedLane is where the slow lane stands (filter_lane.go), saved while a
// deferred filter is behind the main loop or an event is held.
type savedLane struct {
	MainNext map[int32]int64            `json:"main_next"`
	Behind   map[string]map[int32]int64 `json:"behind,omitempty"` // per deferred filter
	Skip     map[int32]*offsetRanges    `json:"skip,omitempty"`
	Held     []heldEvent                `json:"held,omitempty"`
}

type savedVisit struct {
	visitKey
	Count    int            `json:"count"`
	Seen     int            `json:"seen"`
	Dead     int            `json:"dead,omitempty"`
	Dups     int            `json:"dups,omitempty"`
	Bytes    int64          `json:"bytes"`
	Matched  map[string]int `json:"matched,omitempty"`
	Selected map[string]int `json:"selected,omitempty"`
	Indexes  []byte         `json:"indexes"`
	// Header-less visits: visitTally's first, sent and last.
	First time.Time `json:"first,omitzero"`
	Sent  time.Time `json:"sent,omitzero"`
	Last  time.Time `json:"last,omitzero"`
}

// snapshot encodes what the process must remember, with set's caps;
// replaying says that the offsets committed with it lie below where the
// main loop got (lane.replayPending).
func (b *visitBook) snapshot(set *filter.Set, replaying bool) ([]byte, error) {
	st := savedState{Version: stateVersion, Done: b.done, Pending: b.pending, Newest: b.newest, Caps: map[string][]filter.VisitCount{}}
	for k, t := range b.open {
		v := savedVisit{visitKey: k, Count: t.count, Seen: t.seen, Dead: t.dead, Dups: t.dups, Bytes: t.bytes,
			Matched: map[string]int{}, Selected: map[string]int{}, Indexes: t.indexes, First: t.first, Sent: t.sent, Last: t.last}
		for i := range t.matched {
			name := set.Spec(i).Name
			if t.matched[i] > 0 {
				v.Matched[name] = t.matched[i]
			}
			if t.selected[i] > 0 {
				v.Selected[name] = t.selected[i]
			}
		}
		st.Open = append(st.Open, v)
	}
	st.Budgets = map[string]filter.BudgetState{}
	for i := range set.Len() {
		if counts := set.CapCounts(i, savedCapVisits); len(counts) > 0 {
			st.Caps[set.Spec(i).Name] = counts
		}
		if bs := set.Budget(i); len(bs.Visits) > 0 {
			st.Budgets[set.Spec(i).Name] = bs
		}
	}
	if behind := b.lane.behind(); len(behind) > 0 || len(b.lane.held) > 0 || replaying {
		sl := &savedLane{MainNext: b.lane.mainNext, Behind: map[string]map[int32]int64{}, Skip: b.lane.skip, Held: b.lane.held}
		for i, parts := range behind {
			sl.Behind[set.Spec(i).Name] = parts
		}
		st.Lane = sl
	}
	return json.Marshal(st)
}

// restoreBook decodes a state record (nil: a new process) and restores
// set's caps from it.
func restoreBook(data []byte, set *filter.Set) (*visitBook, error) {
	b := newVisitBook()
	b.lane.enabled = true
	for i := range set.Len() {
		set.Defer(i, false)
	}
	if data == nil { // a new process, or one whose first transaction aborted
		for i := range set.Len() {
			set.RestoreCaps(i, nil)
			set.RestoreBudget(i, filter.BudgetState{})
		}
		return b, nil
	}
	var st savedState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("decode the saved filter state: %w", err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("saved filter state has version %d; this filter reads version %d", st.Version, stateVersion)
	}
	b.done, b.pending = st.Done, st.Pending
	for p, v := range st.Newest {
		b.newest[p] = v
	}
	for _, v := range st.Open {
		t := newTally(v.Count, set.Len())
		t.seen, t.dead, t.dups, t.bytes = v.Seen, v.Dead, v.Dups, v.Bytes
		t.first, t.sent, t.last = v.First, v.Sent, v.Last
		if len(v.Indexes) == len(t.indexes) {
			t.indexes = v.Indexes
		}
		for i := range set.Len() {
			name := set.Spec(i).Name
			t.matched[i], t.selected[i] = v.Matched[name], v.Selected[name]
		}
		b.open[v.visitKey] = t
	}
	for i := range set.Len() {
		set.RestoreCaps(i, st.Caps[set.Spec(i).Name])
		set.RestoreBudget(i, st.Budgets[set.Spec(i).Name])
	}
	if sl := st.Lane; sl != nil {
		maps.Copy(b.lane.mainNext, sl.MainNext)
		maps.Copy(b.lane.skip, sl.Skip)
		b.lane.held = sl.Held
		for i := range set.Len() {
			if parts, ok := sl.Behind[set.Spec(i).Name]; ok {
				set.Defer(i, true)
				b.lane.upTo[i] = maps.Clone(sl.MainNext) // caught up where not behind
				maps.Copy(b.lane.upTo[i], parts)
			}
		}
	}
	return b, nil
}

// readState returns the last committed record of a filter's state topic,
// or nil if there is none. Call it after the process's transactional
// producer has been initialised: that aborts whatever a predecessor left
// open, so the committed end is the true end.
//
// Each transaction ends with a state record and its marker, so the last
// committed record is near the end: the tail is read first, the whole
// topic only if the tail holds none (aborted transactions at the end).
func readState(ctx context.Context, bootstrap string, conn map[string]string, topic string) ([]byte, error) {
	for _, n := range []int64{stateTail, -1} {
		var last []byte
		err := kclient.ReadTail(ctx, bootstrap, conn, topic, n, func(m *kafka.Message) error {
			if string(m.Key) == stateKey {
				last = m.Value
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read the filter state from %s on %s: %w", topic, bootstrap, err)
		}
		if last != nil {
			return last, nil
		}
	}
	return nil, nil // no transaction has committed yet
}

// writeState queues a state record (key stateKey) to topic in out's open
// transaction.
func writeState(ctx context.Context, out *kafka.Producer, topic string, state []byte) error {
	return kclient.ProduceWaiting(ctx, out, &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            []byte(stateKey), Value: state,
	}, nil)
}

// stateTail is how many offsets at the end of the state topic are read
// first for its last record.
const stateTail = 64

// stateTopicConfig keeps the state topic small: its segments roll often
// so the log cleaner can drop the superseded records (Kafka's defaults,
// 1 GiB segments, would let it grow by gigabytes first).
var stateTopicConfig = map[string]string{
	"segment.bytes":             strconv.Itoa(8 << 20),
	"segment.ms":                "600000",
	"min.cleanable.dirty.ratio": "0.1",
}
