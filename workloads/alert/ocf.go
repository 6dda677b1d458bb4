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
	api      avro.API         // hamba/avro's codecs for this file's schema alone
	reader   *avro.Reader     // of api
	size     int              // bytes of the file
	cost     int              // estimated memory of the records read so far
	budget   int              // what cost may reach (see decodedPerFileByte)
}

// What the records of a container file may cost in memory once decoded,
// whatever its blocks claim. A block of n bytes holds at most n records
// of a schema whose records take a byte or more, but each record read
// costs more than its bytes (a map per record and per nested record, an
// interface per value, the re-encoded copy), and compressed blocks expand
// up to maxBlockBytes each: a 16 KB deflate block of zeros is 16M
// one-long records, some 9 GB decoded. So reading stops with an error
// once the estimated memory of the records (recordCost per record,
// valueCost per value, twice their encoded bytes) passes
// decodedPerFileByte times the file's size, or minDecodedBudget for a
// smaller file. Real files stay well below: the record of Rubin's
// fakeAlert.avro, 704 bytes of mostly null fields, is estimated at 36 KB
// (52 times its bytes); synthetic alerts with cutouts at 2.1 times theirs.
const (
	minDecodedBudget   = 256 << 20
	decodedPerFileByte = 128
	recordCost         = 256
	valueCost          = 48
)

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
	return parseOCF(path, data)
}

// parseOCF is readOCF on the file's content; path names it in errors.
func parseOCF(path string, data []byte) (*ocfFile, error) {
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
	// Each file gets its own hamba/avro configuration, whose codec cache
	// is keyed by a schema's text: a text names a record it already
	// defined by its name alone, so through the shared default
	// configuration another file's record of the same name, with other
	// fields, would be read and re-encoded with this file's codec (its
	// fields' values lost; found by FuzzReadOCF).
	out := &ocfFile{schema: schema, plan: compile(schema), warnings: warnings, api: avro.Config{}.Freeze(),
		size: len(data), budget: max(minDecodedBudget, decodedPerFileByte*len(data))}
	out.reader = avro.NewReader(nil, 0, avro.WithReaderConfig(out.api))
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
		start, values := r.pos, r.values
		r.skip(f.plan)
		if r.err != nil {
			return fmt.Errorf("record %d of the block (record %d of the file), in the block's data: %w", i, len(f.generic), r.err)
		}
		f.cost += recordCost + valueCost*(r.values-values) + 2*(r.pos-start)
		if f.cost > f.budget {
			return fmt.Errorf("record %d of the block (record %d of the file): the records so far would take over %d MiB in memory, "+
				"the most allowed for a file of %d bytes (%d times its size, at least %d MiB): a compression bomb, or a file too big to read whole",
				i, len(f.generic), f.budget>>20, f.size, decodedPerFileByte, minDecodedBudget>>20)
		}
		// Not api.Unmarshal: it returns no error for a record cut short
		// (io.EOF), with what it read so far.
		var v any
		f.reader.Reset(raw[start:r.pos])
		f.reader.ReadVal(f.schema, &v)
		if err := f.reader.Error; err != nil {
			return fmt.Errorf("record %d of the block (record %d of the file): %w", i, len(f.generic), err)
		}
		rec, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("record %d of the block decoded to %T, want a record", i, v)
		}
		enc, err := f.api.Marshal(f.schema, rec)
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
	recs, err := f.records(path)
	if err != nil {
		return nil, nil, nil, err
	}
	return f.schema, recs, f.warnings, nil
}

// records returns the file's records in the normalised form of Decode.
func (f *ocfFile) records(path string) ([]map[string]any, error) {
	recs := make([]map[string]any, len(f.encoded))
	for i, enc := range f.encoded {
		var err error
		recs[i], err = decodePlan(f.plan, enc, decodeConfig{})
		if err != nil {
			return nil, fmt.Errorf("read alert file %s: record %d: %w", path, i, err)
		}
	}
	return recs, nil
}
