package layers

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// File is one entry of a layer.
type File struct {
	// Path is the slash-separated path inside the image, without a leading
	// slash: "home/app/handler".
	Path string
	// Mode holds the permission bits and the type: 0 or fs.ModeDir or
	// fs.ModeSymlink. Other types are rejected.
	Mode fs.FileMode
	// Source is a host file holding the content of a regular file.
	Source string
	// Data is the content of a regular file when Source is empty.
	Data []byte
	// Linkname is the target of a symlink, kept as written.
	Linkname string
	// UID and GID own the entry; 0 unless set.
	UID, GID int
}

// Dir returns a directory entry.
func Dir(p string, perm fs.FileMode) File {
	return File{Path: p, Mode: fs.ModeDir | perm}
}

// Bytes returns a regular file entry with inline content.
func Bytes(p string, perm fs.FileMode, data []byte) File {
	return File{Path: p, Mode: perm, Data: data}
}

// HostFile returns a regular file entry whose content is read from src when
// the layer is written.
func HostFile(p string, perm fs.FileMode, src string) File {
	return File{Path: p, Mode: perm, Source: src}
}

// Symlink returns a symbolic link entry.
func Symlink(p, target string) File {
	return File{Path: p, Mode: fs.ModeSymlink | 0o777, Linkname: target}
}

// cleanPath normalises an in-image path and refuses ones that leave the root.
func cleanPath(p string) (string, error) {
	c := path.Clean("/" + filepath.ToSlash(p))
	if c == "/" {
		return "", fmt.Errorf("layer path %q names the root", p)
	}
	if strings.Contains(p, "\x00") {
		return "", fmt.Errorf("layer path %q has a NUL byte", p)
	}
	return strings.TrimPrefix(c, "/"), nil
}

// DirOption changes how FromDir reads a directory.
type DirOption func(*dirOptions)

type dirOptions struct {
	skip     func(rel string, d fs.DirEntry) bool
	uid, gid int
}

// WithSkip leaves out every entry for which skip returns true; a skipped
// directory is left out whole. rel is slash-separated and relative to the
// directory read. By default nothing is skipped.
func WithSkip(skip func(rel string, d fs.DirEntry) bool) DirOption {
	return func(o *dirOptions) { o.skip = skip }
}

// WithOwner sets the owner of every entry read. The default is 0:0.
func WithOwner(uid, gid int) DirOption {
	return func(o *dirOptions) { o.uid, o.gid = uid, gid }
}

// FromDir lists the tree under root as layer entries placed under dest.
// Symlinks are kept as links and never followed, so a link cannot pull host
// files from outside root into the image. Devices, sockets and pipes have no
// place in a function image and are left out.
func FromDir(root, dest string, opts ...DirOption) ([]File, error) {
	var o dirOptions
	for _, opt := range opts {
		opt(&o)
	}
	dest = strings.Trim(filepath.ToSlash(dest), "/")
	var files []File
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if o.skip != nil && o.skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := File{Path: path.Join(dest, rel), UID: o.uid, GID: o.gid}
		switch mode := info.Mode(); {
		case mode.IsDir():
			f.Mode = fs.ModeDir | mode.Perm()
		case mode.IsRegular():
			f.Mode = mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
			f.Source = p
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			f.Mode = fs.ModeSymlink | 0o777
			f.Linkname = target
		default:
			return nil
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", root, err)
	}
	return files, nil
}
