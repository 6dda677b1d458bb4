package alert

import (
	"errors"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	rec := map[string]any{
		"diaSourceId": int64(7),
		"diaSource":   map[string]any{"visit": int64(12), "snr": 5.5, "band": "r", "parent": nil},
		"diaObject":   nil,
	}
	for _, c := range []struct {
		path string
		want any
		ok   bool
	}{
		{"diaSourceId", int64(7), true},
		{"diaSource.visit", int64(12), true},
		{"diaSource.parent", nil, true},
		{"diaSource.nope", nil, false},
		{"diaObject", nil, true},
		{"diaObject.nDiaSources", nil, false},
		{"diaSource.band.x", nil, false},
		{"", nil, false},
		{"diaSource.", nil, false},
	} {
		got, ok := Lookup(rec, c.path)
		if got != c.want || ok != c.ok {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", c.path, got, ok, c.want, c.ok)
		}
	}
	if v, err := LookupInt(rec, "diaSource.visit"); err != nil || v != 12 {
		t.Errorf("LookupInt(diaSource.visit) = %d, %v", v, err)
	}
	if _, err := LookupInt(rec, "diaSource.missing"); !errors.Is(err, ErrNoField) || !strings.Contains(err.Error(), "diaSource.missing") {
		t.Errorf("missing field error %v", err)
	}
	if _, err := LookupInt(rec, "diaSource.snr"); err == nil || !strings.Contains(err.Error(), "float64") {
		t.Errorf("float field error %v", err)
	}
	if _, err := LookupInt(rec, "diaSource.parent"); err == nil || !strings.Contains(err.Error(), "null") {
		t.Errorf("null field error %v", err)
	}
}
