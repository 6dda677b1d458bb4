package alert

// Fuzz targets for the package's readers of outside bytes (issue 13):
// the Confluent wire framing, Avro records (the synthetic schema, a schema
// of every Avro type, Rubin's v11), Object Container Files and schema
// texts. `go test` replays their seeds and the crashers committed under
// testdata/fuzz/; `make fuzz` runs each for a bounded time.

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"
)

func FuzzParseWire(f *testing.F) {
	g := NewGenerator(1, 16)
	msg, _, err := g.Alert(AppendWire(nil, SchemaID(g.Schema()), nil), 1, 0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msg, uint32(0))
	f.Add([]byte{}, uint32(1))
	f.Add([]byte{0, 0, 0, 0}, uint32(1100))
	f.Add([]byte{0, 0, 0, 4, 0x4c}, uint32(math.MaxUint32))
	f.Add([]byte{1, 0, 0, 4, 0x4c, 2}, uint32(0x7fffffff))
	f.Add([]byte(`{"diaSourceId":1}`), uint32(7))
	f.Fuzz(func(t *testing.T, msg []byte, id uint32) {
		gotID, payload, err := ParseWire(msg)
		switch {
		case err != nil && (gotID != 0 || payload != nil):
			t.Fatalf("error %v with id %d and a payload of %d bytes", err, gotID, len(payload))
		case err != nil && len(msg) < WireHeaderSize && !errors.Is(err, ErrShortMessage):
			t.Fatalf("%d-byte message: %v, want ErrShortMessage", len(msg), err)
		case err != nil && len(msg) >= WireHeaderSize && (msg[0] == MagicByte || !errors.Is(err, ErrBadMagic)):
			t.Fatalf("message starting 0x%02x: %v", msg[0], err)
		case err == nil && (len(msg) < WireHeaderSize || msg[0] != MagicByte):
			t.Fatalf("accepted % x", msg)
		case err == nil && !bytes.Equal(AppendWire(nil, gotID, payload), msg):
			t.Fatalf("AppendWire(ParseWire(% x)) differs", msg)
		case err == nil && len(payload) > 0 && &payload[0] != &msg[WireHeaderSize]:
			t.Fatal("the payload does not alias the message")
		}
		// ParseWire∘AppendWire is the identity, whatever the prefix.
		wire := AppendWire(slices.Clip(msg), id, msg)
		back, p, err := ParseWire(wire[len(msg):])
		if err != nil || back != id || !bytes.Equal(p, msg) {
			t.Fatalf("ParseWire(AppendWire(%d, % x)) = %d, % x, %v", id, msg, back, p, err)
		}
	})
}

// sameValue is reflect.DeepEqual on decoded values, but for NaNs, which
// equal each other here.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// withoutBytes returns v with every []byte replaced by nil, as
// WithoutBytes decodes it.
func withoutBytes(v any) any {
	switch x := v.(type) {
	case []byte:
		return nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = withoutBytes(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutBytes(e)
		}
		return out
	}
	return v
}

// topFields returns the names of the top-level fields of record schema s.
func topFields(s avro.Schema) []string {
	var out []string
	for _, f := range s.(*avro.RecordSchema).Fields() {
		out = append(out, f.Name())
	}
	return out
}

