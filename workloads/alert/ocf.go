package alert

import (
	"bytes"
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
	skipped  []SkippedBlock   // bad blocks read past
	api      avro.API         // hamba/avro's codecs for this file's schema alone
	reader   *avro.Reader     // of api
	size     int              // bytes of the file
	cost     int              // estimated cost of the records and skipped blocks so far
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
//
// Reading past bad blocks (see readOCF) spends the same budget: the
// records decoded in a block that then turns out bad stay counted though
// they are dropped, and each skipped block adds its decompressed size or,
// if it did not decompress, the most its codec could have expanded it to
// (codecExpansion). So reading past bad blocks costs no more than the
// budget of a file of its size allows: a small file reads past some
// fifteen bad 16 KB deflate blocks (16.25 MiB each), a large one past
// about one such block in eight, before the budget ends reading.
const (
	minDecodedBudget   = 256 << 20
	decodedPerFileByte = 128
	recordCost         = 256
	valueCost          = 48
)

// codecExpansion is how many times its size a block's data can expand to
// under each codec, as blockCodec.decode bounds it (see expansionLimit):
// what a block that failed to decompress may have cost.
var codecExpansion = map[string]int{"null": 1, "deflate": 1032, "snappy": 22, "zstandard": 32768}

// errOverBudget ends the reading of a file whose records (and skipped
// blocks) passed its budget: never a block to skip.
var errOverBudget = errors.New("a compression bomb, or a file too big to read whole")

// SkippedBlock is a bad block of a container file that reading
// (ReadOCFRecords, LoadOCF) went past: its records are dropped whole (none
// of a bad block is kept) and reading went on at the next sync marker.
type SkippedBlock struct {
	// File is the path of the file read.
	File string
	// Block is the block's index in the file, from 0; a skipped stretch
	// counts as one block.
	Block int
	// Offset is the byte offset of the block's start in the file; Resume,
	// that of where reading went on: just after the block's sync marker
	// if its framing (sizes and marker) held, else just after the next
	// sync marker found, or the file's size if none follows. When the
	// block's own marker is damaged, the next block goes with it.
	Offset, Resume int
	// Records is the record count the block's header claims, all lost; -1
	// if its header has no count to read (cut short, or negative).
	Records int64
	// Reason says what is wrong with the block, with the byte concerned.
	Reason string
}

// String describes the block, without its file (which errors name
// already).
func (s SkippedBlock) String() string {
	lost := "an unknown number of records (its header gives no count)"
	if s.Records >= 0 {
		lost = fmt.Sprintf("the %d records its header claims", s.Records)
	}
	return fmt.Sprintf("block %d at byte %d: %s; skipped bytes %d to %d with %s", s.Block, s.Offset, s.Reason, s.Offset, s.Resume, lost)
}

// readOCF reads every record of an Object Container File with the file's
// own schema, keeping hamba's generic form and the re-encoded payload,
// and reads past bad blocks.
//
// The header's schema is parsed with ParseSchemaLenient: invalid defaults,
// which archives written by other tools carry and which do not affect
// reading, are dropped with a warning. A bad block (its header cut short
// or with a negative count or size, a size beyond the file, a sync marker
// that does not match, data that does not decompress, a record that does
// not decode, too many records for its data, bytes left over) is dropped
// whole, records and all, and recorded in the file's skipped blocks with
// what is wrong and where; reading goes on just after its sync marker
// when its framing held (only its data was bad), else just after the next
// sync marker found searching forward from the end of its count and size
// (bytes.Index, linear in what it searches). Each search starts inside
// the bad block and ends where reading resumes, so the stretches searched
// never overlap and finding the markers reads the file at most once
// however many blocks are bad. Errors, which say where: a bad header
// (magic, schema, codec), a file with no records left (none, or all its
// blocks bad: the error names the first bad block), and the budget (see
// decodedPerFileByte), which the skipped blocks spend too.
func readOCF(path string) (*ocfFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("open alert file: %w", err)
	}
	return parseOCF(path, data)
}

// parseOCF is readOCF on the file's content; path names it in errors and
// skipped blocks.
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
		// next is 0 if the block's framing (sizes, sync marker) is bad.
		b, next, err := h.readBlock(data, pos)
		work := 0
		if err == nil {
			if work, err = out.addBlock(b, codec); err == nil {
				pos = next
				continue
			}
		}
		if errors.Is(err, errOverBudget) {
			return nil, fmt.Errorf("read alert file %s: block %d at byte %d: %w", path, bi, pos, err)
		}
		if out.cost += work; out.cost > out.budget {
			return nil, fmt.Errorf("read alert file %s: block %d at byte %d: %w; reading past it, %w",
				path, bi, pos, err, out.overBudget("the records and bad blocks so far"))
		}
		skip := h.skipBlock(path, data, pos, next, bi, err)
		out.skipped = append(out.skipped, skip)
		pos = skip.Resume
	}
	if len(out.generic) == 0 {
		if len(out.skipped) > 0 {
			return nil, fmt.Errorf("read alert file %s: %w: bad blocks skipped: %d, the first: %s", path, errNoRecords, len(out.skipped), out.skipped[0])
		}
		return nil, fmt.Errorf("read alert file %s: %w", path, errNoRecords)
	}
	return out, nil
}

