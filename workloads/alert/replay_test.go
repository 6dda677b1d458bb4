package alert

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"
)

// cloneGeneric deep-copies hamba's generic form (maps and slices).
func cloneGeneric(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = cloneGeneric(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneGeneric(e)
		}
		return out
	}
	return v
}

func TestLoadOCFFakeAlert(t *testing.T) {
	path := fakeAlertPath(t)
	rp, skipped, err := LoadOCF(path)
	if err != nil || len(skipped) != 0 {
		t.Fatal(err, skipped)
	}
	if rp.Len() != 1 || len(rp.Schemas()) != 1 {
		t.Fatalf("Len %d, %d schemas; want 1, 1", rp.Len(), len(rp.Schemas()))
	}
	if err := rp.CheckPath(""); err != nil {
		t.Fatal(err)
	}
	schema, generic := rp.Record(0)
	orig, err := Decode(schema, mustMarshal(t, schema, generic))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := LookupInt(orig, "diaSource.visit"); v != 1 {
		t.Fatalf("fakeAlert diaSource.visit = %d, want 1", v)
	}

	for _, visit := range []int64{0, 1, 63, 64, 1 << 20, 1<<62 + 5} {
		p, s, err := rp.Alert([]byte("hdr"), visit, 7, "") // index 7 cycles to 0
		if err != nil {
			t.Fatal(err)
		}
		if s != schema || string(p[:3]) != "hdr" {
			t.Fatal("Alert returned another schema or lost dst")
		}
		p = p[3:]
		rec, err := Decode(s, p)
		if err != nil {
			t.Fatalf("visit %d: re-encoded alert does not decode with the file's schema: %v", visit, err)
		}
		if v, _ := LookupInt(rec, "diaSource.visit"); v != visit {
			t.Fatalf("diaSource.visit = %d, want %d", v, visit)
		}
		// Every other field is unchanged.
		rec["diaSource"].(map[string]any)["visit"] = int64(1)
		if !reflect.DeepEqual(rec, orig) {
			t.Fatalf("visit %d: fields other than diaSource.visit changed", visit)
		}
		// The spliced bytes equal hamba encoding the modified record.
		mod := cloneGeneric(generic).(map[string]any)
		mod["diaSource"].(map[string]any)["visit"] = visit
		if want := mustMarshal(t, schema, mod); !bytes.Equal(p, want) {
			t.Fatalf("visit %d: spliced bytes differ from hamba re-encoding", visit)
		}
	}
	// The shared record is never modified.
	if v := generic["diaSource"].(map[string]any)["visit"]; v != int64(1) {
		t.Fatalf("stored record's visit changed to %v", v)
	}
}

func mustMarshal(t testing.TB, s avro.Schema, v any) []byte {
	t.Helper()
	b, err := avro.Marshal(s, v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeOCF writes records of schema to a new container file.
func writeOCF(t testing.TB, schema avro.Schema, recs ...any) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "alerts.avro")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ocf.NewEncoderWithSchema(schema, f, ocf.WithCodec(ocf.Deflate), ocf.WithEncoderSchemaCache(&avro.SchemaCache{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// Files with different schemas: each record keeps its own.
func TestLoadOCFMixedSchemas(t *testing.T) {
	g := NewGenerator(4, 10)
	var recs []any
	for i := range 3 {
		p, _, _ := g.Alert(nil, 9, i)
		var m alertRec
		if err := avro.Unmarshal(g.Schema(), p, &m); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, m)
	}
	synPath := writeOCF(t, g.Schema(), recs...)
	rp, _, err := LoadOCF(fakeAlertPath(t), synPath)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Len() != 4 || len(rp.Schemas()) != 2 {
		t.Fatalf("Len %d with %d schemas, want 4 with 2", rp.Len(), len(rp.Schemas()))
	}
	reg := NewRegistry(rp.Schemas()...)
	dec := NewDecoder(reg)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < 40; i += 4 {
				p, s, err := rp.Alert(nil, int64(1000+i), i, "diaSource.visit")
				if err != nil {
					t.Error(err)
					return
				}
				rec, _, err := dec.DecodeMessage(AppendWire(nil, SchemaID(s), p))
				if err != nil {
					t.Error(err)
					return
				}
				wantSchema := "lsst.v11_0.alert"
				if i%4 != 0 {
					wantSchema = "minibroker.v1.alert"
				}
				if schemaName(s) != wantSchema {
					t.Errorf("index %d: schema %s, want %s", i, schemaName(s), wantSchema)
				}
				if v, _ := LookupInt(rec, "diaSource.visit"); v != int64(1000+i) {
					t.Errorf("index %d: visit %d", i, v)
				}
			}
		})
	}
	wg.Wait()
}

