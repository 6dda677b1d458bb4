package filter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is the document LoadSpecs reads; see the package documentation for
// the YAML schema.
type File struct {
	Filters []Spec `yaml:"filters"`
}

// SpecError is one faulty filter of a filters file. It wraps the cause, so
// errors.As finds a *CompileError for expression problems.
type SpecError struct {
	Index int    // 0-based position in the filters list
	Line  int    // YAML line of the entry, 0 if unknown
	Name  string // filter name, possibly empty
	Err   error
}

func (e *SpecError) Error() string {
	where := fmt.Sprintf("filters[%d]", e.Index)
	if e.Line > 0 {
		where = fmt.Sprintf("line %d (filters[%d])", e.Line, e.Index)
	}
	return where + ": " + e.Err.Error()
}

func (e *SpecError) Unwrap() error { return e.Err }

// MaxFileBytes bounds what LoadSpecs reads: a thousand filters of long
// expressions take well under a megabyte (and a Swarm config, which
// carries a shared group's file, at most 500 KB).
const MaxFileBytes = 4 << 20

// LoadSpecs reads a filters file, checks it and compiles every expression.
// The returned specs have their defaults filled in. All the faulty filters
// are reported at once, joined with errors.Join, each as a *SpecError.
func LoadSpecs(r io.Reader) ([]Spec, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading filters: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("filters file over %d bytes: a file of filters is far smaller", MaxFileBytes)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("filters file is empty: expected a top-level `filters:` list")
		}
		return nil, fmt.Errorf("parsing filters YAML: %w", err)
	}
	if len(f.Filters) == 0 {
		return nil, errors.New("no filters: the `filters:` list must have at least one entry")
	}
	specs, _, err := compileSpecs(f.Filters, entryLines(data))
	if err != nil {
		return nil, err
	}
	return specs, nil
}

// LoadSpecsFile is LoadSpecs on a file; errors name the path.
func LoadSpecsFile(path string) ([]Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("filters file: %w", err)
	}
	defer f.Close()
	specs, err := LoadSpecs(f)
	if err != nil {
		return nil, fmt.Errorf("filters file %s: %w", path, err)
	}
	return specs, nil
}

// entryLines returns the YAML line of each entry of the filters list, best
// effort (nil when the layout is unexpected).
func entryLines(data []byte) []int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "filters" || root.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		var lines []int
		for _, n := range root.Content[i+1].Content {
			lines = append(lines, n.Line)
		}
		return lines
	}
	return nil
}

// Marshal renders f as the YAML that LoadSpecs reads back to the same
// filters: write filters files with it, not yaml.Marshal alone.
// yaml.v3's emitter writes a multi-line string that starts with a space
// (an expression such as " alert.x > 1\n", from an indented heredoc) as a
// literal block whose indentation indicator is wrong: the file then fails
// to parse, or reads back with other leading spaces (found by
// FuzzLoadSpecs). Marshal checks what it wrote and, if it does not read
// back the same, writes every multi-line expression double-quoted
// instead.
func (f File) Marshal() ([]byte, error) {
	b, err := yaml.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("render filters YAML: %w", err)
	}
	if f.readsBackFrom(b) {
		return b, nil
	}
	// Encode the file with a placeholder for each multi-line expression
	// (yaml.Node.Encode goes through the same emitter), then put the
	// expressions back, double-quoted.
	held := File{Filters: append([]Spec(nil), f.Filters...)}
	exprs := map[string]string{}
	for i := range held.Filters {
		if e := held.Filters[i].Expr; strings.ContainsAny(e, "\n\r") {
			token := fmt.Sprintf("minibroker-expr-%d-%d", i, len(e))
			exprs[token] = e
			held.Filters[i].Expr = token
		}
	}
	var doc yaml.Node
	if err := doc.Encode(held); err != nil {
		return nil, fmt.Errorf("render filters YAML: %w", err)
	}
	putBack(&doc, exprs)
	if b, err = yaml.Marshal(&doc); err != nil {
		return nil, fmt.Errorf("render filters YAML: %w", err)
	}
	if !f.readsBackFrom(b) {
		return nil, errors.New("render filters YAML: a value does not survive YAML's encoding")
	}
	return b, nil
}

// readsBackFrom reports whether b decodes, as LoadSpecs decodes a file,
// to f's filters.
func (f File) readsBackFrom(b []byte) bool {
	var back File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if dec.Decode(&back) != nil || len(back.Filters) != len(f.Filters) {
		return false
	}
	for i := range f.Filters {
		if !reflect.DeepEqual(back.Filters[i], f.Filters[i]) {
			return false
		}
	}
	return true
}

// putBack replaces each string scalar under n that is a key of exprs by
// its value, double-quoted.
func putBack(n *yaml.Node, exprs map[string]string) {
	if e, ok := exprs[n.Value]; ok && n.Kind == yaml.ScalarNode {
		n.Value, n.Style = e, yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		putBack(c, exprs)
	}
}
