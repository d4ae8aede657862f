package xattr

import (
	"errors"

	"golang.org/x/sys/unix"
)

func set(path, name, value string) error {
	err := unix.Lsetxattr(path, name, []byte(value), 0)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
		return errors.ErrUnsupported
	}
	return err
}

func get(path, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(path, name, buf)
	switch {
	case errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP):
		return "", errors.ErrUnsupported
	case errors.Is(err, unix.ENODATA):
		return "", ErrNoAttr
	case err != nil:
		return "", err
	}
	return string(buf[:n]), nil
}
