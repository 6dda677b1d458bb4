package filter

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
)

// CompileError reports why an expression could not be compiled. Line and
// Column locate the first problem (both 1-based; columns count Unicode
// characters), so a caller can map it onto the place the expression came
// from, e.g. a Terraform attribute or a YAML file.
type CompileError struct {
	Expr    string  // the expression as given
	Line    int     // 1-based line of the first issue
	Column  int     // 1-based column of the first issue
	Message string  // message of the first issue
	Issues  []Issue // every issue, the first one included
	// Snippet is CEL's rendering of all issues with the offending source
	// line and a caret under the position, e.g.
	//
	//	ERROR: <input>:1:14: undeclared reference to 'foo'
	//	 | alert.snr > foo
	//	 | .............^
	Snippet string
}

// Issue is one problem found in an expression.
type Issue struct {
	Line    int // 1-based
	Column  int // 1-based
	Message string
}

func (i Issue) String() string { return fmt.Sprintf("%d:%d: %s", i.Line, i.Column, i.Message) }

// Error returns "filter expression: LINE:COL: MESSAGE", followed by the
// other issues, if any, separated by "; ".
func (e *CompileError) Error() string {
	var b strings.Builder
	b.WriteString("filter expression: ")
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(is.String())
	}
	if len(e.Issues) == 0 {
		fmt.Fprintf(&b, "%d:%d: %s", e.Line, e.Column, e.Message)
	}
	return b.String()
}

func newCompileError(expr string, iss *cel.Issues) *CompileError {
	ce := &CompileError{Expr: expr, Snippet: strings.ReplaceAll(iss.String(), " (in container '')", "")}
	for _, e := range iss.Errors() {
		ce.Issues = append(ce.Issues, Issue{
			Line:    e.Location.Line(),
			Column:  e.Location.Column() + 1,
			Message: strings.TrimSuffix(e.Message, " (in container '')"),
		})
	}
	if len(ce.Issues) == 0 { // cannot happen when iss.Err() != nil; be safe
		ce.Issues = []Issue{{Line: 1, Column: 1, Message: strings.TrimSpace(iss.String())}}
	}
	ce.Line, ce.Column, ce.Message = ce.Issues[0].Line, ce.Issues[0].Column, ce.Issues[0].Message
	return ce
}

// outputTypeError reports an expression whose static type is not bool. The
// whole expression is at fault, so the position is its start.
func outputTypeError(expr string, t *cel.Type) *CompileError {
	msg := fmt.Sprintf("expression must be of type bool, found %s", t)
	if t.String() == "dyn" {
		msg += " (compare the field explicitly, e.g. `... == true`)"
	}
	src := common.NewTextSource(expr)
	errs := common.NewErrors(src)
	errs.ReportError(common.NewLocation(1, 0), "%s", msg)
	return &CompileError{
		Expr: expr, Line: 1, Column: 1, Message: msg,
		Issues:  []Issue{{Line: 1, Column: 1, Message: msg}},
		Snippet: errs.ToDisplayString(),
	}
}
