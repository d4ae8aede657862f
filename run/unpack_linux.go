package run

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// OCI layer whiteouts: ".wh.NAME" deletes NAME from the layers below,
// ".wh..wh..opq" hides everything they put in its directory.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// errEscapes marks a layer entry whose name or link target points outside
// the rootfs.
var errEscapes = errors.New("path escapes the rootfs")

// Unpack applies the layers of img in order into a rootfs under cacheDir and
// returns its path, <cacheDir>/rootfs/<manifest digest hex>. A rootfs that
// already exists is reused as is: it is only ever created complete, by
// extracting into a temporary directory next to it and renaming that into
// place, so neither a crash nor a concurrent Unpack of the same image leaves
// a partial tree at the final path.
//
// OCI whiteouts are honoured. Entry names and hardlink targets that leave the
// rootfs are an error; symlinks are resolved inside the rootfs, never on the
// host. Ownership and device nodes are applied only when running as root.
// Extended attributes are not applied.
func Unpack(ctx context.Context, img v1.Image, cacheDir string) (string, error) {
	if cacheDir == "" {
		return "", errors.New("unpacking: no cache directory")
	}
	d, err := img.Digest()
	if err != nil {
		return "", fmt.Errorf("reading image digest: %w", err)
	}
	base := filepath.Join(cacheDir, "rootfs")
	final := filepath.Join(base, d.Hex)
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	// 0700: as root the tree holds setuid binaries owned by root, which
	// other users must not reach.
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("creating rootfs cache: %w", err)
	}
	tmp, err := os.MkdirTemp(base, ".tmp-"+d.Hex[:12]+"-")
	if err != nil {
		return "", fmt.Errorf("creating rootfs cache: %w", err)
	}
	defer removeAll(tmp) // a no-op once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("creating rootfs cache: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return "", fmt.Errorf("reading layers of %s: %w", d, err)
	}
	u := unpacker{root: tmp, privileged: os.Geteuid() == 0}
	for i, l := range layers {
		if err := u.apply(ctx, l); err != nil {
			return "", fmt.Errorf("unpacking layer %d: %w", i, err)
		}
	}
	if err := syncfs(tmp); err != nil {
		return "", fmt.Errorf("syncing rootfs: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, fs.ErrExist) {
			// Another kiln finished the same image first; use its tree.
			return final, nil
		}
		return "", fmt.Errorf("moving rootfs into place: %w", err)
	}
	return final, nil
}

// syncfs flushes the tree before it is renamed into place, so that after a
// power loss the final path never names a tree with missing data.
func syncfs(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// unpacker applies layers to root.
type unpacker struct {
	root       string
	privileged bool // root: apply owners and device nodes
}

// layerState is what one layer has done so far.
type layerState struct {
	// touched holds the host paths written by this layer and their
	// ancestors: an opaque whiteout hides only what lower layers left.
	touched map[string]bool
	// dirs get their mtimes last, since creating their entries changes them.
	dirs []*tar.Header
	// dirPaths are the host paths of dirs.
	dirPaths []string
}

func (u *unpacker) apply(ctx context.Context, l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	st := layerState{touched: map[string]bool{}}
	tr := tar.NewReader(rc)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := u.entry(&st, hdr, tr); err != nil {
			return err
		}
	}
	for i, p := range st.dirPaths {
		if err := setTimes(p, st.dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (u *unpacker) entry(st *layerState, hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := path.Split(rel)
	parent, err := resolveIn(u.root, dir, true)
	if err != nil {
		return fmt.Errorf("%s: %w", hdr.Name, err)
	}
	if base == whiteoutOpaque {
		return u.opaque(st, parent)
	}
	if name, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		if name == "" || name == "." || name == ".." {
			// Would delete the directory itself or its parent.
			return fmt.Errorf("whiteout %q: %w", hdr.Name, errEscapes)
		}
		p := filepath.Join(parent, name)
		if st.touched[p] {
			return nil
		}
		return os.RemoveAll(p)
	}

	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	case tar.TypeChar, tar.TypeBlock:
		if !u.privileged {
			return nil // only root may create device nodes
		}
	default:
		return nil // pax global headers and the like name no file
	}

	p := filepath.Join(parent, base)
	if rel == "." {
		p = u.root
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%s: the root must be a directory", hdr.Name)
		}
	}
	if err := u.mkdirAll(parent); err != nil {
		return err
	}
	for a := p; len(a) > len(u.root); a = filepath.Dir(a) {
		st.touched[a] = true
	}

	if hdr.Typeflag == tar.TypeDir {
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
		}
		st.dirs = append(st.dirs, hdr)
		st.dirPaths = append(st.dirPaths, p)
		return u.setMeta(p, hdr)
	}

	if err := os.RemoveAll(p); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg: // the reader turns the old TypeRegA into TypeReg
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, p); err != nil {
			return err
		}
	case tar.TypeLink:
		target, err := cleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink %s: %w", hdr.Name, err)
		}
		t, err := resolveIn(u.root, target, false)
		if err != nil {
			return fmt.Errorf("hardlink %s: %w", hdr.Name, err)
		}
		// A link shares the target's inode and so its metadata.
		return os.Link(t, p)
	case tar.TypeChar, tar.TypeBlock:
		mode := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(p, mode|0o600, int(dev)); err != nil {
			return &fs.PathError{Op: "mknod", Path: hdr.Name, Err: err}
		}
	case tar.TypeFifo:
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return &fs.PathError{Op: "mkfifo", Path: hdr.Name, Err: err}
		}
	}
	if err := u.setMeta(p, hdr); err != nil {
		return err
	}
	return setTimes(p, hdr)
}

