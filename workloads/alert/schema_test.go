package alert

import (
	"os"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"
)

// syntheticSchemaID pins the id of schema/alert.avsc. Changing the schema's
// canonical form changes the id, which consumers see as a new schema: update
// this constant deliberately when the schema changes.
const syntheticSchemaID = 291310563

func TestSyntheticSchemaShape(t *testing.T) {
	s, ok := SyntheticSchema().(*avro.RecordSchema)
	if !ok || s.FullName() != "minibroker.v1.alert" {
		t.Fatalf("synthetic schema is %v, want record minibroker.v1.alert", SyntheticSchema().Type())
	}
	want := []string{"diaSourceId", "diaSource", "prvDiaSources", "diaObject", "cutoutDifference", "cutoutScience", "cutoutTemplate"}
	var got []string
	for _, f := range s.Fields() {
		got = append(got, f.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("fields %v, want %v", got, want)
	}
	if SyntheticSchema() != SyntheticSchema() {
		t.Fatal("SyntheticSchema is parsed more than once")
	}
}

// Every field of the synthetic diaSource and diaObject exists in Rubin's
// schema with the same name, so filters port between the two.
func TestSyntheticFieldsExistInRubin(t *testing.T) {
	rubin := compile(rubinSchema(t))
	syn := compile(SyntheticSchema())
	for _, rec := range []string{"diaSource", "diaObject"} {
		for _, f := range unionRecord(syn.field(rec)).fields {
			if !hasPath(rubin, rec+"."+f.name) {
				t.Errorf("synthetic %s.%s is not in the Rubin v11 schema", rec, f.name)
			}
		}
	}
	for _, f := range syn.fields {
		if rubin.field(f.name) == nil {
			t.Errorf("synthetic top-level field %s is not in the Rubin v11 schema", f.name)
		}
	}
}

func unionRecord(n *node) *node {
	if n.kind == kUnion {
		for _, b := range n.branches {
			if b.kind == kRecord {
				return b
			}
		}
	}
	return n
}

func TestSchemaIDStableAndDistinct(t *testing.T) {
	syn := SyntheticSchema()
	if got := SchemaID(syn); got != syntheticSchemaID {
		t.Fatalf("SchemaID(synthetic) = %d, want the pinned %d (update the constant if the schema changed on purpose)", got, syntheticSchemaID)
	}
	// Re-parsing the canonical text or the original file gives the same id.
	again, err := ParseSchema(SchemaText(syn))
	if err != nil {
		t.Fatalf("canonical text does not parse: %v", err)
	}
	if SchemaID(again) != SchemaID(syn) {
		t.Fatal("SchemaID changed after a round trip through SchemaText")
	}
	orig, err := ParseSchema(SyntheticSchemaJSON())
	if err != nil || SchemaID(orig) != SchemaID(syn) {
		t.Fatalf("SchemaID of a fresh parse differs (err %v)", err)
	}
	rubin := rubinSchema(t)
	rid := SchemaID(rubin)
	if rid != 1100 {
		t.Fatalf("SchemaID(lsst.v11_0.alert) = %d, want Rubin's id 1100", rid)
	}
	// The schema inside fakeAlert.avro is Rubin v11 too: same canonical form.
	f, err := os.Open(fakeAlertPath(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, err := ocf.NewDecoder(f, ocf.WithDecoderSchemaCache(&avro.SchemaCache{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := SchemaID(dec.Schema()); got != rid {
		t.Fatalf("fakeAlert.avro schema id %d, want the v11 files' %d", got, rid)
	}
}

func TestSchemaIDIgnoresDocs(t *testing.T) {
	a, err := ParseSchema(`{"type":"record","name":"r","namespace":"x","fields":[{"name":"a","type":"long"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSchema(`{"type": "record", "name": "r", "namespace": "x", "doc": "d",
		"fields": [{"name": "a", "type": "long", "doc": "field a", "default": 1}]}`)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseSchema(`{"type":"record","name":"r","namespace":"x","fields":[{"name":"a","type":"int"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if SchemaID(a) != SchemaID(b) {
		t.Error("docs or defaults changed the id")
	}
	if SchemaID(a) == SchemaID(c) {
		t.Error("different field types gave the same id")
	}
}

// Logical types do not change the encoding, so they do not change the id.
func TestSchemaIDIgnoresLogicalTypes(t *testing.T) {
	a, err := ParseSchema(`{"type":"record","name":"r","fields":[{"name":"t","type":{"type":"long","logicalType":"timestamp-micros"}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseSchema(`{"type":"record","name":"r","fields":[{"name":"t","type":"long"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if SchemaID(a) != SchemaID(b) {
		t.Errorf("timestamp-micros changed the id: %d vs %d", SchemaID(a), SchemaID(b))
	}
	if CanonicalForm(a) != `{"name":"r","type":"record","fields":[{"name":"t","type":"long"}]}` {
		t.Errorf("canonical form %s keeps the logical type", CanonicalForm(a))
	}
}

func TestRubinID(t *testing.T) {
	for name, want := range map[string]uint32{
		"lsst.v11_0.alert": 1100, "lsst.v7_1.alert": 701, "lsst.v10_12.alert": 1012, "lsst.v11_0.diaSource": 0,
		"lsst.v11.alert": 0, "lsst.v100_0.alert": 0, "lsstx.v11_0.alert": 0, "minibroker.v1.alert": 0,
	} {
		s, err := ParseSchema(`{"type":"record","name":"` + name + `","fields":[]}`)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := RubinID(s)
		if got != want || ok != (want != 0) {
			t.Errorf("RubinID(%s) = %d, %v; want %d", name, got, ok, want)
		}
		if !ok && SchemaID(s) < minFingerprintID {
			t.Errorf("SchemaID(%s) = %d is in Rubin's range", name, SchemaID(s))
		}
	}
}

func TestParseSchemaErrors(t *testing.T) {
	if _, err := ParseSchema(`{"type":"record"`); err == nil {
		t.Error("ParseSchema accepted broken JSON")
	}
	if _, err := ParseSchemaFiles(); err == nil {
		t.Error("ParseSchemaFiles accepted no files")
	}
	if _, err := ParseSchemaFiles("no/such/file.avsc"); err == nil || !strings.Contains(err.Error(), "no/such/file.avsc") {
		t.Errorf("missing file error %v does not name the file", err)
	}
	// Rubin's alert.avsc alone refers to undefined names.
	if _, err := ParseSchemaFiles(rubinFile(t, "lsst.v11_0.alert.avsc")); err == nil {
		t.Error("alert.avsc parsed without the files defining its types")
	}
}
