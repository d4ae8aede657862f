//go:build linux || darwin || freebsd || netbsd || openbsd

package main

import (
	"os/exec"
	"syscall"
)

// killProcessGroup makes exec_timeout kill the whole process group, so that
// an fprocess such as "sh -c ..." does not leave its children running.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
