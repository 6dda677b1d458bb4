package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ModTime is the modification time of every file in every archive written
// here, so that the same inputs always give byte-identical archives.
var ModTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Kind is the type of an Entry.
type Kind uint8

// Entry kinds.
const (
	KindFile Kind = iota
	KindDir
	KindSymlink
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDir:
		return "directory"
	case KindSymlink:
		return "symlink"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Entry is one file, directory or symlink of a layer. Every entry is owned by
// root (uid/gid 0) and has ModTime.
type Entry struct {
	// Path is the absolute slash-separated path in the image, e.g. "/bin/sh".
	Path string
	Kind Kind
	// Mode holds the permission bits, including setuid (0o4000), setgid
	// (0o2000) and sticky (0o1000). Zero means 0o644 for a file and 0o755
	// for a directory; ignored for symlinks.
	Mode int64
	// Data is a file's content when Source is empty.
	Data []byte
	// Source is a host file whose content is copied (symlinks followed).
	Source string
	// Target is a symlink's target, as stored (absolute or relative).
	Target string
}

// Dir returns a directory entry.
func Dir(p string, mode int64) Entry { return Entry{Path: p, Kind: KindDir, Mode: mode} }

// File returns a file entry with the given content.
func File(p string, mode int64, data []byte) Entry {
	return Entry{Path: p, Kind: KindFile, Mode: mode, Data: data}
}

// HostFile returns a file entry whose content is read from the host file src
// when the archive is written.
func HostFile(p string, mode int64, src string) Entry {
	return Entry{Path: p, Kind: KindFile, Mode: mode, Source: src}
}

// Symlink returns a symlink entry p -> target.
func Symlink(p, target string) Entry { return Entry{Path: p, Kind: KindSymlink, Target: target} }

// Layer is one filesystem layer of an image.
type Layer struct {
	// Comment is shown by `docker history` (the history's created_by).
	Comment string
	Entries []Entry
}

// Config is the runtime part of an image config (the "config" object of the
// OCI/Docker image config; field names as Docker writes them).
type Config struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// Image is an image to write: linux/amd64, the given layers bottom first.
type Image struct {
	// RepoTags are "repository:tag" names, e.g. "minibroker/kafka:dev".
	RepoTags []string
	Config   Config
	Layers   []Layer
	// Created is the image's creation time; zero leaves it out of the
	// config (and so out of the image ID).
	Created time.Time
}

// imageConfig is the image config JSON; its sha256 is the image ID.
type imageConfig struct {
	Architecture string     `json:"architecture"`
	OS           string     `json:"os"`
	Created      *time.Time `json:"created,omitempty"`
	Config       Config     `json:"config"`
	RootFS       rootFS     `json:"rootfs"`
	History      []history  `json:"history,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type history struct {
	Created   *time.Time `json:"created,omitempty"`
	CreatedBy string     `json:"created_by,omitempty"`
	Comment   string     `json:"comment,omitempty"`
}

// layerInfo is a layer prepared for writing.
type layerInfo struct {
	entries []Entry // validated, with parents, sorted
	digest  string  // hex sha256 of the uncompressed layer tar (the diff id)
	size    int64
}

// WriteFile writes img as a docker-save archive to the file path (through a
// temporary file in the same directory, renamed on success) and returns the
// image ID, "sha256:<hex>".
func WriteFile(file string, img Image) (string, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	id, err := Write(f, img)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	return id, os.Rename(tmp, file)
}

// Write writes img to w as a docker-save archive and returns the image ID,
// "sha256:<hex>" of the config. The archive holds, in this order:
// manifest.json, repositories, <id>.json (the config), and <diffid>/layer.tar
// for each layer; a reader can get the ID and tags from the first entries.
//
// Host files are read twice (once to compute each layer's diff id, once to
// write it); a file that changes in between is an error.
func Write(w io.Writer, img Image) (string, error) {
	if len(img.RepoTags) == 0 {
		return "", errors.New("images: no RepoTags")
	}
	for _, tag := range img.RepoTags {
		if _, _, err := splitRepoTag(tag); err != nil {
			return "", err
		}
	}
	layers := make([]layerInfo, len(img.Layers))
	for i, l := range img.Layers {
		entries, err := prepareEntries(l.Entries)
		if err != nil {
			return "", fmt.Errorf("images: layer %d (%s): %w", i, l.Comment, err)
		}
		h := sha256.New()
		cw := &countWriter{w: h}
		if err := writeLayer(cw, entries); err != nil {
			return "", fmt.Errorf("images: layer %d (%s): %w", i, l.Comment, err)
		}
		layers[i] = layerInfo{entries: entries, digest: hex.EncodeToString(h.Sum(nil)), size: cw.n}
	}

	cfg := imageConfig{Architecture: "amd64", OS: "linux", Config: img.Config, RootFS: rootFS{Type: "layers", DiffIDs: []string{}}}
	if !img.Created.IsZero() {
		created := img.Created.UTC()
		cfg.Created = &created
	}
	for i, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, "sha256:"+l.digest)
		cfg.History = append(cfg.History, history{Created: cfg.Created, CreatedBy: img.Layers[i].Comment,
			Comment: "minibroker internal/images"})
	}
	configJSON, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(configJSON)
	id := hex.EncodeToString(sum[:])

	manifest := []manifestEntry{{Config: id + ".json", RepoTags: img.RepoTags}}
	for _, l := range layers {
		manifest[0].Layers = append(manifest[0].Layers, l.digest+"/layer.tar")
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return "", err
	}
	// repositories: the legacy index, repository -> tag -> top layer id.
	repos := map[string]map[string]string{}
	if len(layers) > 0 {
		top := layers[len(layers)-1].digest
		for _, t := range img.RepoTags {
			repo, tag, _ := splitRepoTag(t)
			if repos[repo] == nil {
				repos[repo] = map[string]string{}
			}
			repos[repo][tag] = top
		}
	}
	reposJSON, err := json.Marshal(repos)
	if err != nil {
		return "", err
	}

	tw := tar.NewWriter(w)
	put := func(name string, data []byte) error {
		if err := tw.WriteHeader(fileHeader(name, 0o644, int64(len(data)))); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put("manifest.json", manifestJSON); err != nil {
		return "", err
	}
	if err := put("repositories", reposJSON); err != nil {
		return "", err
	}
	if err := put(id+".json", configJSON); err != nil {
		return "", err
	}
	written := map[string]bool{}
	for i, l := range layers {
		if written[l.digest] {
			continue
		}
		written[l.digest] = true
		if err := tw.WriteHeader(dirHeader(l.digest+"/", 0o755)); err != nil {
			return "", err
		}
		if err := put(l.digest+"/VERSION", []byte("1.0")); err != nil {
			return "", err
		}
		if err := tw.WriteHeader(fileHeader(l.digest+"/layer.tar", 0o644, l.size)); err != nil {
			return "", err
		}
		h := sha256.New()
		if err := writeLayer(io.MultiWriter(tw, h), l.entries); err != nil {
			return "", fmt.Errorf("images: layer %d (%s): %w", i, img.Layers[i].Comment, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != l.digest {
			return "", fmt.Errorf("images: layer %d (%s) changed while the archive was written (a host file changed)",
				i, img.Layers[i].Comment)
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return "sha256:" + id, nil
}

// splitRepoTag splits "repo:tag" (the tag after the last colon that is not
// part of a registry host:port).
func splitRepoTag(s string) (repo, tag string, err error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 || strings.Contains(s[i+1:], "/") {
		return "", "", fmt.Errorf("images: repo tag %q is not of the form repository:tag", s)
	}
	return s[:i], s[i+1:], nil
}

// prepareEntries validates entries, adds missing parent directories (0o755)
// and returns them sorted by path, parents first.
func prepareEntries(in []Entry) ([]Entry, error) {
	byPath := make(map[string]Entry, len(in))
	for _, e := range in {
		p := e.Path
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
			return nil, fmt.Errorf("%s path %q is not a clean absolute path other than /", e.Kind, p)
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("%s: listed twice", p)
		}
		switch e.Kind {
		case KindFile:
			if e.Source != "" && e.Data != nil {
				return nil, fmt.Errorf("%s: both Data and Source set", p)
			}
			if e.Mode == 0 {
				e.Mode = 0o644
			}
		case KindDir:
			if e.Mode == 0 {
				e.Mode = 0o755
			}
		case KindSymlink:
			if e.Target == "" {
				return nil, fmt.Errorf("%s: symlink without a target", p)
			}
			e.Mode = 0o777
		default:
			return nil, fmt.Errorf("%s: unknown kind %d", p, e.Kind)
		}
		if e.Mode&^0o7777 != 0 {
			return nil, fmt.Errorf("%s: mode %#o has bits outside 0o7777", p, e.Mode)
		}
		byPath[p] = e
	}
	for p := range byPath {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			parent, ok := byPath[dir]
			if !ok {
				byPath[dir] = Dir(dir, 0o755)
				continue
			}
			if parent.Kind != KindDir {
				return nil, fmt.Errorf("%s: parent %s is a %s", p, dir, parent.Kind)
			}
		}
	}
	out := make([]Entry, 0, len(byPath))
	for _, e := range byPath {
		out = append(out, e)
	}
	// Plain byte order puts every directory before everything below it,
	// since a path is a prefix of its descendants.
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// writeLayer writes the layer tar of prepared entries to w.
func writeLayer(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		name := strings.TrimPrefix(e.Path, "/")
		switch e.Kind {
		case KindDir:
			if err := tw.WriteHeader(dirHeader(name+"/", e.Mode)); err != nil {
				return err
			}
		case KindSymlink:
			h := fileHeader(name, 0o777, 0)
			h.Typeflag = tar.TypeSymlink
			h.Linkname = e.Target
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		case KindFile:
			if err := writeFile(tw, name, e); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, name string, e Entry) error {
	if e.Source == "" {
		if err := tw.WriteHeader(fileHeader(name, e.Mode, int64(len(e.Data)))); err != nil {
			return err
		}
		_, err := tw.Write(e.Data)
		return err
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: source %s is not a regular file", e.Path, e.Source)
	}
	if err := tw.WriteHeader(fileHeader(name, e.Mode, st.Size())); err != nil {
		return err
	}
	if n, err := io.CopyN(tw, f, st.Size()); err != nil {
		return fmt.Errorf("%s: copy %s (%d of %d bytes): %w", e.Path, e.Source, n, st.Size(), err)
	}
	return nil
}

func fileHeader(name string, mode, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size, ModTime: ModTime}
}

func dirHeader(name string, mode int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: ModTime}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
