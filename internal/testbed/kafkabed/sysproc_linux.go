package kafkabed

import "syscall"

// sysProcAttr puts the child in its own process group (so Stop can signal the
// whole group) and asks the kernel to SIGKILL it if the test binary dies.
//
// Pdeathsig fires when the OS thread that forked the child exits; the Go
// runtime only retires threads that a goroutine locked and never unlocked,
// which this package never does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