// checkDecode decodes payload, written (supposedly) with s, which dec
// holds under id, in every way a filter can: as a wire message and a bare
// payload, whole, with the fields of mask only (bit i: field i of s; bit
// 15: also a field s lacks) and without bytes. It checks that no call
// returns both a record and an error, that the ways agree, and that a
// record Decode accepts is what hamba/avro reads, when hamba reads it.
func checkDecode(t *testing.T, dec *Decoder, id uint32, s avro.Schema, payload []byte, mask uint16, lean bool) {
	t.Helper()
	one := func(what string, rec map[string]any, err error) {
		t.Helper()
		if (rec == nil) == (err == nil) {
			t.Fatalf("%s: record %v and error %v", what, rec != nil, err)
		}
		if err != nil && (!errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownSchema)) {
			t.Fatalf("%s: error %v does not wrap ErrMalformed alone", what, err)
		}
	}
	rec, gotID, err := dec.DecodeMessage(AppendWire(nil, id, payload))
	one("DecodeMessage", rec, err)
	if gotID != id {
		t.Fatalf("DecodeMessage: id %d, want %d", gotID, id)
	}
	full, err := Decode(s, payload)
	one("Decode", full, err)
	if (rec == nil) != (full == nil) || !sameValue(rec, full) {
		t.Fatal("DecodeMessage and Decode disagree")
	}

	names := topFields(s)
	var sel []string
	for i, n := range names {
		if i < 15 && mask&(1<<i) != 0 {
			sel = append(sel, n)
		}
	}
	if mask&(1<<15) != 0 {
		sel = append(sel, "no.such.field")
	}
	opts := []DecodeOption{WithFields(sel...)}
	if lean {
		opts = append(opts, WithoutBytes())
	}
	part, err := Decode(s, payload, opts...)
	one("Decode with fields", part, err)
	lone, err := NewDecoder(dec.Registry(), opts...).DecodePayload(id, payload)
	one("DecodePayload with fields", lone, err)
	if !sameValue(part, lone) {
		t.Fatal("Decode and a Decoder with the same options disagree")
	}
	if full == nil {
		return
	}
	// What decodes whole decodes in part, to the same values.
	if part == nil {
		t.Fatalf("decodes whole but not with fields %v (without bytes %v)", sel, lean)
	}
	for k, v := range part {
		if !slices.Contains(sel, k) {
			t.Fatalf("field %q built, not selected", k)
		}
		want := full[k]
		if lean {
			want = withoutBytes(want)
		}
		if !sameValue(v, want) {
			t.Fatalf("field %q: %v in part, %v whole", k, v, want)
		}
	}
	for _, k := range sel {
		if _, ok := part[k]; !ok && slices.Contains(names, k) {
			t.Fatalf("selected field %q missing", k)
		}
	}
	// An outside decoder agrees on what both read whole (through a Reader:
	// hamba's Unmarshal returns no error for a payload cut short).
	var generic any
	hr := avro.NewReader(nil, 0)
	hr.Reset(payload)
	hr.ReadVal(s, &generic)
	if hr.Error == nil {
		if want := normalizeHamba(s, generic); !sameValue(any(full), want) {
			t.Fatalf("Decode = %v\nhamba   %v", full, want)
		}
	}
}

// addDecodeSeeds adds payloads and corruptions of them.
func addDecodeSeeds(f *testing.F, which uint8, payloads ...[]byte) {
	for i, p := range payloads {
		f.Add(which, p, uint16(0xffff>>(i%17)), i%2 == 0)
		f.Add(which, p[:len(p)/2], uint16(1<<(i%16)), false)
		f.Add(which, append(bytes.Clone(p), 0), uint16(0), true)
		flipped := bytes.Clone(p)
		flipped[len(p)/3] ^= 0x80
		f.Add(which, flipped, uint16(0x7fff), i%2 == 1)
	}
}

// The synthetic schema (which 0) and kitchenSchema, of every Avro type
// (which 1).
func FuzzDecodeSynthetic(f *testing.F) {
	g := NewGenerator(1, 64)
	kitchen, err := ParseSchema(kitchenSchema)
	if err != nil {
		f.Fatal(err)
	}
	var syn [][]byte
	for i := range 4 {
		p, _, err := g.Alert(nil, 7, i)
		if err != nil {
			f.Fatal(err)
		}
		syn = append(syn, p)
	}
	addDecodeSeeds(f, 0, syn...)
	addDecodeSeeds(f, 1, mustMarshal(f, kitchen, kitchenValue()))
	f.Add(uint8(1), bytes.Repeat([]byte{0x02}, 3000), uint16(0xffff), false) // next: branch 1 ever deeper
	f.Add(uint8(0), bytes.Repeat([]byte{0xff}, 64), uint16(0xffff), false)

	schemas := []avro.Schema{g.Schema(), kitchen}
	reg := NewRegistry(schemas...)
	dec := NewDecoder(reg)
	f.Fuzz(func(t *testing.T, which uint8, payload []byte, mask uint16, lean bool) {
		s := schemas[int(which)%len(schemas)]
		checkDecode(t, dec, SchemaID(s), s, payload, mask, lean)
	})
}

