package provider

import (
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
)

func hostModelsOf(roles ...string) []hostModel {
	var out []hostModel
	for i, r := range roles {
		out = append(out, hostModel{Address: types.StringValue("10.0.0." + string(rune('1'+i))), Role: types.StringValue(r),
			DockerSocket: types.StringValue("/var/run/docker.sock")})
	}
	return out
}

func TestHostsValidationAndIndexes(t *testing.T) {
	hs, err := swarmModel{Hosts: hostList(hostModelsOf("manager", "filter", "consumer", "filter"))}.hosts()
	if err != nil {
		t.Fatal(err)
	}
	if hs[3].Role != "filter" || hs[3].Index != 1 || hs[1].Index != 0 || hs[0].Advertise != "10.0.0.1" {
		t.Errorf("hosts %+v", hs)
	}
	for roles, want := range map[string]string{
		"filter,consumer":           `exactly one host with role "manager", found 0`,
		"manager,manager":           `exactly one host with role "manager", found 2`,
		"manager,producer,producer": `at most one host may have role "producer"`,
	} {
		_, err := swarmModel{Hosts: hostList(hostModelsOf(strings.Split(roles, ",")...))}.hosts()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", roles, err, want)
		}
	}
	dup := hostModelsOf("manager", "filter")
	dup[1].Address = dup[0].Address
	if _, err := (swarmModel{Hosts: hostList(dup)}).hosts(); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("duplicate address: %v", err)
	}
}

func TestSpecDiffSeesHandMadeChanges(t *testing.T) {
	want := swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec
	got := swarmspec.HubSpec(swarmspec.Kafka{Image: "k:1", Network: "n"}).Spec
	if d := specDiff(want, got); len(d) != 0 {
		t.Fatalf("identical specs differ in %v", d)
	}
	cs := *got.TaskTemplate.ContainerSpec
	cs.Image = "k:1@sha256:abc" // Swarm may pin a digest: not a change
	got.TaskTemplate.ContainerSpec = &cs
	if d := specDiff(want, got); len(d) != 0 {
		t.Errorf("digest pinning counted as drift: %v", d)
	}
	cs.Args = []string{"--evil"}
	cs.Env = nil
	n := uint64(3)
	got.Mode.Replicated.Replicas = &n
	if d := specDiff(want, got); !slices.Equal(d, []string{"args", "env", "replicas"}) {
		t.Errorf("diff %v", d)
	}
}

func TestArchivesGoWhereTheirImagesRun(t *testing.T) {
	kafka := archive{path: "k.tar", images: []images.ArchiveImage{{ID: "sha256:k", RepoTags: []string{"k:1"}}}}
	work := archive{path: "w.tar", images: []images.ArchiveImage{{ID: "sha256:w", RepoTags: []string{"w:1"}}}}
	all := []archive{kafka, work}
	for role, want := range map[string][]string{
		"manager": {"k.tar"}, "filter": {"k.tar", "w.tar"}, "producer": {"w.tar"}, "consumer": {"w.tar"},
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

func TestImportIDs(t *testing.T) {
	for id, want := range map[string][2]string{
		"10.0.0.5/m1": {"10.0.0.5", "m1"}, "host:2222/g-1": {"host:2222", "g-1"},
	} {
		m, n, ok := splitImportID(id)
		if !ok || m != want[0] || n != want[1] {
			t.Errorf("%s → %q %q %v", id, m, n, ok)
		}
	}
	for _, bad := range []string{"m1", "/m1", "10.0.0.5/"} {
		if _, _, ok := splitImportID(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCompileErrorNamesFilterAndPosition(t *testing.T) {
	_, err := filter.Compile("alert.diaSource.snr >> 5.0")
	msg := describeCompileError(3, "bad", err)
	for _, want := range []string{`filters[3].expression (filter "bad")`, "line 1 column 22", "^"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
}
