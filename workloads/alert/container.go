package alert

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/zstd"
)

// The Avro Object Container File format (Avro specification, "Object
// Container Files"): the magic bytes, a header map of metadata (avro.schema,
// avro.codec) and a random 16-byte sync marker; then blocks, each a record
// count, a byte size, that many bytes of records (compressed with the
// codec) and the sync marker again.
//
// The file is read whole into memory (its records are kept anyway), and no
// count or size read from it makes an allocation larger than the bytes
// present to back it: a block size beyond the end of the file is an error
// with its offset, not a buffer; decompressed blocks grow only as data
// actually decompresses, up to maxBlockBytes, and a size a codec header
// claims is checked against what the compressed bytes can expand to.
const (
	ocfMagic    = "Obj\x01"
	ocfSyncSize = 16
	// maxBlockBytes bounds the decompressed size of one block. Writers cut
	// blocks at 16 KB (fastavro) to 64 KB (Java) by default; alerts are
	// ~80 KB each.
	maxBlockBytes = 64 << 20
)

// ocfHeader is the header of a container file.
type ocfHeader struct {
	schema string
	codec  string
	sync   [ocfSyncSize]byte
	end    int // offset of the first block
}

// readOCFHeader parses the header at the start of data.
func readOCFHeader(data []byte) (*ocfHeader, error) {
	if len(data) < len(ocfMagic) || string(data[:len(ocfMagic)]) != ocfMagic {
		return nil, fmt.Errorf("it does not start with the magic bytes %q", ocfMagic)
	}
	r := binReader{buf: data, pos: len(ocfMagic)}
	meta := map[string][]byte{}
	for {
		n := r.readLong()
		if r.err != nil {
			return nil, fmt.Errorf("header metadata: %w", r.err)
		}
		if n == 0 {
			break
		}
		if n < 0 {
			if n == math.MinInt64 {
				r.fail("invalid map block count")
				return nil, fmt.Errorf("header metadata: %w", r.err)
			}
			n = -n
			r.readLong() // the block's byte size, unused
		}
		if n > int64(r.remaining()/2) { // a key and a value take a byte each at least
			r.fail("map block of %d entries cannot fit in the %d remaining bytes", n, r.remaining())
		}
		for i := int64(0); i < n && r.err == nil; i++ {
			k := r.readLenPrefixed()
			v := r.readLenPrefixed()
			meta[string(k)] = v
		}
		if r.err != nil {
			return nil, fmt.Errorf("header metadata: %w", r.err)
		}
	}
	sync := r.readRaw(ocfSyncSize)
	if r.err != nil {
		return nil, fmt.Errorf("header sync marker: %w", r.err)
	}
	h := &ocfHeader{codec: "null", end: r.pos}
	copy(h.sync[:], sync)
	schema, ok := meta["avro.schema"]
	if !ok {
		return nil, errors.New("the header has no avro.schema")
	}
	h.schema = string(schema)
	if c := meta["avro.codec"]; len(c) > 0 {
		h.codec = string(c)
	}
	return h, nil
}

// ocfBlock is one block of a container file, its data still compressed.
type ocfBlock struct {
	at    int   // offset of the block in the file
	count int64 // records in the block
	data  []byte
}

// readBlock reads the block at offset pos of data and returns it with the
// offset of the next one. Errors give the file offsets concerned.
func (h *ocfHeader) readBlock(data []byte, pos int) (ocfBlock, int, error) {
	b := ocfBlock{at: pos}
	r := binReader{buf: data, pos: pos}
	b.count = r.readLong()
	size := r.readLong()
	if r.err != nil {
		return b, 0, fmt.Errorf("block header: %w (the file ends at byte %d: truncated?)", r.err, len(data))
	}
	if b.count < 0 {
		return b, 0, fmt.Errorf("block header: negative record count %d", b.count)
	}
	if size < 0 {
		return b, 0, fmt.Errorf("block header: negative block size %d", size)
	}
	if size > int64(r.remaining()) {
		return b, 0, fmt.Errorf("the block's size, %d bytes from byte %d, exceeds the %d bytes left in the file (truncated or corrupt)", size, r.pos, r.remaining())
	}
	b.data = r.readRaw(int(size))
	if r.remaining() < ocfSyncSize {
		return b, 0, fmt.Errorf("truncated: the file ends at byte %d, inside the block's sync marker (from byte %d)", len(data), r.pos)
	}
	if !bytes.Equal(data[r.pos:r.pos+ocfSyncSize], h.sync[:]) {
		return b, 0, fmt.Errorf("the sync marker at byte %d does not match the header's (corrupt file)", r.pos)
	}
	return b, r.pos + ocfSyncSize, nil
}

