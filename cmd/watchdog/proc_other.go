//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package main

import "os/exec"

// killProcessGroup is a no-op where process groups are not available: the
// default cancellation kills the process alone.
func killProcessGroup(*exec.Cmd) {}
