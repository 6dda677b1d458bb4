package alert

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Limits that keep garbage input from using unbounded time or memory.
const (
	// maxDepth bounds the nesting of records, arrays, maps and unions.
	maxDepth = 256
	// maxEmptyItems bounds the number of array or map items whose encoding
	// may take zero bytes (e.g. nulls), which a bogus block count could
	// otherwise make arbitrarily many.
	maxEmptyItems = 1 << 20
)

// binReader reads Avro binary encoding from a byte slice. The first error
// sticks in err; later reads return zero values, so callers check err at
// loop boundaries only.
type binReader struct {
	buf        []byte
	pos        int
	err        error
	depth      int
	fields     map[string]bool // top-level fields to build; nil builds all
	emptyItems int
	values     int  // values skipped, for estimates of their decoded size
	skipBytes  bool // leave bytes and fixed values nil (WithoutBytes)
}

func (r *binReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: %s", r.pos, fmt.Sprintf(format, args...))
	}
}

func (r *binReader) remaining() int { return len(r.buf) - r.pos }

// readLong reads a zig-zag varint.
func (r *binReader) readLong() int64 {
	var u uint64
	for shift := uint(0); ; shift += 7 {
		if r.pos >= len(r.buf) {
			r.fail("truncated varint")
			return 0
		}
		b := r.buf[r.pos]
		r.pos++
		if shift == 63 && b > 1 {
			r.fail("varint overflows 64 bits")
			return 0
		}
		u |= uint64(b&0x7f) << shift
		if b < 0x80 {
			break
		}
	}
	return int64(u>>1) ^ -int64(u&1)
}

func (r *binReader) readInt() int64 {
	v := r.readLong()
	if v < math.MinInt32 || v > math.MaxInt32 {
		r.fail("int value %d out of 32-bit range", v)
		return 0
	}
	return v
}

func (r *binReader) readFloat() float64 {
	if r.remaining() < 4 {
		r.fail("truncated float")
		r.pos = len(r.buf)
		return 0
	}
	v := math.Float32frombits(binary.LittleEndian.Uint32(r.buf[r.pos:]))
	r.pos += 4
	return float64(v)
}

func (r *binReader) readDouble() float64 {
	if r.remaining() < 8 {
		r.fail("truncated double")
		r.pos = len(r.buf)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.buf[r.pos:]))
	r.pos += 8
	return v
}

// readRaw returns the next n bytes, aliasing buf.
func (r *binReader) readRaw(n int) []byte {
	if n < 0 || n > r.remaining() {
		r.fail("length %d exceeds the %d remaining bytes", n, r.remaining())
		r.pos = len(r.buf)
		return nil
	}
	b := r.buf[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return b
}

// readLenPrefixed returns the next length-prefixed bytes, aliasing buf.
func (r *binReader) readLenPrefixed() []byte {
	n := r.readLong()
	if r.err != nil {
		return nil
	}
	if n < 0 || n > int64(r.remaining()) {
		r.fail("length %d exceeds the %d remaining bytes", n, r.remaining())
		r.pos = len(r.buf)
		return nil
	}
	return r.readRaw(int(n))
}

// blockCount reads an array or map block header and returns its item count
// (0 at the end), checking it against what the remaining bytes can hold.
func (r *binReader) blockCount(item *node, pairs bool) int {
	n := r.readLong()
	if r.err != nil {
		return 0
	}
	if n < 0 {
		if n == math.MinInt64 {
			r.fail("invalid block count")
			return 0
		}
		n = -n
		size := r.readLong() // byte size of the block, unused
		if r.err == nil && size < 0 {
			r.fail("negative block size %d", size)
		}
		if r.err != nil {
			return 0
		}
	}
	minItem := item.minSize
	if pairs {
		minItem++ // map keys take at least one byte
	}
	if minItem > 0 {
		if n > int64(r.remaining()/minItem) {
			r.fail("block of %d items cannot fit in the %d remaining bytes", n, r.remaining())
			return 0
		}
	} else {
		if n > int64(maxEmptyItems-r.emptyItems) {
			r.fail("more than %d zero-size items", maxEmptyItems)
			return 0
		}
		r.emptyItems += int(n)
	}
	return int(n)
}

func (r *binReader) enter() bool {
	r.depth++
	if r.depth > maxDepth {
		r.fail("nesting deeper than %d", maxDepth)
		return false
	}
	return true
}

func (r *binReader) leave() { r.depth-- }
