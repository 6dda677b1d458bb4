package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Result describes an archive written by a builder.
type Result struct {
	Path     string        // the archive
	ID       string        // image ID, "sha256:<hex>"
	RepoTags []string      // names it loads under
	Size     int64         // archive size in bytes
	Took     time.Duration // build time, compile/jlink included
}

func (r Result) String() string {
	return fmt.Sprintf("%s %v %s (%.1f MB) in %s", r.Path, r.RepoTags, r.ID, float64(r.Size)/1e6, r.Took.Round(100*time.Millisecond))
}

// Logf receives progress messages.
type Logf func(format string, args ...any)

func (l Logf) printf(format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// writeResult writes img to out and describes the archive.
func writeResult(out string, img Image, began time.Time) (Result, error) {
	id, err := WriteFile(out, img)
	if err != nil {
		return Result{}, err
	}
	st, err := os.Stat(out)
	if err != nil {
		return Result{}, err
	}
	return Result{Path: out, ID: id, RepoTags: img.RepoTags, Size: st.Size(), Took: time.Since(began)}, nil
}

// RepoRoot returns the module root: the nearest ancestor of the working
// directory with a go.mod.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", errors.New("images: no go.mod above " + wd)
		}
	}
}

// hostFilesUnder lists dir recursively as entries under prefix in the image:
// directories, regular files (content read at write time, host permission
// bits) and symlinks (targets kept as they are).
func hostFilesUnder(dir, prefix string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		target := prefix
		if rel != "." {
			target = prefix + "/" + filepath.ToSlash(rel)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := int64(info.Mode().Perm())
		switch {
		case d.IsDir():
			out = append(out, Dir(target, perm))
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, Symlink(target, link))
		case info.Mode().IsRegular():
			out = append(out, HostFile(target, perm, p))
		default:
			return fmt.Errorf("images: %s: unsupported file type %s", p, info.Mode().Type())
		}
		return nil
	})
	return out, err
}
