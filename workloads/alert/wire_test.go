package alert

import (
	"bytes"
	"errors"
	"testing"
)

func TestWireRoundTrip(t *testing.T) {
	payload := []byte{1, 2, 3, 4, 5}
	for _, id := range []uint32{0, 1, 291310563, 0x7fffffff, 0xffffffff} {
		msg := AppendWire([]byte("prefix"), id, payload)
		msg = msg[len("prefix"):]
		if len(msg) != WireHeaderSize+len(payload) || msg[0] != 0 {
			t.Fatalf("id %d: bad message % x", id, msg)
		}
		gotID, gotPayload, err := ParseWire(msg)
		if err != nil {
			t.Fatalf("id %d: ParseWire: %v", id, err)
		}
		if gotID != id || !bytes.Equal(gotPayload, payload) {
			t.Fatalf("id %d: got id %d payload % x", id, gotID, gotPayload)
		}
	}
	// Big-endian id.
	if got := AppendWire(nil, 0x01020304, nil); !bytes.Equal(got, []byte{0, 1, 2, 3, 4}) {
		t.Fatalf("header = % x, want 00 01 02 03 04", got)
	}
}

func TestWireHeaderThenPayloadInPlace(t *testing.T) {
	g := NewGenerator(7, 0)
	msg := AppendWire(nil, SchemaID(g.Schema()), nil)
	msg, _, err := g.Alert(msg, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	payload, _, _ := g.Alert(nil, 3, 4)
	id, p, err := ParseWire(msg)
	if err != nil || id != SchemaID(g.Schema()) || !bytes.Equal(p, payload) {
		t.Fatalf("in-place message does not parse back: id %d err %v", id, err)
	}
}

func TestWireErrors(t *testing.T) {
	for _, msg := range [][]byte{nil, {}, {0}, {0, 0, 0, 1}} {
		if _, _, err := ParseWire(msg); !errors.Is(err, ErrShortMessage) {
			t.Errorf("ParseWire(% x) error = %v, want ErrShortMessage", msg, err)
		}
	}
	for _, msg := range [][]byte{{1, 0, 0, 0, 1}, []byte(`{"a":1}`)} {
		_, _, err := ParseWire(msg)
		if !errors.Is(err, ErrBadMagic) {
			t.Errorf("ParseWire(% x) error = %v, want ErrBadMagic", msg, err)
		}
	}
	// A header alone is valid: an empty payload.
	id, p, err := ParseWire([]byte{0, 0, 0, 0, 9})
	if err != nil || id != 9 || len(p) != 0 {
		t.Fatalf("header-only message: id %d payload %d bytes err %v", id, len(p), err)
	}
}
