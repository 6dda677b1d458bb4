package images

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// CheckStatic returns an error unless file is an ELF executable without a
// program interpreter and without shared-library dependencies.
func CheckStatic(file string) error {
	f, err := elf.Open(file)
	if err != nil {
		return fmt.Errorf("images: %s: %w", file, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			return fmt.Errorf("images: %s is dynamically linked (interpreter %s)", file, strings.TrimRight(string(interp), "\x00"))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("images: %s: %w", file, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("images: %s needs shared libraries %v", file, libs)
	}
	return nil
}

// sharedLibs runs ldd on each file and returns the host paths of the shared
// libraries they need (including the dynamic loader), sorted, leaving out
// those under any of the skip directories. libPath is the LD_LIBRARY_PATH ldd
// resolves with (the JRE's own directories). A library ldd cannot find is an
// error.
func sharedLibs(ctx context.Context, files []string, libPath string, skip ...string) ([]string, error) {
	found := map[string]bool{}
	for _, file := range files {
		cmd := exec.CommandContext(ctx, "ldd", file)
		cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+libPath)
		out, err := cmd.CombinedOutput()
		if bytes.Contains(out, []byte("not a dynamic executable")) || bytes.Contains(out, []byte("statically linked")) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("images: ldd %s: %w\n%s", file, err, out)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			lib, err := parseLddLine(sc.Text())
			if err != nil {
				return nil, fmt.Errorf("images: ldd %s: %w", file, err)
			}
			if lib == "" || underAny(lib, skip) {
				continue
			}
			found[lib] = true
		}
	}
	libs := make([]string, 0, len(found))
	for lib := range found {
		libs = append(libs, lib)
	}
	slices.Sort(libs)
	return libs, nil
}

// parseLddLine returns the library path of one line of ldd output, or "" for
// lines without one (linux-vdso).
//
//	libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f...)
//	/lib64/ld-linux-x86-64.so.2 (0x00007f...)
//	linux-vdso.so.1 (0x00007ffd...)
//	libjvm.so => not found
func parseLddLine(line string) (string, error) {
	line = strings.TrimSpace(line)
	if line == "" {
		return "", nil
	}
	if name, target, ok := strings.Cut(line, " => "); ok {
		target = strings.TrimSpace(target)
		if strings.HasPrefix(target, "not found") {
			return "", fmt.Errorf("%s not found", strings.TrimSpace(name))
		}
		if p, _, _ := strings.Cut(target, " ("); strings.HasPrefix(p, "/") {
			return p, nil
		}
		return "", nil
	}
	if p, _, _ := strings.Cut(line, " ("); strings.HasPrefix(p, "/") {
		return p, nil
	}
	return "", nil
}

func underAny(p string, dirs []string) bool {
	for _, d := range dirs {
		if d != "" && (p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/")) {
			return true
		}
	}
	return false
}

// extractJarNatives extracts the linux/amd64 (glibc) shared libraries bundled
// in the jars (zstd-jni, snappy-java, lz4-java unpack them to /tmp at run
// time) into dir and returns their paths, so that their own dependencies can
// be collected with ldd.
func extractJarNatives(jars []string, dir string) ([]string, error) {
	var out []string
	for _, jar := range jars {
		zr, err := zip.OpenReader(jar)
		if err != nil {
			return nil, fmt.Errorf("images: open %s: %w", jar, err)
		}
		for i, f := range zr.File {
			if !isLinuxAmd64Native(f.Name) {
				continue
			}
			dest := filepath.Join(dir, fmt.Sprintf("%s-%d-%s", filepath.Base(jar), i, filepath.Base(f.Name)))
			if err := extractZipFile(f, dest); err != nil {
				zr.Close()
				return nil, fmt.Errorf("images: extract %s from %s: %w", f.Name, jar, err)
			}
			out = append(out, dest)
		}
		zr.Close()
	}
	return out, nil
}

func isLinuxAmd64Native(name string) bool {
	n := strings.ToLower(name)
	return strings.HasSuffix(n, ".so") && strings.Contains(n, "linux") &&
		(strings.Contains(n, "amd64") || strings.Contains(n, "x86_64") || strings.Contains(n, "x86-64")) &&
		!strings.Contains(n, "musl") && !strings.Contains(n, "alpine")
}

func extractZipFile(f *zip.File, dest string) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	w, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, rc)
	return errors.Join(err, w.Close())
}
