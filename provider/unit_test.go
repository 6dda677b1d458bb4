package provider

import (
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"

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
