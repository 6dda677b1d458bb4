package filter

import "strings"

// Lookup returns the value at a dotted path ("diaSource.visit") in a
// normalised record, and whether every step of the path exists. An empty
// path returns the record itself.
func Lookup(rec map[string]any, path string) (any, bool) {
	var cur any = rec
	for path != "" {
		var key string
		key, path, _ = strings.Cut(path, ".")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// LookupInt64 returns the integer at a dotted path, accepting int64 and
// int values.
func LookupInt64(rec map[string]any, path string) (int64, bool) {
	v, ok := Lookup(rec, path)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case int:
		return int64(n), true
	case int32:
		return int64(n), true
	}
	return 0, false
}
