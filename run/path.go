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

// resolveInLayers returns the host path of name in the tree overlayfs shows
// when it stacks layers (host paths, top first), resolving symlinks inside
// that tree as resolveIn does inside one root. It follows overlayfs's
// lookup: the topmost layer that has an entry decides what it is; a
// directory merges the same directory of the layers below, down to an
// opaque one, and hides their other kinds of entries; a whiteout hides
// everything below. A name that is not in the tree is fs.ErrNotExist.
func resolveInLayers(layers []string, name string) (string, error) {
	// dir is a directory of the tree: its path, and the layers that
	// contribute to it, top first.
	type dir struct {
		rel    string
		layers []int
	}
	root := dir{}
	for i := range layers {
		root.layers = append(root.layers, i)
	}
	walked := []dir{root} // the directories from the root to the current one
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
			if len(walked) > 1 {
				walked = walked[:len(walked)-1]
			}
			continue
		}
		cur := walked[len(walked)-1]
		next := dir{rel: path.Join(cur.rel, part)}
		var file string // a non-directory that decides the entry
		var fileInfo fs.FileInfo
		for _, i := range cur.layers {
			p := filepath.Join(layers[i], next.rel)
			fi, err := os.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			if err != nil {
				return "", err
			}
			if isWhiteout(fi) || !fi.IsDir() && len(next.layers) > 0 {
				break
			}
			if !fi.IsDir() {
				file, fileInfo = p, fi
				break
			}
			next.layers = append(next.layers, i)
			if isOpaque(p) {
				break
			}
		}
		switch {
		case fileInfo != nil && fileInfo.Mode()&fs.ModeSymlink != 0:
			if links++; links > maxSymlinks {
				return "", &fs.PathError{Op: "resolve", Path: name, Err: syscall.ELOOP}
			}
			target, err := os.Readlink(file)
			if err != nil {
				return "", err
			}
			if path.IsAbs(target) {
				walked = walked[:1]
			}
			rest = target + "/" + rest
		case fileInfo != nil && strings.Trim(rest, "/") != "":
			return "", &fs.PathError{Op: "resolve", Path: name, Err: syscall.ENOTDIR}
		case fileInfo != nil:
			return file, nil
		case len(next.layers) == 0:
			return "", &fs.PathError{Op: "resolve", Path: name, Err: fs.ErrNotExist}
		default:
			walked = append(walked, next)
		}
	}
	cur := walked[len(walked)-1]
	if len(cur.layers) == 0 {
		return "", &fs.PathError{Op: "resolve", Path: name, Err: fs.ErrNotExist}
	}
	return filepath.Join(layers[cur.layers[0]], cur.rel), nil
}
