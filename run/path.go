package run

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
)

// maxSymlinks bounds symlink resolution, like the kernel's ELOOP limit.
const maxSymlinks = 255

// resolveIn returns the host path of name inside root, resolving symlinks the
// way the kernel would if root were "/" (chroot semantics): absolute targets
// restart at root and ".." stops at root, so the result never leaves root.
// Symlinks in an image are meant to be read from inside it, and following
// them on the host could write anywhere. When followLast is false the final
// component is kept as is, for callers that create, replace or remove it.
// Components that do not exist are kept as written.
//
// The check and the later use of the path are not atomic; that is fine
// because callers use it on trees that only they change while they do.
func resolveIn(root, name string, followLast bool) (string, error) {
	resolved := "" // slash-separated, relative to root, free of symlinks
	rest := name
	links := 0
	for {
		rest = strings.TrimLeft(rest, "/")
		if rest == "" {
			break
		}
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		switch part {
		case ".":
			continue
		case "..":
			resolved = parentOf(resolved)
			continue
		}
		next := path.Join(resolved, part)
		if !followLast && strings.Trim(rest, "/") == "" {
			resolved = next
			break
		}
		fi, err := os.Lstat(filepath.Join(root, next))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			resolved = next
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", &fs.PathError{Op: "resolve", Path: name, Err: syscall.ELOOP}
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			resolved = ""
		}
		rest = target + "/" + rest
	}
	return filepath.Join(root, filepath.FromSlash(resolved)), nil
}

func parentOf(p string) string {
	if d := path.Dir(p); d != "." {
		return d
	}
	return ""
}
