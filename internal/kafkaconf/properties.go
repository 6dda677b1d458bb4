package kafkaconf

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MiB is one mebibyte, the unit most size defaults here are expressed in.
const MiB = 1 << 20

// DefaultMessageMaxBytes is the largest record batch the brokers accept and the
// largest request the mirror producer sends. Alerts are up to ~80 KB each, but
// producers batch several MB, so the Kafka default (~1 MiB) is far too small.
const DefaultMessageMaxBytes = 16 * MiB

// Properties is a flat Java-properties document.
type Properties map[string]string

// merge copies every entry of src into p, overwriting existing keys.
func (p Properties) merge(src map[string]string) {
	for k, v := range src {
		p[k] = v
	}
}

// Render returns p as Java .properties text: one "key=value" line per entry,
// sorted by key, keys and values escaped, preceded by a fixed header comment.
// The result is deterministic and suitable for content hashing.
func (p Properties) Render(header string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)

	var b strings.Builder
	for _, line := range strings.Split(header, "\n") {
		if line == "" {
			continue
		}
		b.WriteString("# ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	for _, k := range keys {
		b.WriteString(escape(k, true))
		b.WriteByte('=')
		b.WriteString(escape(p[k], false))
		b.WriteByte('\n')
	}
	return b.String()
}

// escape applies java.util.Properties escaping. Keys additionally escape the
// separators (space, '=', ':') and comment markers; values only need a leading
// space escaped. Backslashes and control characters are escaped in both, so a
// regex such as `alerts\..*` survives the round trip. Any other white space
// (a vertical tab, a no-break space...) that starts or ends a key or value
// is escaped too, since readers trim it (kclient.ParseProperties trims all
// of Unicode's), and bytes that are not UTF-8 are copied as they are.
func escape(s string, key bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\f':
			b.WriteString(`\f`)
		case ' ':
			if key || i == 0 || i+size == len(s) {
				b.WriteString(`\ `)
			} else {
				b.WriteRune(r)
			}
		case '=', ':', '#', '!':
			if key {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		default:
			if unicode.IsSpace(r) && (i == 0 || i+size == len(s)) {
				b.WriteByte('\\')
			}
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
