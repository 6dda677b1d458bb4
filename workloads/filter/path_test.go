package filter

import "testing"

func TestLookup(t *testing.T) {
	rec := testAlert(5, 12, 10, 1, 0)
	if v, ok := Lookup(rec, "diaSourceId"); !ok || v != int64(5) {
		t.Errorf("diaSourceId: %v %v", v, ok)
	}
	if v, ok := Lookup(rec, "diaSource.band"); !ok || v != "r" {
		t.Errorf("diaSource.band: %v %v", v, ok)
	}
	if v, ok := Lookup(rec, "ssObject"); !ok || v != nil {
		t.Errorf("ssObject: %v %v", v, ok)
	}
	for _, p := range []string{"nope", "diaSource.nope", "ssObject.x", "diaSource.band.x"} {
		if _, ok := Lookup(rec, p); ok {
			t.Errorf("%s found", p)
		}
	}
	if v, ok := Lookup(rec, ""); !ok || v.(map[string]any)["diaSourceId"] != int64(5) {
		t.Error("empty path")
	}
	if v, ok := LookupInt64(rec, "diaSource.visit"); !ok || v != 12 {
		t.Errorf("visit: %v %v", v, ok)
	}
	if _, ok := LookupInt64(rec, "diaSource.band"); ok {
		t.Error("band as int")
	}
	if v, ok := LookupInt64(map[string]any{"a": 3}, "a"); !ok || v != 3 {
		t.Error("int")
	}
}
