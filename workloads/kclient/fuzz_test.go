package kclient

// A fuzz target for librdkafka properties files (issue 13). `go test`
// replays its seeds and the crashers committed under testdata/fuzz/;
// `make fuzz` runs it for a bounded time.

import (
	"maps"
	"strings"
	"testing"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
)

func FuzzParseProperties(f *testing.F) {
	f.Add([]byte(kafkaconf.Properties{"bootstrap.servers": "hub:9092", "sasl.password": `a\b=c`,
		"ssl.ca.pem": "-----BEGIN CERTIFICATE-----\nMIIBxx\n-----END CERTIFICATE-----\n", " odd=key:": " v "}.Render("written by kafkaconf")))
	f.Add([]byte("# c\n! c\n\nsecurity.protocol = SASL_SSL\r\nsasl.mechanism=SCRAM-SHA-512\n"))
	f.Add([]byte(`odd\=key=v` + "\n" + `k=\ lead and trail\ ` + "\n" + `t=a\tb\` + "\n"))
	f.Add([]byte("k=\xc2\\\xa0\n\\\xc2\xa0=\\\v\n"))
	f.Add([]byte("no separator\n"))
	f.Add([]byte("=empty key\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseProperties("fuzz.properties", data)
		if err != nil {
			if got != nil || !strings.Contains(err.Error(), "fuzz.properties line ") {
				t.Fatalf("map %v with error %v", got, err)
			}
			return
		}
		for k := range got {
			if k == "" {
				t.Fatal("an empty key")
			}
		}
		// Written by the project's writer, the settings read the same.
		text := kafkaconf.Properties(got).Render("fuzz")
		again, err := ParseProperties("rendered", []byte(text))
		if err != nil || !maps.Equal(again, got) {
			t.Fatalf("settings %q rendered as\n%s\nread back as %q, %v", got, text, again, err)
		}
	})
}

// White space that ends a value is kept when escaped, as Java keeps it,
// and whatever the project's writer (kafkaconf) writes reads back as it
// was: found by FuzzParseProperties' round trip, which lost a value's
// escaped trailing space, and leading or trailing white space other than
// a plain space (a no-break space, a vertical tab), and turned bytes that
// are not UTF-8 into U+FFFD.
func TestParsePropertiesEscapedSpace(t *testing.T) {
	got, err := ParseProperties("t", []byte("a=b\\ \nc = \\ d\\\t \ne=\xc2\\\xa0\n\\ f\\ =g\nh=i\\\\ \n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "b ", "c": " d\t", "e": "\u00a0", " f ": "g", "h": `i\`}
	if !maps.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	props := kafkaconf.Properties{"k": " v ", "n": "x\u00a0", "\u2003key": "\v", "bin": "\xff\xfe", "t": "\tq\t"}
	text := props.Render("h")
	back, err := ParseProperties("rendered", []byte(text))
	if err != nil || !maps.Equal(back, props) {
		t.Fatalf("%q rendered as\n%s\nread back as %q, %v", props, text, back, err)
	}
}
