package alert

import (
	"errors"
	"fmt"
	"os"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/ocf"
)

// ocfFile is the content of one Avro Object Container File.
type ocfFile struct {
	schema  avro.Schema
	plan    *node
	generic []map[string]any // hamba's generic form, re-encodable
	encoded [][]byte         // each record re-encoded with schema
}

// readOCF reads every record of an Object Container File with the file's
// own schema, keeping hamba's generic form and the re-encoded payload.
func readOCF(path string) (*ocfFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open alert file: %w", err)
	}
	defer f.Close()

	// A private schema cache: files may define the same names differently.
	dec, err := ocf.NewDecoder(f, ocf.WithDecoderSchemaCache(&avro.SchemaCache{}))
	if err != nil {
		return nil, fmt.Errorf("read alert file %s: not a valid Avro Object Container File: %w", path, err)
	}
	schema := dec.Schema()
	if schema.Type() != avro.Record {
		return nil, fmt.Errorf("read alert file %s: its schema is a %s, want a record", path, schema.Type())
	}
	out := &ocfFile{schema: schema, plan: compile(schema)}
	for dec.HasNext() {
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("read alert file %s: record %d: %w", path, len(out.generic), err)
		}
		rec, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("read alert file %s: record %d decoded to %T, want a record", path, len(out.generic), v)
		}
		enc, err := avro.Marshal(schema, rec)
		if err != nil {
			return nil, fmt.Errorf("read alert file %s: re-encode record %d: %w", path, len(out.generic), err)
		}
		out.generic = append(out.generic, rec)
		out.encoded = append(out.encoded, enc)
	}
	if err := dec.Error(); err != nil {
		return nil, fmt.Errorf("read alert file %s after %d records: %w", path, len(out.generic), err)
	}
	if len(out.generic) == 0 {
		return nil, fmt.Errorf("read alert file %s: %w", path, errNoRecords)
	}
	return out, nil
}

var errNoRecords = errors.New("the file holds no records")

// ReadOCFRecords reads an Avro Object Container File, e.g. a file of real
// Rubin alerts, and returns its schema with every record in the normalised
// form of Decode, exactly as a filter would see it live (the records go
// through the same encoder and decoder as wire messages).
func ReadOCFRecords(path string) (avro.Schema, []map[string]any, error) {
	f, err := readOCF(path)
	if err != nil {
		return nil, nil, err
	}
	recs := make([]map[string]any, len(f.encoded))
	for i, enc := range f.encoded {
		recs[i], err = decodePlan(f.plan, enc, decodeConfig{})
		if err != nil {
			return nil, nil, fmt.Errorf("read alert file %s: record %d: %w", path, i, err)
		}
	}
	return f.schema, recs, nil
}
