package report

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// CPUModel is the CPU's model name from /proc/cpuinfo, or "unknown".
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return cpuModel(string(b))
}

func cpuModel(cpuinfo string) string {
	for _, l := range strings.Split(cpuinfo, "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown"
}

// MemTotal is the machine's memory from /proc/meminfo ("23.4 GiB"), or
// "unknown".
func MemTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	return memTotal(string(b))
}

func memTotal(meminfo string) string {
	for _, l := range strings.Split(meminfo, "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kb); err == nil {
				return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	return "unknown"
}

// Kernel is `uname -sr`.
func Kernel() string { return Command("uname", "-sr") }

// Command is a command's output, trimmed, or "unknown" when it fails.
func Command(name string, args ...string) string {
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}
