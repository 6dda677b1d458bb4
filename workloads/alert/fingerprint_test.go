package alert

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/pyclients"
)

// javaV11Fingerprint31 is the low 31 bits of Java Avro's
// SchemaNormalization.parsingFingerprint64 for lsst.v11_0.alert.
const javaV11Fingerprint31 = 1717888239

// The Parsing Canonical Form and CRC-64-AVRO fingerprint agree with an
// implementation we did not write: fastavro from PyPI (make pyclients).
func TestCanonicalFormAgreesWithFastavro(t *testing.T) {
	python, err := pyclients.Python("../..")
	if err != nil {
		t.Fatal(err)
	}
	syn := filepath.Join(t.TempDir(), "synthetic.avsc")
	if err := os.WriteFile(syn, []byte(SyntheticSchemaJSON()), 0o644); err != nil {
		t.Fatal(err)
	}
	rubin, err := filepath.Abs(rubinFile(t, "lsst.v11_0.alert.avsc"))
	if err != nil {
		t.Fatal(err)
	}
	// load_schema finds the named types of lsst.v11_0.alert.avsc in the
	// files beside it, as Rubin's packages do.
	script := `
import json, sys
from fastavro.schema import load_schema, to_parsing_canonical_form, fingerprint
out = {}
for path in sys.argv[1:]:
    pcf = to_parsing_canonical_form(load_schema(path))
    out[path] = {"pcf": pcf, "fp": int.from_bytes(bytes.fromhex(fingerprint(pcf, "CRC-64-AVRO")), "little")}
print(json.dumps(out))
`
	out, err := exec.Command(python, "-c", script, syn, rubin).Output()
	if err != nil {
		t.Fatalf("fastavro: %v", err)
	}
	var got map[string]struct {
		PCF string `json:"pcf"`
		FP  uint64 `json:"fp"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("fastavro output %q: %v", out, err)
	}
	for path, s := range map[string]struct {
		name   string
		schema func() (string, uint64)
	}{
		syn:   {"synthetic", func() (string, uint64) { return CanonicalForm(SyntheticSchema()), Fingerprint64(SyntheticSchema()) }},
		rubin: {"Rubin v11", func() (string, uint64) { r := rubinSchema(t); return CanonicalForm(r), Fingerprint64(r) }},
	} {
		pcf, fp := s.schema()
		if pcf != got[path].PCF {
			t.Errorf("%s canonical form differs from fastavro's:\nours    %.300s\nfastavro %.300s", s.name, pcf, got[path].PCF)
		}
		if fp != got[path].FP {
			t.Errorf("%s fingerprint %#x, fastavro %#x", s.name, fp, got[path].FP)
		}
	}
	if fp := Fingerprint64(rubinSchema(t)); fp&0x7fffffff != javaV11Fingerprint31 {
		t.Errorf("Rubin v11 fingerprint's low 31 bits %d, Java Avro's %d", fp&0x7fffffff, javaV11Fingerprint31)
	}
	if !strings.Contains(got[rubin].PCF, `"lsst.v11_0.diaSource"`) {
		t.Errorf("fastavro did not resolve the v11 named types: %.200s", got[rubin].PCF)
	}
}
