//go:build unix && !linux

package kafkabed

import "syscall"

// sysProcAttr puts the child in its own process group so Stop can signal the
// whole group. (No parent-death signal outside Linux.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
