package run

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A run started by root gets a user namespace of its own too, so that root in
// the container is not root on the host: the image's users 0 to idRange-1
// are mapped onto as many unprivileged host ids from a base (root's
// /etc/subuid and /etc/subgid range, else fixedIDBase). The image's files,
// owned by host ids as the layers say (0, or the function's 65532), are seen
// through idmapped mounts of the layers, so that inside they belong to the
// same users as in the image.
const (
	idRange     = 65536
	fixedIDBase = 0x70000000 // far above any distribution's allocations
)

// errNoIDMap marks a cache (or bound file) on a filesystem that has no
// idmapped mounts, or a kernel without them: the run then does without the
// user namespace.
var errNoIDMap = errors.New("idmapped mounts not supported")

// subIDBase returns the start of root's range of at least idRange ids in
// file (/etc/subuid, /etc/subgid), or fixedIDBase.
func subIDBase(file string) uint32 {
	f, err := os.Open(file)
	if err != nil {
		return fixedIDBase
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.Split(strings.TrimSpace(s.Text()), ":")
		if len(parts) != 3 || parts[0] != "root" && parts[0] != "0" {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 == nil && err2 == nil && start > 0 && count >= idRange && start+idRange <= 1<<32-1 {
			return uint32(start)
		}
	}
	return fixedIDBase
}

// detachedMount returns a mount of path, detached, for the init to attach in
// its mount namespace, where it may not reach path itself: idmapped onto
// userns, read-only if readOnly. With idmap false or when the filesystem
// has no idmapped mounts, the mount shows the host's ids (errNoIDMap tells,
// with the plain mount still returned when idmap is false).
func detachedMount(path string, userns int, recursive, readOnly, idmap bool) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	setFlags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
		setFlags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, flags)
	if err != nil {
		return -1, fmt.Errorf("cloning the mount of %s: %w", path, err)
	}
	attr := unix.MountAttr{}
	if readOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if idmap {
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(userns)
	}
	if attr.Attr_set == 0 {
		return fd, nil
	}
	if err := unix.MountSetattr(fd, "", setFlags, &attr); err != nil {
		unix.Close(fd)
		if idmap && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS)) {
			return -1, fmt.Errorf("idmapping %s: %w: %w", path, errNoIDMap, err)
		}
		return -1, fmt.Errorf("setting up the mount of %s: %w", path, err)
	}
	return fd, nil
}

// sendFDs passes fds over the unix socket sock, with one byte of data.
func sendFDs(sock *os.File, fds []int) error {
	if err := unix.Sendmsg(int(sock.Fd()), []byte{0}, unix.UnixRights(fds...), nil, 0); err != nil {
		return fmt.Errorf("passing mounts to the container init: %w", err)
	}
	return nil
}

// recvFDs receives n file descriptors sent by sendFDs.
func recvFDs(sock int, n int) ([]int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4*n))
	_, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receiving mounts: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receiving mounts: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, fmt.Errorf("receiving mounts: %w", err)
		}
		fds = append(fds, got...)
	}
	if len(fds) != n {
		return nil, fmt.Errorf("receiving mounts: got %d, want %d", len(fds), n)
	}
	return fds, nil
}
