package timing

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Kind is the stage that emitted an Event.
type Kind string

// The event kinds.
const (
	KindProduce Kind = "produce" // the producer sent a visit
	KindFilter  Kind = "filter"  // a filter finished a visit
	KindConsume Kind = "consume" // an end consumer received one alert
	// KindQuarantine: a filter went over its time budget for a visit and
	// is skipped for the rest of it (or for whole visits; Reason says).
	KindQuarantine Kind = "quarantine"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindProduce, KindFilter, KindConsume, KindQuarantine:
		return true
	}
	return false
}

// UnmarshalText rejects unknown kinds, so decoding such an event fails.
func (k *Kind) UnmarshalText(b []byte) error {
	v := Kind(b)
	if !v.Valid() {
		return fmt.Errorf("unknown event kind %q: want %q, %q, %q or %q", string(b), KindProduce, KindFilter, KindConsume, KindQuarantine)
	}
	*k = v
	return nil
}

// Event is one timing record, sent as JSON in one Kafka message.
type Event struct {
	Kind   Kind      `json:"kind"`
	Run    string    `json:"run,omitempty"`    // producer run id
	Visit  int64     `json:"visit"`            // visit number
	Name   string    `json:"name"`             // producer / filter / consumer name
	Source string    `json:"source,omitempty"` // consume: the filter (topic) it reads
	Start  time.Time `json:"start,omitzero"`   // produce: visit start (before serializing the first alert); filter: see Sent
	End    time.Time `json:"end"`              // produce: all alerts acknowledged; filter: last alert of the visit processed; consume: this alert arrived
	// Filter events of a visit without produce events (an upstream
	// stream, whose alerts carry no mb-* headers): Start and Sent are the
	// record timestamps of its earliest and latest alerts, when the
	// upstream wrote them; the report takes them as the visit's start and
	// end.
	Sent        time.Time `json:"sent,omitzero"`
	Alerts      int       `json:"alerts,omitempty"` // produce: alerts sent; filter: alerts read for the visit
	Bytes       int64     `json:"bytes,omitempty"`
	Matched     int       `json:"matched,omitempty"`      // filter: alerts matching before the cap
	Selected    int       `json:"selected,omitempty"`     // filter: alerts written (<= cap)
	DeadLetters int       `json:"dead_letters,omitempty"` // produce: alerts not sent (too large for the hub: a stand-in went in the place of each); filter, consume: records dead-lettered
	Duplicates  int       `json:"duplicates,omitempty"`   // filter: copies of alerts already handled, dropped
	Rank        int       `json:"rank,omitempty"`         // consume: 1-based rank of this alert in its visit's filtered stream
	// Filter: CEL runtime errors by kind (filter.ErrKind*), alerts not
	// evaluated while the filter was quarantined, and whether it was.
	Errors      map[string]int `json:"errors,omitempty"`
	Skipped     int            `json:"skipped,omitempty"`
	Quarantined bool           `json:"quarantined,omitempty"`
	Reason      string         `json:"reason,omitempty"` // quarantine: why
}

// Validate checks that the event can be used in a report: a known kind, a
// name, an end time, a start time for produce events, a rank of at least 1
// and a source for consume events, no negative counts.
func (e Event) Validate() error {
	if !e.Kind.Valid() {
		return fmt.Errorf("timing event: unknown kind %q: want %q, %q, %q or %q", e.Kind, KindProduce, KindFilter, KindConsume, KindQuarantine)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("timing event %s %q visit %d: %s", e.Kind, e.Name, e.Visit, fmt.Sprintf(format, args...))
	}
	switch {
	case e.Name == "":
		return bad("missing name")
	case e.End.IsZero():
		return bad("missing end time")
	case e.Kind == KindProduce && e.Start.IsZero():
		return bad("missing start time (the visit start)")
	case e.Kind == KindConsume && e.Rank < 1:
		return bad("rank %d: consume events need the 1-based rank of the alert", e.Rank)
	case e.Kind == KindConsume && e.Source == "":
		return bad("missing source (the filter topic read)")
	case e.Alerts < 0 || e.Bytes < 0 || e.Matched < 0 || e.Selected < 0 || e.DeadLetters < 0 || e.Skipped < 0:
		return bad("negative count")
	case e.Kind == KindQuarantine && e.Reason == "":
		return bad("missing reason")
	}
	for kind, n := range e.Errors {
		if n < 0 {
			return bad("negative count of %s errors", kind)
		}
	}
	return nil
}

// Encode validates e and returns its JSON form (one Kafka message value).
func Encode(e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("timing event: encoding: %w", err)
	}
	return b, nil
}

// Decode parses and validates one JSON event. Unknown JSON fields are
// ignored, so newer producers can add fields.
func Decode(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("timing event: decoding %s: %w", preview(data), err)
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// ReadEvents reads JSON events, one per line (blank lines skipped), e.g. a
// dump of the timing topic. Errors name the line.
func ReadEvents(r io.Reader) ([]Event, error) {
	var events []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		e, err := Decode(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading timing events: %w", err)
	}
	return events, nil
}

// WriteEvents writes events as JSON lines, the format ReadEvents reads.
func WriteEvents(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	for i, e := range events {
		b, err := Encode(e)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		bw.Write(b)
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing timing events: %w", err)
	}
	return nil
}

func preview(b []byte) string {
	const max = 60
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}
