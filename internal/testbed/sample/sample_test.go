package sample

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got := parseStat("cpu  100 5 50 800 20 3 2 1 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if want := (CPU{Busy: 100 + 5 + 50 + 3 + 2 + 1, Total: 981}); got != want {
		t.Errorf("parseStat = %+v, want %+v", got, want)
	}
	if got := parseStat("intr 1 2 3\n"); got != (CPU{}) {
		t.Errorf("parseStat of a line that is not cpu = %+v, want zero", got)
	}
}

func TestCgroupCPU(t *testing.T) {
	root := t.TempDir()
	defer func(old string) { cgroupRoot = old }(cgroupRoot)
	cgroupRoot = root
	write := func(rel, text string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mblab3-n0/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\n")
	write("cpuacct/mblab3-n1/cpuacct.usage", "1500000000\n")
	write("mblab4-n0/cpu.stat", "usage_usec 9000000\n")
	got := CgroupCPU("mblab3-n")
	if len(got) != 2 || got["mblab3-n0"] != 2.5 || got["mblab3-n1"] != 1.5 {
		t.Errorf("CgroupCPU = %v, want mblab3-n0 2.5 and mblab3-n1 1.5", got)
	}
}

func TestUsage(t *testing.T) {
	a := Usage{CPU: 10, Total: 40, Cgroups: map[string]float64{"n0": 2, "n1": 3}}
	b := Usage{CPU: 30, Total: 40, Cgroups: map[string]float64{"n1": 1, "n2": 4}}
	sum := a.Add(b)
	if sum.Busy() != 0.5 {
		t.Errorf("Busy of the sum = %v, want 0.5 (busy time over total time)", sum.Busy())
	}
	if got := sum.CgroupCPU(nil); got != 10 {
		t.Errorf("CgroupCPU(nil) = %v, want 10", got)
	}
	if got := sum.CgroupCPU(func(n string) bool { return n == "n1" }); got != 4 {
		t.Errorf("CgroupCPU(n1) = %v, want 4", got)
	}
	if (Usage{}).Busy() != 0 {
		t.Error("Busy of nothing is not 0")
	}
}

func TestSpan(t *testing.T) {
	u := Start("").Stop()
	if u.CPU < 0 || u.CPU > u.Total || len(u.Cgroups) != 0 {
		t.Errorf("a span without cgroups = %+v", u)
	}
}

func TestParseLoadAvg(t *testing.T) {
	if got := parseLoadAvg("0.52 0.61 0.70 2/345 6789\n"); got != "0.52 0.61 0.70" {
		t.Errorf("parseLoadAvg = %q", got)
	}
	if got := parseLoadAvg(""); got != "unknown" {
		t.Errorf("parseLoadAvg of nothing = %q", got)
	}
}

func TestProcessCPU(t *testing.T) {
	stat := "4242 (java (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 30 0 1000 0 0\n"
	if got := parseProcStat(stat); got != 3.25 {
		t.Errorf("parseProcStat = %v, want 3.25 (250+75 ticks)", got)
	}
	if got := parseProcStat("garbage"); got != 0 {
		t.Errorf("parseProcStat of garbage = %v", got)
	}
	if got := ProcessCPU(os.Getpid()); got < 0 {
		t.Errorf("ProcessCPU of this process = %v", got)
	}
}
