package filter

import (
	"slices"
	"testing"
)

func TestProgramFields(t *testing.T) {
	cases := []struct {
		expr   string
		fields []string
		all    bool
	}{
		{DefaultExpr, []string{"diaSource"}, false},
		{`alert.prvDiaSources != null && size(alert.prvDiaSources) >= 10 && alert.diaSource.snr > 20.0`, []string{"diaSource", "prvDiaSources"}, false},
		{`has(alert.diaObject) && alert.diaObject.nDiaSources > 3`, []string{"diaObject"}, false},
		{`alert.prvDiaSources.exists(s, s.snr > 5.0)`, []string{"prvDiaSources"}, false},
		{`alert["diaSource"].snr > 5.0`, nil, true}, // indexing: any field
		{`size(alert) > 3`, nil, true},                          // the whole alert
		{`[1, 2].exists(alert, alert > 1)`, nil, true},          // shadowed name
		{`alert.?diaSource.?snr.orValue(0.0) > 1.0`, nil, true}, // optional selection: decoded whole, to be safe
	}
	for _, c := range cases {
		p, err := Compile(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		fields, all := p.Fields()
		if all != c.all || !slices.Equal(fields, c.fields) {
			t.Errorf("%s: Fields() = %v, %v; want %v, %v", c.expr, fields, all, c.fields, c.all)
		}
	}
}

func TestSetFieldsUnion(t *testing.T) {
	s, err := NewSet([]Spec{
		{Name: "a", Expr: DefaultExpr},
		{Name: "b", Expr: `alert.diaObject != null`},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fields, all := s.Fields(); all || !slices.Equal(fields, []string{"diaObject", "diaSource"}) {
		t.Errorf("Fields() = %v, %v", fields, all)
	}
}
