package report

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteBetweenMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	doc := "# Doc\n\n<!-- a:begin -->\nold\n<!-- a:end -->\n\n<!-- b:begin -->\n<!-- b:end -->\ntail\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteBetweenMarkers(path, "<!-- b:begin -->", "<!-- b:end -->", "new b"); err != nil {
		t.Fatal(err)
	}
	if err := WriteBetweenMarkers(path, "<!-- a:begin -->", "<!-- a:end -->", "new a\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# Doc\n\n<!-- a:begin -->\nnew a\n<!-- a:end -->\n\n<!-- b:begin -->\nnew b\n<!-- b:end -->\ntail\n"
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if err := WriteBetweenMarkers(path, "<!-- c:begin -->", "<!-- c:end -->", "x"); err == nil {
		t.Error("no error for missing markers")
	}
}
