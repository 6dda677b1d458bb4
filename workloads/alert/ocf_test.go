package alert

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/outsideavro"
)

// appendAvroString appends s as an Avro string (or bytes).
func appendAvroString(b []byte, s string) []byte {
	return append(appendVarlong(b, int64(len(s))), s...)
}

// ocfHeaderBytes returns a container file header with the given metadata
// (key, value, key, value...) and sync marker.
func ocfHeaderBytes(sync []byte, meta ...string) []byte {
	b := appendVarlong([]byte(ocfMagic), int64(len(meta)/2))
	for _, s := range meta {
		b = appendAvroString(b, s)
	}
	return append(appendVarlong(b, 0), sync...)
}

// ocfBlockBytes returns a block: count, size, data and sync marker.
func ocfBlockBytes(count, size int64, data, sync []byte) []byte {
	b := appendVarlong(appendVarlong(nil, count), size)
	return append(append(b, data...), sync...)
}

var testSync = []byte("0123456789abcdef")

// withHeaderSchema returns the container file data with its header's
// schema replaced: the same codec, sync marker and blocks.
func withHeaderSchema(t testing.TB, data []byte, schema string) []byte {
	t.Helper()
	h, err := readOCFHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	return append(ocfHeaderBytes(h.sync[:], "avro.schema", schema, "avro.codec", h.codec), data[h.end:]...)
}

func writeTemp(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "alerts.avro")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// An archive written by another tool, fastavro, whose schema has defaults
// that hamba/avro (and Java Avro since 1.9, and fastavro itself without a
// reader schema) reject: it reads, with a warning naming each field, and
// its records are what fastavro reads from the same file.
func TestReadOCFOutsideArchiveWithInvalidDefaults(t *testing.T) {
	fx, err := outsideavro.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(fx.Bad)
	if err != nil {
		t.Fatal(err)
	}
	h, err := readOCFHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSchema(h.schema); err == nil {
		t.Fatal("the strict parser accepts bad.avro's schema: the fixture tests nothing")
	}
	if _, err := NewRegistry().AddJSON(h.schema); err == nil {
		t.Fatal("the registry accepted bad.avro's schema")
	}

	checkRecords := func(t *testing.T, path string, recs []map[string]any) {
		t.Helper()
		if len(recs) != len(fx.Records) {
			t.Fatalf("%s: %d records, fastavro read %d", path, len(recs), len(fx.Records))
		}
		for i := range recs {
			if err := outsideavro.Compare(fx.Records[i], recs[i]); err != nil {
				t.Fatalf("%s record %d: %v", path, i, err)
			}
		}
	}

	schema, recs, warnings, _, err := ReadOCFRecords(fx.Bad)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, fx.Bad, recs)
	got := map[string]string{}
	for _, w := range warnings {
		if _, dup := got[w.Field]; dup {
			t.Errorf("two warnings for %s", w.Field)
		}
		got[w.Field] = w.Problem
	}
	for field, word := range outsideavro.BadDefaults {
		if !strings.Contains(got[field], word) {
			t.Errorf("warning for %s: %q, want one saying %q", field, got[field], word)
		}
	}
	if len(got) != len(outsideavro.BadDefaults) {
		t.Errorf("warnings for %d fields, want %d: %v", len(got), len(outsideavro.BadDefaults), warnings)
	}

	goodSchema, goodRecs, goodWarnings, goodSkipped, err := ReadOCFRecords(fx.Good)
	if err != nil || len(goodWarnings) != 0 || len(goodSkipped) != 0 {
		t.Fatalf("fastavro's valid file: %v, warnings %v, skipped %v", err, goodWarnings, goodSkipped)
	}
	checkRecords(t, fx.Good, goodRecs)
	if SchemaID(schema) != SchemaID(goodSchema) {
		t.Errorf("dropping the invalid defaults changed the schema id: %d, valid %d", SchemaID(schema), SchemaID(goodSchema))
	}

	_, enumRecs, enumWarnings, _, err := ReadOCFRecords(fx.EnumDefault)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, fx.EnumDefault, enumRecs)
	if len(enumWarnings) != 1 || enumWarnings[0].Field != outsideavro.EnumDefaultField ||
		!strings.Contains(enumWarnings[0].Problem, `enum lsst.v7_0.quality's own default "UNKNOWN"`) {
		t.Errorf("warnings %v, want one for the enum's own default at %s", enumWarnings, outsideavro.EnumDefaultField)
	}

	// Replay: warnings once per file, records as fastavro read them with
	// the visit rewritten.
	rp, _, err := LoadOCF(fx.Bad, fx.EnumDefault, fx.Bad)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]int{}
	for _, w := range rp.Warnings() {
		files[w.File]++
	}
	if files[fx.Bad] != len(outsideavro.BadDefaults) || files[fx.EnumDefault] != 1 || len(files) != 2 {
		t.Errorf("replay warnings per file %v, want %d for bad.avro and 1 for enumdefault.avro", files, len(outsideavro.BadDefaults))
	}
	if rp.Len() != 3*len(fx.Records) || len(rp.Schemas()) != 1 {
		t.Fatalf("replay of 3 files: %d records, %d schemas", rp.Len(), len(rp.Schemas()))
	}
	for i := range rp.Len() {
		p, s, err := rp.Alert(nil, 4242, i, "")
		if err != nil {
			t.Fatal(err)
		}
		rec, err := Decode(s, p)
		if err != nil {
			t.Fatal(err)
		}
		src := rec["diaSource"].(map[string]any)
		if src["visit"] != int64(4242) {
			t.Fatalf("alert %d: visit %v", i, src["visit"])
		}
		src["visit"] = recs[i%len(recs)]["diaSource"].(map[string]any)["visit"]
		if err := outsideavro.Compare(fx.Records[i%len(recs)], rec); err != nil {
			t.Fatalf("replayed alert %d: %v", i, err)
		}
	}
}

