package run

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A step's layer is the overlay's upper directory, read by the init inside
// the run's user namespace, so that owners are the ids the container saw,
// whatever the mapping onto host ids. Only that directory is read, never
// the whole tree.

// traceEntry is what the init's own setup left at one path of the upper
// directory (mountpoints, /etc/hosts, a copied-up /tmp): unless the command
// changed it afterwards, it is not part of the layer.
type traceEntry struct {
	ino, size    int64
	mode         uint32
	uid, gid     uint32
	mtime, ctime unix.Timespec
	// sum fingerprints the content: the names of a directory, the bytes
	// of a file, so a change within one clock tick still shows.
	sum [32]byte
}

// upperTrace maps the paths of the upper directory, relative to it, to
// what setup left there.
type upperTrace map[string]traceEntry

// traceUpper records what the upper directory at root holds.
func traceUpper(root string) (upperTrace, error) {
	t := upperTrace{}
	err := walkUpper(root, "", func(rel string, st *unix.Stat_t) error {
		e, err := traceOf(root, rel, st)
		t[rel] = e
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recording the setup's traces: %w", err)
	}
	return t, nil
}

func traceOf(root, rel string, st *unix.Stat_t) (traceEntry, error) {
	p := filepath.Join(root, rel)
	e := traceEntry{ino: int64(st.Ino), mode: st.Mode, uid: st.Uid, gid: st.Gid}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		// A directory is the names in it, less runtimeFiles, not its
		// times: what changed in it is in the layer anyway, and brings
		// the directory along.
		names, err := readNames(p)
		if err != nil {
			return e, err
		}
		names = slices.DeleteFunc(names, func(n string) bool { return runtimeFiles[path.Join(rel, n)] })
		e.sum = sha256.Sum256([]byte(strings.Join(names, "/")))
		return e, nil
	case unix.S_IFREG:
		b, err := os.ReadFile(p)
		if err != nil {
			return e, err
		}
		e.sum = sha256.Sum256(b)
	}
	e.size, e.mtime, e.ctime = st.Size, st.Mtim, st.Ctim
	return e, nil
}

// runtimeFiles are the files the sandbox writes for the run, which Docker
// binds over the image's: what a RUN does to them is not kept.
var runtimeFiles = map[string]bool{"etc/hosts": true, "etc/resolv.conf": true, "etc/hostname": true}

// unchanged reports whether rel is still as setup left it, or is one of
// runtimeFiles.
func (t upperTrace) unchanged(root, rel string, st *unix.Stat_t) bool {
	if runtimeFiles[rel] {
		return true
	}
	before, ok := t[rel]
	if !ok {
		return false
	}
	now, err := traceOf(root, rel, st)
	return err == nil && now == before
}

// walkUpper calls fn for each entry under root/rel, parents first, in name
// order.
func walkUpper(root, rel string, fn func(rel string, st *unix.Stat_t) error) error {
	ps, err := listUpper(root, rel)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := fn(p.rel, &p.st); err != nil {
			return err
		}
		if p.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := walkUpper(root, p.rel, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// pending is an entry of the upper directory, with its stat.
type pending struct {
	rel string
	st  unix.Stat_t
}

// listUpper lists the directory root/rel, in name order.
func listUpper(root, rel string) ([]pending, error) {
	names, err := readNames(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	ps := make([]pending, len(names))
	for i, name := range names {
		ps[i].rel = path.Join(rel, name)
		if err := unix.Lstat(filepath.Join(root, ps[i].rel), &ps[i].st); err != nil {
			return nil, &os.PathError{Op: "lstat", Path: ps[i].rel, Err: err}
		}
	}
	return ps, nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// upperWriter turns an upper directory into an OCI layer tar.
type upperWriter struct {
	root  string
	trace upperTrace
	epoch time.Time
	tw    *tar.Writer
	// links maps the inodes of files with several names to the first
	// name written, so the others become hard links.
	links map[uint64]string
	// keep holds the directories written (see scan).
	keep map[string]bool
}

// writeUpper writes the layer of the upper directory root to w: whiteouts
// (0/0 character devices) as .wh.NAME, opaque directories with a
// .wh..wh..opq entry, modification times clamped to epoch, entries in name
// order, hard links kept; what trace recorded and the command left alone
// is left out.
func writeUpper(w io.Writer, root string, trace upperTrace, epoch time.Time) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	u := &upperWriter{root: root, trace: trace, epoch: epoch, tw: tar.NewWriter(bw), links: map[uint64]string{}, keep: map[string]bool{}}
	if _, err := u.scan(""); err != nil {
		return fmt.Errorf("reading the step's changes: %w", err)
	}
	if err := u.dir(""); err != nil {
		return fmt.Errorf("writing the step's layer: %w", err)
	}
	if err := u.tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// scan marks the directories under rel that belong in the layer: those
// the command changed, and those holding something that does. A directory
// only setup made (a mountpoint's parent, a copied-up /etc) is written
// only when the command put something in it.
func (u *upperWriter) scan(rel string) (bool, error) {
	ps, err := listUpper(u.root, rel)
	if err != nil {
		return false, err
	}
	found := false
	for _, p := range ps {
		changed := !u.trace.unchanged(u.root, p.rel, &p.st)
		if p.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			inner, err := u.scan(p.rel)
			if err != nil {
				return false, err
			}
			if changed || inner {
				u.keep[p.rel] = true
			}
			changed = changed || inner
		}
		found = found || changed
	}
	return found, nil
}

// dir writes what belongs in the layer of the directory rel.
func (u *upperWriter) dir(rel string) error {
	ps, err := listUpper(u.root, rel)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if !u.keep[p.rel] {
				continue
			}
			if err := u.entry(p); err != nil {
				return err
			}
			if err := u.dir(p.rel); err != nil {
				return err
			}
			continue
		}
		if u.trace.unchanged(u.root, p.rel, &p.st) {
			continue
		}
		if err := u.entry(p); err != nil {
			return err
		}
	}
	return nil
}

// entry writes the header of p (and the content of a regular file).
func (u *upperWriter) entry(p pending) error {
	st := &p.st
	full := filepath.Join(u.root, p.rel)
	mtime := time.Unix(st.Mtim.Unix())
	if mtime.After(u.epoch) {
		mtime = u.epoch
	}
	hdr := &tar.Header{
		Name:    p.rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: mtime.Truncate(time.Second),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, p.rel+"/"
		if err := u.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if isOpaque(full) {
			return u.tw.WriteHeader(u.marker(path.Join(p.rel, whiteoutOpaque)))
		}
		return nil
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			dir, name := path.Split(p.rel)
			return u.tw.WriteHeader(u.marker(dir + whiteoutPrefix + name))
		}
		hdr.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFLNK:
		target, err := os.Readlink(full)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFREG:
		if first, ok := u.links[st.Ino]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return u.tw.WriteHeader(hdr)
		}
		if st.Nlink > 1 {
			u.links[st.Ino] = p.rel
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	default:
		return nil // a socket: nothing a layer can hold
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	}
	if c := fileCapability(full); c != "" {
		hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": c}
	}
	if err := u.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(u.tw, f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p.rel, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("%s changed size while being read", p.rel)
	}
	return nil
}

// marker is a whiteout entry: an empty file, as Docker writes them.
func (u *upperWriter) marker(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, ModTime: u.epoch.Truncate(time.Second)}
}

// fileCapability returns the security.capability attribute of p, which
// setcap sets (ping, for one), or "".
func fileCapability(p string) string {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, "security.capability", buf)
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}
