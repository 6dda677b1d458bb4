package filter

import (
	"errors"
	"fmt"
	"regexp"
)

// Spec describes one filter. Zero values mean defaults (see WithDefaults).
type Spec struct {
	// Name identifies the filter; it must be a Kafka-topic-safe name,
	// [A-Za-z0-9._-]{1,200}, other than "." and "..".
	Name string `yaml:"name"`
	// Expr is a boolean CEL expression over the variable "alert".
	Expr string `yaml:"expr"`
	// Output is the topic the selected alerts go to; empty means Name.
	Output string `yaml:"output,omitempty"`
	// MaxPerVisit limits the alerts written per visit; 0 means
	// DefaultMaxPerVisit and a negative value means unlimited.
	MaxPerVisit int `yaml:"max_per_visit,omitempty"`
	// CostLimit is the CEL runtime cost limit of one evaluation; 0 means
	// DefaultCostLimit.
	CostLimit uint64 `yaml:"cost_limit,omitempty"`
}

var topicName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)

// ValidName reports whether name can serve as a filter name or Kafka topic.
func ValidName(name string) bool {
	return topicName.MatchString(name) && name != "." && name != ".."
}

// WithDefaults returns the spec with Output, MaxPerVisit and CostLimit
// filled in.
func (s Spec) WithDefaults() Spec {
	if s.Output == "" {
		s.Output = s.Name
	}
	if s.MaxPerVisit == 0 {
		s.MaxPerVisit = DefaultMaxPerVisit
	}
	if s.CostLimit == 0 {
		s.CostLimit = DefaultCostLimit
	}
	return s
}

// Validate checks the name, output and expression presence (not the
// expression itself; see Compile). Errors name the filter.
func (s Spec) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("filter without a name: every filter needs name: [A-Za-z0-9._-]{1,200}")
	}
	if !ValidName(s.Name) {
		return fmt.Errorf("filter %q: invalid name: use 1 to 200 of A-Z a-z 0-9 . _ - (a Kafka topic name)", s.Name)
	}
	if s.Output != "" && !ValidName(s.Output) {
		return fmt.Errorf("filter %q: invalid output topic %q: use 1 to 200 of A-Z a-z 0-9 . _ -", s.Name, s.Output)
	}
	if s.Expr == "" {
		return fmt.Errorf("filter %q: empty expr: give a boolean CEL expression over `alert`, e.g. %s", s.Name, DefaultExpr)
	}
	return nil
}

// Compile validates the spec and compiles its expression with its cost
// limit. A compile error is returned wrapped with the filter's name;
// errors.As still finds the *CompileError.
func (s Spec) Compile(opts ...Option) (*Program, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.WithDefaults()
	prog, err := Compile(s.Expr, append([]Option{WithCostLimit(s.CostLimit)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("filter %q: %w", s.Name, err)
	}
	return prog, nil
}

// compileSpecs validates and compiles specs, checks that names and outputs
// are unique, and returns the specs with defaults filled in and their
// programs. Every problem is reported, as a *SpecError each (with the YAML
// line from lines when known), joined with errors.Join.
func compileSpecs(in []Spec, lines []int, opts ...Option) ([]Spec, []*Program, error) {
	var errs []error
	fail := func(i int, name string, err error) {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		errs = append(errs, &SpecError{Index: i, Line: line, Name: name, Err: err})
	}
	names := map[string]int{}
	outputs := map[string]int{}
	specs := make([]Spec, len(in))
	progs := make([]*Program, len(in))
	for i, s := range in {
		var err error
		if progs[i], err = s.Compile(opts...); err != nil {
			fail(i, s.Name, err)
		}
		specs[i] = s.WithDefaults()
		if s.Name == "" {
			continue
		}
		j, dupName := names[s.Name]
		if dupName {
			fail(i, s.Name, fmt.Errorf("filter %q: duplicate name, already used by filters[%d]", s.Name, j))
		} else {
			names[s.Name] = i
		}
		if dupName && s.Output == "" {
			continue // the output defaults to the name: reported once above
		}
		out := specs[i].Output
		if j, dup := outputs[out]; dup {
			fail(i, s.Name, fmt.Errorf("filter %q: output topic %q already written by filter %q", s.Name, out, in[j].Name))
		} else {
			outputs[out] = i
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return specs, progs, nil
}
