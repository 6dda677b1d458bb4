// Package outsideavro writes Avro Object Container Files with an Avro
// implementation this project did not write, Python's fastavro from the
// virtualenv of `make pyclients` (internal/testbed/pyclients), for the tests
// of reading real-world alert archives: files whose schema carries defaults
// that strict Avro parsers reject, and what fastavro reads from them.
//
// It is a test bed, never imported by shipped code.
package outsideavro

import (
	"bytes"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/pyclients"
)

//go:embed testdata/outside_ocf.py
var script []byte

// Files are the container files of one run of testdata/outside_ocf.py: the
// same records and blocks, written by fastavro, under three schemas.
type Files struct {
	// Good is fastavro's own file, with a valid schema.
	Good string
	// Bad has Good's bytes but for its header's schema, which has the
	// invalid defaults of BadDefaults.
	Bad string
	// EnumDefault has Good's bytes under a schema whose enum type
	// lsst.v7_0.quality (field EnumDefaultField) has a default that is not
	// one of its symbols.
	EnumDefault string
	// Records are the records as fastavro reads them back from Bad, in
	// file order, tagged (see Compare).
	Records []any
}

// BadDefaults maps each field whose default Bad's schema gets wrong to a
// word its warning should contain.
var BadDefaults = map[string]string{
	"lsst.v7_0.alert.diaSource.x":        "union's first branch, null",
	"lsst.v7_0.alert.diaSource.y":        "union's first branch, double",
	"lsst.v7_0.alert.diaSource.detector": "not an int",
	"lsst.v7_0.alert.diaSource.flags":    "enum lsst.v7_0.quality",
	"lsst.v7_0.alert.diaSource.psf":      "fixed lsst.v7_0.psfHash",
	"lsst.v7_0.alert.position":           "record lsst.v7_0.point",
	"lsst.v7_0.alert.stamp":              "not bytes",
}

// EnumDefaultField is the field whose enum type has an invalid default of
// its own in EnumDefault's schema.
const EnumDefaultField = "lsst.v7_0.alert.diaSource.flags"

// Write runs the script with the pyclients interpreter, writing the files
// into dir. It fails, so that tests fail rather than skip, when the
// virtualenv is missing.
func Write(dir string) (*Files, error) {
	root, err := images.RepoRoot()
	if err != nil {
		return nil, err
	}
	python, err := pyclients.Python(root)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "outside_ocf.py")
	if err := os.WriteFile(path, script, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(python, path, dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("fastavro fixture (%s %s): %w\n%s", python, path, err, out)
	}
	f := &Files{
		Good:        filepath.Join(dir, "good.avro"),
		Bad:         filepath.Join(dir, "bad.avro"),
		EnumDefault: filepath.Join(dir, "enumdefault.avro"),
	}
	b, err := os.ReadFile(filepath.Join(dir, "records.json"))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&f.Records); err != nil {
		return nil, fmt.Errorf("fastavro fixture: records.json: %w", err)
	}
	return f, nil
}

// Compare reports the first difference between a record as fastavro read it
// (Files.Records: JSON with numbers kept as json.Number, a float as
// {"$double": Python's float.hex()}, bytes as {"$bytes": hex}) and a value
// in the normalised form of alert.Decode (int64, float64, []byte, string,
// bool, nil, []any, map[string]any). NaN equals NaN; 0.0 and -0.0 differ.
func Compare(fastavro, ours any) error { return compare("", fastavro, ours) }

func compare(path string, want, got any) error {
	diff := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", strings.TrimPrefix(path, "."), fmt.Sprintf(format, args...))
	}
	switch w := want.(type) {
	case nil:
		if got != nil {
			return diff("fastavro read null, we %#v", got)
		}
	case bool, string:
		if got != want {
			return diff("fastavro read %#v, we %#v", want, got)
		}
	case json.Number:
		g, ok := got.(int64)
		if !ok || strconv.FormatInt(g, 10) != string(w) {
			return diff("fastavro read %s, we %#v", w, got)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return diff("fastavro read an array of %d items, we %#v", len(w), got)
		}
		for i := range w {
			if err := compare(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); err != nil {
				return err
			}
		}
	case map[string]any:
		if s, ok := w["$double"].(string); ok && len(w) == 1 {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return diff("bad $double %q: %v", s, err)
			}
			g, ok := got.(float64)
			if !ok || !(math.Float64bits(g) == math.Float64bits(f) || math.IsNaN(g) && math.IsNaN(f)) {
				return diff("fastavro read %v (%s), we %#v", f, s, got)
			}
			return nil
		}
		if s, ok := w["$bytes"].(string); ok && len(w) == 1 {
			b, err := hex.DecodeString(s)
			if err != nil {
				return diff("bad $bytes %q: %v", s, err)
			}
			g, ok := got.([]byte)
			if !ok || !bytes.Equal(g, b) {
				return diff("fastavro read bytes %x, we %#v", b, got)
			}
			return nil
		}
		g, ok := got.(map[string]any)
		if !ok {
			return diff("fastavro read an object, we %#v", got)
		}
		if !reflect.DeepEqual(keys(w), keys(g)) {
			return diff("fastavro read keys %v, we %v", keys(w), keys(g))
		}
		for k := range w {
			if err := compare(path+"."+k, w[k], g[k]); err != nil {
				return err
			}
		}
	default:
		return diff("unexpected %T in fastavro's records", want)
	}
	return nil
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
