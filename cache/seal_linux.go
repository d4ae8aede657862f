package cache

import (
	"errors"
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

func owner(fi fs.FileInfo) (uid, gid uint32, rdev uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid, st.Rdev
	}
	return 0, 0, 0
}

func setAttr(path, name, value string) error {
	err := unix.Lsetxattr(path, name, []byte(value), 0)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return errors.ErrUnsupported
	}
	return err
}

func getAttr(path, name string) (string, error) {
	buf := make([]byte, 128)
	n, err := unix.Lgetxattr(path, name, buf)
	switch {
	case errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP):
		return "", errors.ErrUnsupported
	case errors.Is(err, unix.ENODATA):
		return "", errNoSeal
	case err != nil:
		return "", err
	}
	return string(buf[:n]), nil
}
