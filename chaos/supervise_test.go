package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/childproc"
)

// restartDelay is how long the supervisor waits before starting a process
// that died, as Swarm's restart policy does (5 s there; shorter here to
// keep the suite short).
const restartDelay = time.Second

// stopGrace is how long a process may take to stop on SIGTERM.
const stopGrace = 15 * time.Second

// supervised is one `minibroker` process, started again whenever it dies
// of a signal or exits with an error; one that exits with status 0 (a
// producer that sent its visits) stays stopped.
type supervised struct {
	name    string
	bin     string
	args    []string
	logPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	stopping bool
	again    bool // restart after the next exit, even a clean one
	starts   int
	kills    int      // SIGKILLs sent by kill
	failures []string // how each run that was not asked to stop ended
	finished chan struct{}
}

func supervise(name, bin, logPath string, args ...string) (*supervised, error) {
	p := &supervised{name: name, bin: bin, args: args, logPath: logPath, finished: make(chan struct{})}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

// errStopping: the process was asked to stop before a restart.
var errStopping = errors.New("stopping")

// start starts the process, under the lock that stop takes, so that a
// restart racing a stop never leaves a process behind.
func (p *supervised) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return errStopping
	}
	log, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := childproc.Start(cmd); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	p.starts++
	go p.wait(cmd, exited)
	return nil
}

func (p *supervised) wait(cmd *exec.Cmd, exited chan struct{}) {
	err := cmd.Wait()
	close(exited)
	p.mu.Lock()
	stopping, again := p.stopping, p.again
	p.again = false
	switch {
	case stopping || again:
	case err != nil:
		p.failures = append(p.failures, err.Error())
	default:
		p.failures = append(p.failures, "exited with status 0 unasked")
	}
	p.mu.Unlock()
	if stopping || (err == nil && !again) {
		close(p.finished)
		return
	}
	time.Sleep(restartDelay)
	if serr := p.start(); serr != nil {
		if !errors.Is(serr, errStopping) {
			p.mu.Lock()
			p.failures = append(p.failures, "restart: "+serr.Error())
			p.mu.Unlock()
		}
		close(p.finished)
	}
}

// terminate sends SIGTERM to the running process and waits for it to
// exit; the supervisor starts it again: a clean restart.
func (p *supervised) terminate() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.again = true
	p.mu.Unlock()
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("terminate %s: %w", p.name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(stopGrace):
		return fmt.Errorf("%s ignored SIGTERM for %s", p.name, stopGrace)
	}
}

// kill sends SIGKILL to the running process; the supervisor restarts it.
func (p *supervised) kill() error {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return fmt.Errorf("%s is not running", p.name)
	default:
	}
	p.mu.Lock()
	p.kills++
	p.mu.Unlock()
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", p.name, err)
	}
	<-exited
	return nil
}

// stop ends the process for good: SIGTERM, SIGKILL after stopGrace. It
// reports whether SIGTERM was enough.
func (p *supervised) stop() bool {
	p.mu.Lock()
	p.stopping = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	select {
	case <-exited:
		return true
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
		return true
	case <-time.After(stopGrace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return false
	}
}

// done is closed once the process has exited and will not be restarted.
func (p *supervised) done() <-chan struct{} { return p.finished }

// runs returns how often the process started, how often it was killed,
// and how each run that nobody asked to end ended.
func (p *supervised) runs() (starts, kills int, failures []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts, p.kills, append([]string(nil), p.failures...)
}