func TestReplayPaths(t *testing.T) {
	rp, _, err := LoadOCF(fakeAlertPath(t))
	if err != nil {
		t.Fatal(err)
	}
	orig, _, _ := rp.Alert(nil, 1, 0, "")
	// A path the schema lacks, or that goes through null: unchanged.
	for _, path := range []string{"nope.visit", "ssSource.ssObjectId", "diaSource.visit.x"} {
		p, _, err := rp.Alert(nil, 99, 0, path)
		if err != nil || !bytes.Equal(p, orig) {
			t.Errorf("path %q: err %v, changed %v", path, err, !bytes.Equal(p, orig))
		}
	}
	if err := rp.CheckPath("nope.visit"); err == nil || !strings.Contains(err.Error(), "lsst.v11_0.alert") {
		t.Errorf("CheckPath(nope.visit) = %v", err)
	}
	if err := rp.CheckPath("ssSource.ssObjectId"); err != nil {
		t.Errorf("CheckPath through a nullable record: %v", err)
	}
	// Other integer fields work too: int, and ["null","long"].
	p, s, err := rp.Alert(nil, 17, 0, "diaSource.detector")
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := Decode(s, p)
	if v, _ := LookupInt(rec, "diaSource.detector"); v != 17 {
		t.Fatalf("detector = %d", v)
	}
	if _, _, err := rp.Alert(nil, 1<<40, 0, "diaSource.detector"); err == nil {
		t.Error("a visit overflowing an int field was accepted")
	}
	p, s, err = rp.Alert(nil, 1<<40, 0, "diaSource.diaObjectId") // null in the file
	if err != nil {
		t.Fatal(err)
	}
	rec, _ = Decode(s, p)
	if v, _ := LookupInt(rec, "diaSource.diaObjectId"); v != 1<<40 {
		t.Fatalf("diaObjectId = %d", v)
	}
	dst := []byte("keep")
	if out, _, err := rp.Alert(dst, 1, 0, "diaSource.ra"); err == nil || string(out) != "keep" {
		t.Errorf("non-integer field: err %v, dst %q", err, out)
	}
	if _, _, err := rp.Alert(nil, 1, -1, ""); err == nil {
		t.Error("negative index accepted")
	}
}

func TestLoadOCFErrors(t *testing.T) {
	if _, _, err := LoadOCF(); err == nil {
		t.Error("no files accepted")
	}
	_, _, err := LoadOCF(filepath.Join(t.TempDir(), "missing.avro"))
	if err == nil || !strings.Contains(err.Error(), "missing.avro") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.avro")
	os.WriteFile(bad, []byte("this is not avro"), 0o644)
	if _, _, err := LoadOCF(bad); err == nil || !strings.Contains(err.Error(), "not a valid Avro Object Container File") {
		t.Errorf("invalid file: %v", err)
	}
	empty := writeOCF(t, SyntheticSchema())
	if _, _, err := LoadOCF(empty); err == nil || !strings.Contains(err.Error(), "no records") {
		t.Errorf("empty file: %v", err)
	}
	if _, _, _, _, err := ReadOCFRecords(empty); err == nil {
		t.Error("ReadOCFRecords accepted an empty file")
	}
	// A truncated real file.
	data, _ := os.ReadFile(fakeAlertPath(t))
	cut := filepath.Join(t.TempDir(), "cut.avro")
	os.WriteFile(cut, data[:len(data)-100], 0o644)
	if _, _, err := LoadOCF(cut); err == nil {
		t.Error("truncated file accepted")
	}
}
