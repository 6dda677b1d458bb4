package filter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

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

// LoadSpecs reads a filters file, checks it and compiles every expression.
// The returned specs have their defaults filled in. All the faulty filters
// are reported at once, joined with errors.Join, each as a *SpecError.
func LoadSpecs(r io.Reader) ([]Spec, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading filters: %w", err)
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
