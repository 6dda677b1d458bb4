package registry

// Fuzz targets for the registry's readers of outside bytes (issue 13):
// schema texts (Parse), records of the schemas topic (DecodeRecord) and
// users files (ParseUsers). `go test` replays their seeds and the crashers
// committed under testdata/fuzz/; `make fuzz` runs each for a bounded time.

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
)

// rubinDir holds Rubin's alert schema v11, shared by the project outside
// the repository.
const rubinDir = "../../../shared/data/rubin-alert-v11"

// rubinSchemaText returns Rubin's v11 alert schema as one self-contained
// text, as a producer registers it.
func rubinSchemaText(t testing.TB) string {
	t.Helper()
	var paths []string
	for _, n := range []string{"diaSource", "diaForcedSource", "diaObject", "ssSource", "mpc_orbits", "alert"} {
		paths = append(paths, filepath.Join(rubinDir, "lsst.v11_0."+n+".avsc"))
	}
	s, err := alert.ParseSchemaFiles(paths...)
	if err != nil {
		t.Fatalf("Rubin v11 schema (the shared data set rubin-alert-v11 next to the repository): %v", err)
	}
	return alert.SchemaText(s)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{schemaA, schemaB, rubinV1, alert.SyntheticSchemaJSON(), rubinSchemaText(f),
		`"long"`, `["null","string"]`, `{"type":"fixed","name":"x.f","size":16}`,
		`{"type":"enum","name":"e","symbols":["A","B"],"default":"A"}`,
		`{"type":"record","name":"n","fields":[{"name":"next","type":["null","n"]}]}`,
		`{"type":"record","name":"r","fields":[{"name":"x","type":["null","double"],"default":1.5}]}`,
	} {
		f.Add(s)
	}
	// The .avsc files as written, with docs (alone they refer to types
	// defined in others: errors).
	if names, err := filepath.Glob(filepath.Join(rubinDir, "*.avsc")); err == nil {
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		s, err := Parse(text)
		if err != nil {
			if s != nil || !errors.Is(err, ErrInvalidSchema) {
				t.Fatalf("schema %v with error %v (want ErrInvalidSchema)", s, err)
			}
			return
		}
		if s == nil {
			t.Fatal("no schema and no error")
		}
		// The canonical form and the registered text parse again to the
		// same forms.
		canon := alert.CanonicalForm(s)
		s2, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %s: %v", canon, err)
		}
		if c2 := alert.CanonicalForm(s2); c2 != canon || alert.SchemaID(s2) != alert.SchemaID(s) {
			t.Fatalf("canonical form %s parses to %s", canon, c2)
		}
		text2 := alert.SchemaText(s)
		s3, err := Parse(text2)
		if err != nil {
			t.Fatalf("registered text %s: %v", text2, err)
		}
		if alert.SchemaText(s3) != text2 || alert.CanonicalForm(s3) != canon {
			t.Fatalf("registered text %s parses to %s", text2, alert.SchemaText(s3))
		}
		// Registering it writes a record that reads back and applies.
		st := NewState()
		p, err := st.PlanRegister("fuzz-value", s, text, 0)
		if err != nil {
			t.Fatal(err)
		}
		key, value := SchemaRecord(p.Value)
		rec, err := DecodeRecord(key, value)
		if err != nil {
			t.Fatalf("the registration's record: %v", err)
		}
		if err := st.Apply(rec); err != nil {
			t.Fatalf("the registration's record: %v", err)
		}
		// Served back as registered (JSON carries valid UTF-8 only: the
		// API's texts come from JSON bodies).
		if got, ok := st.Schema(p.Value.ID); !ok || (utf8.ValidString(text) && got != text) {
			t.Fatal("the registered text is not served back")
		}
		if id, ok := st.IDOf(s3); !ok || id != p.Value.ID {
			t.Fatalf("IDOf the schema read again: %d, %v; want %d", id, ok, p.Value.ID)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	key, value := SchemaRecord(SchemaValue{Subject: "alerts-value", Version: 1, ID: 1100, Schema: rubinV1})
	f.Add(key, value, false)
	f.Add(key, value, true)
	f.Add([]byte(`{"keytype":"CONFIG","subject":null,"magic":0}`), []byte(`{"compatibilityLevel":"NONE"}`), false)
	f.Add([]byte(`{"keytype":"CONFIG","subject":null,"magic":0}`), []byte(nil), true)
	f.Add([]byte(`{"keytype":"NOOP","magic":0}`), []byte(nil), true)
	f.Add([]byte(`{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}`), []byte(`{"subject":"s","version":3}`), false)
	f.Add([]byte(`{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}`),
		[]byte(`{"subject":"s","version":2,"id":7,"schemaType":"PROTOBUF","schema":"syntax = \"proto3\";","deleted":false}`), false)
	f.Add([]byte(`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`),
		[]byte(`{"subject":"s","version":1,"id":2147483648,"schema":"\"long\""}`), false)
	f.Add([]byte(`not json`), []byte(`{}`), false)
	f.Fuzz(func(t *testing.T, key, value []byte, tombstone bool) {
		if tombstone {
			value = nil
		} else if value == nil {
			value = []byte{}
		}
		r, err := DecodeRecord(key, value)
		if err != nil {
			if !reflect.DeepEqual(r, Record{}) {
				t.Fatalf("record %+v with error %v", r, err)
			}
			return
		}
		if r.Tombstone != tombstone {
			t.Fatalf("tombstone %v for value %q", r.Tombstone, value)
		}
		if r.Schema != nil {
			v := *r.Schema
			if r.Key.KeyType != KeySchema || r.Tombstone || r.Other || !ValidID(v.ID) ||
				v.Subject != *r.Key.Subject || v.Version != r.Key.Version || v.Version < 1 {
				t.Fatalf("inconsistent schema record %+v %+v", r.Key, v)
			}
			// Written back as the registry writes it, it reads the same.
			k2, v2 := SchemaRecord(v)
			r2, err := DecodeRecord(k2, v2)
			if err != nil || !reflect.DeepEqual(*r2.Schema, v) {
				t.Fatalf("record %+v written back: %+v, %v", v, r2.Schema, err)
			}
		}
		if r.Config != nil && (r.Key.KeyType != KeyConfig || r.Tombstone) {
			t.Fatalf("inconsistent config record %+v", r)
		}
		// Applying it changes the state or is an error, never a panic.
		st := NewState()
		if err := st.Apply(r); err == nil && r.Schema != nil {
			if _, ok := st.ParsedSchema(r.Schema.ID); !ok {
				t.Fatal("an applied schema record's id is unknown")
			}
		}
		_ = st.Subjects()
		_ = st.Compatibility()
	})
}

func FuzzParseUsers(f *testing.F) {
	f.Add([]byte(`[{"name":"alice","password":"s3cret","role":"write"},{"name":"bob","password":"x","role":"read"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[{"name":"a:b","password":"p","role":"read"}]`))
	f.Add([]byte(`[{"name":"a","password":"p","role":"admin"},{"name":"a"}]`))
	f.Add([]byte(`{"name":"a"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		users, err := ParseUsers(data)
		if err != nil {
			if users != nil {
				t.Fatalf("users with error %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, u := range users {
			if u.Name == "" || u.Password == "" || seen[u.Name] || (u.Role != RoleRead && u.Role != RoleWrite) {
				t.Fatalf("accepted user %+v", u)
			}
			seen[u.Name] = true
		}
		// Written back, the file reads the same.
		b, err := json.Marshal(users)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseUsers(b)
		if err != nil || len(again) != len(users) || (len(users) > 0 && !reflect.DeepEqual(again, users)) {
			t.Fatalf("users %+v written back: %+v, %v", users, again, err)
		}
	})
}

// A schema text that made hamba/avro's parser panic (a field of the empty
// union with a default; found by FuzzParse): a registration is refused as
// invalid, and such a record in the topic is an error for the reader to
// count, not a stopped registry.
func TestParseParserPanic(t *testing.T) {
	const text = `{"type":"record","name":"r","fields":[{"name":"a","type":[],"default":null}]}`
	if _, err := Parse(text); !errors.Is(err, ErrInvalidSchema) {
		t.Fatalf("Parse: %v", err)
	}
	key, value := SchemaRecord(SchemaValue{Subject: "s", Version: 1, ID: 5, Schema: text})
	r, err := DecodeRecord(key, value)
	if err != nil {
		t.Fatal(err)
	}
	st := NewState()
	if err := st.Apply(r); !errors.Is(err, ErrInvalidSchema) {
		t.Fatalf("Apply: %v", err)
	}
	if len(st.IDs()) != 0 {
		t.Fatal("the record changed the state")
	}
}
