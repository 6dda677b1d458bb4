package timing

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func validEvents() []Event {
	start := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	return []Event{
		{Kind: KindProduce, Run: "run-1", Visit: 42, Name: "producer", Start: start, End: start.Add(15 * time.Second), Alerts: 10000, Bytes: 81234567, DeadLetters: 1},
		{Kind: KindFilter, Visit: 42, Name: "Filter001", End: start.Add(15250 * time.Millisecond), Alerts: 10000, Bytes: 1234, Matched: 31, Selected: 20},
		{Kind: KindConsume, Visit: 42, Name: "consumer-1", Source: "Filter001", End: start.Add(5 * time.Second), Rank: 20},
	}
}

func TestEventRoundTrip(t *testing.T) {
	for _, e := range validEvents() {
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) || !got.Start.Equal(e.Start) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, e)
		}
	}
	// The wire form uses the documented keys and omits empty optional ones.
	b, _ := Encode(validEvents()[2])
	want := `{"kind":"consume","visit":42,"name":"consumer-1","source":"Filter001","end":"2024-05-06T07:08:14.123456789Z","rank":20}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
}

func TestReadWriteEvents(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteEvents(&buf, validEvents()); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("\n   \n")
	got, err := ReadEvents(&buf)
	if err != nil || !reflect.DeepEqual(got, validEvents()) {
		t.Fatalf("got %v, %v", got, err)
	}
	_, err = ReadEvents(strings.NewReader(`{"kind":"produce","visit":1,"name":"p","start":"2024-01-01T00:00:00Z","end":"2024-01-01T00:00:01Z"}` + "\n" + `{"kind":"nope"}`))
	if err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), `unknown event kind "nope"`) {
		t.Fatalf("bad line: %v", err)
	}
	if err := WriteEvents(&buf, []Event{{Kind: "x"}}); err == nil || !strings.Contains(err.Error(), "event 0") {
		t.Fatalf("write invalid: %v", err)
	}
}

func TestKindValidation(t *testing.T) {
	for _, k := range []Kind{KindProduce, KindFilter, KindConsume} {
		if !k.Valid() {
			t.Errorf("%s invalid", k)
		}
	}
	for _, k := range []Kind{"", "Produce", "consumer", "timing"} {
		if k.Valid() {
			t.Errorf("%q valid", k)
		}
		e := validEvents()[0]
		e.Kind = k
		if _, err := Encode(e); err == nil || !strings.Contains(err.Error(), "unknown kind") {
			t.Errorf("encode %q: %v", k, err)
		}
	}
	_, err := Decode([]byte(`{"kind":"teleport","visit":1,"name":"x","end":"2024-01-01T00:00:00Z"}`))
	if err == nil || !strings.Contains(err.Error(), `unknown event kind "teleport"`) {
		t.Errorf("decode unknown kind: %v", err)
	}
	_, err = Decode([]byte(`{"visit":1,"name":"x","end":"2024-01-01T00:00:00Z"}`))
	if err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Errorf("decode missing kind: %v", err)
	}
	if _, err := Decode([]byte(`not json`)); err == nil || !strings.Contains(err.Error(), "decoding") {
		t.Errorf("not JSON: %v", err)
	}
	// Unknown fields are tolerated.
	if _, err := Decode([]byte(`{"kind":"filter","visit":1,"name":"x","end":"2024-01-01T00:00:00Z","host":"h1"}`)); err != nil {
		t.Errorf("extra field: %v", err)
	}
}

func TestEventValidate(t *testing.T) {
	base := validEvents()
	cases := []struct {
		mod  func(*Event)
		idx  int
		want string
	}{
		{func(e *Event) { e.Name = "" }, 0, "missing name"},
		{func(e *Event) { e.End = time.Time{} }, 1, "missing end"},
		{func(e *Event) { e.Start = time.Time{} }, 0, "missing start"},
		{func(e *Event) { e.Rank = 0 }, 2, "rank 0"},
		{func(e *Event) { e.Source = "" }, 2, "missing source"},
		{func(e *Event) { e.Selected = -1 }, 1, "negative count"},
	}
	for _, c := range cases {
		e := base[c.idx]
		c.mod(&e)
		if err := e.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	// A filter event needs no start time.
	if err := base[1].Validate(); err != nil {
		t.Error(err)
	}
}
