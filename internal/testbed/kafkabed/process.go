package kafkabed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// tailLines is how many log lines failure messages include.
const tailLines = 30

// process is one long-running java process in its own process group.
type process struct {
	name    string
	cmd     *exec.Cmd
	outPath string        // the process's stdout+stderr
	logPath string        // its log4j2 file
	done    chan struct{} // closed when the process has exited
	waitErr error         // cmd.Wait's result; read only after done
}

// startProcess starts spec in dir, with stdout and stderr going to outPath.
// The process is not tied to any context: it lives until stop.
func startProcess(name, dir, outPath, logPath string, spec jvmSpec) (*process, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return nil, fmt.Errorf("kafkabed: %s: create output file: %w", name, err)
	}
	defer out.Close() // the child keeps its own descriptor

	cmd := exec.Command(spec.java, spec.command()...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("kafkabed: %s: start %s: %w", name, spec.java, err)
	}
	p := &process{name: name, cmd: cmd, outPath: outPath, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id, which is also its process group id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has already ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace for the process
// to exit, then SIGKILLs the group. It returns an error if SIGKILL was needed.
func (p *process) stop(grace time.Duration) error {
	if p.exited() {
		killGroup(p.pid(), syscall.SIGKILL) // sweep any leftovers
		return nil
	}
	killGroup(p.pid(), syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		killGroup(p.pid(), syscall.SIGKILL)
		return nil
	case <-timer.C:
	}
	killGroup(p.pid(), syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("kafkabed: %s (pid %d) ignored SIGTERM for %s and was killed; see %s",
		p.name, p.pid(), grace, p.logPath)
}

// killGroup signals every process in the group led by pid; "no such process"
// is expected when the group is already gone.
func killGroup(pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(pid, sig)
	}
}

// tail returns the last lines of the process's log4j2 file and of its
// stdout/stderr, for error messages.
func (p *process) tail() string {
	return logTail(p.logPath, p.outPath)
}

// logTail formats the last tailLines lines of each non-empty file.
func logTail(paths ...string) string {
	var b strings.Builder
	for _, path := range paths {
		lines := lastLines(path, tailLines)
		if lines == "" {
			continue
		}
		fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", path, lines)
	}
	if b.Len() == 0 {
		return "\n(no log output)"
	}
	return b.String()
}

// lastLines returns up to n trailing lines of the file at path ("" if absent).
func lastLines(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		_, _ = f.Seek(st.Size()-window, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	data = bytes.TrimRight(data, "\n")
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n"))) + "\n"
}

// runTool runs a short-lived java tool to completion and returns its stdout.
// Cancelling ctx kills the tool's process group. On failure the error names
// the command and carries the tail of its stdout and stderr; callers add the
// "kafkabed: <what>" context.
func runTool(ctx context.Context, dir string, spec jvmSpec) (string, error) {
	out, _, err := runToolCPU(ctx, dir, spec)
	return out, err
}

// runToolCPU is runTool that also returns the tool's CPU time (user and
// system, every thread of the JVM).
func runToolCPU(ctx context.Context, dir string, spec jvmSpec) (string, time.Duration, error) {
	cmd := exec.CommandContext(ctx, spec.java, spec.command()...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error {
		killGroup(cmd.Process.Pid, syscall.SIGKILL)
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if cmd.Process != nil {
		killGroup(cmd.Process.Pid, syscall.SIGKILL)
	}
	var cpu time.Duration
	if ps := cmd.ProcessState; ps != nil {
		cpu = ps.UserTime() + ps.SystemTime()
	}
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return stdout.String(), cpu, fmt.Errorf("%s %s: %w\n--- stdout ---\n%s\n--- stderr ---\n%s",
			spec.mainClass, strings.Join(spec.args, " "), err,
			lastText(stdout.String()), lastText(stderr.String()))
	}
	return stdout.String(), cpu, nil
}

// lastText keeps the last tailLines lines of s.
func lastText(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return strings.Join(lines, "\n")
}
