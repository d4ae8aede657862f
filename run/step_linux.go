package run

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/envlist"
	"github.com/kiln-build/kiln/internal/flock"
	"github.com/kiln-build/kiln/layers"
)

// stepHostname is the hostname of a step, BuildKit's.
const stepHostname = "buildkitsandbox"

// Step runs one Dockerfile RUN on the stage whose layers are lower (bottom
// first) and returns its filesystem changes as a gzip-compressed layer,
// held in memory; StepTo writes the uncompressed tar instead, for a
// caller that stores it (cache.Store.Put).
func Step(ctx context.Context, lower []v1.Layer, spec StepSpec, opts ...Option) (v1.Layer, error) {
	var buf bytes.Buffer
	if _, err := layers.Compress(&buf, func(w io.Writer) error {
		return StepTo(ctx, lower, spec, w, opts...)
	}); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// StepTo runs one Dockerfile RUN, as Step does, and writes its layer, an
// uncompressed OCI layer tar, to w.
//
// The lower layers are unpacked through the cache as Image unpacks an
// image's (each once, shared with images), stacked read-only under a fresh
// upper directory, and the command runs in the sandbox Image uses (Docker's
// capabilities, seccomp profile, no_new_privs, masked paths), with network
// as Docker gives RUN by default. Root runs it with the container's ids 0
// to 65535 on unprivileged host ids, as Image does; without root it needs
// the caller's subordinate ids (/etc/subuid, /etc/subgid, and newuidmap),
// so that the container has a root and other users, and says so if they
// are missing.
//
// The layer is the upper directory, read in the container's user
// namespace: owners are the container's ids, deleted paths whiteouts
// (.wh.NAME), replaced directories opaque (.wh..wh..opq), times clamped
// to spec.Epoch, entries in name order, hard links kept. Mountpoints
// leave no trace, and what the command does to /etc/hosts,
// /etc/resolv.conf and /etc/hostname, which the sandbox writes, is not
// kept, as Docker binds them over the stage's. A command that exits
// non-zero writes nothing and returns a
// *StepExitError. Processes the command leaves running are killed when it
// exits, and all of them at once when ctx ends.
//
// Of the options, WithCacheDir (required), WithStdout and WithStderr
// apply; the others configure Image alone.
func StepTo(ctx context.Context, lower []v1.Layer, spec StepSpec, w io.Writer, opts ...Option) error {
	o, err := newOptions(opts)
	if err != nil {
		return err
	}
	if len(spec.Args) == 0 {
		return errors.New("step: no command")
	}
	if len(lower) == 0 {
		return errors.New("step: no layers to run on")
	}
	store, err := cache.Open(o.cacheDir)
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, lower...)
	if err != nil {
		return fmt.Errorf("stacking the step's layers: %w", err)
	}
	rootfs, release, err := unpack(ctx, store, img)
	if err != nil {
		return err
	}
	defer release()
	is, err := newStepSpec(ctx, store, rootfs, spec, o)
	if err != nil {
		return err
	}
	defer is.release()
	scratch, remove, err := store.TempDir("step-")
	if err != nil {
		return fmt.Errorf("creating scratch space: %w", err)
	}
	defer remove()
	is.Scratch = scratch
	err = startShifted(ctx, is.initSpec, o, w)
	var exit *ExitError
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("step %s: %w", commandLine(spec.Args), ctx.Err())
	case errors.As(err, &exit):
		return &StepExitError{Args: spec.Args, Code: exit.Code}
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("step %s: %w", commandLine(spec.Args), &SandboxDeniedError{Err: err})
	case err != nil:
		return fmt.Errorf("step %s: %w", commandLine(spec.Args), err)
	}
	return nil
}

// stepInit is a step's init spec, with the cache entries it holds until
// release.
type stepInit struct {
	*initSpec
	releases []func()
}

func (s *stepInit) release() {
	for _, f := range s.releases {
		f()
	}
}

// mount adds m to the spec; nSSH counts the ssh mounts before it.
func (s *stepInit) mount(ctx context.Context, store *cache.Store, rootfs *Rootfs, m StepMount, nSSH int) error {
	target, err := m.target(nSSH)
	if err != nil {
		return err
	}
	switch m.Type {
	case MountSecret:
		data, err := os.ReadFile(m.Source)
		if err != nil {
			return fmt.Errorf("secret %s: %w", m.ID, err)
		}
		s.Secrets = append(s.Secrets, secretFile{Target: target, Data: data, UID: m.UID, GID: m.GID, Mode: modeOr(m.Mode, 0o400)})
	case MountSSH:
		s.Mounts = append(s.Mounts, Mount{Source: m.Source, Target: target})
	case MountBind:
		if len(m.From) == 0 {
			s.Mounts = append(s.Mounts, Mount{Source: filepath.Clean(m.Source), Target: target, ReadOnly: !m.ReadWrite})
			return nil
		}
		f, err := s.from(ctx, store, rootfs, m)
		if err != nil {
			return err
		}
		f.Target = target
		s.From = append(s.From, f)
	case MountCache:
		lock, inUse, err := shareCache(store, m)
		if err != nil {
			return err
		}
		if inUse {
			s.Tmpfs = append(s.Tmpfs, target)
			return nil
		}
		s.releases = append(s.releases, func() { lock.Close() })
		l, err := cacheMount(ctx, store, m)
		if err != nil {
			return err
		}
		s.releases = append(s.releases, func() { l.Close() })
		s.Mounts = append(s.Mounts, Mount{Source: l.Path, Target: target})
		s.Owners = append(s.Owners, owner{Target: target, UID: m.UID, GID: m.GID, Mode: modeOr(m.Mode, 0o755)})
	case MountTmpfs:
		s.Tmpfs = append(s.Tmpfs, target)
	default:
		return fmt.Errorf("mount type %q: want secret, cache, bind, ssh or tmpfs", m.Type)
	}
	return nil
}

