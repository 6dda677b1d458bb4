package alert

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
)

// normalizeHamba converts hamba/avro's generic form into the normalised
// form Decode promises, independently of the package's decoder: it is the
// reference the decoder is checked against.
func normalizeHamba(s avro.Schema, v any) any {
	if v == nil {
		return nil
	}
	switch s := s.(type) {
	case *avro.RefSchema:
		return normalizeHamba(s.Schema(), v)
	case *avro.RecordSchema:
		in := v.(map[string]any)
		out := make(map[string]any, len(in))
		for _, f := range s.Fields() {
			out[f.Name()] = normalizeHamba(f.Type(), in[f.Name()])
		}
		return out
	case *avro.UnionSchema:
		// Usually {"branch name": value}; inside maps hamba gives the plain
		// value.
		if m, ok := v.(map[string]any); ok && len(m) == 1 {
			for _, t := range s.Types() {
				if b, ok := m[unionBranchName(t)]; ok {
					return normalizeHamba(t, b)
				}
			}
		}
		for _, t := range s.Types() {
			if t.Type() != avro.Null && matchesHamba(t, v) {
				return normalizeHamba(t, v)
			}
		}
		panic(fmt.Sprintf("no branch of %s matches %#v", s, v))
	case *avro.ArraySchema:
		in := v.([]any)
		out := make([]any, len(in))
		for i, e := range in {
			out[i] = normalizeHamba(s.Items(), e)
		}
		return out
	case *avro.MapSchema:
		in := v.(map[string]any)
		out := make(map[string]any, len(in))
		for k, e := range in {
			out[k] = normalizeHamba(s.Values(), e)
		}
		return out
	case *avro.FixedSchema:
		rv := reflect.ValueOf(v) // hamba gives a [N]byte array
		b := make([]byte, rv.Len())
		reflect.Copy(reflect.ValueOf(b), rv)
		return b
	}
	switch x := v.(type) {
	case time.Time: // timestamp-micros; Decode keeps the long
		return x.UnixMicro()
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

// unionBranchName is the key hamba uses for a union branch.
func unionBranchName(t avro.Schema) string {
	if n, ok := t.(avro.NamedSchema); ok {
		return n.FullName()
	}
	if r, ok := t.(*avro.RefSchema); ok {
		return r.Schema().FullName()
	}
	return string(t.Type())
}

// matchesHamba reports whether hamba's generic value b can be of schema t
// (enough to pick the branch in the test schemas used here).
func matchesHamba(t avro.Schema, b any) bool {
	switch t.Type() {
	case avro.Int:
		_, ok := b.(int)
		return ok
	case avro.Long:
		_, ok := b.(int64)
		return ok
	case avro.Float:
		_, ok := b.(float32)
		return ok
	case avro.Double:
		_, ok := b.(float64)
		return ok
	case avro.String, avro.Enum:
		_, ok := b.(string)
		return ok
	case avro.Boolean:
		_, ok := b.(bool)
		return ok
	case avro.Bytes:
		_, ok := b.([]byte)
		return ok
	case avro.Array:
		_, ok := b.([]any)
		return ok
	case avro.Record, avro.Map, avro.Ref:
		_, ok := b.(map[string]any)
		return ok
	case avro.Fixed:
		return reflect.TypeOf(b).Kind() == reflect.Array
	}
	return false
}

// kitchenSchema uses every Avro type, including a recursive record.
const kitchenSchema = `{
  "type": "record", "name": "kitchen", "namespace": "test",
  "fields": [
    {"name": "b", "type": "boolean"},
    {"name": "i", "type": "int"},
    {"name": "l", "type": "long"},
    {"name": "f", "type": "float"},
    {"name": "d", "type": "double"},
    {"name": "s", "type": "string"},
    {"name": "by", "type": "bytes"},
    {"name": "e", "type": {"type": "enum", "name": "color", "symbols": ["red", "green", "blue"]}},
    {"name": "fx", "type": {"type": "fixed", "name": "four", "size": 4}},
    {"name": "arr", "type": {"type": "array", "items": "int"}},
    {"name": "m", "type": {"type": "map", "values": ["null", "double"]}},
    {"name": "u", "type": ["null", "string", "long", "color"]},
    {"name": "n", "type": "null"},
    {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "next", "type": ["null", "kitchen"]}
  ]
}`

func kitchenValue() map[string]any {
	inner := map[string]any{
		"b": false, "i": -7, "l": int64(-1 << 40), "f": float32(-0.5), "d": 1e300, "s": "",
		"by": []byte{}, "e": "red", "fx": [4]byte{9, 9, 9, 9}, "arr": []any{}, "m": map[string]any{},
		"u": nil, "n": nil, "ts": int64(5), "next": nil,
	}
	return map[string]any{
		"b": true, "i": 123456, "l": int64(1) << 62, "f": float32(3.25), "d": -2.5, "s": "héllo",
		"by": []byte{0, 1, 2, 255}, "e": "blue", "fx": [4]byte{1, 2, 3, 4},
		"arr": []any{1, -2, 3},
		"m":   map[string]any{"a": map[string]any{"double": 1.5}, "z": nil},
		"u":   map[string]any{"test.color": "green"},
		"n":   nil, "ts": int64(1_700_000_000_000_000),
		"next": map[string]any{"test.kitchen": inner},
	}
}

func TestDecodeAllTypesMatchesHambaReference(t *testing.T) {
	s, err := ParseSchema(kitchenSchema)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := avro.Marshal(s, kitchenValue())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(s, payload)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := avro.Unmarshal(s, payload, &generic); err != nil {
		t.Fatal(err)
	}
	want := normalizeHamba(s, generic)
	if !reflect.DeepEqual(any(got), want) {
		t.Fatalf("Decode = %#v\nwant    %#v", got, want)
	}
	// Spot-check the normalised types.
	for path, w := range map[string]any{
		"i": int64(123456), "f": 3.25, "e": "blue", "u": "green", "m.a": 1.5, "m.z": nil,
		"next.i": int64(-7), "next.next": nil, "fx": []byte{1, 2, 3, 4},
	} {
		v, ok := Lookup(got, path)
		if !ok || !reflect.DeepEqual(v, w) {
			t.Errorf("%s = %#v, want %#v", path, v, w)
		}
	}
	// WithoutBytes leaves bytes and fixed nil and everything else equal.
	lean, err := Decode(s, payload, WithoutBytes())
	if err != nil {
		t.Fatal(err)
	}
	if lean["by"] != nil || lean["fx"] != nil || lean["s"] != "héllo" {
		t.Fatalf("WithoutBytes: by=%v fx=%v s=%v", lean["by"], lean["fx"], lean["s"])
	}
}

func TestDecodeFakeAlertNormalised(t *testing.T) {
	schema, recs, warnings, _, err := ReadOCFRecords(fakeAlertPath(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings for the real Rubin alert's valid schema: %v", warnings)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records in fakeAlert.avro, want 1", len(recs))
	}
	rec := recs[0]
	checks := map[string]any{
		"diaSourceId":             int64(1231321321),
		"diaSource.visit":         int64(1),
		"diaSource.detector":      int64(42),
		"diaSource.snr":           float64(float32(41.1)), // ["null","float"] -> float64
		"diaSource.psfFlux":       1241.0,
		"diaSource.band":          "r", // ["null","string"] -> string
		"diaSource.ra":            351.570546978,
		"diaSource.centroid_flag": nil,                       // null union -> nil
		"diaObject.diaObjectId":   int64(281323062375219201), // ["null", record] -> record
		"diaObject.nDiaSources":   int64(2),
		"diaObject.u_psfFluxMean": nil,
		"ssSource":                nil,
		"cutoutDifference":        nil,
	}
	for path, want := range checks {
		got, ok := Lookup(rec, path)
		if !ok || got != want {
			t.Errorf("%s = %#v (found %v), want %#v", path, got, ok, want)
		}
	}
	prv, ok := rec["prvDiaSources"].([]any)
	if !ok || len(prv) != 2 {
		t.Fatalf("prvDiaSources = %T, want a []any of 2", rec["prvDiaSources"])
	}
	if v, err := LookupInt(prv[0].(map[string]any), "visit"); err != nil || v != 2 {
		t.Fatalf("prvDiaSources[0].visit = %d, %v", v, err)
	}
	// The decoder agrees with hamba's own generic decoding, normalised.
	rp, _, err := LoadOCF(fakeAlertPath(t))
	if err != nil {
		t.Fatal(err)
	}
	_, generic := rp.Record(0)
	if want := normalizeHamba(schema, generic); !reflect.DeepEqual(any(rec), want) {
		t.Fatal("Decode of fakeAlert differs from hamba's generic decoding normalised")
	}
	// No hamba union wrappers survive anywhere.
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if strings.Contains(k, ".") || k == "float" || k == "long" || k == "string" {
					t.Errorf("%s: union wrapper key %q", path, k)
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case nil, bool, int64, float64, string, []byte:
		default:
			t.Errorf("%s: non-normalised %T", path, v)
		}
	}
	walk("alert", rec)
}

func TestDecoderMessages(t *testing.T) {
	g := NewGenerator(1, 100)
	reg := NewRegistry(g.Schema())
	dec := NewDecoder(reg)
	id := SchemaID(g.Schema())
	msg := AppendWire(nil, id, nil)
	msg, tr, err := g.Alert(msg, 10, 3)
	if err != nil {
		t.Fatal(err)
	}
	rec, gotID, err := dec.DecodeMessage(msg)
	if err != nil || gotID != id {
		t.Fatalf("DecodeMessage: id %d err %v", gotID, err)
	}
	checkTruth(t, rec, tr)

	// Unknown schema id: detectable, and the id is reported.
	unknown := AppendWire(nil, id+1, msg[WireHeaderSize:])
	_, gotID, err = dec.DecodeMessage(unknown)
	if !errors.Is(err, ErrUnknownSchema) || errors.Is(err, ErrMalformed) || gotID != id+1 {
		t.Fatalf("unknown schema: id %d err %v", gotID, err)
	}
	// A schema registered later is seen by the same Decoder.
	rubin := rubinSchema(t)
	rp, _, err := LoadOCF(fakeAlertPath(t))
	if err != nil {
		t.Fatal(err)
	}
	payload, _, err := rp.Alert(nil, 5, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	rmsg := AppendWire(nil, SchemaID(rubin), payload)
	if _, _, err := dec.DecodeMessage(rmsg); !errors.Is(err, ErrUnknownSchema) {
		t.Fatalf("Rubin before registration: %v", err)
	}
	reg.Add(rubin)
	rrec, _, err := dec.DecodeMessage(rmsg)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := LookupInt(rrec, "diaSource.visit"); v != 5 {
		t.Fatalf("Rubin visit = %d, want 5", v)
	}

	// Malformed: bad header, truncated payload, trailing bytes.
	for name, m := range map[string][]byte{
		"short":    {0, 0},
		"magic":    append([]byte{1}, msg[1:]...),
		"truncate": msg[:len(msg)-1],
		"trailing": append(append([]byte(nil), msg...), 0),
		"empty":    AppendWire(nil, id, nil),
	} {
		_, _, err := dec.DecodeMessage(m)
		if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownSchema) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

func TestDecodeWithoutBytes(t *testing.T) {
	g := NewGenerator(1, DefaultCutoutBytes)
	p, tr, _ := g.Alert(nil, 10, 3)
	full, err := Decode(g.Schema(), p)
	if err != nil {
		t.Fatal(err)
	}
	lean, err := Decode(g.Schema(), p, WithoutBytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(full["cutoutScience"].([]byte)) != DefaultCutoutBytes || lean["cutoutScience"] != nil {
		t.Fatal("WithoutBytes did not drop the cutouts")
	}
	checkTruth(t, lean, tr)
	// Decoded bytes are copies: changing the payload does not change them.
	c := bytes.Clone(full["cutoutScience"].([]byte))
	for i := range p {
		p[i] = 0
	}
	if !bytes.Equal(c, full["cutoutScience"].([]byte)) {
		t.Fatal("decoded bytes alias the payload")
	}
}

func TestDecodeRejectsNonRecord(t *testing.T) {
	s, _ := ParseSchema(`"long"`)
	if _, err := Decode(s, []byte{2}); err == nil {
		t.Fatal("Decode accepted a non-record schema")
	}
	if _, err := Decode(nil, []byte{2}); err == nil {
		t.Fatal("Decode accepted a nil schema")
	}
}

// Garbage, truncated and bit-flipped payloads give errors, never panics or
// runaway allocations.
func TestDecodeGarbageNeverPanics(t *testing.T) {
	kitchen, _ := ParseSchema(kitchenSchema)
	g := NewGenerator(1, 200)
	synPayload, _, _ := g.Alert(nil, 1, 1)
	rp, _, err := LoadOCF(fakeAlertPath(t))
	if err != nil {
		t.Fatal(err)
	}
	rubinPayload, rubin, _ := rp.Alert(nil, 1, 0, "")
	kitchenPayload, _ := avro.Marshal(kitchen, kitchenValue())

	cases := []struct {
		schema  avro.Schema
		payload []byte
	}{{g.Schema(), synPayload}, {rubin, rubinPayload}, {kitchen, kitchenPayload}}

	reg := NewRegistry(g.Schema(), rubin, kitchen)
	dec := NewDecoder(reg)
	rnd := rand.New(rand.NewPCG(1, 2))
	decodeAll := func(s avro.Schema, p []byte) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("panic decoding % x: %v", p[:min(len(p), 32)], r)
			}
		}()
		_, _ = Decode(s, p)
		_, _ = Decode(s, p, WithoutBytes())
		_, _, _ = dec.DecodeMessage(AppendWire(nil, SchemaID(s), p))
	}
	for _, c := range cases {
		// Every truncation is an error.
		for n := 0; n < len(c.payload); n += 1 + n/64 {
			if _, err := Decode(c.schema, c.payload[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s truncated to %d of %d bytes: err = %v", schemaName(c.schema), n, len(c.payload), err)
			}
		}
		// Random bytes, random bit flips and random splices.
		for range 3000 {
			junk := make([]byte, rnd.IntN(300))
			for i := range junk {
				junk[i] = byte(rnd.Uint32())
			}
			decodeAll(c.schema, junk)
			flipped := bytes.Clone(c.payload)
			for range 1 + rnd.IntN(4) {
				flipped[rnd.IntN(len(flipped))] ^= byte(1 << rnd.IntN(8))
			}
			decodeAll(c.schema, flipped)
			cut := rnd.IntN(len(c.payload))
			decodeAll(c.schema, append(bytes.Clone(c.payload[:cut]), junk...))
		}
		// Adversarial lengths and counts: huge varints everywhere.
		for _, junk := range [][]byte{
			bytes.Repeat([]byte{0xff}, 64),
			bytes.Repeat([]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 20),
			bytes.Repeat([]byte{0x02}, 1000),
			bytes.Repeat([]byte{0x01}, 1000),
		} {
			decodeAll(c.schema, junk)
		}
	}
	// Many zero-size items: bounded, not a hang or huge allocation.
	nulls, _ := ParseSchema(`{"type":"record","name":"n","fields":[{"name":"a","type":{"type":"array","items":"null"}}]}`)
	big := appendVarlong(nil, 1<<40)
	if _, err := Decode(nulls, append(big, 0)); err == nil {
		t.Fatal("2^40 null items accepted")
	}
	ok := append(appendVarlong(nil, 1000), 0)
	if rec, err := Decode(nulls, ok); err != nil || len(rec["a"].([]any)) != 1000 {
		t.Fatalf("1000 null items: %v", err)
	}
	// Deep recursion is bounded.
	deep := bytes.Repeat([]byte{0x02}, 100000) // next: branch 1 forever
	if _, err := Decode(kitchen, deep); err == nil {
		t.Fatal("deep garbage accepted")
	}
}
