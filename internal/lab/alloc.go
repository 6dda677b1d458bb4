package lab

import (
	"context"
	"errors"
	"fmt"
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
// anyone knowing only N.
const (
	lockPath  = "/run/mblab.lock"
	labsRoot  = "/tmp"
	namePfx   = "mblab"
	maxLabNum = 254
	maxNodes  = 200
)

func labDir(n int) string              { return filepath.Join(labsRoot, fmt.Sprintf("%s%d", namePfx, n)) }
func bridgeName(n int) string          { return fmt.Sprintf("%s%d", namePfx, n) }
func netnsName(n, i int) string        { return fmt.Sprintf("%s%d-n%d", namePfx, n, i) }
func vethName(n, i int) string         { return fmt.Sprintf("%s%dv%d", namePfx, n, i) }
func cgroupName(n, i int) string       { return netnsName(n, i) }
func bridgeAddr(n int) string          { return fmt.Sprintf("198.18.%d.1", n) }
func nodeAddr(n, i int) string         { return fmt.Sprintf("198.18.%d.%d", n, 10+i) }
func nodeDir(n, i int) string          { return filepath.Join(labDir(n), fmt.Sprintf("n%d", i)) }
func netnsPath(n, i int) string        { return filepath.Join("/run/netns", netnsName(n, i)) }
func ownerFile(n int) string           { return filepath.Join(labDir(n), "owner") }
func nodeDockerSock(dir string) string { return filepath.Join(dir, "run", "docker.sock") }

var (
	reDir    = regexp.MustCompile(`^` + namePfx + `(\d+)$`)
	reLink   = regexp.MustCompile(`^` + namePfx + `(\d+)(v\d+)?$`)
	reNetns  = regexp.MustCompile(`^` + namePfx + `(\d+)-n\d+$`)
	reNodeNS = regexp.MustCompile(`^` + namePfx + `\d+-n(\d+)$`)
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
			if err := destroy(n, logf); err != nil {
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
			if err := destroy(n, log); err != nil {
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
