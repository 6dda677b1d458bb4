package images

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// DefaultWorkloadsTag is the name the workloads image is loaded under.
const DefaultWorkloadsTag = "minibroker/workloads:dev"

// WorkloadsBinary is the minibroker binary's path in the workloads image (its
// Entrypoint).
const WorkloadsBinary = "/minibroker"

// WorkloadsOptions configures BuildWorkloads. Zero values mean the defaults.
type WorkloadsOptions struct {
	Tag      string // default DefaultWorkloadsTag
	RepoRoot string // module root to build in; default RepoRoot()
	Go       string // go command; default "go"
	CC       string // musl C compiler; default "musl-gcc"
	Logf     Logf
}

// BuildWorkloads compiles ./workloads/cmd/minibroker as a static musl binary
// (librdkafka included, through confluent-kafka-go's musl build) and writes
// the image archive to out:
//
//	/minibroker   the binary (Entrypoint ["/minibroker"], Cmd ["help"])
//	/tmp          mode 1777
//	/etc/ssl/certs/ca-certificates.crt   the build host's CA bundle (CABundle)
func BuildWorkloads(ctx context.Context, o WorkloadsOptions, out string) (Result, error) {
	began := time.Now()
	if o.Tag == "" {
		o.Tag = DefaultWorkloadsTag
	}
	if o.Go == "" {
		o.Go = "go"
	}
	if o.CC == "" {
		o.CC = "musl-gcc"
	}
	if o.RepoRoot == "" {
		root, err := RepoRoot()
		if err != nil {
			return Result{}, err
		}
		o.RepoRoot = root
	}
	if _, err := exec.LookPath(o.CC); err != nil {
		return Result{}, fmt.Errorf("images: the workloads image needs a musl C compiler (%s; apt-get install musl-tools): %w", o.CC, err)
	}
	tmp, err := os.MkdirTemp("", "minibroker-workloads-")
	if err != nil {
		return Result{}, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "minibroker")

	// -tags musl selects confluent-kafka-go's bundled musl librdkafka; the
	// external linker links it all statically. -trimpath makes the binary
	// independent of the checkout's path (same sources, same image ID);
	// -s -w drop the symbol tables and DWARF (~10 MB; panics still have
	// stack traces).
	cmd := exec.CommandContext(ctx, o.Go, "build", "-trimpath", "-tags", "musl",
		"-ldflags", `-s -w -linkmode external -extldflags "-static"`,
		"-o", bin, "./workloads/cmd/minibroker")
	cmd.Dir = o.RepoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "CC="+o.CC, "GOOS=linux", "GOARCH=amd64")
	o.Logf.printf("images: building static minibroker with %s", o.CC)
	if outb, err := cmd.CombinedOutput(); err != nil {
		return Result{}, fmt.Errorf("images: go build (musl, static): %w\n%s", err, outb)
	}
	if err := CheckStatic(bin); err != nil {
		return Result{}, err
	}
	if _, err := os.Stat(CABundle); err != nil {
		return Result{}, fmt.Errorf("images: the workloads image carries the host's CA bundle, for upstreams with certificates from public CAs (apt-get install ca-certificates): %w", err)
	}
	img := WorkloadsImage(o.Tag, bin, CABundle)
	return writeResult(out, img, began)
}

// CABundle is where Debian keeps its CA bundle; the workloads image has the
// build host's at the same path, where Go's TLS and librdkafka's
// `ssl.ca.location=probe` look, so that a relay trusts an upstream whose
// certificates come from a public CA without being given one.
const CABundle = "/etc/ssl/certs/ca-certificates.crt"

// WorkloadsImage is the workloads image around a static minibroker binary
// and the host file caBundle (none if "").
func WorkloadsImage(tag, binary, caBundle string) Image {
	entries := []Entry{
		HostFile(WorkloadsBinary, 0o755, binary),
		Dir("/tmp", 0o1777),
	}
	if caBundle != "" {
		entries = append(entries, HostFile(CABundle, 0o644, caBundle))
	}
	return Image{
		RepoTags: []string{tag},
		Config: Config{
			Entrypoint: []string{WorkloadsBinary},
			Cmd:        []string{"help"},
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
		},
		Layers: []Layer{{
			Comment: "static minibroker (musl)",
			Entries: entries,
		}},
	}
}
