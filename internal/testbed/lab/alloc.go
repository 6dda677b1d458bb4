package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Names and places. A lab is identified by its number N (1..254), from which
// every name below derives, so that a lab whose owner died can be removed by
// anyone knowing only N. Within a lab, a node is identified by its slot number
// I (1..maxSlot), which names its directory, network namespace, veth and
// cgroup; its address is independent of I.
const (
	lockPath  = "/run/mblab.lock"
	labsRoot  = "/tmp"
	namePfx   = "mblab"
	maxLabNum = 254
	maxNodes  = 200 // for Start
	maxSlot   = 999 // keeps vethName within 15 characters: "mblab254v999"
)

func labDir(n int) string              { return filepath.Join(labsRoot, fmt.Sprintf("%s%d", namePfx, n)) }
func bridgeName(n int) string          { return fmt.Sprintf("%s%d", namePfx, n) }
func netnsName(n, i int) string        { return fmt.Sprintf("%s%d-n%d", namePfx, n, i) }
func vethName(n, i int) string         { return fmt.Sprintf("%s%dv%d", namePfx, n, i) }
func cgroupName(n, i int) string       { return netnsName(n, i) }
func nodeDir(n, i int) string          { return filepath.Join(labDir(n), fmt.Sprintf("n%d", i)) }
func netnsPath(n, i int) string        { return filepath.Join("/run/netns", netnsName(n, i)) }
func ownerFile(n int) string           { return filepath.Join(labDir(n), "owner") }
func nodeDockerSock(dir string) string { return filepath.Join(dir, "run", "docker.sock") }

// subnet is lab n's network, 198.18.n.0/24.
func subnet(n int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(n), 0}), 24)
}

// gateway is the host's address on lab n's bridge, 198.18.n.1.
func gateway(n int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(n), 1}) }

// startAddr is the address Start gives its node i: 198.18.n.(10+i).
func startAddr(n, i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(n), byte(10 + i)}) }

// nodeTraces reports whether anything of node slot i of lab n exists on the
// machine: its directory, network namespace, veth or cgroup.
func nodeTraces(n, i int) bool {
	paths := []string{
		nodeDir(n, i),
		netnsPath(n, i),
		filepath.Join("/sys/class/net", vethName(n, i)),
		filepath.Join("/sys/fs/cgroup", cgroupName(n, i)),
	}
	v1, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", cgroupName(n, i)))
	for _, p := range append(paths, v1...) {
		if _, err := os.Lstat(p); err == nil {
			return true
		}
	}
	return false
}

// nodeSlots returns the slot numbers of every node of lab n that has a trace
// on the machine (directory, network namespace, veth or cgroup), whether Start
// or AddNode created it, and whether or not its lab's owner still runs.
func nodeSlots(n int) []int {
	seen := map[int]bool{}
	add := func(name string, re *regexp.Regexp) {
		m := re.FindStringSubmatch(name)
		if m == nil || m[1] != strconv.Itoa(n) {
			return
		}
		if i, err := strconv.Atoi(m[2]); err == nil && i >= 1 {
			seen[i] = true
		}
	}
	for _, name := range dirNames(labDir(n)) {
		if m := reNodeDir.FindStringSubmatch(name); m != nil {
			if i, err := strconv.Atoi(m[1]); err == nil && i >= 1 {
				seen[i] = true
			}
		}
	}
	for _, name := range dirNames("/run/netns") {
		add(name, reNodeNS)
	}
	for _, name := range dirNames("/sys/class/net") {
		add(name, reLink)
	}
	cgroups, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", namePfx+"*"))
	v1, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", namePfx+"*"))
	for _, p := range append(cgroups, v1...) {
		add(filepath.Base(p), reNodeNS)
	}
	out := make([]int, 0, len(seen))
	for i := range seen {
		out = append(out, i)
	}
	sort.Ints(out)
	return out
}

var (
	reDir     = regexp.MustCompile(`^` + namePfx + `(\d+)$`)
	reLink    = regexp.MustCompile(`^` + namePfx + `(\d+)(?:v(\d+))?$`) // bridge mblabN, veth mblabNvI
	reNetns   = regexp.MustCompile(`^` + namePfx + `(\d+)-n\d+$`)       // netns (and cgroup) mblabN-nI
	reNodeNS  = regexp.MustCompile(`^` + namePfx + `(\d+)-n(\d+)$`)     // the same, with I
	reNodeDir = regexp.MustCompile(`^n(\d+)$`)                          // node directory in the lab dir
)

