package swarmctl

import (
	"slices"
	"strings"
	"testing"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

func TestSpecDiffSeesHandMadeChanges(t *testing.T) {
	want := swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec
	got := swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec
	if d := SpecDiff(want, got); len(d) != 0 {
		t.Fatalf("identical specs differ in %v", d)
	}
	cs := *got.TaskTemplate.ContainerSpec
	cs.Image = "k:1@sha256:abc" // Swarm may pin a digest: not a change
	got.TaskTemplate.ContainerSpec = &cs
	if d := SpecDiff(want, got); len(d) != 0 {
		t.Errorf("digest pinning counted as drift: %v", d)
	}
	cs.Args = []string{"--evil"}
	cs.Env = nil
	n := uint64(3)
	got.Mode.Replicated.Replicas = &n
	if d := SpecDiff(want, got); !slices.Equal(d, []string{"args", "env", "replicas"}) {
		t.Errorf("diff %v", d)
	}
}

func TestArchivesGoWhereTheirImagesRun(t *testing.T) {
	kafka := archive{path: "k.tar", images: []images.ArchiveImage{{ID: "sha256:k", RepoTags: []string{"k:1"}}}}
	work := archive{path: "w.tar", images: []images.ArchiveImage{{ID: "sha256:w", RepoTags: []string{"w:1"}}}}
	all := []archive{kafka, work}
	for role, want := range map[string][]string{
		"manager": {"k.tar", "w.tar"}, "filter": {"k.tar", "w.tar"}, "producer": {"w.tar"}, "consumer": {"w.tar"},
	} {
		var got []string
		for _, a := range archivesFor(all, role, "k:1", "w:1") {
			got = append(got, a.path)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s gets %v, want %v", role, got, want)
		}
	}
	if err := checkArchivesUsed(all, "k:1", "other:2"); err == nil || !strings.Contains(err.Error(), "w.tar holds [w:1]") {
		t.Errorf("unused archive: %v", err)
	}
}
