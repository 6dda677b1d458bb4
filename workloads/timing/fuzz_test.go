package timing

// Fuzz targets for timing events (issue 13): one event (Decode) and a dump
// of the timing topic (ReadEvents). `go test` replays their seeds and the
// crashers committed under testdata/fuzz/; `make fuzz` runs each for a
// bounded time.

import (
	"bytes"
	"reflect"
	"testing"
)

// checkReencodes checks that an accepted event encodes, and that its
// encoding decodes to an event that encodes the same: Encode∘Decode is
// the identity on what Encode writes.
func checkReencodes(t *testing.T, e Event) {
	t.Helper()
	b, err := Encode(e)
	if err != nil {
		t.Fatalf("an accepted event %+v does not encode: %v", e, err)
	}
	e2, err := Decode(b)
	if err != nil {
		t.Fatalf("an encoded event %s does not decode: %v", b, err)
	}
	b2, err := Encode(e2)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("event %s decoded and encoded again: %s, %v", b, b2, err)
	}
}

func timingSeeds() [][]byte {
	var out [][]byte
	for _, e := range validEvents() {
		b, _ := Encode(e)
		out = append(out, b)
	}
	return append(out,
		[]byte(`{"kind":"filter","visit":1,"name":"f","end":"2024-05-06T07:08:14Z","start":"2024-05-06T07:08:13Z","sent":"2024-05-06T07:08:14.5+02:00","duplicates":3}`),
		[]byte(`{"kind":"consume","visit":-9223372036854775808,"name":"c","source":"s","end":"9999-12-31T23:59:59.999999999-23:59","rank":1}`),
		[]byte(`{"kind":"nope","name":"x"}`),
		[]byte(`{"kind":"produce","visit":1e400}`),
		[]byte(`[]`),
	)
}

func FuzzDecode(f *testing.F) {
	for _, b := range timingSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if !reflect.DeepEqual(e, Event{}) {
				t.Fatalf("event %+v with error %v", e, err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		checkReencodes(t, e)
	})
}

func FuzzReadEvents(f *testing.F) {
	seeds := timingSeeds()
	f.Add(bytes.Join(seeds[:3], []byte("\n")))
	f.Add(append(bytes.Join(seeds[:4], []byte("\r\n\n  \t\n")), '\n'))
	f.Add(bytes.Join(seeds, []byte("\n")))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := ReadEvents(bytes.NewReader(data))
		if err != nil {
			if events != nil {
				t.Fatalf("%d events with error %v", len(events), err)
			}
			return
		}
		for _, e := range events {
			checkReencodes(t, e)
		}
		// Written back, the dump reads the same.
		var buf bytes.Buffer
		if err := WriteEvents(&buf, events); err != nil {
			t.Fatal(err)
		}
		again, err := ReadEvents(&buf)
		if err != nil || len(again) != len(events) {
			t.Fatalf("%d events written back: %d, %v", len(events), len(again), err)
		}
		for i := range again {
			a, _ := Encode(again[i])
			b, _ := Encode(events[i])
			if !bytes.Equal(a, b) {
				t.Fatalf("event %d written back: %s, was %s", i, a, b)
			}
		}
	})
}