// The real Rubin sample reads exactly as hamba/avro's own container file
// decoder reads it, without warnings.
func TestReadOCFRubinAsHamba(t *testing.T) {
	path := fakeAlertPath(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, err := ocf.NewDecoder(f, ocf.WithDecoderSchemaCache(&avro.SchemaCache{}))
	if err != nil {
		t.Fatal(err)
	}
	var want []any
	for dec.HasNext() {
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	rp, _, err := LoadOCF(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rp.Warnings()) != 0 || rp.Len() != len(want) {
		t.Fatalf("warnings %v, %d records; want none and %d", rp.Warnings(), rp.Len(), len(want))
	}
	for i := range want {
		s, rec := rp.Record(i)
		if SchemaText(s) != SchemaText(dec.Schema()) {
			t.Fatal("schema differs from hamba's")
		}
		if !bytes.Equal(mustMarshal(t, s, rec), mustMarshal(t, s, want[i])) {
			t.Fatalf("record %d differs from hamba's", i)
		}
	}
}

// Every codec hamba/avro writes: null, deflate, snappy, zstandard.
func TestReadOCFCodecs(t *testing.T) {
	g := NewGenerator(3, 50)
	var payloads [][]byte
	for i := range 7 {
		p, _, err := g.Alert(nil, 5, i)
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p)
	}
	for _, codec := range []ocf.CodecName{ocf.Null, ocf.Deflate, ocf.Snappy, ocf.ZStandard} {
		t.Run(string(codec), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "alerts.avro")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := ocf.NewEncoderWithSchema(g.Schema(), f, ocf.WithCodec(codec), ocf.WithBlockLength(3),
				ocf.WithEncoderSchemaCache(&avro.SchemaCache{}))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range payloads {
				if _, err := enc.Write(p); err != nil {
					t.Fatal(err)
				}
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			rp, _, err := LoadOCF(path)
			if err != nil {
				t.Fatal(err)
			}
			if rp.Len() != len(payloads) {
				t.Fatalf("%d records, want %d", rp.Len(), len(payloads))
			}
			for i, want := range payloads {
				if got, _, err := rp.Alert(nil, 5, i, ""); err != nil || !bytes.Equal(got, want) {
					t.Fatalf("record %d differs (err %v)", i, err)
				}
			}
		})
	}
}

const smallSchema = `{"type":"record","name":"r","fields":[{"name":"a","type":"long"},{"name":"s","type":"string"}]}`

// smallRecord encodes {a, s} of smallSchema.
func smallRecord(a int64, s string) []byte { return appendAvroString(appendVarlong(nil, a), s) }

