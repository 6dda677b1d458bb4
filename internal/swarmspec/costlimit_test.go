package swarmspec

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
)

// TestFilterCostLimit: a filter's own cost limit reaches its process, as
// --cost-limit (isolated) or cost_limit in the filters file (shared); the
// default reaches neither, so that the specs of filters that leave it
// alone, and their hashes, stay as they were before the setting.
func TestFilterCostLimit(t *testing.T) {
	withLimits := func(mode string, limits ...uint64) FilterGroup {
		g := group(mode)
		for i, l := range limits {
			g.Filters[i].CostLimit = l
		}
		return g
	}
	for _, mode := range []string{ModeIsolated, ModeShared} {
		plain, err := FilterGroupSpecs(group(mode))
		if err != nil {
			t.Fatal(err)
		}
		def, err := FilterGroupSpecs(withLimits(mode, filter.DefaultCostLimit, 0))
		if err != nil {
			t.Fatal(err)
		}
		for i := range plain {
			if Hash(plain[i].Spec, plain[i].Configs) != Hash(def[i].Spec, def[i].Configs) {
				t.Errorf("%s: the default cost limit changes %s", mode, plain[i].Name())
			}
		}
		own, err := FilterGroupSpecs(withLimits(mode, 5000, filter.DefaultCostLimit))
		if err != nil {
			t.Fatal(err)
		}
		switch mode {
		case ModeIsolated:
			args := own[0].Spec.TaskTemplate.ContainerSpec.Args
			if i := slices.Index(args, "--cost-limit"); i < 0 || args[i+1] != "5000" {
				t.Errorf("isolated filter args %q lack --cost-limit 5000", args)
			}
			if slices.Contains(own[1].Spec.TaskTemplate.ContainerSpec.Args, "--cost-limit") {
				t.Errorf("the default cost limit is passed: %q", own[1].Spec.TaskTemplate.ContainerSpec.Args)
			}
		case ModeShared:
			specs, err := filter.LoadSpecs(strings.NewReader(configData(t, own[0], "/etc/minibroker/filters.yaml")))
			if err != nil {
				t.Fatal(err)
			}
			if specs[0].CostLimit != 5000 || specs[1].CostLimit != filter.DefaultCostLimit {
				t.Errorf("cost limits in the filters file: %d, %d", specs[0].CostLimit, specs[1].CostLimit)
			}
		}
	}
}

// TestFilterTimeBudget: a filter's own time budget reaches its process as
// --time-budget (isolated) or time_budget in the filters file (shared);
// the default reaches neither.
func TestFilterTimeBudget(t *testing.T) {
	for _, mode := range []string{ModeIsolated, ModeShared} {
		plain, err := FilterGroupSpecs(group(mode))
		if err != nil {
			t.Fatal(err)
		}
		g := group(mode)
		g.Filters[0].TimeBudget, g.Filters[1].TimeBudget = 500*time.Millisecond, filter.DefaultTimeBudget
		own, err := FilterGroupSpecs(g)
		if err != nil {
			t.Fatal(err)
		}
		if mode == ModeIsolated {
			if Hash(plain[1].Spec, plain[1].Configs) != Hash(own[1].Spec, own[1].Configs) {
				t.Error("the default time budget changes the filter's spec")
			}
			args := own[0].Spec.TaskTemplate.ContainerSpec.Args
			if i := slices.Index(args, "--time-budget"); i < 0 || args[i+1] != "500ms" {
				t.Errorf("isolated filter args %q lack --time-budget 500ms", args)
			}
			continue
		}
		specs, err := filter.LoadSpecs(strings.NewReader(configData(t, own[0], "/etc/minibroker/filters.yaml")))
		if err != nil {
			t.Fatal(err)
		}
		if specs[0].TimeBudget != 500*time.Millisecond || specs[1].TimeBudget != filter.DefaultTimeBudget {
			t.Errorf("time budgets in the filters file: %v, %v", specs[0].TimeBudget, specs[1].TimeBudget)
		}
	}
}

// TestFiltersYAMLReadsBack: a shared group's filters file reads back as
// written, even for an expression yaml.v3 alone would mangle (multi-line,
// starting with a space; found by workloads/filter's FuzzLoadSpecs).
func TestFiltersYAMLReadsBack(t *testing.T) {
	exprs := []string{" alert.diaSource.snr > 1.0\n", "alert.diaSource.snr > 5.0 &&\n  alert.diaSource.psfFlux > 1e6", "true"}
	var fs []Filter
	for i, e := range exprs {
		fs = append(fs, Filter{Name: "f" + strconv.Itoa(i), Expression: e})
	}
	b, err := filtersYAML(fs)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := filter.LoadSpecs(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("the filters file does not read back: %v\n%s", err, b)
	}
	for i, s := range specs {
		if s.Expr != exprs[i] {
			t.Errorf("filter %d: expression %q read back as %q", i, exprs[i], s.Expr)
		}
	}
}
