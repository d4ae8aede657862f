package run

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/cache"
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

// errNotStackable marks a layer whose whiteouts cannot be written as
// overlayfs whiteouts here (no right to create them, or a filesystem
// without the extended attributes they need).
var errNotStackable = errors.New("overlayfs whiteouts not supported")

// Overlayfs marks an opaque directory with this extended attribute set to
// "y": "trusted.overlay.opaque" in a mount made by root, "user.overlay.opaque"
// in a mount made in a user namespace, with the userxattr option.
const (
	opaqueTrusted = "trusted.overlay.opaque"
	opaqueUser    = "user.overlay.opaque"
)

// maxStacked is the most layers whose directories fit the overlay mount's
// options, which the kernel takes in one page (4096 bytes): each lower is
// "l/<64 hex digits>:", the rest is "lowerdir=,upperdir=rw/upper,workdir=rw/work,userxattr".
// Images with more layers are flattened. Overlayfs itself stacks up to 500.
const maxStacked = (4096 - 1 - len("lowerdir=,upperdir=rw/upper,workdir=rw/work,userxattr")) / (len("l/:") + 64)

// Unpack extracts the layers of img into the cache, each layer once into a
// directory of its own, an entry of kind cache.RootfsLayers
// (<cacheDir>/rootfs/layers/<boot id>/<diff id hex>), shared by every image
// that has it; Image stacks them with overlayfs. So a new image that differs
// from a known one in its top layer costs only the extraction of that layer.
// A layer's whiteouts become overlayfs whiteouts (a 0/0 character device)
// and its opaque directories get the overlayfs opaque attribute (trusted.*
// as root, and user.* for mounts in a user namespace).
//
// The cache writes a layer directory in its temporary folder and renames it
// into place once complete, so neither a crash of kiln nor a concurrent
// Unpack leaves a partial tree at the final path. Nothing is flushed to
// disk, which would cost more than the extraction: the boot id in the path
// stands in for that, since only a crash of the whole machine can lose
// written data, and it changes the boot id. Trees of earlier boots are never
// used, and removed once per boot.
//
// An image whose layers cannot be stacked (too many of them, or whiteouts
// that cannot be written here, as without root on a kernel older than 5.8)
// is flattened instead: its layers are applied in order into one directory,
// an entry of kind cache.Rootfs (<cacheDir>/rootfs/<manifest digest hex>),
// which is synced to disk before it is renamed into place.
//
// Either way the tree is sealed (cache.Sealed): an entry whose files were
// changed since it was unpacked is unpacked again before it is used.
//
// Either way: entry names and hardlink targets that leave the layer are an
// error; symlinks are resolved inside the layer (or flattened rootfs), never
// on the host. Ownership and device nodes are applied only when running as
// root. Extended attributes of the entries are not applied.
func Unpack(ctx context.Context, img v1.Image, cacheDir string) (*Rootfs, error) {
	if cacheDir == "" {
		return nil, errors.New("unpacking: no cache directory")
	}
	store, err := cache.Open(cacheDir)
	if err != nil {
		return nil, err
	}
	r, release, err := unpack(ctx, store, img)
	if err != nil {
		return nil, err
	}
	release()
	return r, nil
}

// unpack is Unpack, holding the cache entries of the rootfs until release:
// a run holds them, so that no prune of the cache removes them under it.
func unpack(ctx context.Context, store *cache.Store, img v1.Image) (*Rootfs, func(), error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, nil, fmt.Errorf("reading layers: %w", err)
	}
	if n := len(layers); n > 0 && n <= maxStacked {
		r, leases, err := unpackLayers(ctx, store, img, layers)
		if !errors.Is(err, errNotStackable) {
			if err != nil {
				return nil, nil, err
			}
			return r, releaser(leases), nil
		}
	}
	l, err := flattenIn(ctx, store, img)
	if err != nil {
		return nil, nil, err
	}
	return &Rootfs{Dir: filepath.Dir(l.Path), Layers: []string{filepath.Base(l.Path)}}, releaser([]*cache.Lease{l}), nil
}

func releaser(leases []*cache.Lease) func() {
	return func() {
		for _, l := range leases {
			l.Close()
		}
	}
}