// A file that is truly corrupt (its header bad, or no good block left) is
// an error that says what and where; a bad block after a good one is
// skipped, named with what and where, and the good block's record read.
func TestReadOCFCorrupt(t *testing.T) {
	hdr := ocfHeaderBytes(testSync, "avro.schema", smallSchema)
	rec := smallRecord(7, "seven")
	two := append(append([]byte(nil), rec...), smallRecord(8, "eight")...)
	block0 := ocfBlockBytes(1, int64(len(rec)), rec, testSync)
	block1 := ocfBlockBytes(2, int64(len(two)), two, testSync)
	good := append(append(append([]byte(nil), hdr...), block0...), block1...)
	at1 := len(hdr) + len(block0) // block 1's offset
	if rp, _, err := LoadOCF(writeTemp(t, good)); err != nil || rp.Len() != 3 {
		t.Fatalf("the uncorrupted file: %v", err)
	}
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 0xff
		return b
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	zstdClaim := []byte{0x28, 0xb5, 0x2f, 0xfd, 0xe0}
	zstdClaim = binary.LittleEndian.AppendUint64(zstdClaim, 1<<40)
	zstdClaim = append(zstdClaim, 1, 0, 0)
	snappyClaim := append(binary.AppendUvarint(nil, 1<<30), make([]byte, 14)...)

	for _, tc := range []struct {
		name string
		data []byte
		want []string
		kept int // records read past the bad block; 0: an error
	}{
		{"bad magic", flip(0), []string{"not a valid Avro Object Container File", `magic bytes "Obj\x01"`}, 0},
		{"empty file", nil, []string{"not a valid Avro Object Container File"}, 0},
		{"header cut short", good[:20], []string{"not a valid Avro Object Container File", "at byte"}, 0},
		{"header without a schema", cat(ocfHeaderBytes(testSync, "avro.codec", "null"), block0), []string{"no avro.schema"}, 0},
		{"block cut short", good[:len(good)-20], []string{fmt.Sprintf("block 1 at byte %d", at1), "exceeds the", "left in the file (truncated"}, 1},
		{"sync marker cut short", good[:len(good)-5], []string{fmt.Sprintf("block 1 at byte %d: truncated", at1), "sync marker"}, 1},
		{"bad sync marker", flip(len(good) - 1), []string{fmt.Sprintf("block 1 at byte %d: the sync marker at byte %d does not match", at1, len(good)-16)}, 1},
		{"bad sync marker of the first block", flip(at1 - 3), []string{fmt.Sprintf("block 0 at byte %d: the sync marker at byte %d", len(hdr), at1-16)}, 0},
		{"block size beyond the file", cat(hdr, ocfBlockBytes(1, 1<<60, rec, testSync)), []string{fmt.Sprintf("block 0 at byte %d", len(hdr)), "1152921504606846976 bytes", "exceeds"}, 0},
		{"negative count", cat(hdr, ocfBlockBytes(-1, int64(len(rec)), rec, testSync)), []string{"negative record count"}, 0},
		{"negative size", cat(hdr, ocfBlockBytes(1, -5, rec, testSync)), []string{"negative block size"}, 0},
		{"count beyond the data", cat(hdr, ocfBlockBytes(1<<40, int64(len(rec)), rec, testSync)), []string{"1099511627776 records cannot fit"}, 0},
		{"record cut short", cat(hdr, ocfBlockBytes(2, int64(len(rec)+2), append(append([]byte(nil), rec...), 16, 'e'), testSync)), []string{"record 1 of the block", "at byte"}, 0},
		{"bytes after the records", cat(hdr, ocfBlockBytes(1, int64(len(two)), two, testSync)), []string{"bytes of the block's data left after its 1 records"}, 0},
		{"unsupported codec", cat(ocfHeaderBytes(testSync, "avro.schema", smallSchema, "avro.codec", "xz"), block0), []string{`unsupported codec "xz"`}, 0},
		{"bad deflate data", cat(ocfHeaderBytes(testSync, "avro.schema", smallSchema, "avro.codec", "deflate"), ocfBlockBytes(1, 3, []byte{0xff, 0xff, 0xff}, testSync)), []string{"block 0", "deflate data"}, 0},
		{"snappy claiming a huge block", cat(ocfHeaderBytes(testSync, "avro.schema", smallSchema, "avro.codec", "snappy"), ocfBlockBytes(1, int64(len(snappyClaim)), snappyClaim, testSync)), []string{"snappy data", "claims to expand to 1073741824 bytes"}, 0},
		{"zstandard claiming a huge block", cat(ocfHeaderBytes(testSync, "avro.schema", smallSchema, "avro.codec", "zstandard"), ocfBlockBytes(1, int64(len(zstdClaim)), zstdClaim, testSync)), []string{"zstandard frame", "claims to expand to 1099511627776 bytes"}, 0},
		{"schema not JSON", withHeaderSchema(t, good, `{"type":"record","name":"r","fields":[`), []string{"the schema in its header", "not valid JSON"}, 0},
		{"schema with an unknown type", withHeaderSchema(t, good, `{"type":"record","name":"r","fields":[{"name":"a","type":"lsst.nosuch"}]}`), []string{"the schema in its header", "unknown type"}, 0},
		{"schema not a record", withHeaderSchema(t, good, `"long"`), []string{"want a record"}, 0},
		{"no records", hdr, []string{"no records"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTemp(t, tc.data)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			rp, skipped, err := LoadOCF(path)
			runtime.ReadMemStats(&after)
			// Whatever a corrupt file claims, reading it allocates little.
			if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
				t.Errorf("reading a %d-byte corrupt file allocated %d bytes", len(tc.data), n)
			}
			_, recs, _, skipped2, err2 := ReadOCFRecords(path)
			if tc.kept > 0 {
				if err != nil || rp.Len() != tc.kept || len(skipped) != 1 || skipped[0].File != path {
					t.Fatalf("%v; skipped %+v", err, skipped)
				}
				for _, w := range tc.want {
					if !strings.Contains(skipped[0].String(), w) {
						t.Errorf("skipped block %q lacks %q", skipped[0], w)
					}
				}
				if err2 != nil || len(recs) != tc.kept || !slices.Equal(skipped2, skipped) {
					t.Errorf("ReadOCFRecords: %v, %d records, skipped %+v; LoadOCF skipped %+v", err2, len(recs), skipped2, skipped)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if err2 == nil || !strings.HasSuffix(err.Error(), err2.Error()) {
				t.Errorf("ReadOCFRecords: %v, LoadOCF: %v", err2, err)
			}
		})
	}
}

// The two crashes of issue 13, on the real Rubin file with its first
// block's header rewritten: a block declaring 2^40 bytes (out of memory)
// and a negative block size (a makeslice panic in hamba/avro's container
// reader, which readOCF no longer uses). The file's one block skipped,
// each is an error (no records) naming the file, the block and its byte
// offset, and reading allocates little (TestReadOCFSkippingRealFileBadBlockHeader
// reads the same block between good ones).
func TestReadOCFRealFileBadBlockHeader(t *testing.T) {
	data := fakeAlertBytes(t)
	var count, size int64
	{
		h, err := readOCFHeader(data)
		if err != nil {
			t.Fatal(err)
		}
		r := binReader{buf: data, pos: h.end}
		count, size = r.readLong(), r.readLong()
		if r.err != nil || count != 1 {
			t.Fatalf("fakeAlert.avro's first block: %d records, %d bytes, %v", count, size, r.err)
		}
	}
	for _, tc := range []struct {
		name        string
		count, size int64
		want        string
	}{
		{"size 2^40", count, 1 << 40, "the block's size, 1099511627776 bytes from byte"},
		{"size 2^63-1", count, math.MaxInt64, "exceeds the"},
		{"negative size", count, -8, "negative block size -8"},
		{"size -1", count, -1, "negative block size -1"},
		{"negative count", -1, size, "negative record count -1"},
		{"count 2^40", 1 << 40, size, "1099511627776 records cannot fit"},
		{"size one short", count, size - 1, "sync marker"},
		{"size one more", count, size + 1, "sync marker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad, at := withBlockHeader(t, data, tc.count, tc.size)
			path := writeTemp(t, bad)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, _, err := LoadOCF(path)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range []string{path, fmt.Sprintf("block 0 at byte %d", at), tc.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
				t.Errorf("reading the %d-byte file allocated %d bytes", len(bad), n)
			}
			if _, _, _, _, err := ReadOCFRecords(path); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("block 0 at byte %d", at)) {
				t.Errorf("ReadOCFRecords: %v", err)
			}
		})
	}
	// The unchanged header reads.
	same, _ := withBlockHeader(t, data, count, size)
	if !bytes.Equal(same, data) {
		t.Fatal("withBlockHeader changed an unchanged header")
	}
}

