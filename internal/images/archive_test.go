package images

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// outerEntry is one entry of a docker-save archive.
type outerEntry struct {
	hdr  *tar.Header
	data []byte
}

// readTar returns the entries of a tar stream in order.
func readTar(t *testing.T, data []byte) []outerEntry {
	t.Helper()
	var out []outerEntry
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read %s: %v", h.Name, err)
		}
		out = append(out, outerEntry{h, b})
	}
}

func entryMap(entries []outerEntry) map[string]outerEntry {
	m := map[string]outerEntry{}
	for _, e := range entries {
		m[e.hdr.Name] = e
	}
	return m
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func testImage(t *testing.T) Image {
	t.Helper()
	src := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(src, []byte("host file content\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Image{
		RepoTags: []string{"example/test:dev", "localhost:5000/example/test:v1"},
		Config: Config{
			Entrypoint: []string{"/app"},
			Cmd:        []string{"help"},
			Env:        []string{"PATH=/bin", "A=b"},
			WorkingDir: "/work",
		},
		Layers: []Layer{
			{Comment: "base", Entries: []Entry{
				Dir("/tmp", 0o1777),
				File("/etc/motd", 0, []byte("hello\n")),
				Symlink("/bin/sh", "/bin/busybox"),
				File("/bin/busybox", 0o755, []byte("#!fake\n")),
			}},
			{Comment: "app", Entries: []Entry{
				HostFile("/app", 0o755, src),
				File("/a/very/deep/path/with/a/name/longer/than/one/hundred/characters/so/that/the/tar/writer/needs/pax/records/file.txt", 0o644, []byte("x")),
			}},
		},
	}
}

func TestWriteLayout(t *testing.T) {
	img := testImage(t)
	var buf bytes.Buffer
	id, err := Write(&buf, img)
	if err != nil {
		t.Fatal(err)
	}
	entries := readTar(t, buf.Bytes())
	var names []string
	for _, e := range entries {
		names = append(names, e.hdr.Name)
		if !e.hdr.ModTime.Equal(ModTime) || e.hdr.Uid != 0 || e.hdr.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d, want %v 0 0", e.hdr.Name, e.hdr.ModTime, e.hdr.Uid, e.hdr.Gid, ModTime)
		}
	}
	if len(names) < 3 || names[0] != "manifest.json" || names[1] != "repositories" || names[2] != strings.TrimPrefix(id, "sha256:")+".json" {
		t.Fatalf("archive starts %q, want manifest.json, repositories, <id>.json", names)
	}
	m := entryMap(entries)

	// The ID is the sha256 of the config.
	configBytes := m[names[2]].data
	if got := "sha256:" + sha(configBytes); got != id {
		t.Fatalf("Write returned %s, config hashes to %s", id, got)
	}
	var cfg struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Config       Config `json:"config"`
		RootFS       struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
		History []struct {
			CreatedBy string `json:"created_by"`
		} `json:"history"`
	}
	if err := json.Unmarshal(configBytes, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "amd64" || cfg.OS != "linux" || cfg.RootFS.Type != "layers" {
		t.Errorf("config: %s/%s rootfs %q", cfg.OS, cfg.Architecture, cfg.RootFS.Type)
	}
	if !slices.Equal(cfg.Config.Entrypoint, img.Config.Entrypoint) || !slices.Equal(cfg.Config.Cmd, img.Config.Cmd) ||
		!slices.Equal(cfg.Config.Env, img.Config.Env) || cfg.Config.WorkingDir != "/work" {
		t.Errorf("config.config = %+v, want %+v", cfg.Config, img.Config)
	}
	if len(cfg.History) != 2 || cfg.History[0].CreatedBy != "base" || cfg.History[1].CreatedBy != "app" {
		t.Errorf("history = %+v", cfg.History)
	}
	if strings.Contains(string(configBytes), `"created"`) {
		t.Errorf("config has a created time although Image.Created is zero: %s", configBytes)
	}

	// manifest.json names the config and the layers, whose sha256 are the diff ids.
	var manifest []manifestEntry
	if err := json.Unmarshal(m["manifest.json"].data, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || manifest[0].Config != names[2] || !slices.Equal(manifest[0].RepoTags, img.RepoTags) {
		t.Fatalf("manifest = %+v", manifest)
	}
	if len(manifest[0].Layers) != 2 || len(cfg.RootFS.DiffIDs) != 2 {
		t.Fatalf("manifest layers %v, diff ids %v", manifest[0].Layers, cfg.RootFS.DiffIDs)
	}
	var layers [][]outerEntry
	for i, lp := range manifest[0].Layers {
		le, ok := m[lp]
		if !ok {
			t.Fatalf("layer %s not in the archive", lp)
		}
		if got := "sha256:" + sha(le.data); got != cfg.RootFS.DiffIDs[i] || lp != sha(le.data)+"/layer.tar" {
			t.Errorf("layer %d: path %s, sha256 %s, diff id %s", i, lp, got, cfg.RootFS.DiffIDs[i])
		}
		layers = append(layers, readTar(t, le.data))
	}

	// repositories: repo -> tag -> top layer.
	var repos map[string]map[string]string
	if err := json.Unmarshal(m["repositories"].data, &repos); err != nil {
		t.Fatal(err)
	}
	top := strings.TrimSuffix(manifest[0].Layers[1], "/layer.tar")
	if repos["example/test"]["dev"] != top || repos["localhost:5000/example/test"]["v1"] != top {
		t.Errorf("repositories = %v, want both tags -> %s", repos, top)
	}

	// Layer 0: parents added, sorted, modes, symlink.
	var l0 []string
	for _, e := range layers[0] {
		l0 = append(l0, e.hdr.Name)
		if !e.hdr.ModTime.Equal(ModTime) || e.hdr.Uid != 0 || e.hdr.Gid != 0 {
			t.Errorf("layer entry %s: mtime %v uid %d gid %d", e.hdr.Name, e.hdr.ModTime, e.hdr.Uid, e.hdr.Gid)
		}
	}
	want := []string{"bin/", "bin/busybox", "bin/sh", "etc/", "etc/motd", "tmp/"}
	if !slices.Equal(l0, want) {
		t.Errorf("layer 0 entries %q, want %q", l0, want)
	}
	l0m := entryMap(layers[0])
	checks := []struct {
		name string
		typ  byte
		mode int64
	}{
		{"bin/", tar.TypeDir, 0o755}, {"bin/busybox", tar.TypeReg, 0o755}, {"bin/sh", tar.TypeSymlink, 0o777},
		{"etc/motd", tar.TypeReg, 0o644}, {"tmp/", tar.TypeDir, 0o1777},
	}
	for _, c := range checks {
		h := l0m[c.name].hdr
		if h.Typeflag != c.typ || h.Mode != c.mode {
			t.Errorf("%s: type %c mode %#o, want %c %#o", c.name, h.Typeflag, h.Mode, c.typ, c.mode)
		}
	}
	if l0m["bin/sh"].hdr.Linkname != "/bin/busybox" || string(l0m["etc/motd"].data) != "hello\n" {
		t.Errorf("symlink -> %q, motd %q", l0m["bin/sh"].hdr.Linkname, l0m["etc/motd"].data)
	}
	l1m := entryMap(layers[1])
	if string(l1m["app"].data) != "host file content\n" || l1m["app"].hdr.Mode != 0o755 {
		t.Errorf("host file: %q mode %#o", l1m["app"].data, l1m["app"].hdr.Mode)
	}
	if _, ok := l1m["a/very/deep/path/with/a/name/longer/than/one/hundred/characters/so/that/the/tar/writer/needs/pax/records/file.txt"]; !ok {
		t.Errorf("long path missing from layer 1: %v", slices.Sorted(maps.Keys(l1m)))
	}
}

func TestWriteDeterministic(t *testing.T) {
	img := testImage(t)
	var a, b bytes.Buffer
	idA, err := Write(&a, img)
	if err != nil {
		t.Fatal(err)
	}
	// Same content, entries listed in another order.
	shuffled := img
	shuffled.Layers = slices.Clone(img.Layers)
	shuffled.Layers[0].Entries = slices.Clone(img.Layers[0].Entries)
	slices.Reverse(shuffled.Layers[0].Entries)
	idB, err := Write(&b, shuffled)
	if err != nil {
		t.Fatal(err)
	}
	if idA != idB || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("same inputs gave different archives: %s vs %s", idA, idB)
	}
	// A one-byte change in a file changes the ID; so does a mode change.
	changed := img
	changed.Layers = slices.Clone(img.Layers)
	changed.Layers[0].Entries = slices.Clone(img.Layers[0].Entries)
	changed.Layers[0].Entries[1] = File("/etc/motd", 0, []byte("hellO\n"))
	idC, err := Write(io.Discard, changed)
	if err != nil {
		t.Fatal(err)
	}
	changed.Layers[0].Entries[1] = File("/etc/motd", 0o600, []byte("hello\n"))
	idD, err := Write(io.Discard, changed)
	if err != nil {
		t.Fatal(err)
	}
	if idC == idA || idD == idA || idC == idD {
		t.Errorf("IDs %s %s %s should all differ", idA, idC, idD)
	}
}

func TestWriteFileAndReadBack(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "img.tar")
	img := testImage(t)
	id, err := WriteFile(file, img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadArchiveFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id || !slices.Equal(got[0].RepoTags, img.RepoTags) {
		t.Fatalf("ReadArchiveFile = %+v, want ID %s tags %v", got, id, img.RepoTags)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestReadArchiveAnyOrder reads an archive whose manifest comes last, as
// `docker save` may write it, with a "./" prefix on names.
func TestReadArchiveAnyOrder(t *testing.T) {
	var src bytes.Buffer
	id, err := Write(&src, testImage(t))
	if err != nil {
		t.Fatal(err)
	}
	entries := readTar(t, src.Bytes())
	slices.Reverse(entries)
	var dst bytes.Buffer
	tw := tar.NewWriter(&dst)
	for _, e := range entries {
		h := *e.hdr
		h.Name = "./" + h.Name
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := ReadArchive(&dst)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != id {
		t.Fatalf("ReadArchive = %+v, want ID %s", got, id)
	}
}

func TestReadArchiveErrors(t *testing.T) {
	var empty bytes.Buffer
	tw := tar.NewWriter(&empty)
	_ = tw.WriteHeader(&tar.Header{Name: "x", Mode: 0o644, Size: 1})
	_, _ = tw.Write([]byte("x"))
	_ = tw.Close()
	if _, err := ReadArchive(&empty); err == nil || !strings.Contains(err.Error(), "no manifest.json") {
		t.Errorf("archive without manifest: err = %v", err)
	}

	var missing bytes.Buffer
	tw = tar.NewWriter(&missing)
	m := []byte(`[{"Config":"abc.json","RepoTags":["a:b"],"Layers":[]}]`)
	_ = tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(m))})
	_, _ = tw.Write(m)
	_ = tw.Close()
	if _, err := ReadArchive(&missing); err == nil || !strings.Contains(err.Error(), "abc.json") {
		t.Errorf("archive without its config: err = %v", err)
	}
	if _, err := ReadArchive(strings.NewReader("not a tar file at all, not even close.........")); err == nil {
		t.Error("garbage: no error")
	}
}

func TestWriteRejects(t *testing.T) {
	cases := map[string]Image{
		"no tags":           {Layers: []Layer{{Entries: []Entry{File("/a", 0, nil)}}}},
		"bad tag":           {RepoTags: []string{"notag"}},
		"relative path":     {RepoTags: []string{"a:b"}, Layers: []Layer{{Entries: []Entry{File("a", 0, nil)}}}},
		"unclean path":      {RepoTags: []string{"a:b"}, Layers: []Layer{{Entries: []Entry{File("/a/../b", 0, nil)}}}},
		"root":              {RepoTags: []string{"a:b"}, Layers: []Layer{{Entries: []Entry{Dir("/", 0)}}}},
		"duplicate":         {RepoTags: []string{"a:b"}, Layers: []Layer{{Entries: []Entry{File("/a", 0, nil), Dir("/a", 0)}}}},
		"file as parent":    {RepoTags: []string{"a:b"}, Layers: []Layer{{Entries: []Entry{File("/a", 0, nil), File("/a/b", 0, nil)}}}},
		"symlink no target": {RepoTags: []string{"a:b"}, Layers: []Layer{{Entries: []Entry{{Path: "/a", Kind: KindSymlink}}}}},
		"mode bits":         {RepoTags: []string{"a:b"}, Layers: []Layer{{Entries: []Entry{File("/a", 0o10644, nil)}}}},
		"missing source":    {RepoTags: []string{"a:b"}, Layers: []Layer{{Entries: []Entry{HostFile("/a", 0, "/nonexistent/file")}}}},
		"source is a dir":   {RepoTags: []string{"a:b"}, Layers: []Layer{{Entries: []Entry{HostFile("/a", 0, "/")}}}},
	}
	for name, img := range cases {
		if _, err := Write(io.Discard, img); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseLddLine(t *testing.T) {
	cases := []struct {
		line, want string
		err        bool
	}{
		{"\tlinux-vdso.so.1 (0x00007ffd6b9f2000)", "", false},
		{"\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f0e8f623000)", "/lib/x86_64-linux-gnu/libz.so.1", false},
		{"\t/lib64/ld-linux-x86-64.so.2 (0x00007f0e8f852000)", "/lib64/ld-linux-x86-64.so.2", false},
		{"\tlibjvm.so => not found", "", true},
		{"", "", false},
	}
	for _, c := range cases {
		got, err := parseLddLine(c.line)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("parseLddLine(%q) = %q, %v; want %q, error %v", c.line, got, err, c.want, c.err)
		}
	}
}

func TestCheckStatic(t *testing.T) {
	if err := CheckStatic("/bin/ls"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("CheckStatic(/bin/ls) = %v, want dynamically linked", err)
	}
	for _, bb := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(bb); err == nil {
			if err := CheckStatic(bb); err != nil {
				t.Errorf("CheckStatic(%s) = %v (busybox-static should be static)", bb, err)
			}
			break
		}
	}
	if err := CheckStatic("/etc/passwd"); err == nil {
		t.Error("CheckStatic(/etc/passwd): no error")
	}
}

func TestIsLinuxAmd64Native(t *testing.T) {
	yes := []string{"linux/amd64/libzstd-jni-1.5.6-10.so", "org/xerial/snappy/native/Linux/x86_64/libsnappyjava.so",
		"net/jpountz/util/linux/amd64/liblz4-java.so"}
	no := []string{"linux/aarch64/libzstd-jni.so", "org/xerial/snappy/native/Linux-Alpine/x86_64/libsnappyjava.so",
		"darwin/x86_64/libzstd-jni.dylib", "linux/amd64/README", "linux/musl-x86_64/lib.so"}
	for _, n := range yes {
		if !isLinuxAmd64Native(n) {
			t.Errorf("%s: not recognised", n)
		}
	}
	for _, n := range no {
		if isLinuxAmd64Native(n) {
			t.Errorf("%s: wrongly recognised", n)
		}
	}
}