// modeOr returns m as permission bits, or def if m is 0.
func modeOr(m fs.FileMode, def uint32) uint32 {
	if m == 0 {
		return def
	}
	return uint32(m.Perm())
}

// from unpacks the layers of a bind mount with From into the cache, next
// to the step's own, where the init finds them.
func (s *stepInit) from(ctx context.Context, store *cache.Store, rootfs *Rootfs, m StepMount) (fromMount, error) {
	f := fromMount{Source: m.Source, Target: m.Target, ReadOnly: !m.ReadWrite}
	if f.Source == "" {
		f.Source = "/"
	}
	img, err := mutate.AppendLayers(empty.Image, m.From...)
	if err != nil {
		return f, fmt.Errorf("bind mount %s: %w", f.Target, err)
	}
	r, release, err := unpack(ctx, store, img)
	if err != nil {
		return f, fmt.Errorf("bind mount %s: %w", f.Target, err)
	}
	s.releases = append(s.releases, release)
	if r.Dir != rootfs.Dir {
		// Flattened: too many layers to stack, or whiteouts that
		// cannot be written here.
		return f, fmt.Errorf("bind mount %s: its layers cannot be stacked next to the step's", f.Target)
	}
	f.Layers = r.Layers
	return f, nil
}

func newStepSpec(ctx context.Context, store *cache.Store, rootfs *Rootfs, spec StepSpec, o *options) (*stepInit, error) {
	id, err := lookupUser(rootfs.paths(), spec.User)
	if err != nil {
		return nil, err
	}
	dir := spec.Workdir
	if dir == "" {
		dir = "/"
	}
	sb, capMask, seccomp, err := defaultConfinement()
	if err != nil {
		return nil, err
	}
	s := &stepInit{initSpec: &initSpec{
		Sandbox:  sb,
		CapMask:  capMask,
		Seccomp:  seccomp,
		Lower:    rootfs.Dir,
		Layers:   rootfs.Layers,
		Args:     spec.Args,
		User:     id,
		Dir:      dir,
		Hostname: stepHostname,
		Step:     true,
		Epoch:    spec.Epoch.Unix(),
		offline:  spec.NoNetwork,
	}}
	if spec.Epoch.IsZero() {
		s.Epoch = 0
	}
	var env []string
	nSSH := 0
	for _, m := range spec.Mounts {
		if err := s.mount(ctx, store, rootfs, m, nSSH); err != nil {
			s.release()
			return nil, err
		}
		if m.Type == MountSSH {
			if nSSH == 0 {
				env = append(env, "SSH_AUTH_SOCK="+s.Mounts[len(s.Mounts)-1].Target)
			}
			nSSH++
		}
	}
	defaults := []string{"PATH=" + defaultPath, "HOSTNAME=" + stepHostname, "HOME=" + id.Home}
	s.Env = envlist.Merge(defaults, spec.Env, env)
	switch {
	case os.Geteuid() != 0:
		ids, err := lookupSubIDs("/etc/subuid", "/etc/subgid")
		if err != nil {
			s.release()
			return nil, &SandboxDeniedError{Err: err}
		}
		s.SubIDs, s.ids = true, ids
	case !o.noShift:
		s.Shifted = true
	}
	return s, nil
}

// cacheKey is a cache mount's key in the store: its id, else its target,
// as BuildKit keys them.
func cacheKey(m StepMount) (id, key string, err error) {
	id = m.ID
	if id == "" {
		id = m.Target
	}
	if id == "" {
		return "", "", errors.New("cache mount: want an id or a target")
	}
	sum := sha256.Sum256([]byte(id))
	return id, hex.EncodeToString(sum[:]), nil
}

// shareCache takes the lock m's sharing mode asks for on its cache, on a
// file of the store's locks folder: shared, or exclusive (waiting) for a
// locked one. A private one that another step holds is inUse, with no
// lock: the step gets an empty tmpfs in its place.
func shareCache(store *cache.Store, m StepMount) (lock *flock.Lock, inUse bool, err error) {
	id, key, err := cacheKey(m)
	if err != nil {
		return nil, false, err
	}
	dir := filepath.Join(store.Dir(), "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("cache mount %s: %w", id, err)
	}
	path := filepath.Join(dir, "mount-"+key)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("cache mount %s: %w", id, err)
	}
	f.Close()
	switch m.Sharing {
	case "", SharingShared:
		lock, err = flock.Shared(path)
	case SharingLocked:
		lock, err = flock.Exclusive(path)
	case SharingPrivate:
		lock, err = flock.TryExclusive(path)
		if errors.Is(err, flock.ErrBusy) {
			return nil, true, nil
		}
	default:
		return nil, false, fmt.Errorf("cache mount %s: sharing %q: want shared, locked or private", id, m.Sharing)
	}
	if err != nil {
		return nil, false, fmt.Errorf("cache mount %s: %w", id, err)
	}
	return lock, false, nil
}

// cacheMount returns the directory of a cache mount, made empty the first
// time.
func cacheMount(ctx context.Context, store *cache.Store, m StepMount) (*cache.Lease, error) {
	id, key, err := cacheKey(m)
	if err != nil {
		return nil, err
	}
	l, err := store.Tree(ctx, cache.MountCaches, key, func(dir string) error {
		return os.Chmod(dir, 0o755)
	})
	if err != nil {
		return nil, fmt.Errorf("cache mount %s: %w", id, err)
	}
	return l, nil
}