// A compression bomb: a deflate block of 16 KB expanding to 16 MB of
// zeros, each byte a record of one long. Decoded whole it would take some
// 9 GB (560 bytes allocated a record); reading stops at the memory budget
// for such a small file.
func TestReadOCFCompressionBomb(t *testing.T) {
	var z bytes.Buffer
	fw, err := flate.NewWriter(&z, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	const n = 16 << 20
	fw.Write(make([]byte, n))
	fw.Close()
	schema := `{"type":"record","name":"r","fields":[{"name":"a","type":"long"}]}`
	data := append(ocfHeaderBytes(testSync, "avro.schema", schema, "avro.codec", "deflate"),
		ocfBlockBytes(n, int64(z.Len()), z.Bytes(), testSync)...)
	path := writeTemp(t, data)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err = LoadOCF(path)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "compression bomb") || !strings.Contains(err.Error(), "block 0 at byte") {
		t.Fatalf("a %d-byte file of %d records: %v", len(data), n, err)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 1<<30 {
		t.Errorf("reading the %d-byte bomb allocated %d MB", len(data), a>>20)
	}
	t.Logf("%d-byte file: %v; allocated %d MB", len(data), err, (after.TotalAlloc-before.TotalAlloc)>>20)
}

// Two files whose schemas define a record of the same name with other
// fields: each file's records are read and served with its own schema.
// hamba/avro caches codecs in its configuration by a schema's text, which
// names an already defined record by its name alone, so with one
// configuration for all files the second file's records went through the
// first file's codec for the record referred to by name, and lost the
// values of the fields the first lacked (found by FuzzReadOCF on
// fakeAlert.avro after an input renaming diaSource's snr).
func TestLoadOCFSameNameOtherFields(t *testing.T) {
	schemaWith := func(field string) avro.Schema {
		s, err := ParseSchema(`{"type":"record","name":"r","namespace":"t","fields":[
			{"name":"src","type":{"type":"record","name":"inner","fields":[
				{"name":"` + field + `","type":["null","long"],"default":null}]}},
			{"name":"prv","type":["null",{"type":"array","items":"inner"}],"default":null}]}`)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rec := func(field string, v int64) map[string]any {
		in := map[string]any{field: map[string]any{"long": v}}
		return map[string]any{"src": in, "prv": map[string]any{"array": []any{in, in}}}
	}
	// Each file written with its own codec configuration, for the same
	// reason.
	write := func(s avro.Schema, v any) string {
		var buf bytes.Buffer
		enc, err := ocf.NewEncoderWithSchema(s, &buf, ocf.WithEncodingConfig(avro.Config{}.Freeze()),
			ocf.WithEncoderSchemaCache(&avro.SchemaCache{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
		return writeTemp(t, buf.Bytes())
	}
	a := write(schemaWith("a"), rec("a", 1))
	b := write(schemaWith("b"), rec("b", 2))
	for _, order := range [][]string{{a, b}, {b, a}} {
		rp, _, err := LoadOCF(order...)
		if err != nil {
			t.Fatal(err)
		}
		for i := range rp.Len() {
			p, s, err := rp.Alert(nil, 0, i, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(s, p)
			if err != nil {
				t.Fatal(err)
			}
			field, want := "a", int64(1)
			if s.(*avro.RecordSchema).Fields()[0].Type().(*avro.RecordSchema).Fields()[0].Name() == "b" {
				field, want = "b", 2
			}
			for _, path := range []string{"src." + field} {
				if v, err := LookupInt(got, path); err != nil || v != want {
					t.Errorf("files %v, record %d: %s = %d, %v; want %d", order, i, path, v, err, want)
				}
			}
			for j, item := range got["prv"].([]any) {
				if v := item.(map[string]any)[field]; v != want {
					t.Errorf("files %v, record %d: prv[%d].%s = %v, want %d", order, i, j, field, v, want)
				}
			}
		}
	}
}