// unpackLayers extracts the layers of img that are not in the cache yet and
// returns the stack, and the leases of its layers.
func unpackLayers(ctx context.Context, store *cache.Store, img v1.Image, layers []v1.Layer) (r *Rootfs, leases []*cache.Lease, err error) {
	defer func() {
		if err != nil {
			releaser(leases)()
		}
	}()
	// The config lists the diff ids; asking the layers may cost hashing
	// their content.
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("reading image config: %w", err)
	}
	diffIDs := cf.RootFS.DiffIDs
	if len(diffIDs) != len(layers) {
		return nil, nil, fmt.Errorf("image config lists %d diff ids for %d layers", len(diffIDs), len(layers))
	}
	// Top down, each layer once: a layer that is also higher up adds
	// nothing the higher one does not show, and overlayfs may refuse a
	// directory twice.
	var order []int
	seen := map[string]bool{}
	for i := len(layers) - 1; i >= 0; i-- {
		d := diffIDs[i]
		if d.Algorithm != "sha256" {
			return nil, nil, fmt.Errorf("layer %d: diff id %s: %w", i, d, errNotStackable)
		}
		if !seen[d.Hex] {
			seen[d.Hex] = true
			order = append(order, i)
		}
	}
	// Side by side: on a cold cache each is a decompression.
	got := make([]*cache.Lease, len(order))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for j, i := range order {
		g.Go(func() error {
			l, err := unpackLayer(gctx, store, layers[i], diffIDs[i])
			if err != nil {
				return fmt.Errorf("unpacking layer %d (%s): %w", i, diffIDs[i], err)
			}
			got[j] = l
			return nil
		})
	}
	err = g.Wait()
	for _, l := range got {
		if l != nil {
			leases = append(leases, l)
		}
	}
	if err != nil {
		return nil, leases, err
	}
	r = &Rootfs{}
	for _, l := range leases {
		r.Dir = filepath.Dir(l.Path)
		r.Layers = append(r.Layers, filepath.Base(l.Path))
	}
	return r, leases, nil
}

// unpackLayer returns the tree of l, whose diff id is diffID, extracting it
// unless the cache has it.
func unpackLayer(ctx context.Context, store *cache.Store, l v1.Layer, diffID v1.Hash) (*cache.Lease, error) {
	return store.Tree(ctx, cache.RootfsLayers, diffID.Hex, func(tmp string) error {
		if err := os.Chmod(tmp, 0o755); err != nil {
			return fmt.Errorf("creating layer directory: %w", err)
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		// The directory is named after the diff id, which the image's
		// config claims: check it, so that no image can pass other
		// content off as a layer that other images share.
		h := sha256.New()
		r := io.TeeReader(rc, h)
		u := unpacker{root: tmp, privileged: os.Geteuid() == 0, stacked: true}
		if err := u.applyTar(ctx, r); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil { // the tar's padding
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
			return fmt.Errorf("content has diff id sha256:%s, not %s", got, diffID)
		}
		return nil
	}, cache.Sealed())
}

// flatten applies the layers of img in order into a rootfs in the cache
// at cacheDir and returns its path (see flattenIn).
func flatten(ctx context.Context, img v1.Image, cacheDir string) (string, error) {
	store, err := cache.Open(cacheDir)
	if err != nil {
		return "", err
	}
	l, err := flattenIn(ctx, store, img)
	if err != nil {
		return "", err
	}
	l.Close()
	return l.Path, nil
}

// flattenIn applies the layers of img in order into a rootfs, an entry of
// kind cache.Rootfs (<cacheDir>/rootfs/<manifest digest hex>). A rootfs
// that already exists is reused as is: the cache only ever makes it
// complete, extracting into a temporary directory, syncing it and renaming
// it into place, so neither a crash nor a concurrent flatten of the same
// image leaves a partial tree at the final path.
func flattenIn(ctx context.Context, store *cache.Store, img v1.Image) (*cache.Lease, error) {
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading image digest: %w", err)
	}
	return store.Tree(ctx, cache.Rootfs, d.Hex, func(tmp string) error {
		if err := os.Chmod(tmp, 0o755); err != nil {
			return fmt.Errorf("creating rootfs cache: %w", err)
		}
		layers, err := img.Layers()
		if err != nil {
			return fmt.Errorf("reading layers of %s: %w", d, err)
		}
		u := unpacker{root: tmp, privileged: os.Geteuid() == 0}
		for i, l := range layers {
			if err := u.apply(ctx, l); err != nil {
				return fmt.Errorf("unpacking layer %d: %w", i, err)
			}
		}
		return nil
	}, cache.Sealed())
}

