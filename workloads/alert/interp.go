package alert

import "bytes"

// value decodes one value of n into its normalised Go form: records and maps
// map[string]any, arrays []any, unions the branch value (nil for null), int
// and long int64, float and double float64, bytes and fixed []byte (copied),
// string string, enum the symbol string, boolean bool.
func (r *binReader) value(n *node) any {
	switch n.kind {
	case kNull:
		return nil
	case kBool:
		b := r.readRaw(1)
		if r.err != nil {
			return nil
		}
		if b[0] > 1 {
			r.fail("invalid boolean byte 0x%02x", b[0])
			return nil
		}
		return b[0] == 1
	case kInt:
		return r.readInt()
	case kLong:
		return r.readLong()
	case kFloat:
		return r.readFloat()
	case kDouble:
		return r.readDouble()
	case kString:
		b := r.readLenPrefixed()
		if r.err != nil {
			return nil
		}
		return string(b)
	case kBytes:
		b := r.readLenPrefixed()
		if r.err != nil || r.skipBytes {
			return nil
		}
		return bytes.Clone(b)
	case kFixed:
		b := r.readRaw(n.size)
		if r.err != nil || r.skipBytes {
			return nil
		}
		return bytes.Clone(b)
	case kEnum:
		i := r.readInt()
		if r.err != nil {
			return nil
		}
		if i < 0 || i >= int64(len(n.symbols)) {
			r.fail("enum %s index %d out of range [0,%d)", n.name, i, len(n.symbols))
			return nil
		}
		return n.symbols[i]
	case kRecord:
		return r.record(n)
	case kArray:
		return r.array(n)
	case kMap:
		return r.mapValue(n)
	case kUnion:
		i := r.readLong()
		if r.err != nil {
			return nil
		}
		if i < 0 || i >= int64(len(n.branches)) {
			r.fail("union branch %d out of range [0,%d)", i, len(n.branches))
			return nil
		}
		if !r.enter() {
			return nil
		}
		v := r.value(n.branches[i])
		r.leave()
		return v
	default:
		r.fail("unsupported avro type %q", n.name)
		return nil
	}
}

func (r *binReader) record(n *node) any {
	if !r.enter() {
		return nil
	}
	defer r.leave()
	m := make(map[string]any, len(n.fields))
	top := r.depth == 1 && r.fields != nil
	for i := range n.fields {
		f := &n.fields[i]
		if top && !r.fields[f.name] {
			r.skip(f.node) // a top-level field no filter reads
			if r.err != nil {
				return nil
			}
			continue
		}
		v := r.value(f.node)
		if r.err != nil {
			return nil
		}
		m[f.name] = v
	}
	return m
}

func (r *binReader) array(n *node) any {
	if !r.enter() {
		return nil
	}
	defer r.leave()
	var out []any
	for {
		c := r.blockCount(n.items, false)
		if r.err != nil {
			return nil
		}
		if c == 0 {
			break
		}
		if out == nil {
			out = make([]any, 0, c)
		}
		for range c {
			v := r.value(n.items)
			if r.err != nil {
				return nil
			}
			out = append(out, v)
		}
	}
	if out == nil {
		out = []any{}
	}
	return out
}

func (r *binReader) mapValue(n *node) any {
	if !r.enter() {
		return nil
	}
	defer r.leave()
	m := map[string]any{}
	for {
		c := r.blockCount(n.items, true)
		if r.err != nil {
			return nil
		}
		if c == 0 {
			break
		}
		for range c {
			k := r.readLenPrefixed()
			if r.err != nil {
				return nil
			}
			v := r.value(n.items)
			if r.err != nil {
				return nil
			}
			m[string(k)] = v
		}
	}
	return m
}

// skip advances over one value of n without building it.
func (r *binReader) skip(n *node) {
	r.values++
	switch n.kind {
	case kNull:
	case kBool:
		r.readRaw(1)
	case kInt, kLong, kEnum:
		r.readLong()
	case kFloat:
		r.readRaw(4)
	case kDouble:
		r.readRaw(8)
	case kString, kBytes:
		r.readLenPrefixed()
	case kFixed:
		r.readRaw(n.size)
	case kRecord:
		if !r.enter() {
			return
		}
		for i := range n.fields {
			r.skip(n.fields[i].node)
			if r.err != nil {
				return
			}
		}
		r.leave()
	case kArray, kMap:
		if !r.enter() {
			return
		}
		for {
			c := r.blockCount(n.items, n.kind == kMap)
			if r.err != nil || c == 0 {
				break
			}
			for range c {
				if n.kind == kMap {
					r.readLenPrefixed()
				}
				r.skip(n.items)
				if r.err != nil {
					return
				}
			}
		}
		r.leave()
	case kUnion:
		i := r.readLong()
		if r.err != nil {
			return
		}
		if i < 0 || i >= int64(len(n.branches)) {
			r.fail("union branch %d out of range [0,%d)", i, len(n.branches))
			return
		}
		if !r.enter() {
			return
		}
		r.skip(n.branches[i])
		r.leave()
	default:
		r.fail("unsupported avro type %q", n.name)
	}
}
