package alert

import (
	"bytes"
	"compress/flate"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// Reading past bad blocks (readOCF, so ReadOCFRecords and LoadOCF): a bad
// block is skipped whole, with a SkippedBlock naming it, and reading goes
// on at the next sync marker.

// rubinBlocks is fakeAlert.avro taken apart: its header (the real Rubin
// v11 schema), its sync marker and its one record, from which blocks of
// records with other diaSourceIds are made.
type rubinBlocks struct {
	hdr, sync, rec []byte
}

func newRubinBlocks(t testing.TB) rubinBlocks {
	t.Helper()
	data := fakeAlertBytes(t)
	h, err := readOCFHeader(data)
	if err != nil {
		t.Fatal(err)
	}
	b, next, err := h.readBlock(data, h.end)
	if err != nil || b.count != 1 || next != len(data) {
		t.Fatalf("fakeAlert.avro: want one block of one record, got %d records, %v", b.count, err)
	}
	return rubinBlocks{hdr: data[:h.end], sync: h.sync[:], rec: b.data}
}

// record returns the real record with its diaSourceId (its first field, a
// long) set to id.
func (rb rubinBlocks) record(t testing.TB, id int64) []byte {
	t.Helper()
	r := binReader{buf: rb.rec}
	r.readLong()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return append(appendVarlong(nil, id), rb.rec[r.pos:]...)
}

// block returns a block of the records with these ids.
func (rb rubinBlocks) block(t testing.TB, ids ...int64) []byte {
	t.Helper()
	var data []byte
	for _, id := range ids {
		data = append(data, rb.record(t, id)...)
	}
	return ocfBlockBytes(int64(len(ids)), int64(len(data)), data, rb.sync)
}

// file returns the header followed by the blocks, and each block's offset.
func (rb rubinBlocks) file(blocks ...[]byte) (data []byte, at []int) {
	data = bytes.Clone(rb.hdr)
	for _, b := range blocks {
		at = append(at, len(data))
		data = append(data, b...)
	}
	return data, at
}

// withHeader returns block (count, size, data, sync marker) with its count
// and size replaced.
func withHeader(t testing.TB, block []byte, count, size int64) []byte {
	t.Helper()
	r := binReader{buf: block}
	r.readLong()
	r.readLong()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return append(ocfBlockBytes(count, size, nil, nil), block[r.pos:]...)
}

// ids returns the diaSourceIds of records.
func ids(t testing.TB, recs []map[string]any) []int64 {
	t.Helper()
	var out []int64
	for _, r := range recs {
		id, err := LookupInt(r, DefaultIDPath)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// readSkipping writes data to a file and reads it through ReadOCFRecords,
// and returns what it read and the bytes it allocated.
func readSkipping(t *testing.T, data []byte) (path string, recs []map[string]any, skipped []SkippedBlock, alloc uint64, err error) {
	t.Helper()
	path = writeTemp(t, data)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, recs, _, skipped, err = ReadOCFRecords(path)
	runtime.ReadMemStats(&after)
	return path, recs, skipped, after.TotalAlloc - before.TotalAlloc, err
}

// A file of seven blocks of the real Rubin record (diaSourceIds 1 to 7),
// one or two of them damaged in each way a block can be: every record of
// the other blocks is read, exactly and in order, the records of a bad
// block are all dropped, and each bad block is named with its offset,
// where reading resumed, its claimed record count and why; LoadOCF, which
// replay loads files with, reads the same.
func TestReadOCFSkipsBadBlocks(t *testing.T) {
	rb := newRubinBlocks(t)
	good := func() [][]byte {
		var bs [][]byte
		for id := int64(1); id <= 7; id++ {
			bs = append(bs, rb.block(t, id))
		}
		return bs
	}
	size := int64(len(rb.record(t, 4)))
	_, at := rb.file(good()...) // the offsets of the undamaged file's blocks
	all := []int64{1, 2, 3, 4, 5, 6, 7}
	without := func(lost ...int64) []int64 {
		return slices.DeleteFunc(slices.Clone(all), func(id int64) bool { return slices.Contains(lost, id) })
	}
	type skip struct {
		block, offset, resume int
		records               int64
		reason                string
	}
	for _, tc := range []struct {
		name   string
		damage func(bs [][]byte) [][]byte
		ids    []int64
		skips  []skip
	}{
		{"block size 100 bytes more", func(bs [][]byte) [][]byte {
			bs[3] = withHeader(t, bs[3], 1, size+100)
			return bs
		}, without(4), []skip{{3, at[3], at[4], 1, fmt.Sprintf("the sync marker at byte %d does not match", at[3]+3+int(size)+100)}}},
		{"block size 2^40", func(bs [][]byte) [][]byte {
			bs[3] = withHeader(t, bs[3], 1, 1<<40)
			return bs
		}, without(4), []skip{{3, at[3], at[4] + 4, 1, "the block's size, 1099511627776 bytes from byte"}}},
		{"negative block size", func(bs [][]byte) [][]byte {
			bs[3] = withHeader(t, bs[3], 1, -8)
			return bs
		}, without(4), []skip{{3, at[3], at[4] - 1, 1, "negative block size -8"}}},
		{"record count 2^40", func(bs [][]byte) [][]byte {
			bs[3] = withHeader(t, bs[3], 1<<40, size)
			return bs
		}, without(4), []skip{{3, at[3], at[4] + 5, 1 << 40, "1099511627776 records cannot fit"}}},
		{"a flipped byte in the block's sync marker", func(bs [][]byte) [][]byte {
			// Its end cannot be told: the next marker found is the next
			// block's, which goes with it.
			bs[3][len(bs[3])-1] ^= 0xff
			return bs
		}, without(4, 5), []skip{{3, at[3], at[5], 1, fmt.Sprintf("the sync marker at byte %d does not match", at[4]-16)}}},
		{"garbage in the block's data", func(bs [][]byte) [][]byte {
			data := bs[3][3 : 3+size]
			for i := range data {
				data[i] = 0xff
			}
			return bs
		}, without(4), []skip{{3, at[3], at[4], 1, "record 0 of the block (record 3 of the file)"}}},
		{"garbage between two blocks", func(bs [][]byte) [][]byte {
			// Read as a block whose count does not read: its stretch ends
			// at the next marker, the next block's.
			bs[4] = append(bytes.Repeat([]byte{0xee}, 50), bs[4]...)
			return bs
		}, without(5), []skip{{4, at[4], at[5] + 50, -1, "block header: at byte"}}},
		{"a block whose last record is cut short", func(bs [][]byte) [][]byte {
			// Its first two records read; the block is dropped whole.
			b := rb.block(t, 41, 42, 43)
			bs[3] = withHeader(t, b[:len(b)-16-20], 3, 3*size-20)
			bs[3] = append(bs[3], rb.sync...)
			return bs
		}, without(4), []skip{{3, at[3], at[3] + 3 + 3*int(size) - 20 + 16, 3, "record 2 of the block (record 5 of the file)"}}},
		{"the file cut short in its last block", func(bs [][]byte) [][]byte {
			bs[6] = bs[6][:len(bs[6])-20]
			return bs
		}, without(7), []skip{{6, at[6], at[6] + len(rb.block(t, 7)) - 20, 1, "exceeds the"}}},
		{"two bad blocks", func(bs [][]byte) [][]byte {
			bs[1] = withHeader(t, bs[1], -1, size)
			bs[5] = withHeader(t, bs[5], 1, math.MaxInt64)
			return bs
		}, without(2, 6), []skip{
			{1, at[1], at[2], -1, "negative record count -1"},
			{5, at[5], at[6] + 8, 1, "exceeds the"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := rb.file(tc.damage(good())...)
			path, recs, skipped, alloc, err := readSkipping(t, data)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(t, recs); !slices.Equal(got, tc.ids) {
				t.Errorf("records %v, want %v", got, tc.ids)
			}
			if len(skipped) != len(tc.skips) {
				t.Fatalf("skipped %v, want %d blocks", skipped, len(tc.skips))
			}
			for i, w := range tc.skips {
				s := skipped[i]
				if s.File != path || s.Block != w.block || s.Offset != w.offset || s.Resume != w.resume || s.Records != w.records || !strings.Contains(s.Reason, w.reason) {
					t.Errorf("skipped block %d: %+v, want block %d at byte %d resuming at %d, %d records, a reason with %q",
						i, s, w.block, w.offset, w.resume, w.records, w.reason)
				}
				if msg := s.String(); !strings.Contains(msg, fmt.Sprintf("block %d at byte %d: ", w.block, w.offset)) ||
					!strings.Contains(msg, fmt.Sprintf("skipped bytes %d to %d", w.offset, w.resume)) {
					t.Errorf("message %q", msg)
				}
			}
			// The real record is estimated at 36 KB decoded: six of them.
			if alloc > 8<<20 {
				t.Errorf("reading the %d-byte file allocated %d bytes", len(data), alloc)
			}
			// LoadOCF skips the same blocks and serves the same records,
			// and lists the blocks of a file given twice once.
			rp, loadSkipped, err := LoadOCF(path, path)
			if err != nil {
				t.Fatalf("LoadOCF: %v", err)
			}
			if !slices.Equal(loadSkipped, skipped) {
				t.Errorf("LoadOCF skipped %+v, ReadOCFRecords %+v", loadSkipped, skipped)
			}
			var served []map[string]any
			for i := range rp.Len() {
				payload, s, err := rp.Alert(nil, 1, i, "")
				if err != nil {
					t.Fatal(err)
				}
				d, err := Decode(s, payload)
				if err != nil {
					t.Fatal(err)
				}
				served = append(served, d)
			}
			if got, want := ids(t, served), append(slices.Clone(tc.ids), tc.ids...); !slices.Equal(got, want) {
				t.Errorf("LoadOCF serves records %v, want %v", got, want)
			}
		})
	}
	// The undamaged file reads whole, with nothing skipped.
	data, _ := rb.file(good()...)
	if _, recs, skipped, _, err := readSkipping(t, data); err != nil || len(skipped) != 0 || !slices.Equal(ids(t, recs), all) {
		t.Fatalf("the undamaged file: %v, skipped %v", err, skipped)
	}
}

// The two crashes of issue 13 (TestReadOCFRealFileBadBlockHeader) read
// past: fakeAlert.avro's one block with its header rewritten leaves no
// records, an error naming the block, its offset and why; the same block
// among good ones is skipped and the others read. Neither allocates much.
func TestReadOCFSkippingRealFileBadBlockHeader(t *testing.T) {
	rb := newRubinBlocks(t)
	size := int64(len(rb.rec))
	for _, tc := range []struct {
		name        string
		count, size int64
		want        string
	}{
		{"size 2^40", 1, 1 << 40, "the block's size, 1099511627776 bytes from byte"},
		{"size 2^63-1", 1, math.MaxInt64, "exceeds the"},
		{"negative size", 1, -8, "negative block size -8"},
		{"size -1", 1, -1, "negative block size -1"},
		{"negative count", -1, size, "negative record count -1"},
		{"count 2^40", 1 << 40, size, "1099511627776 records cannot fit"},
		{"size one short", 1, size - 1, "sync marker"},
		{"size one more", 1, size + 1, "sync marker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			real := ocfBlockBytes(1, size, rb.rec, rb.sync)
			bad := withHeader(t, real, tc.count, tc.size)

			data, at := rb.file(bad)
			path, _, _, alloc, err := readSkipping(t, data)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range []string{path, "no records", "bad blocks skipped: 1", fmt.Sprintf("block 0 at byte %d: ", at[0]), tc.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if alloc > 4<<20 {
				t.Errorf("reading the %d-byte file allocated %d bytes", len(data), alloc)
			}

			data, at = rb.file(real, bad, real)
			_, recs, skipped, alloc, err := readSkipping(t, data)
			if err != nil || len(recs) != 2 || len(skipped) != 1 || skipped[0].Block != 1 || skipped[0].Offset != at[1] ||
				skipped[0].Resume != at[2] || !strings.Contains(skipped[0].Reason, tc.want) {
				t.Fatalf("the block between two good ones: %v; %d records, skipped %+v", err, len(recs), skipped)
			}
			if alloc > 4<<20 {
				t.Errorf("reading the %d-byte file allocated %d bytes", len(data), alloc)
			}
		})
	}
}

// Finding the sync markers reads the file once however many blocks are
// bad: each search starts in the bad block and ends at the marker where
// reading resumes, so the stretches searched, [Offset, Resume) of the
// skipped blocks, follow one another without overlapping. A file of 20,000
// good blocks, 20,000 bad ones of three kinds and a 1 MiB stretch without
// a marker reads whole but for the bad blocks.
func TestReadOCFSkippingIsLinear(t *testing.T) {
	const groups = 20000
	rec := func(i int) []byte { return smallRecord(int64(i), "r") }
	data := ocfHeaderBytes(testSync, "avro.schema", smallSchema)
	block := func(count int64, records ...[]byte) []byte {
		d := bytes.Join(records, nil)
		return ocfBlockBytes(count, int64(len(d)), d, testSync)
	}
	for g := range groups {
		data = append(data, block(2, rec(2*g), rec(2*g+1))...)
		switch g % 3 {
		case 0: // a size too short: the marker is not where it says
			data = append(data, ocfBlockBytes(1, 1, rec(-1), testSync)...)
		case 1: // a record that does not decode (a string longer than the block)
			data = append(data, block(1, appendVarlong(nil, 1), appendVarlong(nil, 100))...)
		case 2: // a negative size
			data = append(data, ocfBlockBytes(1, -1, rec(-1), testSync)...)
		}
		if g == groups/2 {
			data = append(data, ocfBlockBytes(1, 10, make([]byte, 1<<20), testSync)...)
		}
	}
	f, err := parseOCF("big.avro", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.generic) != 2*groups || len(f.skipped) != groups+1 {
		t.Fatalf("%d records and %d skipped blocks, want %d and %d", len(f.generic), len(f.skipped), 2*groups, groups+1)
	}
	recs, err := f.records("big.avro")
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r["a"] != int64(i) {
			t.Fatalf("record %d: %v", i, r)
		}
	}
	searched, end := 0, 0
	for _, s := range f.skipped {
		if s.Offset < end || s.Resume <= s.Offset {
			t.Fatalf("skipped block %+v overlaps the one before, which ended at %d", s, end)
		}
		searched += s.Resume - s.Offset
		end = s.Resume
	}
	if searched > len(data) {
		t.Fatalf("searched %d bytes of a %d-byte file", searched, len(data))
	}
	t.Logf("%d-byte file: %d bytes in skipped blocks", len(data), searched)
}

// The memory budget stays fatal when reading past bad blocks: a
// compression bomb among good blocks is an error, not a block to skip,
// and so are too many bad blocks of compressed data, each counted as what
// its codec could have expanded it to; a few read past.
func TestReadOCFSkippingBudget(t *testing.T) {
	deflate := func(b []byte) []byte {
		var z bytes.Buffer
		fw, err := flate.NewWriter(&z, flate.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(b)
		fw.Close()
		return z.Bytes()
	}
	hdr := ocfHeaderBytes(testSync, "avro.schema", smallSchema, "avro.codec", "deflate")
	good := func(a int64) []byte {
		z := deflate(smallRecord(a, "x"))
		return ocfBlockBytes(1, int64(len(z)), z, testSync)
	}
	// 16 MB of zeros: 8M records {0, ""}.
	const n = 16 << 20
	bomb := deflate(make([]byte, n))
	data := bytes.Join([][]byte{hdr, good(1), ocfBlockBytes(n/2, int64(len(bomb)), bomb, testSync), good(2)}, nil)
	_, _, _, alloc, err := readSkipping(t, data)
	if err == nil || !strings.Contains(err.Error(), "compression bomb") || !strings.Contains(err.Error(), "block 1 at byte") {
		t.Fatalf("a bomb among good blocks: %v", err)
	}
	if alloc > 1<<30 {
		t.Errorf("reading the %d-byte bomb allocated %d MB", len(data), alloc>>20)
	}

	// 16 KB blocks of data that does not inflate, each counted as 16.5 MB:
	// fifteen fit in the 256 MiB budget of a small file, sixteen do not.
	junk := ocfBlockBytes(1, 16<<10, bytes.Repeat([]byte{0xff}, 16<<10), testSync)
	for _, tc := range []struct {
		bad int
		ok  bool
	}{{3, true}, {15, true}, {16, false}} {
		data := append(bytes.Clone(hdr), good(1)...)
		for range tc.bad {
			data = append(data, junk...)
		}
		data = append(data, good(2)...)
		_, recs, skipped, _, err := readSkipping(t, data)
		switch {
		case tc.ok && (err != nil || len(recs) != 2 || len(skipped) != tc.bad):
			t.Errorf("%d bad deflate blocks: %v; %d records, %d skipped", tc.bad, err, len(recs), len(skipped))
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "deflate data") || !strings.Contains(err.Error(), "reading past it, the records and bad blocks so far would take over 256 MiB")):
			t.Errorf("%d bad deflate blocks: %v", tc.bad, err)
		}
	}
}

// What stays an error when reading past bad blocks: a bad header, and a
// file without records.
func TestReadOCFSkippingStillRefuses(t *testing.T) {
	rb := newRubinBlocks(t)
	good, _ := rb.file(rb.block(t, 1))
	flipped := bytes.Clone(good)
	flipped[0] ^= 0xff
	hdrOnly, _ := rb.file()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"bad magic", flipped, "not a valid Avro Object Container File"},
		{"header cut short", good[:100], "not a valid Avro Object Container File"},
		{"schema not JSON", withHeaderSchema(t, good, `{"type":`), "the schema in its header"},
		{"unsupported codec", append(ocfHeaderBytes(testSync, "avro.schema", smallSchema, "avro.codec", "xz"), ocfBlockBytes(0, 0, nil, testSync)...), `unsupported codec "xz"`},
		{"no blocks", hdrOnly, "the file holds no records"},
		{"garbage after the header", append(bytes.Clone(hdrOnly), bytes.Repeat([]byte{0xee}, 1000)...), "no records: bad blocks skipped: 1, the first: block 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _, _, _, err := readSkipping(t, tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v, want one naming the file with %q", err, tc.want)
			}
		})
	}
}
