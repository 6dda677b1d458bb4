package alert

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoField means a dotted path does not lead to a value in a record.
var ErrNoField = errors.New("no such field")

// Lookup returns the value at a dotted path such as "diaSource.visit" in a
// normalised record (see Decode). Every segment but the last must name a
// nested map[string]any. It reports false if a segment is missing or an
// intermediate value is not a record (including null). A present null
// leaf gives (nil, true).
func Lookup(rec map[string]any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	cur := rec
	for {
		seg, rest, more := strings.Cut(path, ".")
		v, ok := cur[seg]
		if !ok {
			return nil, false
		}
		if !more {
			return v, true
		}
		next, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, path = next, rest
	}
}

// LookupInt returns the integer at a dotted path (see Lookup). It fails with
// an error wrapping ErrNoField when the path is missing, and with a plain
// error naming the path when the value is null or not an integer (floats
// are not converted, even integral ones).
func LookupInt(rec map[string]any, path string) (int64, error) {
	v, ok := Lookup(rec, path)
	if !ok {
		return 0, fmt.Errorf("field %q: %w", path, ErrNoField)
	}
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case nil:
		return 0, fmt.Errorf("field %q is null, want an integer", path)
	default:
		return 0, fmt.Errorf("field %q is %T (%v), want an integer", path, v, v)
	}
}
