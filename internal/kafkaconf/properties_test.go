package kafkaconf

import (
	"sort"
	"strings"
	"testing"
)

// parse reads the subset of java.util.Properties syntax that Render emits:
// "# comment" lines and "key=value" lines with backslash escapes.
func parse(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := splitUnescaped(line)
		if !ok {
			t.Fatalf("line %q has no unescaped '='", line)
		}
		if _, dup := out[key]; dup {
			t.Fatalf("duplicate key %q", key)
		}
		out[key] = val
	}
	return out
}

func splitUnescaped(line string) (key, val string, ok bool) {
	unescape := map[byte]byte{'n': '\n', 't': '\t', 'r': '\r', 'f': '\f'}
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\' && i+1 < len(line):
			i++
			if m, special := unescape[line[i]]; special {
				b.WriteByte(m)
			} else {
				b.WriteByte(line[i])
			}
		case c == '=' && !ok:
			key, ok = b.String(), true
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return key, b.String(), ok
}

func TestRenderEscapesAndSorts(t *testing.T) {
	tests := []struct {
		name  string
		props Properties
		want  string
	}{
		{
			name:  "sorted plain",
			props: Properties{"b": "2", "a": "1", "c.d": "x,y"},
			want:  "# h\na=1\nb=2\nc.d=x,y\n",
		},
		{
			name:  "backslash in regex value",
			props: Properties{"topics": `alerts\..*`},
			want:  "# h\ntopics=alerts\\\\..*\n",
		},
		{
			name:  "separators in key, leading space in value",
			props: Properties{"a b=c:d": " v w=x"},
			want:  "# h\na\\ b\\=c\\:d=\\ v w=x\n",
		},
		{
			name:  "white space ending a value, other white space starting one, bytes not UTF-8",
			props: Properties{"k": "v ", "n": "\u00a0x\v", "b": "\xff"},
			want:  "# h\nb=\xff\nk=v\\ \nn=\\\u00a0x\\\v\n",
		},
		{
			name:  "arrow key and newline value",
			props: Properties{"hub->mirror.enabled": "true", "k": "l1\nl2"},
			want:  "# h\nhub->mirror.enabled=true\nk=l1\\nl2\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.props.Render("h")
			if got != tc.want {
				t.Fatalf("Render:\n got %q\nwant %q", got, tc.want)
			}
			back := parse(t, got)
			for k, v := range tc.props {
				if back[k] != v {
					t.Errorf("round trip %q: got %q want %q", k, back[k], v)
				}
			}
		})
	}
}

// assertSortedUnique checks the body lines of a rendered file are in key order.
func assertSortedUnique(t *testing.T, text string) {
	t.Helper()
	var keys []string
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if !sort.StringsAreSorted(keys) {
		t.Fatalf("lines not sorted:\n%s", text)
	}
}
