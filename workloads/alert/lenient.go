package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// SchemaWarning is a default in a schema that is invalid for its type, which
// ParseSchemaLenient ignored.
type SchemaWarning struct {
	// Field is the path of the field (or, for an enum type's own default,
	// of the field that defines the enum): the top-level record's full name
	// and the field names down to it, e.g. lsst.v7_0.alert.diaSource.x.
	Field string
	// Problem says what is wrong with the default, e.g. `default 1.5 is not
	// valid for the union's first branch, null (...)`.
	Problem string
}

func (w SchemaWarning) String() string { return w.Field + ": " + w.Problem }

// ParseSchemaLenient parses a schema as ParseSchema does and, if that fails,
// parses it again without the defaults that are invalid for their type,
// returning a warning for each one dropped. Real alert archives written by
// other tools carry such schemas (a union whose default is not of its first
// branch, an int default written as a string, an enum default that is not
// a symbol, ...); Java Avro 1.8 reads them, and fastavro does given a
// reader schema (but for an enum type's own default), because defaults only
// matter when resolving a reader's schema against a writer's, never when
// reading binary data with the writer's schema. A union's default is kept if it is valid for the union's first
// branch. The canonical form, and so SchemaID, does not include defaults:
// dropping them changes neither.
//
// A text that is not JSON, or a schema still invalid without its invalid
// defaults (an unknown type, a record without fields, ...), is an error.
// Use it for files only: schemas from the schemas topic or .avsc files go
// through the strict ParseSchema.
func ParseSchemaLenient(text string) (avro.Schema, []SchemaWarning, error) {
	s, strictErr := parseAvro([]byte(text), &avro.SchemaCache{})
	if strictErr == nil {
		return s, nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, nil, fmt.Errorf("parse avro schema: not valid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, errors.New("parse avro schema: not valid JSON: data after the schema")
	}
	w := &lenientWalker{names: map[string]namedDef{}}
	root := ""
	if m, ok := tree.(map[string]any); ok {
		if full, _ := w.fullName(m, ""); full != "" {
			root = full
		}
	}
	w.walk(tree, "", root)
	if len(w.warnings) == 0 {
		return nil, nil, fmt.Errorf("parse avro schema: %w", strictErr)
	}
	repaired, err := json.Marshal(tree)
	if err != nil {
		return nil, nil, fmt.Errorf("parse avro schema: %w", err)
	}
	s, err = parseAvro(repaired, &avro.SchemaCache{})
	if err != nil {
		return nil, nil, fmt.Errorf("parse avro schema (without its %d invalid defaults): %w", len(w.warnings), err)
	}
	return s, w.warnings, nil
}

// lenientWalker walks a schema's JSON (decoded with UseNumber) as hamba/avro
// parses it, deleting the defaults that hamba would reject.
type lenientWalker struct {
	names    map[string]namedDef // named types defined so far, by full name
	warnings []SchemaWarning
}

type namedDef struct {
	def map[string]any // the definition's JSON object
	ns  string         // its namespace, for the names it uses
}

// fullName returns the full name and namespace of a named type's
// definition m in the enclosing namespace ns, as hamba/avro computes them.
func (w *lenientWalker) fullName(m map[string]any, ns string) (full, space string) {
	name, _ := m["name"].(string)
	if name == "" {
		return "", ns
	}
	space = ns
	if s, _ := m["namespace"].(string); s != "" {
		space = s
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		space, name = name[:i], name[i+1:]
	}
	if space == "" {
		return name, ""
	}
	return space + "." + name, space
}

// lookup finds the named type that a reference name means in namespace ns.
func (w *lenientWalker) lookup(ns, name string) (namedDef, bool) {
	if ns != "" && !strings.Contains(name, ".") {
		if d, ok := w.names[ns+"."+name]; ok {
			return d, true
		}
	}
	d, ok := w.names[name]
	return d, ok
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// walk visits schema t in namespace ns; path names the field it is the
// type of, for warnings.
func (w *lenientWalker) walk(t any, ns, path string) {
	switch t := t.(type) {
	case []any:
		for _, b := range t {
			w.walk(b, ns, path)
		}
	case map[string]any:
		typ, ok := t["type"].(string)
		if !ok {
			if u, isUnion := t["type"].([]any); isUnion { // hamba accepts {"type": [...]}
				w.walk(u, ns, path)
			}
			return
		}
		switch typ {
		case "record", "error":
			full, space := w.fullName(t, ns)
			if full == "" {
				return
			}
			w.names[full] = namedDef{def: t, ns: space}
			fields, _ := t["fields"].([]any)
			for _, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					continue
				}
				name, _ := fm["name"].(string)
				fpath := joinPath(path, name)
				w.walk(fm["type"], space, fpath)
				def, has := fm["default"]
				if !has {
					continue
				}
				if why := w.problem(fm["type"], space, def); why != "" {
					delete(fm, "default")
					w.warnings = append(w.warnings, SchemaWarning{Field: fpath,
						Problem: fmt.Sprintf("default %s %s", jsonText(def), why)})
				}
			}
		case "enum":
			full, space := w.fullName(t, ns)
			if full == "" {
				return
			}
			w.names[full] = namedDef{def: t, ns: space}
			def, has := t["default"]
			if !has {
				return
			}
			if s, ok := def.(string); !ok || !slices.Contains(enumSymbols(t), s) {
				delete(t, "default")
				w.warnings = append(w.warnings, SchemaWarning{Field: path,
					Problem: fmt.Sprintf("enum %s's own default %s is not one of its symbols %s", full, jsonText(def), symbolList(t))})
			}
		case "fixed":
			if full, space := w.fullName(t, ns); full != "" {
				w.names[full] = namedDef{def: t, ns: space}
			}
		case "array":
			w.walk(t["items"], ns, path)
		case "map":
			w.walk(t["values"], ns, path)
		}
	}
}

