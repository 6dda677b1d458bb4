package alert

import (
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// recordWith is a record t.a with the given fields (JSON), after a point
// record, a color enum and a hash fixed that they may refer to.
func recordWith(fields string) string {
	return `{"type":"record","name":"a","namespace":"t","fields":[
		{"name":"p","type":{"type":"record","name":"point","fields":[{"name":"ra","type":"double"},{"name":"dec","type":"double","default":0}]}},
		{"name":"c","type":{"type":"enum","name":"color","symbols":["RED","GREEN"]}},
		{"name":"h","type":{"type":"fixed","name":"hash","size":2}},
		` + fields + `]}`
}

func TestParseSchemaLenientDropsInvalidDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, fields string
		field, why   string // the warning's field and a part of its problem
	}{
		{"union default not of its first branch", `{"name":"x","type":["null","double"],"default":1.5}`, "t.a.x", "default 1.5 is not valid for the union's first branch, null"},
		{"null default of a union whose first branch is double", `{"name":"x","type":["double","null"],"default":null}`, "t.a.x", "union's first branch, double"},
		{"union of a named record first", `{"name":"x","type":["point","null"],"default":null}`, "t.a.x", "union's first branch, record t.point"},
		{"int written as a string", `{"name":"x","type":"int","default":"1"}`, "t.a.x", `default "1" is not an int`},
		{"long as a string", `{"name":"x","type":"long","default":"5"}`, "t.a.x", "not a long"},
		{"double as the string NaN", `{"name":"x","type":"double","default":"NaN"}`, "t.a.x", "not a double"},
		{"float as a boolean", `{"name":"x","type":{"type":"float"},"default":true}`, "t.a.x", "not a float"},
		{"boolean as a number", `{"name":"x","type":"boolean","default":0}`, "t.a.x", "not a boolean"},
		{"string as a number", `{"name":"x","type":"string","default":3}`, "t.a.x", "not a string"},
		{"null as a number", `{"name":"x","type":"null","default":0}`, "t.a.x", "not null"},
		{"bytes as a number", `{"name":"x","type":"bytes","default":12}`, "t.a.x", "not bytes"},
		{"bytes beyond code point 255", `{"name":"x","type":"bytes","default":"\u0100"}`, "t.a.x", "not bytes"},
		{"enum field default not a symbol", `{"name":"x","type":"color","default":"BLUE"}`, "t.a.x", `"BLUE" is not one of the symbols [RED, GREEN] of enum t.color`},
		{"enum's own default not a symbol", `{"name":"x","type":{"type":"enum","name":"shade","symbols":["DARK"],"default":"LIGHT"}}`, "t.a.x", `enum t.shade's own default "LIGHT" is not one of its symbols [DARK]`},
		{"enum's own default not a string", `{"name":"x","type":{"type":"enum","name":"shade","symbols":["DARK"],"default":5}}`, "t.a.x", "enum t.shade's own default 5"},
		{"fixed as a number", `{"name":"x","type":"hash","default":7}`, "t.a.x", "not a string of 2 bytes (code points 0-255), as a default of fixed t.hash"},
		{"record as an array", `{"name":"x","type":"point","default":[]}`, "t.a.x", "is not a JSON object, as a default of record t.point"},
		{"record lacking a field without default", `{"name":"x","type":"point","default":{"dec":1}}`, "t.a.x", `lacks field "ra" of record t.point`},
		{"record with a wrong-typed field", `{"name":"x","type":"point","default":{"ra":"east"}}`, "t.a.x", `its field "ra" is not a double`},
		{"array as an object", `{"name":"x","type":{"type":"array","items":"int"},"default":{}}`, "t.a.x", "is not a JSON array"},
		{"array with a wrong item", `{"name":"x","type":{"type":"array","items":"int"},"default":[1,"2"]}`, "t.a.x", "has item 1 that is not an int"},
		{"map as an array", `{"name":"x","type":{"type":"map","values":"int"},"default":[]}`, "t.a.x", "not a JSON object"},
		{"nested record defined in a union", `{"name":"src","type":["null",{"type":"record","name":"diaSource","fields":[{"name":"x","type":"int","default":"1"}]}],"default":null}`, "t.a.src.x", "not an int"},
		{"nested record in an array", `{"name":"prv","type":{"type":"array","items":{"type":"record","name":"s","namespace":"u","fields":[{"name":"y","type":["null","int"],"default":2}]}}}`, "t.a.prv.y", "union's first branch, null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := recordWith(tc.fields)
			if _, err := ParseSchema(text); err == nil {
				t.Fatal("the strict parser accepts the schema: not a test of leniency")
			}
			s, warnings, err := ParseSchemaLenient(text)
			if err != nil {
				t.Fatal(err)
			}
			if len(warnings) != 1 || warnings[0].Field != tc.field || !strings.Contains(warnings[0].Problem, tc.why) {
				t.Fatalf("warnings %q, want one for %s saying %q", warnings, tc.field, tc.why)
			}
			// Only the default went: the canonical form is that of the
			// schema without it.
			if s.Type() != avro.Record || SchemaText(s) == "" {
				t.Fatalf("schema %v", s)
			}
		})
	}
}

