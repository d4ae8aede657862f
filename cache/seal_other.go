//go:build !linux

package cache

import (
	"io/fs"
)

// Without extended attributes, trees are not sealed.
func owner(fs.FileInfo) (uid, gid uint32, rdev uint64) { return 0, 0, 0 }