// unpacker applies layers to root.
type unpacker struct {
	root       string
	privileged bool // root: apply owners and device nodes
	// stacked: root holds one layer, to be stacked with overlayfs on the
	// layers below it, which it cannot see. Whiteouts and opaque
	// directories are then recorded, the way overlayfs reads them, instead
	// of applied.
	stacked bool
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
	return u.applyTar(ctx, rc)
}

// applyTar applies the layer tar read from r.
func (u *unpacker) applyTar(ctx context.Context, r io.Reader) error {
	st := layerState{touched: map[string]bool{}}
	tr := tar.NewReader(r)
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
		if u.stacked {
			if err := u.mkdirAll(parent); err != nil {
				return err
			}
			return u.setOpaque(parent)
		}
		return u.opaque(st, parent)
	}
	if name, ok := strings.CutPrefix(base, whiteoutPrefix); ok {
		if name == "" || name == "." || name == ".." {
			// Would delete the directory itself or its parent.
			return fmt.Errorf("whiteout %q: %w", hdr.Name, errEscapes)
		}
		p := filepath.Join(parent, name)
		if u.stacked {
			return u.whiteout(parent, p)
		}
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
		if fi, lerr := os.Lstat(p); lerr != nil || !fi.IsDir() {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
			if lerr == nil && u.stacked && isWhiteout(fi) {
				// Deleted, then created again by this layer: what the
				// layers below had in it stays deleted.
				if err := u.setOpaque(p); err != nil {
					return err
				}
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
		err := os.Mkdir(p, 0o755)
		if errors.Is(err, fs.ErrExist) && u.stacked {
			// A whiteout of this layer, that this layer then writes
			// below: a new directory, hiding the one of lower layers.
			fi, lerr := os.Lstat(p)
			if lerr != nil || !isWhiteout(fi) {
				continue
			}
			if err := os.Remove(p); err != nil {
				return err
			}
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
			if err := u.setOpaque(p); err != nil {
				return err
			}
		} else if errors.Is(err, fs.ErrExist) {
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

// whiteout records that p, in the directory parent, hides what the layers
// below have there: a 0/0 character device, as overlayfs reads it. If this
// layer has p itself, that hides the lower layers' already.
func (u *unpacker) whiteout(parent, p string) error {
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	if err := u.mkdirAll(parent); err != nil {
		return err
	}
	if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
		if errors.Is(err, unix.EPERM) {
			return fmt.Errorf("creating whiteout %s: %w: %w", p, errNotStackable, err)
		}
		return &fs.PathError{Op: "mknod", Path: p, Err: err}
	}
	return nil
}

// setOpaque marks dir as opaque: overlayfs shows none of what the layers
// below have in it. Both attributes, as root: the same layer serves mounts
// made by root and mounts made in a user namespace.
func (u *unpacker) setOpaque(dir string) error {
	names := []string{opaqueUser}
	if u.privileged {
		names = append(names, opaqueTrusted)
	}
	for _, name := range names {
		if err := unix.Lsetxattr(dir, name, []byte("y"), 0); err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
				return fmt.Errorf("marking %s opaque: %w: %w", dir, errNotStackable, err)
			}
			return &fs.PathError{Op: "setxattr", Path: dir, Err: err}
		}
	}
	return nil
}

// isWhiteout reports whether fi is an overlayfs whiteout.
func isWhiteout(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0
}

// isOpaque reports whether the directory p is marked opaque, for either kind
// of mount.
func isOpaque(p string) bool {
	buf := make([]byte, 1)
	for _, name := range []string{opaqueTrusted, opaqueUser} {
		if n, err := unix.Lgetxattr(p, name, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
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
