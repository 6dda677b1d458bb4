package filter

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
)

func TestDefaultExpr(t *testing.T) {
	p, err := Compile(DefaultExpr)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		snr, flux float64
		want      bool
	}{
		{20, 50000, true},
		{5, 50000, false},     // SNR must be above 5
		{5.01, 36310, false},  // flux must be above 36310 nJy
		{5.01, 36310.1, true}, // just above both
		{100, 1000, false},
	}
	for _, c := range cases {
		got, err := p.Match(testAlert(1, 10, c.snr, c.flux, 3))
		if err != nil || got != c.want {
			t.Errorf("snr=%v flux=%v: got %v, %v; want %v", c.snr, c.flux, got, err, c.want)
		}
	}
	if p.Expr() != DefaultExpr || p.CostLimit() != DefaultCostLimit {
		t.Errorf("Expr/CostLimit = %q/%d", p.Expr(), p.CostLimit())
	}
}

func TestMatchTypes(t *testing.T) {
	rec := testAlert(77, 10, 20, 50000, 3)
	for _, expr := range []string{
		"alert.diaSourceId == 77",
		"alert.diaSource.visit > 5.0",     // int vs double
		"alert.diaSource.psfFlux > 36310", // double vs int
		"alert.diaSource.band == 'r'",
		"alert.diaSource.extendedness == null",
		"size(alert.cutoutDifference) == 4096",
		"alert.cutoutTemplate == null",
		"size(alert.prvDiaSources) == 3",
		"alert.prvDiaSources.exists(s, s.visit == 9)",
		"alert.prvDiaSources.all(s, s.psfFlux < alert.diaSource.psfFlux)",
		"has(alert.diaSource.snr) && !has(alert.diaSource.nope)",
		"alert.?diaSource.?nope.orValue(7.0) == 7.0",
		"alert.diaSource.isDipole == false",
	} {
		p, err := Compile(expr)
		if err != nil {
			t.Errorf("%s: %v", expr, err)
			continue
		}
		if ok, err := p.Match(rec); !ok || err != nil {
			t.Errorf("%s: got %v, %v; want true", expr, ok, err)
		}
	}
}

func TestMatchErrors(t *testing.T) {
	rec := testAlert(1, 10, 20, 50000, 0) // prvDiaSources is null
	cases := []struct{ expr, want string }{
		{"alert.diaSource.nope > 1.0", "no such key: nope"},
		{"alert.diaSource.band > 5.0", "no such overload"},
		{"size(alert.prvDiaSources) > 1", "no such overload"},
		{"alert.prvDiaSources.exists(s, s.snr > 50.0)", "expected iterable"},
		{"alert.ssObject.x > 1", "no such key"},
	}
	for _, c := range cases {
		p, err := Compile(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		ok, err := p.Match(rec)
		if ok || err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.expr) {
			t.Errorf("%s: got %v, %v; want false and an error with %q and the expression", c.expr, ok, err, c.want)
		}
	}
	// A nil record is an empty alert: an error, no panic.
	p, _ := Compile(DefaultExpr)
	if ok, err := p.Match(nil); ok || err == nil {
		t.Errorf("nil record: got %v, %v", ok, err)
	}
	var nilProg *Program
	if ok, err := nilProg.Match(rec); ok || err == nil {
		t.Errorf("nil program: got %v, %v", ok, err)
	}
}

func TestCostLimit(t *testing.T) {
	expr := "alert.prvDiaSources.all(a, alert.prvDiaSources.all(b, a.snr + b.snr > 0.0))"
	rec := testAlert(1, 10, 20, 50000, 30)
	p, err := Compile(expr)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.Match(rec); !ok || err != nil {
		t.Fatalf("default limit: got %v, %v", ok, err)
	}
	p, err = Compile(expr, WithCostLimit(100))
	if err != nil {
		t.Fatal(err)
	}
	ok, err := p.Match(rec)
	if ok || !errors.Is(err, ErrCostLimit) || !strings.Contains(err.Error(), "limit 100") {
		t.Fatalf("limit 100: got %v, %v; want ErrCostLimit", ok, err)
	}
	if p.CostLimit() != 100 {
		t.Errorf("CostLimit() = %d", p.CostLimit())
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		expr        string
		line, col   int
		msg, errStr string
	}{
		{"alert.diaSource.snr > foo", 1, 23, "undeclared reference to 'foo'",
			"filter expression: 1:23: undeclared reference to 'foo'"},
		{"alert.snr >", 1, 12, "Syntax error", ""},
		{"alert.diaSource.snr", 1, 1, "must be of type bool, found dyn", ""},
		{"alert.diaSource.snr + 1.0", 1, 1, "must be of type bool", ""},
		{"'a' + 1 == 'b'", 1, 5, "found no matching overload for '_+_'", ""},
		{"alert.a > 1.0 &&\n  bar", 2, 3, "undeclared reference to 'bar'", "filter expression: 2:3: undeclared reference to 'bar'"},
	}
	for _, c := range cases {
		_, err := Compile(c.expr)
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("%q: got %v, want *CompileError", c.expr, err)
			continue
		}
		if ce.Line != c.line || ce.Column != c.col || !strings.Contains(ce.Message, c.msg) {
			t.Errorf("%q: got %d:%d %q; want %d:%d %q", c.expr, ce.Line, ce.Column, ce.Message, c.line, c.col, c.msg)
		}
		if c.errStr != "" && err.Error() != c.errStr {
			t.Errorf("%q: Error() = %q, want %q", c.expr, err.Error(), c.errStr)
		}
		if !strings.Contains(ce.Snippet, "^") || !strings.Contains(ce.Snippet, "ERROR: <input>:") {
			t.Errorf("%q: snippet without caret:\n%s", c.expr, ce.Snippet)
		}
		if ce.Expr != c.expr || len(ce.Issues) == 0 {
			t.Errorf("%q: Expr=%q Issues=%v", c.expr, ce.Expr, ce.Issues)
		}
	}
	// The snippet puts the caret under the offending token.
	_, err := Compile("alert.snr > foo")
	ce := err.(*CompileError)
	want := "ERROR: <input>:1:13: undeclared reference to 'foo'\n | alert.snr > foo\n | ............^"
	if ce.Snippet != want {
		t.Errorf("snippet:\n%s\nwant:\n%s", ce.Snippet, want)
	}
	// Several issues are all reported.
	_, err = Compile("foo && bar")
	ce = err.(*CompileError)
	if len(ce.Issues) != 2 || err.Error() != "filter expression: 1:1: undeclared reference to 'foo'; 1:8: undeclared reference to 'bar'" {
		t.Errorf("two issues: %v (%d)", err, len(ce.Issues))
	}
}

