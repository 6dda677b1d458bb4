package alert

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/hamba/avro/v2"
)

// Fields of the alert schema (Rubin's, and the synthetic one modelled on
// it) that the workloads use, as dotted paths for Lookup.
const (
	// DefaultVisitPath holds the alert's visit: the per-visit cap keys on
	// it, and Replay.Alert rewrites it when given "".
	DefaultVisitPath = "diaSource.visit"
	// DefaultIDPath holds the alert's id.
	DefaultIDPath = "diaSourceId"
)

// Replay serves the records of real alert files, cycling through them to
// fill visits of any size. It is immutable after LoadOCF and safe for
// concurrent use.
type Replay struct {
	recs     []replayRec
	schemas  []avro.Schema
	warnings []FileWarning
}

// FileWarning is an invalid default that reading a file's schema ignored
// (see ParseSchemaLenient).
type FileWarning struct {
	File string
	SchemaWarning
}

type replayRec struct {
	schema  avro.Schema
	plan    *node
	generic map[string]any // hamba generic form; never modified
	encoded []byte         // the record encoded with schema
}

// LoadOCF reads Avro Object Container Files, each with its own schema
// (files may differ; the schema is kept per record), in the order given.
// It reads past a file's bad blocks, as ReadOCFRecords does, and returns
// them once per file (a file given twice is listed once), in file order,
// for the caller to report: the replay holds the records of the other
// blocks. It fails on a missing file, a bad header, a file without
// records (none, or all its blocks bad) or over its memory budget. A
// schema's invalid defaults are ignored, as Java Avro 1.8 ignores them
// (see ParseSchemaLenient), and listed by Warnings.
func LoadOCF(paths ...string) (*Replay, []SkippedBlock, error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("load alert files: no files given")
	}
	rp := &Replay{}
	var skipped []SkippedBlock
	seen := map[uint32]string{} // id -> SchemaText
	reported := map[string]bool{}
	for _, p := range paths {
		f, err := readOCF(p)
		if err != nil {
			return nil, nil, fmt.Errorf("load alert files: %w", err)
		}
		if !reported[p] {
			skipped = append(skipped, f.skipped...)
		}
		if err := rp.add(p, f, seen, reported); err != nil {
			return nil, nil, fmt.Errorf("load alert files: %w", err)
		}
	}
	return rp, skipped, nil
}

// add appends the records of file p, read as f. seen maps the schema ids
// of the files added so far to their SchemaText; warned lists the files
// whose warnings are in.
func (rp *Replay) add(p string, f *ocfFile, seen map[uint32]string, warned map[string]bool) error {
	if !warned[p] {
		warned[p] = true
		for _, w := range f.warnings {
			rp.warnings = append(rp.warnings, FileWarning{File: p, SchemaWarning: w})
		}
	}
	id, text := SchemaID(f.schema), SchemaText(f.schema)
	if prev, ok := seen[id]; !ok {
		seen[id] = text
		rp.schemas = append(rp.schemas, f.schema)
	} else if prev != text {
		return fmt.Errorf("%s: its schema differs from an earlier file's with the same id %d "+
			"(the two differ only in what the id leaves out, such as logical types)", p, id)
	}
	for i := range f.generic {
		rp.recs = append(rp.recs, replayRec{
			schema: f.schema, plan: f.plan, generic: f.generic[i], encoded: f.encoded[i],
		})
	}
	return nil
}

// Warnings returns the invalid defaults of the files' schemas that were
// ignored, once per file (a file given twice is listed once), in file
// order: for the caller to report.
func (rp *Replay) Warnings() []FileWarning { return append([]FileWarning(nil), rp.warnings...) }

// Len returns the number of records loaded.
func (rp *Replay) Len() int { return len(rp.recs) }

// Schemas returns the distinct schemas of the loaded files, in order of
// first appearance: the ones to register or publish before replaying.
func (rp *Replay) Schemas() []avro.Schema { return append([]avro.Schema(nil), rp.schemas...) }

// Record returns record i (0 <= i < Len) in hamba/avro's generic form, as
// read from its file, with its schema. The map is shared: do not modify it.
func (rp *Replay) Record(i int) (avro.Schema, map[string]any) {
	r := &rp.recs[i]
	return r.schema, r.generic
}