// withLock runs fn while holding an exclusive flock on lockPath. Waiting for
// the lock honours ctx.
func withLock(ctx context.Context, fn func() error) error {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("open lab lock %s: %w", lockPath, err)
	}
	defer f.Close()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", lockPath, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for lab lock %s: %w", lockPath, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// existingLabs returns the numbers of every lab that has any trace on this
// machine: a directory, a bridge or veth, or a network namespace.
func existingLabs() []int {
	seen := map[int]bool{}
	add := func(re *regexp.Regexp, names []string) {
		for _, s := range names {
			if m := re.FindStringSubmatch(s); m != nil {
				if n, err := strconv.Atoi(m[1]); err == nil && n >= 1 && n <= maxLabNum {
					seen[n] = true
				}
			}
		}
	}
	add(reDir, dirNames(labsRoot))
	add(reLink, dirNames("/sys/class/net"))
	add(reNetns, dirNames("/run/netns"))
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

func dirNames(dir string) []string {
	ents, _ := os.ReadDir(dir)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// writeOwner records the calling process (pid and start time) as owner of lab n.
func writeOwner(n int) error {
	start, err := procStartTime(os.Getpid())
	if err != nil {
		return err
	}
	s := fmt.Sprintf("%d %d\n", os.Getpid(), start)
	if err := os.WriteFile(ownerFile(n), []byte(s), 0o644); err != nil {
		return fmt.Errorf("write owner of lab %d: %w", n, err)
	}
	return nil
}

// ownerAlive reports whether the process recorded as owner of lab n still runs.
// A lab without a readable owner record is considered dead.
func ownerAlive(n int) bool {
	b, err := os.ReadFile(ownerFile(n))
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	return err1 == nil && err2 == nil && procAlive(pid, start)
}

// allocate picks a free lab number, removing on the way every lab whose owner
// is dead, and claims the number by creating its directory and owner record.
func allocate(ctx context.Context, logf func(string, ...any)) (int, error) {
	var num int
	err := withLock(ctx, func() error {
		used := map[int]bool{}
		for _, n := range existingLabs() {
			if ownerAlive(n) {
				used[n] = true
				continue
			}
			logf("removing stale lab %d (owner gone)", n)
			if err := destroy(ctx, n, logf); err != nil {
				return fmt.Errorf("remove stale lab %d: %w", n, err)
			}
		}
		for n := 1; n <= maxLabNum; n++ {
			if !used[n] {
				num = n
				break
			}
		}
		if num == 0 {
			return errors.New("no free lab number (all 254 in use)")
		}
		if err := os.MkdirAll(labDir(num), 0o755); err != nil {
			return fmt.Errorf("create lab dir: %w", err)
		}
		return writeOwner(num)
	})
	return num, err
}

// Down removes the labs numbered nums, or every lab on this machine if nums
// is empty, whether or not their owners still run. It is what `mblab down`
// does; log (optional) receives progress messages.
func Down(ctx context.Context, log func(string, ...any), nums ...int) error {
	if log == nil {
		log = func(string, ...any) {}
	}
	return withLock(ctx, func() error {
		if len(nums) == 0 {
			nums = existingLabs()
		}
		var errs []error
		for _, n := range nums {
			if n < 1 || n > maxLabNum {
				errs = append(errs, fmt.Errorf("no lab number %d", n))
				continue
			}
			log("removing lab %d", n)
			if err := destroy(ctx, n, log); err != nil {
				errs = append(errs, fmt.Errorf("lab %d: %w", n, err))
			}
		}
		return errors.Join(errs...)
	})
}

// Info describes a lab found on this machine.
type Info struct {
	Num        int    // lab number N
	Dir        string // /tmp/mblabN
	Owner      string // owner record ("PID STARTTIME"), "" if none
	OwnerAlive bool   // false: the next Start removes the lab
}

// List returns every lab with a trace on this machine.
func List() []Info {
	var out []Info
	for _, n := range existingLabs() {
		b, _ := os.ReadFile(ownerFile(n))
		out = append(out, Info{Num: n, Dir: labDir(n), Owner: strings.TrimSpace(string(b)), OwnerAlive: ownerAlive(n)})
	}
	return out
}
