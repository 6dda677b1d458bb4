package alert

import (
	_ "embed"
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
	s, err := parseAvro([]byte(text), &avro.SchemaCache{})
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
		s, err = parseAvro(text, cache)
		if err != nil {
			return nil, fmt.Errorf("parse avro schema file %s: %w", p, err)
		}
	}
	return s, nil
}

// parseAvro parses a schema text with hamba/avro into cache. Every schema
// text the mini-broker reads goes through it: hamba/avro's parser panics
// on some texts (2.31.0: a field whose type is the empty union [] and that
// has a default, found by FuzzParseSchemaLenient), and a text from the
// schemas topic, a registration or a file must not stop the process, so a
// panic is an error.
func parseAvro(text []byte, cache *avro.SchemaCache) (s avro.Schema, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("avro: schema parser panic: %v", p)
		}
	}()
	return avro.ParseBytesWithCache(text, "", cache)
}

// SchemaText returns the compact self-contained text of s that the
// mini-broker registers: every named type defined inline once, without docs,
// defaults or aliases, but with logical types (which the decoder needs, and
// which the Parsing Canonical Form of CanonicalForm drops). ParseSchema
// accepts it.
func SchemaText(s avro.Schema) string { return s.String() }

// SchemaID returns the wire-format schema id the mini-broker gives s when it
// registers it without an id of its own (a registration may give one, as
// an import of another registry's schema does):
//   - Rubin's alert schema, lsst.vMAJOR_MINOR.alert, gets Rubin's id
//     MAJOR*100+MINOR (RubinID);
//   - any other schema gets the low 31 bits of Fingerprint64, the
//     CRC-64-AVRO fingerprint of its Parsing Canonical Form (so positive as a
//     signed int32, as Confluent ids are), never 0 and never below 10000, so
//     no fingerprint takes an id in Rubin's range.
//
// The id depends only on the canonical form: docs, defaults, logical types
// and whitespace do not change it, and every producer computes the same id
// without asking anyone. Distinct schemas collide with probability ~n²/2³²,
// and two that differ only in logical types always do; Registry and the
// schema registry refuse a collision (register the second with an id).
func SchemaID(s avro.Schema) uint32 {
	if id, ok := RubinID(s); ok {
		return id
	}
	id := uint32(Fingerprint64(s) & 0x7fffffff)
	if id < minFingerprintID {
		id += minFingerprintID
	}
	return id
}

// minFingerprintID keeps fingerprint ids out of Rubin's range (up to
// 99*100+99).
const minFingerprintID = 10000