// Rubin's alert schema v11, from its .avsc files, and the payload of
// fakeAlert.avro.
func FuzzDecodeRubin(f *testing.F) {
	rubin := rubinSchema(f)
	rp, _, err := LoadOCF(fakeAlertPath(f))
	if err != nil {
		f.Fatal(err)
	}
	var seeds [][]byte
	for _, visit := range []int64{1, 0, -1, math.MaxInt64} {
		p, _, err := rp.Alert(nil, visit, 0, "")
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, p)
	}
	addDecodeSeeds(f, 0, seeds...)
	reg := NewRegistry(rubin)
	dec := NewDecoder(reg)
	id := SchemaID(rubin)
	f.Fuzz(func(t *testing.T, _ uint8, payload []byte, mask uint16, lean bool) {
		checkDecode(t, dec, id, rubin, payload, mask, lean)
	})
}

// ocfBytes writes records (encoded with schema) into a container file with
// hamba/avro's encoder, blockLen records a block, with a configuration of
// its own (see TestLoadOCFSameNameOtherFields).
func ocfBytes(t testing.TB, schema avro.Schema, codec ocf.CodecName, blockLen int, recs ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, err := ocf.NewEncoderWithSchema(schema, &buf, ocf.WithCodec(codec), ocf.WithBlockLength(blockLen),
		ocf.WithEncoderSchemaCache(&avro.SchemaCache{}), ocf.WithEncodingConfig(avro.Config{}.Freeze()))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if _, err := enc.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fakeAlertBytes returns the content of fakeAlert.avro.
func fakeAlertBytes(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(fakeAlertPath(t))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// withBlockHeader returns the container file data with the header (record
// count and byte size) of its first block replaced, its data and sync
// marker kept.
func withBlockHeader(t testing.TB, data []byte, count, size int64) (out []byte, at int) {
	t.Helper()
	h, err := readOCFHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	r := binReader{buf: data, pos: h.end}
	r.readLong()
	r.readLong()
	if r.err != nil {
		t.Fatal(r.err)
	}
	out = append(bytes.Clone(data[:h.end]), ocfBlockBytes(count, size, nil, nil)...)
	return append(out, data[r.pos:]...), h.end
}

// The one reader of container files (readOCF: ReadOCFRecords, LoadOCF),
// which reads past bad blocks: whatever the bytes, it does not panic,
// allocates within a bound of the file's memory budget, and either
// refuses the file with an error naming it or returns records with the
// bad blocks it skipped, which follow one another inside the file. The
// records kept are exactly those of the other blocks, as the file holds
// them (so on a file with no bad block, every record of the file), they
// decode, replay with the visit set, and written again read back the
// same with nothing skipped.
func FuzzReadOCF(f *testing.F) {
	fake := fakeAlertBytes(f)
	f.Add(fake)
	huge, _ := withBlockHeader(f, fake, 1, 1<<40)
	f.Add(huge)
	negative, _ := withBlockHeader(f, fake, 1, -8)
	f.Add(negative)
	g := NewGenerator(2, 32)
	var recs [][]byte
	for i := range 5 {
		p, _, err := g.Alert(nil, 3, i)
		if err != nil {
			f.Fatal(err)
		}
		recs = append(recs, p)
	}
	for _, codec := range []ocf.CodecName{ocf.Null, ocf.Deflate, ocf.Snappy, ocf.ZStandard} {
		f.Add(ocfBytes(f, g.Schema(), codec, 2, recs...))
	}
	small, err := ParseSchema(smallSchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ocfBytes(f, small, ocf.Null, 1, smallRecord(7, "seven"), smallRecord(-8, "eight")))
	f.Add(ocfBytes(f, small, ocf.Deflate, 3, smallRecord(0, ""), smallRecord(1, "a"), smallRecord(2, "bb")))
	f.Add(append(ocfHeaderBytes(testSync, "avro.schema", kitchenSchema),
		ocfBlockBytes(1, 3, []byte{1, 2, 3}, testSync)...))
	// Bad blocks among good ones (see TestReadOCFSkipsBadBlocks).
	rb := newRubinBlocks(f)
	b1, b2, b3 := rb.block(f, 1), rb.block(f, 2), rb.block(f, 3)
	data, _ := rb.file(b1, b2, b3)
	f.Add(data)
	data, _ = rb.file(b1, withHeader(f, rb.block(f, 4), 1, 1<<40), b3)
	f.Add(data)
	flipped := bytes.Clone(b2)
	flipped[len(flipped)-1] ^= 1
	data, _ = rb.file(b1, flipped, b3, b1)
	f.Add(data)
	f.Add(bytes.Join([][]byte{ocfHeaderBytes(testSync, "avro.schema", smallSchema), ocfBlockBytes(1, -1, nil, testSync),
		ocfBlockBytes(1, 6, smallRecord(1, "a1234"), testSync), {0xee, 0xee}, ocfBlockBytes(1, 3, smallRecord(2, "b"), testSync)}, nil))

	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.avro"
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		of, err := parseOCF(name, data)
		runtime.ReadMemStats(&after)
		// The budget bounds the records' estimated memory; what reading
		// allocates (decompressed blocks, records dropped with a bad
		// block, garbage) stays within a few times it.
		if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(4*max(minDecodedBudget, decodedPerFileByte*len(data))); alloc > limit {
			t.Fatalf("reading a %d-byte file allocated %d MiB, over %d MiB", len(data), alloc>>20, limit>>20)
		}
		if err != nil {
			if of != nil {
				t.Fatalf("a file and an error: %v", err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(of.generic) == 0 || len(of.generic) != len(of.encoded) {
			t.Fatalf("%d records, %d encoded", len(of.generic), len(of.encoded))
		}
		// The skipped blocks follow one another, inside the file's blocks.
		h, err := readOCFHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		end, block := h.end, -1
		for _, s := range of.skipped {
			if s.File != name || s.Block <= block || s.Offset < end || s.Resume <= s.Offset || s.Resume > len(data) || s.Reason == "" {
				t.Fatalf("skipped block %+v after block %d ending at byte %d, in a %d-byte file", s, block, end, len(data))
			}
			end, block = s.Resume, s.Block
		}
		// ReadOCFRecords: every record kept decodes, to what the file
		// holds outside the skipped blocks (the records are served
		// re-encoded by hamba/avro).
		recs, err := of.records(name)
		if err != nil {
			t.Fatalf("a record of an accepted file: %v", err)
		}
		raw := rawRecords(t, data, of.skipped)
		if len(raw) != len(recs) {
			t.Fatalf("%d records read, %d in the blocks not skipped", len(recs), len(raw))
		}
		for i, r := range raw {
			want, err := decodePlan(of.plan, r, decodeConfig{})
			if err != nil || !sameValue(any(recs[i]), any(want)) {
				t.Fatalf("record %d: read as %v, the file holds %v (%v)", i, recs[i], want, err)
			}
		}
		// LoadOCF: the replay serves every record, with the visit set
		// where the schema has one.
		rp := &Replay{}
		if err := rp.add(name, of, map[uint32]string{}, map[string]bool{}); err != nil {
			t.Fatal(err)
		}
		if rp.Len() != len(recs) {
			t.Fatalf("replay of %d records, read %d", rp.Len(), len(recs))
		}
		src := of.plan.field("diaSource")
		setsVisit := src != nil && src.kind == kRecord && src.field("visit") != nil &&
			(src.field("visit").kind == kLong || src.field("visit").kind == kInt)
		for i := range rp.Len() {
			p, s, err := rp.Alert(nil, 42, i, "")
			if err != nil {
				if setsVisit {
					t.Fatalf("replay alert %d: %v", i, err)
				}
				continue
			}
			rec, err := Decode(s, p)
			if err != nil {
				t.Fatalf("replay alert %d does not decode: %v", i, err)
			}
			if v, err := LookupInt(rec, DefaultVisitPath); setsVisit && (err != nil || v != 42) {
				t.Fatalf("replay alert %d: visit %d, %v; want 42", i, v, err)
			}
		}
		// The records written again by the project's writer (hamba/avro's
		// encoder, with the file's schema) read back the same.
		again, err := parseOCF(name, ocfBytes(t, of.schema, ocf.Null, 100, of.encoded...))
		if err != nil {
			t.Fatalf("the records written again: %v", err)
		}
		if len(again.skipped) != 0 {
			t.Fatalf("the records written again: skipped %v", again.skipped)
		}
		if !slices.EqualFunc(again.encoded, of.encoded, bytes.Equal) {
			t.Fatal("the records written again read back differently")
		}
		// Most inputs are a seed's schema (Rubin's takes a millisecond
		// to parse): check each schema once a process.
		if _, done := checkedSchemas.LoadOrStore(SchemaText(of.schema), true); !done {
			checkCanonical(t, of.schema)
		}
	})
}

// checkedSchemas holds the SchemaText of the schemas FuzzReadOCF checked.
var checkedSchemas sync.Map

// rawRecords returns the bytes of each record of an accepted container
// file, as its blocks hold them, but for the blocks skipped (which it
// steps over: any other block must read).
func rawRecords(t *testing.T, data []byte, skipped []SkippedBlock) [][]byte {
	t.Helper()
	h, err := readOCFHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	schema, _, err := ParseSchemaLenient(h.schema)
	if err != nil {
		t.Fatal(err)
	}
	plan := compile(schema)
	codec, err := newBlockCodec(h.codec)
	if err != nil {
		t.Fatal(err)
	}
	defer codec.close()
	var out [][]byte
	for pos := h.end; pos < len(data); {
		if len(skipped) > 0 && pos == skipped[0].Offset {
			pos, skipped = skipped[0].Resume, skipped[1:]
			continue
		}
		b, next, err := h.readBlock(data, pos)
		if err != nil {
			t.Fatalf("a block not skipped, at byte %d: %v", pos, err)
		}
		if b.count > 0 {
			d, err := codec.decode(b.data)
			if err != nil {
				t.Fatalf("a block not skipped, at byte %d: %v", pos, err)
			}
			r := binReader{buf: d}
			for range b.count {
				start := r.pos
				r.skip(plan)
				out = append(out, d[start:r.pos])
			}
		}
		pos = next
	}
	if len(skipped) > 0 {
		t.Fatalf("skipped blocks not met reading the file: %+v", skipped)
	}
	return out
}

// checkCanonical checks that the canonical form and the registered text
// of an accepted schema parse again, to the same forms and id.
func checkCanonical(t *testing.T, s avro.Schema) {
	t.Helper()
	canon := CanonicalForm(s)
	s2, err := ParseSchema(canon)
	if err != nil {
		t.Fatalf("the canonical form %s does not parse: %v", canon, err)
	}
	if c2 := CanonicalForm(s2); c2 != canon {
		t.Fatalf("canonical form %s parses to canonical form %s", canon, c2)
	}
	if SchemaID(s2) != SchemaID(s) {
		t.Fatalf("the canonical form has id %d, the schema %d", SchemaID(s2), SchemaID(s))
	}
	text := SchemaText(s)
	s3, err := ParseSchema(text)
	if err != nil {
		t.Fatalf("the schema's text %s does not parse: %v", text, err)
	}
	if SchemaText(s3) != text || CanonicalForm(s3) != canon {
		t.Fatalf("the schema's text %s parses to another schema, %s", text, SchemaText(s3))
	}
	if s.Type() == avro.Record {
		_, _ = Decode(s, nil)
		_, _ = Decode(s, []byte{2, 0, 0, 0, 0, 0, 0, 0, 0})
	}
}

func FuzzParseSchemaLenient(f *testing.F) {
	f.Add(SyntheticSchemaJSON())
	f.Add(SchemaText(rubinSchema(f)))
	f.Add(kitchenSchema)
	f.Add(smallSchema)
	f.Add(`"long"`)
	f.Add(`["null","string",{"type":"fixed","name":"f","size":3}]`)
	h, err := readOCFHeader(fakeAlertBytes(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(h.schema)
	for _, fields := range []string{
		`{"name":"x","type":["null","double"],"default":1.5}`,
		`{"name":"x","type":"int","default":"1"}`,
		`{"name":"x","type":"color","default":"BLUE"}`,
		`{"name":"x","type":{"type":"enum","name":"shade","symbols":["DARK"],"default":"LIGHT"}}`,
		`{"name":"x","type":"hash","default":7}`,
		`{"name":"x","type":"point","default":{"ra":"east"}}`,
		`{"name":"x","type":{"type":"array","items":"int"},"default":[1,"2"]}`,
		`{"name":"x","type":{"type":"map","values":"int"},"default":{"a":"b"}}`,
		`{"name":"src","type":["null",{"type":"record","name":"diaSource","fields":[{"name":"x","type":"int","default":"1"}]}],"default":null}`,
		`{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2},"default":"\u00ff"}`,
	} {
		f.Add(recordWith(fields))
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, warnings, err := ParseSchemaLenient(text)
		if err != nil {
			if s != nil || warnings != nil {
				t.Fatalf("a schema or warnings with error %v", err)
			}
			return
		}
		if s == nil {
			t.Fatal("no schema and no error")
		}
		strict, strictErr := ParseSchema(text)
		if strictErr == nil && (len(warnings) != 0 || SchemaText(strict) != SchemaText(s)) {
			t.Fatalf("a schema the strict parser takes, read leniently: warnings %v, text %s", warnings, SchemaText(s))
		}
		if strictErr != nil && len(warnings) == 0 {
			t.Fatalf("the strict parser refuses it (%v), but nothing was dropped", strictErr)
		}
		checkCanonical(t, s)
	})
}

// emptyUnionDefault makes hamba/avro 2.31.0's parser panic (index out of
// range validating the default against the union's first branch): found
// by FuzzParseSchemaLenient and FuzzParse (registry).
const emptyUnionDefault = `{"type":"record","name":"r","fields":[{"name":"a","type":[],"default":null}]}`

// Every way a schema text comes in refuses it with an error: the schemas
// topic and registrations (ParseSchema, AddJSON, AddJSONAs), .avsc files,
// a container file's header (leniently, and nested deeper).
func TestSchemaParserPanicIsAnError(t *testing.T) {
	nested := `{"type":"record","name":"r","fields":[{"name":"a","type":{"type":"array","items":[]},"default":[1]}]}`
	for _, text := range []string{emptyUnionDefault, nested} {
		if _, err := ParseSchema(text); err == nil || !strings.Contains(err.Error(), "panic") {
			t.Errorf("ParseSchema: %v", err)
		}
		if _, _, err := ParseSchemaLenient(text); err == nil {
			t.Error("ParseSchemaLenient accepted it")
		}
		if _, err := NewRegistry().AddJSON(text); err == nil {
			t.Error("AddJSON accepted it")
		}
		if err := NewRegistry().AddJSONAs(7, text); err == nil {
			t.Error("AddJSONAs accepted it")
		}
		path := filepath.Join(t.TempDir(), "bad.avsc")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSchemaFiles(path); err == nil {
			t.Error("ParseSchemaFiles accepted it")
		}
		file := append(ocfHeaderBytes(testSync, "avro.schema", text), ocfBlockBytes(1, 1, []byte{0}, testSync)...)
		if _, _, err := LoadOCF(writeTemp(t, file)); err == nil || !strings.Contains(err.Error(), "the schema in its header") {
			t.Errorf("LoadOCF: %v", err)
		}
	}
}
