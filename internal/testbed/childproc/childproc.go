// Package childproc starts helper processes (test servers, lab node
// launchers) that must not outlive this process, and reads their logs.
package childproc

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
)

// Pdeathsig fires when the OS thread that started the child exits, not the
// process. Children are therefore started from one goroutine locked to an
// OS thread that lives as long as the process.
var (
	once     sync.Once
	requests chan request
)

type request struct {
	cmd *exec.Cmd
	res chan error
}

// Start starts cmd in a process group of its own that the kernel kills
// (SIGKILL) when this process dies. Other SysProcAttr fields set on cmd are
// kept.
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	once.Do(func() {
		requests = make(chan request)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must not exit
			for r := range requests {
				r.res <- r.cmd.Start()
			}
		}()
	})
	res := make(chan error, 1)
	requests <- request{cmd, res}
	return <-res
}

// TailFile returns the last n lines of a child's log file, for error
// messages; a file that cannot be read gives the reason in parentheses.
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