// blockCodec decompresses blocks: the codecs of the Avro specification
// that hamba/avro supports, null, deflate, snappy and zstandard.
type blockCodec struct {
	name string
	zstd *zstd.Decoder
}

func newBlockCodec(name string) (*blockCodec, error) {
	switch name {
	case "null", "deflate", "snappy":
		return &blockCodec{name: name}, nil
	case "zstandard":
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxBlockBytes))
		if err != nil {
			return nil, fmt.Errorf("zstandard decoder: %w", err)
		}
		return &blockCodec{name: name, zstd: d}, nil
	}
	return nil, fmt.Errorf("unsupported codec %q (supported: null, deflate, snappy, zstandard)", name)
}

func (c *blockCodec) close() {
	if c.zstd != nil {
		c.zstd.Close()
	}
}

// Most a block of n compressed bytes can expand to, whatever it claims:
// deflate 1032:1, snappy under 22:1 (a 3-byte copy makes 64 bytes), and
// zstandard 32768:1 (a 4-byte RLE block makes 128 KiB).
func expansionLimit(n, ratio int) int {
	if n > maxBlockBytes/ratio {
		return maxBlockBytes
	}
	return min(maxBlockBytes, n*ratio+1<<17)
}

// decode returns the decompressed data of a block. With the null codec it
// aliases b.
func (c *blockCodec) decode(b []byte) ([]byte, error) {
	switch c.name {
	case "null":
		return b, nil
	case "deflate":
		fr := flate.NewReader(bytes.NewReader(b))
		defer fr.Close()
		out, err := io.ReadAll(io.LimitReader(fr, maxBlockBytes+1))
		if err != nil {
			return nil, fmt.Errorf("deflate data: %w", err)
		}
		if len(out) > maxBlockBytes {
			return nil, fmt.Errorf("deflate data expands to more than %d bytes", maxBlockBytes)
		}
		return out, nil
	case "snappy":
		if len(b) < 5 {
			return nil, fmt.Errorf("snappy data of %d bytes, too short for data and its checksum", len(b))
		}
		body := b[:len(b)-4]
		n, err := snappy.DecodedLen(body)
		if err != nil {
			return nil, fmt.Errorf("snappy data: %w", err)
		}
		if limit := expansionLimit(len(body), 22); n > limit {
			return nil, fmt.Errorf("snappy data of %d bytes claims to expand to %d bytes (at most %d possible or allowed)", len(body), n, limit)
		}
		out, err := snappy.Decode(nil, body)
		if err != nil {
			return nil, fmt.Errorf("snappy data: %w", err)
		}
		if crc32.ChecksumIEEE(out) != binary.BigEndian.Uint32(b[len(b)-4:]) {
			return nil, errors.New("snappy checksum mismatch")
		}
		return out, nil
	case "zstandard":
		var fh zstd.Header
		_ = fh.Decode(b) // a bad frame fails DecodeAll below; a size it claims is checked first
		if fh.HasFCS {
			if limit := expansionLimit(len(b), 32768); fh.FrameContentSize > uint64(limit) {
				return nil, fmt.Errorf("zstandard frame of %d bytes claims to expand to %d bytes (at most %d possible or allowed)", len(b), fh.FrameContentSize, limit)
			}
		}
		out, err := c.zstd.DecodeAll(b, nil)
		if err != nil {
			return nil, fmt.Errorf("zstandard data: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported codec %q", c.name)
}