// skipBlock describes the bad block of file path at pos, block bi, which
// failed with err, and where reading goes on: at next, the block's own end, if its
// framing held (next > 0); else just after the first sync marker from the
// end of its count and size (as far as they read: its own marker cannot
// start before), or at the end of the file if no marker follows.
func (h *ocfHeader) skipBlock(path string, data []byte, pos, next, bi int, err error) SkippedBlock {
	s := SkippedBlock{File: path, Block: bi, Offset: pos, Resume: next, Records: -1, Reason: err.Error()}
	r := binReader{buf: data, pos: pos}
	if n := r.readLong(); r.err == nil {
		if n >= 0 {
			s.Records = n
		}
		r.readLong()
	}
	if next == 0 {
		s.Resume = len(data)
		if i := bytes.Index(data[r.pos:], h.sync[:]); i >= 0 {
			s.Resume = r.pos + i + ocfSyncSize
		}
	}
	return s
}

// overBudget is the error of a file whose reading passed its budget after
// what.
func (f *ocfFile) overBudget(what string) error {
	return fmt.Errorf("%s would take over %d MiB in memory, the most allowed for a file of %d bytes (%d times its size, at least %d MiB): %w",
		what, f.budget>>20, f.size, decodedPerFileByte, minDecodedBudget>>20, errOverBudget)
}

// addBlock decompresses a block and adds its records: all of them, or
// none with an error. work is the size of the block's decompressed data
// or, if it did not decompress, the most its codec allows: what the
// block cost beyond its records, for the budget if it is skipped.
func (f *ocfFile) addBlock(b ocfBlock, codec *blockCodec) (work int, err error) {
	if b.count == 0 {
		return 0, nil
	}
	raw, err := codec.decode(b.data)
	if err != nil {
		return expansionLimit(len(b.data), codecExpansion[codec.name]), err
	}
	// Records of a schema that may take no bytes (e.g. only nulls): bound
	// their number as the decoder bounds empty array items.
	if f.plan.minSize == 0 && b.count > maxEmptyItems {
		return len(raw), fmt.Errorf("%d records of a schema that may take no bytes: more than %d", b.count, maxEmptyItems)
	}
	if f.plan.minSize > 0 && b.count > int64(len(raw)/f.plan.minSize) {
		return len(raw), fmt.Errorf("%d records cannot fit in the block's %d bytes of data", b.count, len(raw))
	}
	// The block's records, added to the file's only once all have read.
	var generic []map[string]any
	var encoded [][]byte
	first := len(f.generic) // the file's index of the block's first record
	r := binReader{buf: raw}
	for i := int64(0); i < b.count; i++ {
		start, values := r.pos, r.values
		r.skip(f.plan)
		if r.err != nil {
			return len(raw), fmt.Errorf("record %d of the block (record %d of the file), in the block's data: %w", i, first+int(i), r.err)
		}
		f.cost += recordCost + valueCost*(r.values-values) + 2*(r.pos-start)
		if f.cost > f.budget {
			return len(raw), f.overBudget(fmt.Sprintf("record %d of the block (record %d of the file): the records so far", i, first+int(i)))
		}
		// Not api.Unmarshal: it returns no error for a record cut short
		// (io.EOF), with what it read so far.
		var v any
		f.reader.Reset(raw[start:r.pos])
		f.reader.ReadVal(f.schema, &v)
		if err := f.reader.Error; err != nil {
			return len(raw), fmt.Errorf("record %d of the block (record %d of the file): %w", i, first+int(i), err)
		}
		rec, ok := v.(map[string]any)
		if !ok {
			return len(raw), fmt.Errorf("record %d of the block decoded to %T, want a record", i, v)
		}
		enc, err := f.api.Marshal(f.schema, rec)
		if err != nil {
			return len(raw), fmt.Errorf("re-encode record %d of the file: %w", first+int(i), err)
		}
		generic = append(generic, rec)
		encoded = append(encoded, enc)
	}
	if r.remaining() != 0 {
		return len(raw), fmt.Errorf("%d bytes of the block's data left after its %d records", r.remaining(), b.count)
	}
	f.generic = append(f.generic, generic...)
	f.encoded = append(f.encoded, encoded...)
	return len(raw), nil
}

var errNoRecords = errors.New("the file holds no records")

// ReadOCFRecords reads an Avro Object Container File, e.g. a file of real
// Rubin alerts, and returns its schema with every record in the normalised
// form of Decode, exactly as a filter would see it live (the records go
// through the same encoder and decoder as wire messages), the invalid
// defaults of the file's schema that were ignored (see
// ParseSchemaLenient) and the bad blocks read past, in file order, for
// the caller to report. A bad block is skipped whole, with its records,
// and reading goes on at the next sync marker (see readOCF); a bad
// header, a file with no records left and a file over its memory budget
// are errors.
func ReadOCFRecords(path string) (avro.Schema, []map[string]any, []SchemaWarning, []SkippedBlock, error) {
	f, err := readOCF(path)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	recs, err := f.records(path)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return f.schema, recs, f.warnings, f.skipped, nil
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