// problem returns why def is not a valid default for schema t in namespace
// ns under hamba/avro's rules (the Avro specification's: a union's default
// is of its first branch; bytes and fixed defaults are strings of code
// points 0-255, a fixed one of its size), or "" if it is valid or cannot be
// checked (a name not defined: the strict parse reports it).
func (w *lenientWalker) problem(t any, ns string, def any) string {
	switch t := t.(type) {
	case string:
		switch t {
		case "null":
			if def != nil {
				return "is not null"
			}
		case "boolean":
			if _, ok := def.(bool); !ok {
				return "is not a boolean"
			}
		case "int":
			if !isNumberIn(def, math.MinInt32, math.MaxInt32) {
				return "is not an int (a JSON number in 32-bit range)"
			}
		case "long":
			if !isNumberIn(def, math.MinInt64, math.MaxInt64) {
				return "is not a long (a JSON number in 64-bit range)"
			}
		case "float", "double":
			if !isNumberIn(def, math.Inf(-1), math.Inf(1)) {
				return "is not a " + t + " (a JSON number)"
			}
		case "string":
			if _, ok := def.(string); !ok {
				return "is not a string"
			}
		case "bytes":
			if _, ok := byteString(def); !ok {
				return "is not bytes (a JSON string of code points 0-255)"
			}
		default:
			d, ok := w.lookup(ns, t)
			if !ok {
				return ""
			}
			return w.problem(d.def, d.ns, def)
		}
		return ""
	case []any:
		if len(t) == 0 {
			return ""
		}
		if w.problem(t[0], ns, def) != "" {
			return fmt.Sprintf("is not valid for the union's first branch, %s (a union's default must be of its first branch)", w.describe(t[0], ns))
		}
		return ""
	case map[string]any:
		typ, ok := t["type"].(string)
		if !ok {
			if u, isUnion := t["type"].([]any); isUnion {
				return w.problem(u, ns, def)
			}
			return ""
		}
		switch typ {
		case "record", "error":
			full, space := w.fullName(t, ns)
			obj, ok := def.(map[string]any)
			if !ok {
				return fmt.Sprintf("is not a JSON object, as a default of record %s must be", full)
			}
			fields, _ := t["fields"].([]any)
			for _, f := range fields {
				fm, ok := f.(map[string]any)
				if !ok {
					continue
				}
				name, _ := fm["name"].(string)
				v, present := obj[name]
				if !present {
					if _, has := fm["default"]; has {
						continue
					}
					return fmt.Sprintf("lacks field %q of record %s, which has no default", name, full)
				}
				if why := w.problem(fm["type"], space, v); why != "" {
					return fmt.Sprintf("is not a valid record %s: its field %q %s", full, name, why)
				}
			}
			return ""
		case "enum":
			full, _ := w.fullName(t, ns)
			if s, ok := def.(string); !ok || !slices.Contains(enumSymbols(t), s) {
				return fmt.Sprintf("is not one of the symbols %s of enum %s", symbolList(t), full)
			}
			return ""
		case "fixed":
			full, _ := w.fullName(t, ns)
			size, _ := t["size"].(json.Number)
			n, err := size.Int64()
			b, ok := byteString(def)
			if err == nil && (!ok || int64(len(b)) != n) {
				return fmt.Sprintf("is not a string of %d bytes (code points 0-255), as a default of fixed %s must be", n, full)
			}
			return ""
		case "array":
			arr, ok := def.([]any)
			if !ok {
				return "is not a JSON array"
			}
			for i, v := range arr {
				if why := w.problem(t["items"], ns, v); why != "" {
					return fmt.Sprintf("has item %d that %s", i, why)
				}
			}
			return ""
		case "map":
			obj, ok := def.(map[string]any)
			if !ok {
				return "is not a JSON object, as a default of a map must be"
			}
			for k, v := range obj {
				if why := w.problem(t["values"], ns, v); why != "" {
					return fmt.Sprintf("has value %q that %s", k, why)
				}
			}
			return ""
		default: // a primitive with properties, or a reference by name
			return w.problem(typ, ns, def)
		}
	}
	return ""
}

// describe names schema t for a warning: a primitive or the full name of a
// named type.
func (w *lenientWalker) describe(t any, ns string) string {
	switch t := t.(type) {
	case string:
		if d, ok := w.lookup(ns, t); ok {
			return w.describe(d.def, d.ns)
		}
		return t
	case []any:
		return "a union"
	case map[string]any:
		typ, _ := t["type"].(string)
		switch typ {
		case "record", "error", "enum", "fixed":
			full, _ := w.fullName(t, ns)
			return typ + " " + full
		case "":
			return "a union"
		}
		return w.describe(typ, ns)
	}
	return fmt.Sprint(t)
}

// isNumberIn reports whether v is a JSON number within [lo, hi].
func isNumberIn(v any, lo, hi float64) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	return err == nil && f >= lo && f <= hi
}

// byteString returns the bytes a bytes or fixed default stands for: a JSON
// string whose code points are all 0-255.
func byteString(v any) ([]byte, bool) {
	s, ok := v.(string)
	if !ok {
		return nil, false
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 255 {
			return nil, false
		}
		b = append(b, byte(r))
	}
	return b, true
}

func enumSymbols(m map[string]any) []string {
	list, _ := m["symbols"].([]any)
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s, ok := s.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func symbolList(m map[string]any) string {
	return "[" + strings.Join(enumSymbols(m), ", ") + "]"
}

// jsonText renders a default for a warning, shortened if long.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const maxLen = 80
	if len(b) > maxLen {
		return strings.ToValidUTF8(string(b[:maxLen]), "") + "..."
	}
	return string(b)
}
