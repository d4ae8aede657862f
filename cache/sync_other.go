//go:build !linux

package cache

import (
	"io/fs"
	"os"
	"path/filepath"
)

// syncTree flushes every file and directory of a tree before it is renamed
// into place, so that after a power loss its final path never names a tree
// with missing data.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	})
}