// Alert appends the Avro payload (no wire header) of record index mod Len
// to dst, with the integer field at visitPath (DefaultVisitPath if "") set
// to visit, and returns it with the record's schema. The bytes equal those
// of encoding the record with the field changed; they are made by splicing
// the new value into the record's stored encoding, so Alert is cheap and
// never mutates the shared record. A record whose schema lacks visitPath,
// or holds null on the way to it, is appended unchanged (use CheckPath to
// require the field); a non-integer field or a visit outside an int
// field's range is an error.
func (rp *Replay) Alert(dst []byte, visit int64, index int, visitPath string) ([]byte, avro.Schema, error) {
	if len(rp.recs) == 0 {
		return dst, nil, errors.New("replay alert: no records loaded")
	}
	if index < 0 {
		return dst, nil, fmt.Errorf("replay alert: negative index %d", index)
	}
	if visitPath == "" {
		visitPath = DefaultVisitPath
	}
	r := &rp.recs[index%len(rp.recs)]
	start, end, leaf, err := locate(r.plan, r.encoded, visitPath)
	if err != nil {
		return dst, nil, fmt.Errorf("replay alert %d: find %q: %w", index, visitPath, err)
	}
	if leaf == nil {
		return append(dst, r.encoded...), r.schema, nil
	}
	n0 := len(dst)
	dst = append(dst, r.encoded[:start]...)
	dst, err = appendInteger(dst, leaf, visit)
	if err != nil {
		return dst[:n0], nil, fmt.Errorf("replay alert %d: set %q: %w", index, visitPath, err)
	}
	return append(dst, r.encoded[end:]...), r.schema, nil
}

// CheckPath reports an error naming the first schema that has no field at
// the dotted path (DefaultVisitPath if ""), whose records Alert would thus
// leave unchanged.
func (rp *Replay) CheckPath(path string) error {
	if path == "" {
		path = DefaultVisitPath
	}
	for _, s := range rp.schemas {
		if !hasPath(compile(s), path) {
			return fmt.Errorf("alert schema %s has no field %q", schemaName(s), path)
		}
	}
	return nil
}

// locate finds the encoded value of the field at the dotted path in enc. It
// returns leaf == nil if the schema has no such field or a union on the way
// holds null (or a branch without the field).
func locate(root *node, enc []byte, path string) (start, end int, leaf *node, err error) {
	r := binReader{buf: enc}
	n := root
	for {
		seg, rest, more := strings.Cut(path, ".")
		if n.kind != kRecord {
			return 0, 0, nil, nil
		}
		var fn *node
		for i := range n.fields {
			if n.fields[i].name == seg {
				fn = n.fields[i].node
				break
			}
			r.skip(n.fields[i].node)
		}
		if r.err != nil {
			return 0, 0, nil, r.err
		}
		if fn == nil {
			return 0, 0, nil, nil
		}
		if !more {
			start = r.pos
			r.skip(fn)
			if r.err != nil {
				return 0, 0, nil, r.err
			}
			return start, r.pos, fn, nil
		}
		if fn.kind == kUnion {
			i := r.readLong()
			if r.err != nil {
				return 0, 0, nil, r.err
			}
			if i < 0 || i >= int64(len(fn.branches)) {
				return 0, 0, nil, fmt.Errorf("union branch %d out of range", i)
			}
			fn = fn.branches[i]
		}
		n, path = fn, rest
	}
}

// hasPath reports whether the schema has a field at the dotted path,
// looking into every record branch of unions.
func hasPath(n *node, path string) bool {
	seg, rest, more := strings.Cut(path, ".")
	cands := []*node{n}
	if n.kind == kUnion {
		cands = n.branches
	}
	for _, c := range cands {
		if c.kind != kRecord {
			continue
		}
		f := c.field(seg)
		if f != nil && (!more || hasPath(f, rest)) {
			return true
		}
	}
	return false
}

// appendInteger appends v encoded as the integer type of leaf: int, long,
// or a union with a long or int branch (written as that branch).
func appendInteger(dst []byte, leaf *node, v int64) ([]byte, error) {
	switch leaf.kind {
	case kLong:
		return appendVarlong(dst, v), nil
	case kInt:
		if v < math.MinInt32 || v > math.MaxInt32 {
			return dst, fmt.Errorf("value %d does not fit the field's Avro int", v)
		}
		return appendVarlong(dst, v), nil
	case kUnion:
		for _, want := range []kind{kLong, kInt} {
			for i, b := range leaf.branches {
				if b.kind == want {
					return appendInteger(appendVarlong(dst, int64(i)), b, v)
				}
			}
		}
	}
	return dst, fmt.Errorf("field is an Avro %s, not an integer", leaf.name)
}

// appendVarlong appends v as an Avro (zig-zag varint) long.
func appendVarlong(dst []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		dst = append(dst, byte(u)|0x80)
		u >>= 7
	}
	return append(dst, byte(u))
}
