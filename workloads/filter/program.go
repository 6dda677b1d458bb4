package filter

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

const (
	// DefaultExpr is the 2018 prototype's filter: SNR above 5 and brighter
	// than 20th magnitude (36310 nJy).
	DefaultExpr = "alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0"

	// DefaultMaxPerVisit is the number of alerts a filter writes per visit
	// unless told otherwise.
	DefaultMaxPerVisit = 20

	// DefaultCostLimit is the CEL runtime cost limit of one evaluation
	// unless WithCostLimit says otherwise. CEL counts about one unit per
	// field access, comparison or function call, and a size-dependent amount
	// for string, list and map operations. DefaultExpr costs 8 units; an
	// exists() over the 30 previous sources of an alert some 70; a double
	// comprehension over them (900 pairs) about 8,300. The limit stops a
	// runaway evaluation within milliseconds (docs/benchmarks-settings.md
	// has the time per unit): generous for any sensible filter, yet short
	// enough that one bad filter cannot starve the others of a shared
	// process for long (a visit of 10,000 alerts arrives every 39 s, i.e.
	// 3.9 ms per alert for all filters together). The often quoted
	// 1,000,000 would let one evaluation run ten times as long.
	DefaultCostLimit uint64 = 100_000

	// VarName is the name of the CEL variable bound to the alert.
	VarName = "alert"
)

// ErrCostLimit is wrapped by the error Match returns when an evaluation
// exceeded the program's runtime cost limit.
var ErrCostLimit = errors.New("runtime cost limit exceeded")

// Option configures Compile.
type Option func(*config)

type config struct {
	costLimit uint64
	envOpts   []cel.EnvOption
}

// WithCostLimit sets the CEL runtime cost limit of one evaluation (see
// DefaultCostLimit). Zero keeps the default.
func WithCostLimit(limit uint64) Option {
	return func(c *config) {
		if limit > 0 {
			c.costLimit = limit
		}
	}
}

// WithMacros adds CEL macros to the environment the expression is compiled
// in (the standard macros has, all, exists, exists_one, map and filter are
// always present).
func WithMacros(macros ...cel.Macro) Option {
	return func(c *config) { c.envOpts = append(c.envOpts, cel.Macros(macros...)) }
}

// WithEnvOptions adds arbitrary CEL environment options, e.g. extension
// libraries (the ext package of cel-go needs golang.org/x/text in go.mod).
func WithEnvOptions(opts ...cel.EnvOption) Option {
	return func(c *config) { c.envOpts = append(c.envOpts, opts...) }
}

// Program is a compiled filter expression. It is safe for concurrent use.
type Program struct {
	expr             string
	prg              cel.Program
	costLimit        uint64
	costMin, costMax uint64 // static estimate; costMax is huge when unbounded
	tracked          bool   // runtime cost tracking enabled
	fields           []string
	allFields        bool
}

// Compile parses and type-checks expr and plans it for evaluation. A syntax
// or type error, including an expression whose type is not bool, is
// returned as a *CompileError.
func Compile(expr string, opts ...Option) (*Program, error) {
	cfg := config{costLimit: DefaultCostLimit}
	for _, o := range opts {
		o(&cfg)
	}
	envOpts := []cel.EnvOption{
		cel.Variable(VarName, cel.MapType(cel.StringType, cel.DynType)),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
	}
	env, err := cel.NewEnv(append(envOpts, cfg.envOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("filter: building the CEL environment: %w", err)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, newCompileError(expr, iss)
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		return nil, outputTypeError(expr, t)
	}
	p := &Program{expr: expr, costLimit: cfg.costLimit, costMax: math.MaxUint64}
	p.fields, p.allFields = readFields(ast.NativeRep())
	progOpts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	// Runtime cost tracking costs several times the evaluation itself. An
	// expression whose static worst case is finite has no data-dependent
	// loop; when that worst case fits the limit the tracking is left out.
	if est, err := env.EstimateCost(ast, sizeUnknown{}); err == nil {
		p.costMin, p.costMax = est.Min, est.Max
	}
	if !fitsLimit(p.costMax, countNodes(ast), cfg.costLimit) {
		p.tracked = true
		progOpts = append(progOpts, cel.CostLimit(cfg.costLimit))
	}
	prg, err := env.Program(ast, progOpts...)
	if err != nil {
		return nil, fmt.Errorf("filter: planning %q: %w", shorten(expr), err)
	}
	p.prg = prg
	return p, nil
}

// fitsLimit reports whether an expression of n nodes with the static
// maximum cost max surely stays within limit at run time. CEL's runtime
// cost differs slightly from its static estimate (it counts, e.g., one
// more unit per variable or attribute access: `alert.a.b > 1.0` is
// estimated 3 and costs 4), so a margin of one unit per node plus a factor
// two is kept.
func fitsLimit(max uint64, n int, limit uint64) bool {
	if max > (math.MaxUint64-uint64(n))/2 {
		return false
	}
	return 2*max+uint64(n) <= limit
}

func countNodes(a *cel.Ast) int {
	n := 0
	celast.PostOrderVisit(a.NativeRep().Expr(), celast.NewExprVisitor(func(celast.Expr) { n++ }))
	return n
}

// sizeUnknown is a checker.CostEstimator knowing nothing about sizes and
// function costs, so CEL's defaults (worst cases) apply.
type sizeUnknown struct{}

func (sizeUnknown) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }
func (sizeUnknown) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// Expr returns the source expression.
func (p *Program) Expr() string { return p.expr }

