package images

// This file only needs the standard library: the provider imports it to read
// an archive's image ID and tags and skip `docker load` on a node that
// already has that image.

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
	"strings"
)

// ArchiveImage is one image of a docker-save archive.
type ArchiveImage struct {
	// ID is "sha256:<hex>" of the image config: what `docker image inspect`
	// reports as Id once the archive is loaded.
	ID string
	// RepoTags are the "repository:tag" names the image is loaded under.
	RepoTags []string
	// Config is the config's path inside the archive.
	Config string
}

// manifestEntry is one element of a docker-save manifest.json.
type manifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// maxConfigBytes bounds the archive entries hashed as possible configs when
// the manifest comes after them.
const maxConfigBytes = 16 << 20

// ReadArchiveFile reads the images listed in the docker-save archive at file.
func ReadArchiveFile(file string) ([]ArchiveImage, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	imgs, err := ReadArchive(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return imgs, nil
}

// ReadArchive reads the images listed in a docker-save archive (manifest.json)
// with their IDs, the sha256 of each config file. It reads only as far as it
// must: for archives written by Write, the first three entries. It works for
// archives of `docker save` too, whatever their entry order.
func ReadArchive(r io.Reader) ([]ArchiveImage, error) {
	tr := tar.NewReader(r)
	var manifest []manifestEntry
	haveManifest := false
	digests := map[string]string{} // entry name -> hex sha256
	resolved := func() bool {
		if !haveManifest {
			return false
		}
		for _, m := range manifest {
			if _, ok := digests[cleanName(m.Config)]; !ok {
				return false
			}
		}
		return true
	}
	for !resolved() {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("images: read archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := cleanName(h.Name)
		if name == "manifest.json" {
			data, err := io.ReadAll(io.LimitReader(tr, maxConfigBytes+1))
			if err != nil {
				return nil, fmt.Errorf("images: read manifest.json: %w", err)
			}
			if len(data) > maxConfigBytes {
				return nil, errors.New("images: manifest.json is too large")
			}
			if err := json.Unmarshal(data, &manifest); err != nil {
				return nil, fmt.Errorf("images: parse manifest.json: %w", err)
			}
			haveManifest = true
			continue
		}
		if h.Size > maxConfigBytes || (haveManifest && !wanted(manifest, name)) {
			continue
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			return nil, fmt.Errorf("images: read %s: %w", name, err)
		}
		digests[name] = hex.EncodeToString(sum.Sum(nil))
	}
	if !haveManifest {
		return nil, errors.New("images: no manifest.json in the archive (not a docker-save archive?)")
	}
	out := make([]ArchiveImage, 0, len(manifest))
	for _, m := range manifest {
		d, ok := digests[cleanName(m.Config)]
		if !ok {
			return nil, fmt.Errorf("images: config %q named in manifest.json is not in the archive", m.Config)
		}
		out = append(out, ArchiveImage{ID: "sha256:" + d, RepoTags: m.RepoTags, Config: m.Config})
	}
	return out, nil
}

// wanted reports whether name is a config listed in the manifest.
func wanted(manifest []manifestEntry, name string) bool {
	for _, m := range manifest {
		if cleanName(m.Config) == name {
			return true
		}
	}
	return false
}

// cleanName normalises an archive entry name ("./a//b" -> "a/b").
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}