// mkdirAll creates the missing directories of dir, which resolveIn has
// freed of symlinks, with mode 0755 whatever the umask: a layer may omit
// the parents of its entries.
func (u *unpacker) mkdirAll(dir string) error {
	rel, err := filepath.Rel(u.root, dir)
	if err != nil {
		return err
	}
	p := u.root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." {
			continue
		}
		p = filepath.Join(p, part)
		if err := os.Mkdir(p, 0o755); errors.Is(err, fs.ErrExist) {
			continue
		} else if err != nil {
			return err
		}
		if err := os.Chmod(p, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// opaque empties dir of what lower layers put there, keeping what this
// layer wrote, at any depth.
func (u *unpacker) opaque(st *layerState, dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case !st.touched[p]:
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		case e.IsDir():
			if err := u.opaque(st, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// setMeta applies owner and mode. The owner goes first: chown clears the
// setuid and setgid bits.
func (u *unpacker) setMeta(p string, hdr *tar.Header) error {
	if u.privileged {
		if err := unix.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
			return &fs.PathError{Op: "lchown", Path: hdr.Name, Err: err}
		}
	}
	if hdr.Typeflag == tar.TypeSymlink {
		return nil
	}
	mode := uint32(hdr.Mode) & 0o7777
	if hdr.Typeflag == tar.TypeDir && !u.privileged {
		// Without root, a read-only directory could not be filled by
		// later entries, whited out, or removed from the cache.
		mode |= 0o700
	}
	if err := unix.Chmod(p, mode); err != nil {
		return &fs.PathError{Op: "chmod", Path: hdr.Name, Err: err}
	}
	return nil
}

func setTimes(p string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	at, err := unix.TimeToTimespec(atime)
	if err != nil {
		return fmt.Errorf("%s: access time: %w", hdr.Name, err)
	}
	mt, err := unix.TimeToTimespec(hdr.ModTime)
	if err != nil {
		return fmt.Errorf("%s: modification time: %w", hdr.Name, err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{at, mt}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimes", Path: hdr.Name, Err: err}
	}
	return nil
}

// removeAll removes a tree that may hold directories without write or
// search permission for their owner (overlayfs leaves one in its work dir,
// and images have them), which os.RemoveAll cannot enter without root.
func removeAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil || os.Geteuid() == 0 {
		return err
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// cleanName turns a tar entry name into a clean path relative to the root
// ("." for the root itself). Names that climb out with ".." are rejected:
// no legitimate layer has them.
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q: %w", name, errEscapes)
	}
	return c, nil
}
