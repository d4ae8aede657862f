package cache

import (
	"io/fs"
	"syscall"
)

func owner(fi fs.FileInfo) (uid, gid uint32, rdev uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid, st.Rdev
	}
	return 0, 0, 0
}
