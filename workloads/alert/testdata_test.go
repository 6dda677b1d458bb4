package alert

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hamba/avro/v2"
)

// rubinDir holds the real Rubin alert schema v11 and a real alert file,
// shared by the project outside the repository.
const rubinDir = "../../../shared/data/rubin-alert-v11"

// rubinFile returns the path of a file in rubinDir and fails the test (not
// skips it) if the file is missing.
func rubinFile(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(rubinDir, name)
	if _, err := os.Stat(p); err != nil {
		abs, _ := filepath.Abs(p)
		t.Fatalf("real Rubin test data missing: %v\n"+
			"these tests need the shared data set rubin-alert-v11 at %s "+
			"(shared/data/rubin-alert-v11 next to the repository checkout)", err, abs)
	}
	return p
}

// rubinSchema parses the Rubin v11 alert schema from its .avsc files.
func rubinSchema(t testing.TB) avro.Schema {
	t.Helper()
	var paths []string
	for _, n := range []string{"diaSource", "diaForcedSource", "diaObject", "ssSource", "mpc_orbits", "alert"} {
		paths = append(paths, rubinFile(t, "lsst.v11_0."+n+".avsc"))
	}
	s, err := ParseSchemaFiles(paths...)
	if err != nil {
		t.Fatalf("parse Rubin v11 schema: %v", err)
	}
	return s
}

func fakeAlertPath(t testing.TB) string { return rubinFile(t, "fakeAlert.avro") }
