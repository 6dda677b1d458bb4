package swarmctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// archive is a `docker save` file and the images it holds.
type archive struct {
	path   string
	images []images.ArchiveImage
}

// tags lists the names of all images in the archive.
func (a archive) tags() []string {
	var out []string
	for _, img := range a.images {
		out = append(out, img.RepoTags...)
	}
	return out
}

func readArchives(paths []string) ([]archive, error) {
	var out []archive
	for _, p := range paths {
		imgs, err := images.ReadArchiveFile(p)
		if err != nil {
			return nil, fmt.Errorf("image archive: %w", err)
		}
		for _, img := range imgs {
			if len(img.RepoTags) == 0 {
				return nil, fmt.Errorf("image archive %s: image %s has no name; save it by name (docker save NAME:TAG)", p, img.ID)
			}
		}
		out = append(out, archive{path: p, images: imgs})
	}
	return out, nil
}

// archivesFor picks the archives holding an image that a node of role
// runs.
func archivesFor(all []archive, role, kafka, workloads string) []archive {
	need := swarmspec.ImagesOfRole(role, kafka, workloads)
	var out []archive
	for _, a := range all {
		if slices.ContainsFunc(a.tags(), func(t string) bool { return slices.Contains(need, t) }) {
			out = append(out, a)
		}
	}
	return out
}

// checkArchivesUsed rejects an archive that holds none of the images the
// swarm runs: loading it would be wasted and is most likely a typo.
func checkArchivesUsed(all []archive, kafka, workloads string) error {
	for _, a := range all {
		if !slices.ContainsFunc(a.tags(), func(t string) bool { return t == kafka || t == workloads }) {
			return fmt.Errorf("image archive %s holds %v, but the swarm runs %s and %s; set kafka_image or workloads_image to one of its tags", a.path, a.tags(), kafka, workloads)
		}
	}
	return nil
}

// loadArchive loads an archive onto one engine unless the engine already
// has each of its images under the archive's names. It returns the ids of
// the images it loaded.
func loadArchive(ctx context.Context, log *slog.Logger, cli *client.Client, node string, a archive) ([]string, error) {
	missing, err := missingImages(ctx, cli, node, a)
	if err != nil || len(missing) == 0 {
		return nil, err
	}
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	log.InfoContext(ctx, "loading image archive", "node", node, "archive", a.path, "tags", a.tags())
	resp, err := cli.ImageLoad(ctx, f, client.ImageLoadWithQuiet(true))
	if err != nil {
		return nil, fmt.Errorf("load %s onto %s: %w", a.path, node, err)
	}
	defer resp.Body.Close()
	if err := drainMessages(resp.Body); err != nil {
		return nil, fmt.Errorf("load %s onto %s: %w", a.path, node, err)
	}
	if still, err := missingImages(ctx, cli, node, a); err != nil || len(still) > 0 {
		return nil, fmt.Errorf("after loading %s onto %s, %v are still not there (%v)", a.path, node, still, err)
	}
	return missing, nil
}

// missingImages lists the ids of the archive's images that the engine
// lacks under their names.
func missingImages(ctx context.Context, cli *client.Client, node string, a archive) ([]string, error) {
	var missing []string
	for _, img := range a.images {
		for _, t := range img.RepoTags {
			got, err := cli.ImageInspect(ctx, t)
			if err != nil && !errdefs.IsNotFound(err) {
				return nil, fmt.Errorf("inspect image %s on %s: %w", t, node, err)
			}
			if err != nil || got.ID != img.ID {
				missing = append(missing, img.ID)
				break
			}
		}
	}
	return missing, nil
}

// removeImages removes images a Form loaded; a failure is only logged, as
// an image left behind blocks nothing.
func removeImages(ctx context.Context, log *slog.Logger, cli *client.Client, addr string, ids []string) {
	for _, id := range ids {
		if _, err := cli.ImageRemove(ctx, id, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil && !client.IsErrNotFound(err) {
			log.WarnContext(ctx, "could not remove loaded image", "host", addr, "image", id, "error", err.Error())
		}
	}
}

// drainMessages reads a Docker JSON message stream to its end and returns
// the first error message in it.
func drainMessages(r io.Reader) error {
	dec := json.NewDecoder(r)
	var first error
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err != nil {
			if err != io.EOF {
				_, _ = io.Copy(io.Discard, r)
			}
			return first
		}
		if m.Error != "" && first == nil {
			first = fmt.Errorf("%s", m.Error)
		}
	}
}
