package alert

import (
	"errors"
	"fmt"
	"os"

	"github.com/hamba/avro/v2"
)

// ocfFile is the content of one Avro Object Container File.
type ocfFile struct {
	schema   avro.Schema
	plan     *node
	generic  []map[string]any // hamba's generic form, re-encodable
	encoded  [][]byte         // each record re-encoded with schema
	warnings []SchemaWarning  // invalid defaults of the file's schema, ignored
}

// readOCF reads every record of an Object Container File with the file's
// own schema, keeping hamba's generic form and the re-encoded payload.
//
// The header's schema is parsed with ParseSchemaLenient: invalid defaults,
// which archives written by other tools carry and which do not affect
// reading, are dropped with a warning. Anything else wrong with the file is
// an error that says where: bad magic bytes, a truncated header or block, a
// block size beyond the end of the file, a sync marker that does not match,
// a record that does not decode or does not fill its block exactly.
func readOCF(path string) (*ocfFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open alert file: %w", err)
	}
	h, err := readOCFHeader(data)
	if err != nil {
		return nil, fmt.Errorf("read alert file %s: not a valid Avro Object Container File: %w", path, err)
	}
	schema, warnings, err := ParseSchemaLenient(h.schema)
	if err != nil {
		return nil, fmt.Errorf("read alert file %s: the schema in its header: %w", path, err)
	}
	if schema.Type() != avro.Record {
		return nil, fmt.Errorf("read alert file %s: its schema is a %s, want a record", path, schema.Type())
	}
	codec, err := newBlockCodec(h.codec)
	if err != nil {
		return nil, fmt.Errorf("read alert file %s: %w", path, err)
	}
	defer codec.close()
	out := &ocfFile{schema: schema, plan: compile(schema), warnings: warnings}
	for pos, bi := h.end, 0; pos < len(data); bi++ {
		b, next, err := h.readBlock(data, pos)
		if err != nil {
			return nil, fmt.Errorf("read alert file %s: block %d at byte %d: %w", path, bi, pos, err)
		}
		if err := out.addBlock(b, codec); err != nil {
			return nil, fmt.Errorf("read alert file %s: block %d at byte %d: %w", path, bi, pos, err)
		}
		pos = next
	}
	if len(out.generic) == 0 {
		return nil, fmt.Errorf("read alert file %s: %w", path, errNoRecords)
	}
	return out, nil
}

// addBlock decompresses a block and adds its records.
func (f *ocfFile) addBlock(b ocfBlock, codec *blockCodec) error {
	if b.count == 0 {
		return nil
	}
	raw, err := codec.decode(b.data)
	if err != nil {
		return err
	}
	// Records of a schema that may take no bytes (e.g. only nulls): bound
	// their number as the decoder bounds empty array items.
	if f.plan.minSize == 0 && b.count > maxEmptyItems {
		return fmt.Errorf("%d records of a schema that may take no bytes: more than %d", b.count, maxEmptyItems)
	}
	if f.plan.minSize > 0 && b.count > int64(len(raw)/f.plan.minSize) {
		return fmt.Errorf("%d records cannot fit in the block's %d bytes of data", b.count, len(raw))
	}
	r := binReader{buf: raw}
	for i := int64(0); i < b.count; i++ {
		start := r.pos
		r.skip(f.plan)
		if r.err != nil {
			return fmt.Errorf("record %d of the block (record %d of the file), in the block's data: %w", i, len(f.generic), r.err)
		}
		var v any
		if err := avro.Unmarshal(f.schema, raw[start:r.pos], &v); err != nil {
			return fmt.Errorf("record %d of the block (record %d of the file): %w", i, len(f.generic), err)
		}
		rec, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("record %d of the block decoded to %T, want a record", i, v)
		}
		enc, err := avro.Marshal(f.schema, rec)
		if err != nil {
			return fmt.Errorf("re-encode record %d of the file: %w", len(f.generic), err)
		}
		f.generic = append(f.generic, rec)
		f.encoded = append(f.encoded, enc)
	}
	if r.remaining() != 0 {
		return fmt.Errorf("%d bytes of the block's data left after its %d records", r.remaining(), b.count)
	}
	return nil
}

var errNoRecords = errors.New("the file holds no records")

// ReadOCFRecords reads an Avro Object Container File, e.g. a file of real
// Rubin alerts, and returns its schema with every record in the normalised
// form of Decode, exactly as a filter would see it live (the records go
// through the same encoder and decoder as wire messages), and the invalid
// defaults of the file's schema that were ignored (see ParseSchemaLenient),
// for the caller to report.
func ReadOCFRecords(path string) (avro.Schema, []map[string]any, []SchemaWarning, error) {
	f, err := readOCF(path)
	if err != nil {
		return nil, nil, nil, err
	}
	recs := make([]map[string]any, len(f.encoded))
	for i, enc := range f.encoded {
		recs[i], err = decodePlan(f.plan, enc, decodeConfig{})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("read alert file %s: record %d: %w", path, i, err)
		}
	}
	return f.schema, recs, f.warnings, nil
}
