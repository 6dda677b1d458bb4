// Package sample measures what a benchmark shares the machine with: the
// machine's CPU time (/proc/stat), the CPU time of cgroups (a lab node's
// containers run under the cgroup parent mblabN-nI, see
// internal/testbed/lab) and the load average.
//
// It is a test bed for bench/ and the acceptance tests, never imported by
// shipped code. It reads Linux's /proc and /sys/fs/cgroup (v1 cpuacct or
// v2); where they cannot be read the figures are zero, not errors.
//
//	span := sample.Start("mblab3-n") // the cgroups of lab 3's nodes
//	... the work measured ...
//	u := span.Stop()
//	fmt.Printf("%.0f %% busy, %.0f CPU-s, of which lab 3's containers %.0f", 100*u.Busy(), u.CPU, u.CgroupCPU(nil))
package sample

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ClockTicks is USER_HZ, the unit of /proc/stat (100 on Linux).
const ClockTicks = 100

// CPU is the machine's CPU time so far, all cores, in clock ticks.
type CPU struct{ Busy, Total uint64 }

// ReadCPU reads the machine's CPU time from /proc/stat; zero when it
// cannot.
func ReadCPU() CPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPU{}
	}
	return parseStat(string(b))
}

// parseStat reads the first ("cpu") line of /proc/stat: every field up to
// steal counts to the total (guest time is already in user), all but idle
// and iowait as busy.
func parseStat(text string) CPU {
	line, _, _ := strings.Cut(text, "\n")
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "cpu" {
		return CPU{}
	}
	var c CPU
	for i, v := range f[1:min(len(f), 9)] {
		n, _ := strconv.ParseUint(v, 10, 64)
		c.Total += n
		if i != 3 && i != 4 { // idle, iowait
			c.Busy += n
		}
	}
	return c
}

// cgroupRoot is where cgroups are mounted (v2, or v1's hierarchies below it).
var cgroupRoot = "/sys/fs/cgroup"

// CgroupCPU returns the CPU seconds used so far by each cgroup whose name
// starts with prefix, directly under the cgroup root (v1: its cpuacct
// hierarchy), by name. A cgroup that cannot be read is left out.
func CgroupCPU(prefix string) map[string]float64 {
	out := map[string]float64{}
	v1, _ := filepath.Glob(filepath.Join(cgroupRoot, "cpuacct", prefix+"*", "cpuacct.usage"))
	for _, f := range v1 {
		if b, err := os.ReadFile(f); err == nil {
			ns, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
			out[filepath.Base(filepath.Dir(f))] = ns / 1e9
		}
	}
	v2, _ := filepath.Glob(filepath.Join(cgroupRoot, prefix+"*", "cpu.stat"))
	for _, f := range v2 {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
				us, _ := strconv.ParseFloat(v, 64)
				out[filepath.Base(filepath.Dir(f))] = us / 1e6
			}
		}
	}
	return out
}

// Usage is the CPU time used over a span of wall time.
type Usage struct {
	// CPU and Total are the machine's busy and total CPU seconds, all
	// cores together.
	CPU, Total float64
	// Cgroups holds the CPU seconds of each cgroup of the span's prefix:
	// one created meanwhile counts from zero, one removed meanwhile is
	// left out.
	Cgroups map[string]float64
}

// Busy is the fraction of the machine's CPU time that was busy.
func (u Usage) Busy() float64 {
	if u.Total <= 0 {
		return 0
	}
	return u.CPU / u.Total
}

// CgroupCPU sums the CPU seconds of the cgroups that keep picks (all of
// them when keep is nil).
func (u Usage) CgroupCPU(keep func(cgroup string) bool) float64 {
	var sum float64
	for name, s := range u.Cgroups {
		if keep == nil || keep(name) {
			sum += s
		}
	}
	return sum
}

// Add returns the usage of both spans together.
func (u Usage) Add(o Usage) Usage {
	sum := Usage{CPU: u.CPU + o.CPU, Total: u.Total + o.Total, Cgroups: map[string]float64{}}
	for _, m := range []map[string]float64{u.Cgroups, o.Cgroups} {
		for name, s := range m {
			sum.Cgroups[name] += s
		}
	}
	return sum
}

// Span is a measurement under way; Start begins one.
type Span struct {
	prefix string
	cpu    CPU
	groups map[string]float64
}

// Start begins measuring the machine's CPU time and that of the cgroups
// whose names start with cgroupPrefix (none when it is empty).
func Start(cgroupPrefix string) Span {
	s := Span{prefix: cgroupPrefix, cpu: ReadCPU()}
	if cgroupPrefix != "" {
		s.groups = CgroupCPU(cgroupPrefix)
	}
	return s
}

// Stop returns the CPU time used since Start.
func (s Span) Stop() Usage {
	now := ReadCPU()
	u := Usage{Cgroups: map[string]float64{}}
	if now.Total > s.cpu.Total {
		u.CPU = float64(now.Busy-s.cpu.Busy) / ClockTicks
		u.Total = float64(now.Total-s.cpu.Total) / ClockTicks
	}
	if s.prefix != "" {
		for name, used := range CgroupCPU(s.prefix) {
			u.Cgroups[name] = used - s.groups[name]
		}
	}
	return u
}

// ProcessCPU is the CPU time (user and system, all threads) that process
// pid has used so far, in seconds, from /proc/PID/stat; zero when it
// cannot be read.
func ProcessCPU(pid int) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime, fields 14 and 15 of /proc/PID/stat,
// counted after the command name, which is in parentheses and may hold
// spaces and parentheses itself.
func parseProcStat(text string) float64 {
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(text[i+1:]) // f[0] is field 3, the state
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(utime+stime) / ClockTicks
}

// LoadAvg is the machine's load average over 1, 5 and 15 minutes, as
// /proc/loadavg gives it ("0.52 0.61 0.70"), or "unknown".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return parseLoadAvg(string(b))
}

func parseLoadAvg(text string) string {
	f := strings.Fields(text)
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
