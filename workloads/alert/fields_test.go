package alert

import "testing"

func TestDecodeWithFieldsBuildsOnlyThose(t *testing.T) {
	g := NewGenerator(3, 64)
	reg := NewRegistry(SyntheticSchema())
	full := NewDecoder(reg)
	part := NewDecoder(reg, WithFields("diaSource", "diaSourceId"))
	for i := range 200 {
		payload, truth, err := g.Alert(AppendWire(nil, SchemaID(SyntheticSchema()), nil), 5, i)
		if err != nil {
			t.Fatal(err)
		}
		all, _, err := full.DecodeMessage(payload)
		if err != nil {
			t.Fatal(err)
		}
		some, _, err := part.DecodeMessage(payload)
		if err != nil {
			t.Fatalf("alert %d: %v", i, err)
		}
		if len(some) != 2 {
			t.Fatalf("alert %d: built %d top-level fields, want 2: %v", i, len(some), keys(some))
		}
		if snr, _ := Lookup(some, "diaSource.snr"); snr != all["diaSource"].(map[string]any)["snr"] {
			t.Fatalf("alert %d: snr %v, full decode %v", i, snr, all["diaSource"].(map[string]any)["snr"])
		}
		if some["diaSourceId"] != truth.DiaSourceID {
			t.Fatalf("alert %d: id %v, want %d", i, some["diaSourceId"], truth.DiaSourceID)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// BenchmarkDecodeDiaSourceOnly decodes what the default filter reads.
func BenchmarkDecodeDiaSourceOnly(b *testing.B) {
	for _, size := range []struct {
		name   string
		cutout int
	}{{"small", 0}, {"80KB", DefaultCutoutBytes}} {
		b.Run(size.name, func(b *testing.B) {
			msg, _, err := NewGenerator(1, size.cutout).Alert(AppendWire(nil, SchemaID(SyntheticSchema()), nil), 7, 3)
			if err != nil {
				b.Fatal(err)
			}
			d := NewDecoder(NewRegistry(SyntheticSchema()), WithoutBytes(), WithFields("diaSource", "diaSourceId"))
			b.SetBytes(int64(len(msg)))
			for b.Loop() {
				if _, _, err := d.DecodeMessage(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
