// Package atomicfile writes files that appear whole or not at all: the
// content goes to a temporary file in the destination's directory, which
// is synced and then renamed over the destination.
package atomicfile

import (
	"io"
	"os"
	"path/filepath"
)

// WriteFrom creates or replaces path with what write produces. If write
// fails, path is left as it was.
func WriteFrom(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	err = write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Write creates or replaces path with data.
func Write(path string, data []byte) error {
	return WriteFrom(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
