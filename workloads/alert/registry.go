package alert

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hamba/avro/v2"
)

// Registry maps schema ids to schemas in memory: the decoders' view of the
// schema registry (package registry), filled from its topic. Lookups are lock-free and safe concurrently with each other and
// with Add; adding is serialised and copies the map, which is fine for the
// handful of schemas a broker sees. The zero value is an empty Registry.
type Registry struct {
	mu      sync.Mutex                        // serialises writers
	entries atomic.Pointer[map[uint32]*entry] // replaced, never mutated
}

// entry is an immutable registered schema with its compiled decoding plan.
type entry struct {
	schema avro.Schema
	text   string // canonical form
	plan   *node
}

// NewRegistry returns a Registry holding schemas.
func NewRegistry(schemas ...avro.Schema) *Registry {
	r := &Registry{}
	for _, s := range schemas {
		r.Add(s)
	}
	return r
}

// Register adds s under SchemaID(s) and returns the id, like RegisterAs.
func (r *Registry) Register(s avro.Schema) (uint32, error) {
	if s == nil {
		return 0, fmt.Errorf("register schema: nil schema")
	}
	id := SchemaID(s)
	return id, r.RegisterAs(id, s)
}

// RegisterAs adds s under id, as a schema registry or an upstream stream
// numbered it. Registering the same schema (same SchemaText) under the same
// id again is a no-op. If a different schema already holds the id, it fails
// and leaves the Registry unchanged.
func (r *Registry) RegisterAs(id uint32, s avro.Schema) error {
	if s == nil {
		return fmt.Errorf("register schema %d: nil schema", id)
	}
	text := SchemaText(s)
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.entries.Load()
	if old != nil {
		if e, ok := (*old)[id]; ok {
			if e.text == text {
				return nil
			}
			return fmt.Errorf("register schema: id %d of %s is held by another schema, %s", id, schemaName(s), schemaName(e.schema))
		}
	}
	next := make(map[uint32]*entry, 1+lenMap(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[id] = &entry{schema: s, text: text, plan: compile(s)}
	r.entries.Store(&next)
	return nil
}

// Add registers s and returns its id, like Register. It is meant for setup
// with known schemas and panics on an id collision (probability ~n²/2³²),
// which no retry could fix; use Register or AddJSON to get an error instead.
func (r *Registry) Add(s avro.Schema) uint32 {
	id, err := r.Register(s)
	if err != nil {
		panic("alert: " + err.Error())
	}
	return id
}

// AddJSON parses a self-contained schema text, registers it under SchemaID
// and returns its id.
func (r *Registry) AddJSON(text string) (uint32, error) {
	s, err := ParseSchema(text)
	if err != nil {
		return 0, fmt.Errorf("add schema to registry: %w", err)
	}
	return r.Register(s)
}

// Lookup returns the schema registered under id.
func (r *Registry) Lookup(id uint32) (avro.Schema, bool) {
	e := r.entry(id)
	if e == nil {
		return nil, false
	}
	return e.schema, true
}

// IDs returns the registered ids in increasing order.
func (r *Registry) IDs() []uint32 {
	m := r.entries.Load()
	if m == nil {
		return nil
	}
	ids := make([]uint32, 0, len(*m))
	for id := range *m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (r *Registry) entry(id uint32) *entry {
	if r == nil {
		return nil
	}
	m := r.entries.Load()
	if m == nil {
		return nil
	}
	return (*m)[id]
}

func lenMap(m *map[uint32]*entry) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// schemaName returns the full name of a named schema, else its type.
func schemaName(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

// AddJSONAs parses a self-contained schema text, such as one read from the
// schema registry's topic, and registers it under id.
func (r *Registry) AddJSONAs(id uint32, text string) error {
	s, err := ParseSchema(text)
	if err != nil {
		return fmt.Errorf("add schema %d to registry: %w", id, err)
	}
	return r.RegisterAs(id, s)
}
