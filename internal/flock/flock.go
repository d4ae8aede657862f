// Package flock takes advisory locks on files and directories that several
// kiln processes share: shared while a process reads or writes something,
// exclusive while another removes it. The kernel drops a lock when its
// holder exits, so a crash never leaves one behind.
package flock

import (
	"errors"
	"fmt"
	"os"
)

// ErrBusy is returned by TryExclusive when another holder has the lock.
var ErrBusy = errors.New("in use")

// Lock is a held lock. The file it was taken on stays open until Close.
type Lock struct {
	f *os.File
}

// Shared opens path, a file or a directory, and takes a shared lock on it,
// waiting for an exclusive holder to let go.
func Shared(path string) (*Lock, error) {
	return take(path, false, true)
}

// TryExclusive opens path and takes an exclusive lock on it, or returns
// ErrBusy at once if anyone holds a lock on it.
func TryExclusive(path string) (*Lock, error) {
	return take(path, true, false)
}

func take(path string, exclusive, wait bool) (*Lock, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := lock(f, exclusive, wait); err != nil {
		f.Close()
		if errors.Is(err, ErrBusy) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// File returns the open file the lock holds, for Stat.
func (l *Lock) File() *os.File { return l.f }

// Close releases the lock.
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Exclusive opens path and takes an exclusive lock on it, waiting for every
// other holder to let go.
func Exclusive(path string) (*Lock, error) {
	return take(path, true, true)
}
