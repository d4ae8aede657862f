//go:build cluster

package kube

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Bounds of the waits in this package.
const (
	stopGrace  = 10 * time.Second
	killWait   = 5 * time.Second
	pollEvery  = 100 * time.Millisecond
	tailLines  = 30
	tailWindow = 64 << 10
)

// proc is one of the cluster's processes, its output in a log file.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

// startProc starts bin with args, its output going to logs/NAME.log. The
// kernel kills it if the test process dies first.
func startProc(logs, name, bin string, args ...string) (*proc, error) {
	path := filepath.Join(logs, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: path, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, then SIGKILL if the process is still there after
// stopGrace. It fails only if the process outlives SIGKILL.
func (p *proc) stop() error {
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(stopGrace):
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.exited:
		// Killed is stopped: nothing of it is left running. The apiserver
		// now and then waits on a client's stream past the grace period,
		// which must not fail a run whose tests passed.
		fmt.Fprintf(os.Stderr, "cluster: %s (pid %d) ignored SIGTERM for %s and was killed\n", p.name, p.cmd.Process.Pid, stopGrace)
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// tail returns the last lines of the process's log, for error messages.
func (p *proc) tail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	if len(b) > tailWindow {
		b = b[len(b)-tailWindow:]
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// waitFor calls check until it returns nil, for at most timeout. It gives
// up early, with the log's last lines, when one of the watched processes
// exits: a server that failed to start never becomes ready.
func waitFor(ctx context.Context, what string, timeout time.Duration, watched []*proc, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		for _, p := range watched {
			if !p.running() {
				return fmt.Errorf("waiting for %s: %s exited (%v); its log %s ends:\n%s", what, p.name, p.cmd.ProcessState, p.log, p.tail())
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: not within %s: %w", what, timeout, errors.Join(err, ctx.Err()))
		case <-time.After(pollEvery):
		}
	}
}