// CostLimit returns the runtime cost limit of one evaluation.
func (p *Program) CostLimit() uint64 { return p.costLimit }

// CostEstimate returns CEL's static bounds on the cost of one evaluation;
// max is huge (close to math.MaxUint64) when the cost depends on the sizes
// of strings, lists or maps in the alert (e.g. a comprehension). When max
// is well within the cost limit the program runs without runtime cost
// tracking, which is then needless and would cost more than the
// evaluation itself.
func (p *Program) CostEstimate() (min, max uint64) { return p.costMin, p.costMax }

// Match evaluates the program on one normalised alert record. A missing
// field, a type mismatch (e.g. comparing a string with a number) or an
// exceeded cost limit yields false and an error naming the expression;
// ErrCostLimit is wrapped in the latter case. Match does not panic.
func (p *Program) Match(rec map[string]any) (bool, error) {
	if p == nil || p.prg == nil {
		return false, errors.New("filter: Match on a nil program: use Compile")
	}
	ok, err := p.eval(recordActivation{rec})
	if err != nil {
		return false, p.describe(err)
	}
	return ok, nil
}

// describe wraps an evaluation error with the expression and a hint on
// what to do about it.
func (p *Program) describe(err error) error {
	msg := err.Error()
	var hint string
	switch {
	case errors.Is(err, ErrCostLimit):
		hint = fmt.Sprintf(" (limit %d): simplify the expression or raise its cost limit", p.costLimit)
	case strings.HasPrefix(msg, "no such key"):
		hint = ": a field is absent from this alert; test it with has(alert.a.b) or read it with alert.?a.?b.orValue(default)"
	case strings.HasPrefix(msg, "no such overload"):
		hint = ": an operator or function got values of the wrong type (e.g. a string compared with a number, or null)"
	}
	return fmt.Errorf("evaluating filter %q: %w%s", shorten(p.expr), err, hint)
}

// eval runs the program against an activation and returns the raw
// evaluation error (unwrapped, to keep the Set hot path allocation-free).
func (p *Program) eval(act interpreter.Activation) (ok bool, err error) {
	if p == nil || p.prg == nil {
		return false, errors.New("nil filter program")
	}
	out, _, err := p.prg.Eval(act)
	if err != nil {
		return false, evalError(err)
	}
	b, isBool := out.(types.Bool)
	if !isBool {
		return false, fmt.Errorf("expression returned %s, want bool", typeName(out))
	}
	return bool(b), nil
}

// evalError classifies a CEL evaluation error.
func evalError(err error) error {
	var cancelled interpreter.EvalCancelledError
	if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
		return ErrCostLimit
	}
	return err
}

func isCostError(err error) bool { return errors.Is(err, ErrCostLimit) }

func typeName(v ref.Val) string {
	if v == nil {
		return "nothing"
	}
	return v.Type().TypeName()
}

// shorten trims an expression for use inside error messages.
func shorten(expr string) string {
	const max = 80
	r := []rune(expr)
	if len(r) <= max {
		return expr
	}
	return string(r[:max-1]) + "…"
}

// recordActivation binds the variable "alert" to a record. It is a single
// map field, so converting it to interpreter.Activation does not allocate,
// and CEL selects fields of a native map[string]any without adapting it.
type recordActivation struct{ rec map[string]any }

func (a recordActivation) ResolveName(name string) (any, bool) {
	if name == VarName {
		return a.rec, true
	}
	return nil, false
}

func (recordActivation) Parent() interpreter.Activation { return nil }