func TestParseSchemaLenientKeepsTheRest(t *testing.T) {
	// Valid defaults beside invalid ones stay, with their values; the ids
	// are those of the schema without any default (defaults are not in the
	// canonical form).
	text := recordWith(`
		{"name":"ok1","type":["double","null"],"default":1.5},
		{"name":"ok2","type":["null","double"],"default":null},
		{"name":"ok3","type":"point","default":{"ra":1}},
		{"name":"ok4","type":"hash","default":"\u00ff\u0000"},
		{"name":"bad1","type":["null","double"],"default":2.5},
		{"name":"bad2","type":"int","default":"7"}`)
	s, warnings, err := ParseSchemaLenient(text)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, w := range warnings {
		fields = append(fields, w.Field)
	}
	if strings.Join(fields, ",") != "t.a.bad1,t.a.bad2" {
		t.Fatalf("warnings for %v, want t.a.bad1 and t.a.bad2", warnings)
	}
	rec := s.(*avro.RecordSchema)
	for _, f := range rec.Fields() {
		switch f.Name() {
		case "ok1", "ok2", "ok3", "ok4":
			if !f.HasDefault() {
				t.Errorf("valid default of %s dropped", f.Name())
			}
		case "bad1", "bad2":
			if f.HasDefault() {
				t.Errorf("invalid default of %s kept", f.Name())
			}
		}
		if f.Name() == "ok1" && f.Default() != 1.5 {
			t.Errorf("ok1's default is %v", f.Default())
		}
	}
	plain := strings.NewReplacer(`,"default":2.5`, "", `,"default":"7"`, "").Replace(text)
	strict, err := ParseSchema(plain)
	if err != nil {
		t.Fatal(err)
	}
	if SchemaID(s) != SchemaID(strict) || SchemaText(s) != SchemaText(strict) {
		t.Fatalf("lenient and strict parses differ:\n%s\n%s", SchemaText(s), SchemaText(strict))
	}

	// A valid schema parses exactly as ParseSchema does, without warnings.
	s, warnings, err = ParseSchemaLenient(SyntheticSchemaJSON())
	if err != nil || len(warnings) != 0 || SchemaText(s) != SchemaText(SyntheticSchema()) {
		t.Fatalf("synthetic schema: %v, warnings %v", err, warnings)
	}
}

func TestParseSchemaLenientErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"not JSON", `{"type":"record","name":"a","fields":[`, "not valid JSON"},
		{"two documents", `{"type":"record","name":"a","fields":[]} {}`, "not valid JSON"},
		{"unknown type", `{"type":"record","name":"a","fields":[{"name":"x","type":"nosuch"}]}`, "unknown type"},
		{"unknown type beside a bad default", `{"type":"record","name":"a","fields":[{"name":"y","type":"int","default":"1"},{"name":"x","type":"nosuch"}]}`, "unknown type"},
		{"record without fields", `{"type":"record","name":"a"}`, "fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseSchemaLenient(tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// The schemas topic and .avsc files stay strict: the registry refuses a
// schema with an invalid default.
func TestRegistryStaysStrict(t *testing.T) {
	text := recordWith(`{"name":"x","type":["null","double"],"default":1.5}`)
	if _, err := NewRegistry().AddJSON(text); err == nil {
		t.Fatal("the registry accepted a schema with an invalid default")
	}
}
