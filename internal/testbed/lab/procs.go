package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// nsInode returns the inode number of a namespace file such as
// /proc/PID/ns/net or /run/netns/NAME. Two processes share a namespace
// exactly when these numbers are equal (while both are alive).
func nsInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, fmt.Errorf("stat namespace %s: %w", path, err)
	}
	return st.Ino, nil
}

// allPIDs lists the numeric entries of /proc.
func allPIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	pids := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pidsInNS returns the processes whose namespace of the given kind ("net",
// "pid", ...) has inode ino. Zombies (whose ns links cannot be read) are
// not returned.
func pidsInNS(kind string, ino uint64) []int {
	if ino == 0 {
		return nil
	}
	var out []int
	self := os.Getpid()
	for _, pid := range allPIDs() {
		if pid == self {
			continue
		}
		got, err := nsInode(filepath.Join("/proc", strconv.Itoa(pid), "ns", kind))
		if err == nil && got == ino {
			out = append(out, pid)
		}
	}
	return out
}

// procComm returns the command name of pid ("" if it is gone).
func procComm(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// procStartTime returns the start time (clock ticks since boot, field 22 of
// /proc/PID/stat) of pid, which together with the pid identifies a process
// across pid reuse.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat of pid %d: no ')'", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("parse stat of pid %d: short", pid)
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse start time of pid %d: %w", pid, err)
	}
	return v, nil
}

// procAlive reports whether pid still runs the process that started at
// start (and is not a zombie).
func procAlive(pid int, start uint64) bool {
	got, err := procStartTime(pid)
	return err == nil && got == start && pidRunning(pid)
}

// pidRunning reports whether pid exists and is not a zombie.
func pidRunning(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(s[i+1:]), "Z")
}

// signalAll sends sig to every pid, ignoring processes that already exited.
func signalAll(pids []int, sig syscall.Signal) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
}
