package run

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// stepState is what the init of a step keeps to turn the upper directory
// into the layer once the command has exited.
type stepState struct {
	// upper reaches the upper directory through the init's open
	// descriptor, in the container's /proc: after the root change, no
	// path of the host's leads there.
	upper string
	fd    int
	layer *os.File // where the layer tar goes, to the parent
	epoch time.Time
	trace upperTrace
}

// openUpper opens the upper directory dir, in the scratch space, before
// the root change.
func openUpper(dir string, layerFD int, epoch int64) (*stepState, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return &stepState{
		upper: fmt.Sprintf("/proc/self/fd/%d", fd),
		fd:    fd,
		layer: os.NewFile(uintptr(layerFD), "layer"),
		epoch: time.Unix(epoch, 0).UTC(),
	}, nil
}

// traceSetup records what the init's setup wrote into the upper
// directory, which the layer leaves out. It runs in the container's root.
func (s *stepState) traceSetup() error {
	t, err := traceUpper(s.upper)
	s.trace = t
	return err
}

// finish writes the layer if the command succeeded, then empties the
// upper directory: as the container's root, the init may remove what the
// command's users made, which the parent, without root, may not.
func (s *stepState) finish(ok bool) error {
	var err error
	if ok {
		err = writeUpper(s.layer, s.upper, s.trace, s.epoch)
	}
	if cerr := s.layer.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sending the layer: %w", cerr)
	}
	names, rerr := readNames(s.upper)
	for _, name := range names {
		rerr = errors.Join(rerr, os.RemoveAll(filepath.Join(s.upper, name)))
	}
	if err == nil && rerr != nil {
		err = fmt.Errorf("emptying the step's upper directory: %w", rerr)
	}
	unix.Close(s.fd)
	return err
}
