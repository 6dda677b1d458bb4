package alert

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hamba/avro/v2"
)

// CanonicalForm returns the Parsing Canonical Form of s, as the Avro
// specification defines it and as Java Avro's SchemaNormalization.toParsingForm
// and fastavro's to_parsing_canonical_form write it: primitives as bare names,
// named types by full name, only the attributes that affect parsing (name,
// type, fields, symbols, items, values, size) in that order, each named type
// defined at its first use. Unlike hamba/avro's Schema.String it drops
// logicalType (and a decimal's precision and scale), which do not change the
// binary encoding.
func CanonicalForm(s avro.Schema) string {
	var b strings.Builder
	writeCanonical(&b, s, map[string]bool{})
	return b.String()
}

func writeCanonical(b *strings.Builder, s avro.Schema, defined map[string]bool) {
	if ref, ok := s.(*avro.RefSchema); ok {
		s = ref.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		if defined[n.FullName()] {
			b.WriteString(strconv.Quote(n.FullName()))
			return
		}
		defined[n.FullName()] = true
	}
	switch t := s.(type) {
	case *avro.RecordSchema:
		fmt.Fprintf(b, `{"name":%s,"type":%s,"fields":[`, quoteJSON(t.FullName()), quoteJSON(string(t.Type())))
		for i, f := range t.Fields() {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(b, `{"name":%s,"type":`, quoteJSON(f.Name()))
			writeCanonical(b, f.Type(), defined)
			b.WriteByte('}')
		}
		b.WriteString("]}")
	case *avro.EnumSchema:
		fmt.Fprintf(b, `{"name":%s,"type":"enum","symbols":[`, quoteJSON(t.FullName()))
		for i, sym := range t.Symbols() {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(quoteJSON(sym))
		}
		b.WriteString("]}")
	case *avro.FixedSchema:
		fmt.Fprintf(b, `{"name":%s,"type":"fixed","size":%d}`, quoteJSON(t.FullName()), t.Size())
	case *avro.ArraySchema:
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, t.Items(), defined)
		b.WriteByte('}')
	case *avro.MapSchema:
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, t.Values(), defined)
		b.WriteByte('}')
	case *avro.UnionSchema:
		b.WriteByte('[')
		for i, u := range t.Types() {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, u, defined)
		}
		b.WriteByte(']')
	default:
		// Primitives (and null); a logical type over one is its primitive.
		b.WriteString(quoteJSON(string(s.Type())))
	}
}

func quoteJSON(s string) string {
	out, _ := json.Marshal(s) // a string always marshals
	return string(out)
}

// crc64Avro is the table of the Rabin fingerprint that the Avro
// specification calls CRC-64-AVRO.
var crc64Avro = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (crc64Empty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

const crc64Empty = 0xc15d213aa4d7a795

// Fingerprint64 returns the CRC-64-AVRO fingerprint of s's Parsing
// Canonical Form: the value of Java Avro's
// SchemaNormalization.parsingFingerprint64 (as an unsigned number), and the
// number whose little-endian bytes fastavro's fingerprint(...,
// "CRC-64-AVRO") prints in hex.
func Fingerprint64(s avro.Schema) uint64 {
	fp := uint64(crc64Empty)
	for _, c := range []byte(CanonicalForm(s)) {
		fp = (fp >> 8) ^ crc64Avro[byte(fp)^c]
	}
	return fp
}

// rubinName matches the full name of Rubin's alert schema,
// lsst.vMAJOR_MINOR.alert (its parts, lsst.v11_0.diaSource..., are never
// registered alone).
var rubinName = regexp.MustCompile(`^lsst\.v([0-9]{1,2})_([0-9]{1,2})\.alert$`)

// RubinID returns the id under which Rubin registers its alert schema
// lsst.vMAJOR_MINOR.alert: MAJOR*100+MINOR (lsst.v11_0.alert is 1100), the
// ids that Rubin's alert stream and its Python packages
// (lsst-alert-packet) use. ok is false for any other schema.
func RubinID(s avro.Schema) (id uint32, ok bool) {
	n, named := s.(avro.NamedSchema)
	if !named {
		return 0, false
	}
	m := rubinName.FindStringSubmatch(n.FullName())
	if m == nil {
		return 0, false
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major == 0 && minor == 0 {
		return 0, false
	}
	return uint32(major*100 + minor), true
}
