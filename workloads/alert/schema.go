package alert

import (
	_ "embed"
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	"github.com/hamba/avro/v2"
)

//go:embed schema/alert.avsc
var syntheticSchemaJSON string

// syntheticSchema parses the embedded schema once; the result is immutable.
var syntheticSchema = sync.OnceValue(func() avro.Schema {
	s, err := ParseSchema(syntheticSchemaJSON)
	if err != nil {
		// The schema is embedded at build time and covered by tests.
		panic(fmt.Sprintf("alert: embedded schema/alert.avsc is invalid: %v", err))
	}
	return s
})

// SyntheticSchema returns the parsed synthetic alert schema
// (minibroker.v1.alert, embedded from schema/alert.avsc).
func SyntheticSchema() avro.Schema { return syntheticSchema() }

// SyntheticSchemaJSON returns the embedded schema file as written (with docs
// and defaults). Use SchemaText for the canonical form.
func SyntheticSchemaJSON() string { return syntheticSchemaJSON }

// ParseSchema parses one self-contained Avro schema text. It uses a private
// name cache, so parsing never touches hamba/avro's global DefaultSchemaCache
// and two texts that define the same name do not interfere.
func ParseSchema(text string) (avro.Schema, error) {
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("parse avro schema: %w", err)
	}
	return s, nil
}

// ParseSchemaFiles parses .avsc files that refer to each other's named types,
// such as Rubin's lsst.v11_0.*.avsc, and returns the schema of the last file.
// Files must be listed so that every named type is defined before it is
// used (e.g. diaSource, diaForcedSource, diaObject, ssSource, mpc_orbits,
// then alert). A private name cache is used, as in ParseSchema.
func ParseSchemaFiles(paths ...string) (avro.Schema, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("parse avro schema files: no files given")
	}
	cache := &avro.SchemaCache{}
	var s avro.Schema
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read avro schema file: %w", err)
		}
		s, err = avro.ParseBytesWithCache(text, "", cache)
		if err != nil {
			return nil, fmt.Errorf("parse avro schema file %s: %w", p, err)
		}
	}
	return s, nil
}

// SchemaText returns the Parsing Canonical Form of s: compact JSON with every
// named type defined inline once, without docs, defaults or aliases. It is
// self-contained (ParseSchema accepts it) and is the text from which SchemaID
// is computed, so it is what should be published next to an id.
func SchemaText(s avro.Schema) string { return s.String() }

// SchemaID returns the wire-format schema id of s: the CRC-64-AVRO (Rabin)
// fingerprint of its Parsing Canonical Form, reduced to the low 31 bits (so
// it is positive as a signed int32, as Confluent ids are) and never 0.
// The id depends only on the canonical form: docs, defaults and whitespace do
// not change it. Distinct schemas collide with probability ~n²/2³²; Registry
// detects collisions.
func SchemaID(s avro.Schema) uint32 {
	fp, err := s.FingerprintUsing(avro.CRC64Avro)
	if err != nil || len(fp) != 8 {
		// CRC64Avro is always supported; keep a deterministic fallback anyway.
		sum := s.Fingerprint()
		fp = sum[:8]
	}
	id := uint32(binary.BigEndian.Uint64(fp) & 0x7fffffff)
	if id == 0 {
		id = 1
	}
	return id
}
