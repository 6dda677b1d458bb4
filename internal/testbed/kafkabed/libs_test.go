package kafkabed

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLibsDirFromEnv(t *testing.T) {
	empty := t.TempDir()
	full := t.TempDir()
	if err := os.WriteFile(filepath.Join(full, "kafka_2.13-4.3.1.jar"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, env, wantErr string
	}{
		{name: "jars present", env: full},
		{name: "no jars", env: empty, wantErr: "make kafka"},
		{name: "missing dir", env: filepath.Join(empty, "nope"), wantErr: "make kafka"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvLibs, tc.env)
			dir, err := LibsDir()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || dir != tc.env {
				t.Fatalf("LibsDir() = %q, %v; want %q", dir, err, tc.env)
			}
		})
	}
}

func TestLibsDirDefaultsToRepoCache(t *testing.T) {
	t.Setenv(EnvLibs, "")
	dir, err := LibsDir()
	want, _ := filepath.Abs(filepath.Join("..", "..", "..", ".cache", "kafka", "libs"))
	if err != nil {
		// Jars not fetched: the error must still name the repo cache path.
		if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "make kafka") {
			t.Fatalf("err = %v; want it to name %s and `make kafka`", err, want)
		}
		return
	}
	if dir != want {
		t.Fatalf("LibsDir() = %q, want %q", dir, want)
	}
}
