package filter

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
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
	// TimeBudget is the evaluation time the filter may spend on one visit
	// before it is quarantined for the rest of it (see DefaultTimeBudget);
	// 0 means DefaultTimeBudget. In YAML, a Go duration such as "2s".
	TimeBudget time.Duration `yaml:"time_budget,omitempty"`
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
	if s.TimeBudget == 0 {
		s.TimeBudget = DefaultTimeBudget
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
	if s.TimeBudget != 0 && (s.TimeBudget < MinTimeBudget || s.TimeBudget > MaxTimeBudget) {
		return fmt.Errorf("filter %q: time_budget %v: want %v to %v of evaluation time per visit", s.Name, s.TimeBudget, MinTimeBudget, MaxTimeBudget)
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

// MaxCostLimit is the highest cost limit a filter may set: ten times
// DefaultCostLimit, about a quarter of a second of one CPU for an
// evaluation that reaches it (docs/benchmarks-settings.md has the time per
// unit). Higher, one runaway expression would hold a shared process for
// most of a visit's 39 s within a few hundred alerts.
const MaxCostLimit = 10 * DefaultCostLimit

// CheckCostLimit accepts 0 (the default, DefaultCostLimit) and 1 to
// MaxCostLimit.
func CheckCostLimit(limit uint64) error {
	if limit > MaxCostLimit {
		return fmt.Errorf("cost limit %d is above the most a filter may set, %d (10 times the default %d)", limit, MaxCostLimit, DefaultCostLimit)
	}
	return nil
}

// CheckOutput reports why a filter may not write to topic: not a Kafka
// topic name, or a topic the mini-broker keeps for itself
// (stream.Reserved).
func CheckOutput(topic string) error {
	if !ValidName(topic) {
		return fmt.Errorf("invalid output topic %q: use 1 to 200 of A-Z a-z 0-9 . _ -", topic)
	}
	if why, reserved := stream.Reserved(topic); reserved {
		return fmt.Errorf("output topic %q is reserved: %s", topic, why)
	}
	return nil
}

// CheckDeployable checks what a filter process would otherwise meet only
// once it runs: each spec's output topic (Output, or Name when empty) must
// be one a filter may write (CheckOutput), its cost limit in range
// (CheckCostLimit), and no two outputs may collide in Kafka, which takes
// '.' and '_' as the same (stream.TopicCollisionKey). Every problem is
// reported, as a *SpecError naming the filter, joined with errors.Join.
// Validate and Compile check the rest.
func CheckDeployable(specs []Spec) error {
	var errs []error
	outputs := map[string]int{}
	for i, s := range specs {
		fail := func(err error) {
			errs = append(errs, &SpecError{Index: i, Name: s.Name, Err: fmt.Errorf("filter %q: %w", s.Name, err)})
		}
		if err := CheckCostLimit(s.CostLimit); err != nil {
			fail(err)
		}
		out := s.Output
		if out == "" {
			out = s.Name
		}
		if out == "" {
			continue // Validate reports the missing name
		}
		if err := CheckOutput(out); err != nil {
			fail(err)
			continue
		}
		key := stream.TopicCollisionKey(out)
		if j, dup := outputs[key]; dup {
			o := specs[j].Output
			if o == "" {
				o = specs[j].Name
			}
			if o == out {
				fail(fmt.Errorf("output topic %q already written by filter %q", out, specs[j].Name))
			} else {
				fail(fmt.Errorf("output topic %q collides with %q of filter %q: Kafka takes '.' and '_' as the same", out, o, specs[j].Name))
			}
			continue
		}
		outputs[key] = i
	}
	return errors.Join(errs...)
}