func TestWithMacrosAndEnvOptions(t *testing.T) {
	// brighter(x) expands to alert.diaSource.psfFlux > x.
	brighter := cel.GlobalMacro("brighter", 1,
		func(eh cel.MacroExprFactory, _ ast.Expr, args []ast.Expr) (ast.Expr, *common.Error) {
			flux := eh.NewSelect(eh.NewSelect(eh.NewIdent(VarName), "diaSource"), "psfFlux")
			return eh.NewCall(operators.Greater, flux, args[0]), nil
		})
	p, err := Compile("brighter(MAG20)", WithMacros(brighter),
		WithEnvOptions(cel.Constant("MAG20", cel.DoubleType, types.Double(36310))))
	if err != nil {
		t.Fatal(err)
	}
	for flux, want := range map[float64]bool{50000: true, 100: false} {
		if ok, err := p.Match(testAlert(1, 1, 10, flux, 0)); ok != want || err != nil {
			t.Errorf("flux %v: got %v, %v", flux, ok, err)
		}
	}
	if _, err := Compile("brighter(1.0)"); err == nil {
		t.Error("macro known without WithMacros")
	}
}

// TestCostEstimateBoundsActualCost checks the premise of leaving runtime
// cost tracking out: CEL's static maximum, with fitsLimit's margin, is never
// below the actual cost.
func TestCostEstimateBoundsActualCost(t *testing.T) {
	rec := testAlert(1, 10, 20, 50000, 30)
	for _, expr := range []string{
		DefaultExpr,
		"alert.diaSource.band == 'r' && alert.diaSource.psfFlux > 30000.0 || alert.diaObject.nDiaSources >= 3",
		"has(alert.diaSource.snr) && alert.?diaSource.?nope.orValue(1.0) > 0.5",
		"alert.diaSource.snr > 5.0 ? alert.diaSource.psfFlux > 1.0 : false",
		"alert.diaSource.snr > 5.0 ? (alert.diaSource.psfFlux > 1.0 ? (alert.diaSource.x > 1.0 ? alert.diaSource.y > 1.0 : false) : false) : false",
		"[alert.diaSource.snr, alert.diaSource.x][1] > 5.0",
		"{'a': alert.diaSource.snr}.a > 1.0",
	} {
		p, err := Compile(expr)
		if err != nil {
			t.Fatal(err)
		}
		_, max := p.CostEstimate()
		if max > 1000 || p.tracked {
			t.Errorf("%s: estimate unbounded (%d) or tracked", expr, max)
			continue
		}
		env, _ := cel.NewEnv(cel.Variable(VarName, cel.MapType(cel.StringType, cel.DynType)), cel.OptionalTypes(), cel.CrossTypeNumericComparisons(true))
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			t.Fatal(iss.Err())
		}
		prg, _ := env.Program(ast, cel.EvalOptions(cel.OptTrackCost))
		_, det, err := prg.Eval(map[string]any{VarName: rec})
		if err != nil {
			t.Fatal(err)
		}
		if actual := *det.ActualCost(); actual > 2*max+uint64(countNodes(ast)) {
			t.Errorf("%s: actual cost %d above the margin of the estimated max %d", expr, actual, max)
		}
		// A limit at the estimate turns tracking on.
		if p2, _ := Compile(expr, WithCostLimit(max)); !p2.tracked {
			t.Errorf("%s: limit at estimate not tracked", expr)
		}
	}
	// Data-dependent costs are tracked.
	for _, expr := range []string{"alert.prvDiaSources.exists(s, s.snr > 1.0)", "alert == alert", "alert.diaSource.band.matches(alert.diaSource.band)"} {
		p, _ := Compile(expr)
		if _, max := p.CostEstimate(); max < DefaultCostLimit || !p.tracked {
			t.Errorf("%s: max %d, tracked %v", expr, max, p.tracked)
		}
	}
}
