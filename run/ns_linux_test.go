package run

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// tryNamespaces starts a program in the namespaces Image uses.
func tryNamespaces(prog string) error {
	cmd := exec.Command(prog, "exit", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
	}
	if os.Geteuid() != 0 {
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	return cmd.Run()
}

// requireNamespaces skips tests that run images where that is impossible.
func requireNamespaces(t *testing.T) {
	t.Helper()
	if nsErr != nil {
		t.Skipf("cannot create namespaces here (need root or unprivileged user namespaces): %v", nsErr)
	}
}
