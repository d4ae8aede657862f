package registrytest

import "syscall"

// sysProcAttr makes the kernel kill the registry if the test process dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
