package registry

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/hamba/avro/v2"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
)

// DefaultCompatibility is the compatibility level reported when the topic
// sets none. The registry does not check compatibility: alert schemas
// change by new names (lsst.v11_0 to lsst.v12_0), and a reader needs only
// the schema an alert was written with.
const DefaultCompatibility = "NONE"

// Errors of PlanRegister and Apply, wrapped with details.
var (
	// ErrInvalidSchema: the text is not a self-contained Avro schema.
	ErrInvalidSchema = errors.New("invalid Avro schema")
	// ErrIDTaken: the id already names a different schema.
	ErrIDTaken = errors.New("schema id already held by another schema")
)

// State is the registry's content, built by applying the topic's records in
// order. A key's last record wins, as under compaction; a schema id, once
// seen, keeps its first schema. It is not safe for concurrent use.
type State struct {
	versions map[string]map[int]SchemaValue // subject -> version -> value
	ids      map[int]*schemaEntry
	compat   string
}

// schemaEntry is one schema id: the text first registered under it, parsed.
type schemaEntry struct {
	text   string
	canon  string // alert.SchemaText: equal for equal schemas
	schema avro.Schema
}

// NewState returns an empty State.
func NewState() *State {
	return &State{versions: map[string]map[int]SchemaValue{}, ids: map[int]*schemaEntry{}}
}

// Apply adds one record. A record it cannot take (a schema text that does
// not parse, an id already held by a different schema) changes nothing and
// is returned as an error for the caller to count and report.
func (st *State) Apply(r Record) error {
	switch {
	case r.Other:
		return nil
	case r.Key.KeyType == KeyConfig:
		if r.Key.Subject == nil { // per-subject levels are not kept
			st.compat = ""
			if r.Config != nil {
				st.compat = r.Config.CompatibilityLevel
			}
		}
		return nil
	case r.Tombstone:
		delete(st.versions[*r.Key.Subject], r.Key.Version)
		return nil
	}
	v := *r.Schema
	s, err := Parse(v.Schema)
	if err != nil {
		return fmt.Errorf("%s version %d: %w", v.Subject, v.Version, err)
	}
	e, err := st.entry(v.ID, v.Schema, s)
	if err != nil {
		return fmt.Errorf("%s version %d: %w", v.Subject, v.Version, err)
	}
	st.ids[v.ID] = e
	if st.versions[v.Subject] == nil {
		st.versions[v.Subject] = map[int]SchemaValue{}
	}
	st.versions[v.Subject][v.Version] = v
	return nil
}

// Parse parses a schema text as the registry takes it: self-contained
// Avro. Its error wraps ErrInvalidSchema.
func Parse(text string) (avro.Schema, error) {
	s, err := alert.ParseSchema(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	return s, nil
}

// entry returns the id's entry for text (parsed: s): the existing one if it
// holds the same schema, a new one if the id is free.
func (st *State) entry(id int, text string, s avro.Schema) (*schemaEntry, error) {
	canon := alert.SchemaText(s)
	if e, ok := st.ids[id]; ok {
		if e.canon != canon {
			return nil, fmt.Errorf("%w: id %d", ErrIDTaken, id)
		}
		return e, nil
	}
	return &schemaEntry{text: text, canon: canon, schema: s}, nil
}

// Schema returns the schema text registered under id.
func (st *State) Schema(id int) (string, bool) {
	e, ok := st.ids[id]
	if !ok {
		return "", false
	}
	return e.text, true
}

// ParsedSchema returns the schema registered under id, parsed.
func (st *State) ParsedSchema(id int) (avro.Schema, bool) {
	e, ok := st.ids[id]
	if !ok {
		return nil, false
	}
	return e.schema, true
}

// IDs returns every schema id, in increasing order.
func (st *State) IDs() []int { return slices.Sorted(maps.Keys(st.ids)) }

// SubjectVersion names one version of a subject.
type SubjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// IDVersions returns the live subject versions that use schema id.
func (st *State) IDVersions(id int) []SubjectVersion {
	var out []SubjectVersion
	for _, s := range st.Subjects() {
		for _, v := range st.Versions(s) {
			if st.versions[s][v].ID == id {
				out = append(out, SubjectVersion{s, v})
			}
		}
	}
	return out
}

// Subjects returns the subjects with a live version, sorted.
func (st *State) Subjects() []string {
	var out []string
	for s := range st.versions {
		if len(st.Versions(s)) > 0 {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// Versions returns the subject's live versions, in increasing order.
func (st *State) Versions(subject string) []int {
	var out []int
	for n, v := range st.versions[subject] {
		if !v.Deleted {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Version returns a live version of subject; version -1 is the latest.
func (st *State) Version(subject string, version int) (SchemaValue, bool) {
	if version == -1 {
		vs := st.Versions(subject)
		if len(vs) == 0 {
			return SchemaValue{}, false
		}
		version = vs[len(vs)-1]
	}
	v, ok := st.versions[subject][version]
	if !ok || v.Deleted {
		return SchemaValue{}, false
	}
	return v, true
}

// Find returns the live version of subject that holds schema s.
func (st *State) Find(subject string, s avro.Schema) (SchemaValue, bool) {
	canon := alert.SchemaText(s)
	for _, n := range st.Versions(subject) {
		v := st.versions[subject][n]
		if st.ids[v.ID].canon == canon {
			return v, true
		}
	}
	return SchemaValue{}, false
}

// IDOf returns the id that already holds schema s, under any subject: the
// one alert.SchemaID gives if it does, else the smallest.
func (st *State) IDOf(s avro.Schema) (int, bool) {
	canon := alert.SchemaText(s)
	if e, ok := st.ids[int(alert.SchemaID(s))]; ok && e.canon == canon {
		return int(alert.SchemaID(s)), true
	}
	for _, id := range st.IDs() {
		if st.ids[id].canon == canon {
			return id, true
		}
	}
	return 0, false
}

// NextVersion returns the version a new schema of subject gets: one more
// than any it has had, deleted ones included.
func (st *State) NextVersion(subject string) int {
	next := 1
	for n := range st.versions[subject] {
		next = max(next, n+1)
	}
	return next
}

// Compatibility returns the global compatibility level.
func (st *State) Compatibility() string {
	if st.compat == "" {
		return DefaultCompatibility
	}
	return st.compat
}

// Plan is what registering a schema under a subject would write: nothing
// (Existing) or a new version.
type Plan struct {
	Existing bool
	Value    SchemaValue
}

// PlanRegister decides how schema text (parsed: s, see Parse) is
// registered under subject: the version that already holds it, or a new
// version under id (0: the id the schema already has under another
// subject, else alert.SchemaID). It fails on an id held by another schema.
func (st *State) PlanRegister(subject string, s avro.Schema, text string, id int) (Plan, error) {
	if v, ok := st.Find(subject, s); ok && (id == 0 || id == v.ID) {
		return Plan{Existing: true, Value: v}, nil
	}
	if id == 0 {
		var ok bool
		if id, ok = st.IDOf(s); !ok {
			id = int(alert.SchemaID(s))
		}
	}
	if _, err := st.entry(id, text, s); err != nil {
		return Plan{}, err
	}
	return Plan{Value: SchemaValue{Subject: subject, Version: st.NextVersion(subject), ID: id, Schema: text}}, nil
}
