package filter

import (
	"slices"

	celast "github.com/google/cel-go/common/ast"
)

// readFields returns the top-level alert fields an expression reads
// (`alert.diaSource.snr` reads "diaSource"), or all=true when it uses the
// alert in another way (passes it whole, indexes it, or a comprehension
// shadows the name), so that the decoder must build every field.
func readFields(ast *celast.AST) (fields []string, all bool) {
	idents, selected := 0, 0
	var walk func(e celast.NavigableExpr)
	walk = func(e celast.NavigableExpr) {
		switch e.Kind() {
		case celast.IdentKind:
			if e.AsIdent() == VarName {
				idents++
			}
		case celast.SelectKind:
			sel := e.AsSelect()
			if op := sel.Operand(); op.Kind() == celast.IdentKind && op.AsIdent() == VarName {
				selected++
				if !slices.Contains(fields, sel.FieldName()) {
					fields = append(fields, sel.FieldName())
				}
			}
		case celast.ComprehensionKind:
			c := e.AsComprehension()
			if c.IterVar() == VarName || c.IterVar2() == VarName || c.AccuVar() == VarName {
				all = true
			}
		}
		for _, ch := range e.Children() {
			walk(ch)
		}
	}
	walk(celast.NavigateAST(ast))
	if all || idents != selected {
		return nil, true
	}
	slices.Sort(fields)
	return fields, false
}

// Fields returns the top-level alert fields the program reads, or all=true
// when it may read any of them.
func (p *Program) Fields() (fields []string, all bool) { return p.fields, p.allFields }

// Fields returns the top-level alert fields any filter of the set reads, or
// all=true when one of them may read any field.
func (s *Set) Fields() (fields []string, all bool) {
	for i := range s.filters {
		fs, a := s.filters[i].prog.Fields()
		if a {
			return nil, true
		}
		for _, f := range fs {
			if !slices.Contains(fields, f) {
				fields = append(fields, f)
			}
		}
	}
	slices.Sort(fields)
	return fields, false
}
