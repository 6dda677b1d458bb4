package registry

import (
	"errors"
	"testing"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
)

const (
	schemaA = `{"type":"record","name":"a","namespace":"x","fields":[{"name":"f","type":"long"}]}`
	schemaB = `{"type":"record","name":"b","namespace":"x","fields":[{"name":"f","type":"string"}]}`
	rubinV1 = `{"type":"record","name":"alert","namespace":"lsst.v9_1","fields":[{"name":"diaSourceId","type":"long"}]}`
)

// apply plans a registration and applies the record it would write, as a
// Store does.
func apply(t *testing.T, st *State, subject, text string, id int) SchemaValue {
	t.Helper()
	s, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.PlanRegister(subject, s, text, id)
	if err != nil {
		t.Fatalf("plan %s: %v", subject, err)
	}
	if p.Existing {
		return p.Value
	}
	key, value := SchemaRecord(p.Value)
	rec, err := DecodeRecord(key, value)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(rec); err != nil {
		t.Fatal(err)
	}
	return p.Value
}

func TestStateRegisters(t *testing.T) {
	st := NewState()
	a1 := apply(t, st, "alerts-value", schemaA, 0)
	if a1.Version != 1 {
		t.Fatalf("first version %d", a1.Version)
	}
	s, _ := alert.ParseSchema(schemaA)
	if a1.ID != int(alert.SchemaID(s)) {
		t.Errorf("id %d, want the fingerprint id %d", a1.ID, alert.SchemaID(s))
	}
	// The same schema again (another spelling) is the same version.
	again := apply(t, st, "alerts-value", `{"name":"x.a","type":"record","doc":"d","fields":[{"name":"f","type":"long"}]}`, 0)
	if again != a1 {
		t.Errorf("registering again gave %+v, want %+v", again, a1)
	}
	b := apply(t, st, "alerts-value", schemaB, 0)
	if b.Version != 2 || b.ID == a1.ID {
		t.Errorf("second schema: %+v", b)
	}
	// Another subject reuses the id of a schema already registered.
	if o := apply(t, st, "other-value", schemaA, 0); o.ID != a1.ID || o.Version != 1 {
		t.Errorf("schema A under another subject: %+v, want id %d version 1", o, a1.ID)
	}
	// Rubin's rule.
	if r := apply(t, st, "rubin-value", rubinV1, 0); r.ID != 901 {
		t.Errorf("lsst.v9_1.alert got id %d, want 901", r.ID)
	}
	// An upstream id is kept.
	if u := apply(t, st, "up-value", `{"type":"record","name":"u","fields":[]}`, 77); u.ID != 77 {
		t.Errorf("upstream id %d, want 77", u.ID)
	}
	b2, _ := Parse(schemaB)
	if _, err := st.PlanRegister("up-value", b2, schemaB, 77); !errors.Is(err, ErrIDTaken) {
		t.Errorf("another schema under a taken id: %v, want ErrIDTaken", err)
	}
	if _, err := Parse(`{"type":"recrd"}`); !errors.Is(err, ErrInvalidSchema) {
		t.Errorf("a broken schema: %v, want ErrInvalidSchema", err)
	}
	if got := st.Subjects(); len(got) != 4 || got[0] != "alerts-value" {
		t.Errorf("subjects %v", got)
	}
	if vs := st.IDVersions(a1.ID); len(vs) != 2 {
		t.Errorf("id %d is used by %v, want two subjects", a1.ID, vs)
	}
	if v, ok := st.Version("alerts-value", -1); !ok || v.Version != 2 {
		t.Errorf("latest %+v %v", v, ok)
	}
}

// Records of the topic: the last record of a key wins, as under
// compaction; a tombstone removes its version; a record that would move an
// id to another schema, or that is not a registry record, is refused
// without changing anything; other key types are ignored.
func TestStateApply(t *testing.T) {
	st := NewState()
	a := apply(t, st, "s", schemaA, 0)
	key, _ := SchemaRecord(a)
	steal := a
	steal.Schema = schemaB
	_, value := SchemaRecord(steal)
	rec, err := DecodeRecord(key, value)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(rec); !errors.Is(err, ErrIDTaken) {
		t.Errorf("a record moving id %d to another schema: %v", a.ID, err)
	}
	if text, _ := st.Schema(a.ID); text != schemaA {
		t.Errorf("id %d now holds %s", a.ID, text)
	}
	rec, err = DecodeRecord(key, nil)
	if err != nil || !rec.Tombstone {
		t.Fatalf("tombstone: %+v %v", rec, err)
	}
	if err := st.Apply(rec); err != nil {
		t.Fatal(err)
	}
	if len(st.Subjects()) != 0 {
		t.Errorf("subjects after the tombstone: %v", st.Subjects())
	}
	if _, ok := st.Schema(a.ID); !ok {
		t.Error("the id is gone with its version: a reader of old alerts could not decode them")
	}
	if n := st.NextVersion("s"); n != 1 {
		t.Errorf("next version after a tombstone %d", n)
	}
	for _, bad := range [][2]string{
		{`not json`, `{}`},
		{`{"keytype":"SCHEMA","subject":"s","version":0,"magic":1}`, `{}`},
		{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, `{"subject":"t","version":1,"id":5,"schema":"\"long\""}`},
		{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, `{"subject":"s","version":1,"id":0,"schema":"\"long\""}`},
		{`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`, `[1,2]`},
	} {
		if r, err := DecodeRecord([]byte(bad[0]), []byte(bad[1])); err == nil {
			t.Errorf("DecodeRecord(%s, %s) = %+v, want an error", bad[0], bad[1], r)
		}
	}
	for _, other := range []string{`{"keytype":"NOOP","magic":0}`, `{"keytype":"MODE","subject":null,"magic":0}`} {
		r, err := DecodeRecord([]byte(other), []byte(`{}`))
		if err != nil || !r.Other {
			t.Errorf("DecodeRecord(%s) = %+v, %v; want ignored", other, r, err)
		}
		if err := st.Apply(r); err != nil {
			t.Error(err)
		}
	}
	r, err := DecodeRecord([]byte(`{"keytype":"CONFIG","subject":null,"magic":0}`), []byte(`{"compatibilityLevel":"FULL"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Apply(r)
	if st.Compatibility() != "FULL" {
		t.Errorf("compatibility %s", st.Compatibility())
	}
}
