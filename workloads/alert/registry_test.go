package alert

import (
	"strings"
	"sync"
	"testing"
)

func TestRegistry(t *testing.T) {
	var r Registry // the zero value is usable
	if _, ok := r.Lookup(1); ok {
		t.Fatal("empty registry found id 1")
	}
	syn := SyntheticSchema()
	id := r.Add(syn)
	if id != SchemaID(syn) {
		t.Fatalf("Add returned %d, want SchemaID %d", id, SchemaID(syn))
	}
	if got, ok := r.Lookup(id); !ok || got != syn {
		t.Fatal("Lookup does not return the added schema")
	}
	if again := r.Add(syn); again != id || len(r.IDs()) != 1 {
		t.Fatal("adding the same schema twice is not a no-op")
	}
	rid, err := r.AddJSON(SchemaText(rubinSchema(t)))
	if err != nil {
		t.Fatalf("AddJSON(Rubin canonical text): %v", err)
	}
	if rid != SchemaID(rubinSchema(t)) {
		t.Fatalf("AddJSON id %d, want %d", rid, SchemaID(rubinSchema(t)))
	}
	// The published text of a registered schema re-registers as a no-op.
	if id2, err := r.AddJSON(SchemaText(syn)); err != nil || id2 != id {
		t.Fatalf("AddJSON(SchemaText(synthetic)) = %d, %v", id2, err)
	}
	if ids := r.IDs(); len(ids) != 2 || ids[0] > ids[1] {
		t.Fatalf("IDs() = %v, want 2 sorted ids", ids)
	}
	if _, err := r.AddJSON(`{"type":`); err == nil || !strings.Contains(err.Error(), "add schema") {
		t.Fatalf("AddJSON of broken text: err = %v", err)
	}
}

func TestRegistryCollision(t *testing.T) {
	r := NewRegistry()
	syn := SyntheticSchema()
	other, err := ParseSchema(`{"type":"record","name":"other","fields":[{"name":"a","type":"long"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	// Fake a collision: put another schema under the synthetic schema's id.
	m := map[uint32]*entry{SchemaID(syn): {schema: other, text: SchemaText(other), plan: compile(other)}}
	r.entries.Store(&m)
	if _, err := r.Register(syn); err == nil || !strings.Contains(err.Error(), "held by another schema") {
		t.Fatalf("Register on a colliding id: err = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Add on a colliding id did not panic")
		}
	}()
	r.Add(syn)
}

// Lookups run concurrently with Add (run with -race).
func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry(SyntheticSchema())
	id := SchemaID(SyntheticSchema())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				if _, ok := r.Lookup(id); !ok {
					t.Error("lost a registered schema")
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			if _, err := r.AddJSON(`{"type":"record","name":"r` + string(rune('a'+i)) + `","fields":[]}`); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if len(r.IDs()) != 21 {
		t.Fatalf("%d ids, want 21", len(r.IDs()))
	}
}
