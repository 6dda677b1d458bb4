package report

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFigures(t *testing.T) {
	s := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	if got := Median([]time.Duration{s(3), s(1), s(2)}); got != s(2) {
		t.Errorf("Median of 3 = %s", got)
	}
	if got := Median([]time.Duration{s(4), s(1), s(2), s(3)}); got != s(2.5) {
		t.Errorf("Median of 4 = %s", got)
	}
	if Median(nil) != 0 {
		t.Error("Median of nothing is not 0")
	}
	if got := Secs(s(12.34)); got != "12.3 s" {
		t.Errorf("Secs = %q", got)
	}
	if got := JoinSecs([]time.Duration{s(3.914), s(4.0)}); got != "3.91, 4.00 s" {
		t.Errorf("JoinSecs = %q", got)
	}
	if Met(true) != "met" || Met(false) != "**not met**" {
		t.Error("Met")
	}
	if got := Leftovers([]string{"node1: network x", "node2: image y"}); got != "**node1: network x; node2: image y**" {
		t.Errorf("Leftovers = %q", got)
	}
	if Leftovers(nil) != "nothing" {
		t.Error("Leftovers of nothing")
	}
	if got := FirstFew([]string{"a", "b", "c"}, 2); got != "a, b, … (1 more)" {
		t.Errorf("FirstFew = %q", got)
	}
	if got := FirstFew([]string{"a", "b"}, 2); got != "a, b" {
		t.Errorf("FirstFew = %q", got)
	}
}

func TestMarkdownAndWrite(t *testing.T) {
	var m Markdown
	m.F("## %s\n\n| a | b |\n", "Title")
	if m.String() != "## Title\n\n| a | b |\n" {
		t.Errorf("Markdown = %q", m.String())
	}
	dir := t.TempDir()
	t.Setenv(EnvOut, filepath.Join(dir, "docs", "benchmarks.md"))
	Write(t, m.String(), "", "benchmarks-swarm.md")
	if b, err := os.ReadFile(filepath.Join(dir, "docs", "benchmarks-swarm.md")); err != nil || string(b) != m.String() {
		t.Errorf("beside %s: %q, %v", EnvOut, b, err)
	}
	named := filepath.Join(dir, "elsewhere", "x.md")
	Write(t, "x", named, "benchmarks-swarm.md")
	if b, err := os.ReadFile(named); err != nil || string(b) != "x" {
		t.Errorf("named file: %q, %v", b, err)
	}
}

func TestMachine(t *testing.T) {
	if got := cpuModel("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n"); got != "AMD EPYC 7B13" {
		t.Errorf("cpuModel = %q", got)
	}
	if got := memTotal("MemTotal:       24576000 kB\nMemFree: 1 kB\n"); got != "23.4 GiB" {
		t.Errorf("memTotal = %q", got)
	}
	if cpuModel("") != "unknown" || memTotal("") != "unknown" {
		t.Error("unknown machine")
	}
	if Command("/nonexistent/command") != "unknown" {
		t.Error("Command of a missing command")
	}
}
