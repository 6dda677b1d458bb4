package alert

import (
	"testing"

	"github.com/hamba/avro/v2"
)

// BenchmarkGenerate reports alerts/s for small (null cutouts) and
// Rubin-size (~80 KB) synthetic alerts, on one goroutine.
func BenchmarkGenerate(b *testing.B) {
	for _, c := range []struct {
		name string
		cut  int
	}{{"small", 0}, {"80KB", DefaultCutoutBytes}} {
		b.Run(c.name, func(b *testing.B) {
			g := NewGenerator(1, c.cut)
			buf := make([]byte, 0, 100_000)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var err error
				buf, _, err = g.Alert(buf[:0], 1000+int64(i/10000), i%10000)
				if err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.SetBytes(int64(len(buf)))
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
		})
	}
}

// BenchmarkDecode decodes one wire message per iteration through a Decoder,
// with and without WithoutBytes, and hamba's generic decoding for
// reference.
func BenchmarkDecode(b *testing.B) {
	type input struct {
		name    string
		schema  avro.Schema
		payload []byte
	}
	var inputs []input
	for _, c := range []struct {
		name string
		cut  int
	}{{"synthetic-small", 0}, {"synthetic-80KB", DefaultCutoutBytes}} {
		g := NewGenerator(1, c.cut)
		p, _, err := g.Alert(nil, 1000, 42)
		if err != nil {
			b.Fatal(err)
		}
		inputs = append(inputs, input{c.name, g.Schema(), p})
	}
	rp, _, err := LoadOCF(fakeAlertPath(b))
	if err != nil {
		b.Fatal(err)
	}
	p, s, err := rp.Alert(nil, 1, 0, "")
	if err != nil {
		b.Fatal(err)
	}
	inputs = append(inputs, input{"fakeAlert", s, p})

	for _, in := range inputs {
		reg := NewRegistry(in.schema)
		msg := AppendWire(nil, SchemaID(in.schema), in.payload)
		for _, mode := range []struct {
			name string
			opts []DecodeOption
		}{{"", nil}, {"-withoutBytes", []DecodeOption{WithoutBytes()}}} {
			b.Run(in.name+mode.name, func(b *testing.B) {
				dec := NewDecoder(reg, mode.opts...)
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := dec.DecodeMessage(msg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(in.name+"-hambaGeneric", func(b *testing.B) {
			b.SetBytes(int64(len(in.payload)))
			b.ReportAllocs()
			for b.Loop() {
				var v any
				if err := avro.Unmarshal(in.schema, in.payload, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeCompile measures the one-off Decode (compile + decode) of
// a Rubin alert, against which a Decoder's cached plan saves.
func BenchmarkDecodeCompile(b *testing.B) {
	rp, _, err := LoadOCF(fakeAlertPath(b))
	if err != nil {
		b.Fatal(err)
	}
	p, s, _ := rp.Alert(nil, 1, 0, "")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(s, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplayAlert measures producing a replayed Rubin alert with its
// visit rewritten.
func BenchmarkReplayAlert(b *testing.B) {
	rp, _, err := LoadOCF(fakeAlertPath(b))
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf, _, err = rp.Alert(buf[:0], int64(i), i, "")
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}
