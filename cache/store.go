package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kiln-build/kiln/internal/flock"
)

// grace is how old an unreferenced blob or an unlocked temporary file must
// be before Prune removes it: its writer takes its lock, or names it, within
// microseconds of making it.
const grace = time.Minute

// legacyGrace protects what an older kiln, which takes no locks, may still
// be writing in the temporary folders it used.
const legacyGrace = time.Hour

// treeUsers holds a mutex per tree entry path: the process's Stores (a
// build opens several on one directory) take it around a lookup and fill.
var treeUsers sync.Map

// Store is kiln's cache in one directory: entries of several kinds (see
// Kind), which several processes may share.
type Store struct {
	dir  string
	opts options
}

type options struct {
	now    func() time.Time
	bootID func() (string, error)
}

// Option configures a Store.
type Option func(*options) error

// WithClock sets the clock that stamps an entry's last use and tells the
// age of temporary files. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithBootID sets the id of the current boot, which scopes volatile kinds
// (RootfsLayers). The default reads /proc/sys/kernel/random/boot_id.
func WithBootID(id string) Option {
	return func(o *options) error {
		if err := checkName(id); err != nil {
			return fmt.Errorf("WithBootID: %w", err)
		}
		o.bootID = func() (string, error) { return id, nil }
		return nil
	}
}

// Open returns the store rooted at dir, creating it if needed.
func Open(dir string, opts ...Option) (*Store, error) {
	if dir == "" {
		return nil, errors.New("opening cache: no directory given")
	}
	o := options{now: time.Now, bootID: readBootID}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("opening cache: %w", err)
		}
	}
	s := &Store{dir: dir, opts: o}
	for _, d := range []string{s.keysDir(), s.blobsDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("opening cache: %w", err)
		}
	}
	if err := os.MkdirAll(s.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("opening cache: %w", err)
	}
	return s, nil
}

// Dir returns the directory the store lives in.
func (s *Store) Dir() string { return s.dir }

func (s *Store) now() time.Time { return s.opts.now() }

func (s *Store) tmpDir() string { return s.kindDir(Temp) }

// kindDir returns the directory of kind k.
func (s *Store) kindDir(k Kind) string {
	return filepath.Join(s.dir, filepath.FromSlash(k.spec().dir))
}

// Lease is an entry in use. Until Close, Prune and Clear leave it in place;
// its last use was stamped when it was handed out.
type Lease struct {
	// Path is where the entry is.
	Path string
	lock *flock.Lock
}

// Close releases the entry. The path stays valid until a Prune or a Clear
// removes the entry.
func (l *Lease) Close() error {
	if l == nil {
		return nil
	}
	return l.lock.Close()
}

// entryPath returns where key of kind k lives, checking that key has the
// kind's number of path elements, none of them hidden or climbing out.
func (s *Store) entryPath(k Kind, key string) (string, error) {
	spec := k.spec()
	parts := strings.Split(key, "/")
	if len(parts) != spec.depth {
		return "", fmt.Errorf("cache key %q of %s: want %d path elements", key, k, spec.depth)
	}
	for _, p := range parts {
		if err := checkName(p); err != nil {
			return "", fmt.Errorf("cache key %q of %s: %w", key, k, err)
		}
	}
	dir := s.kindDir(k)
	if spec.volatile {
		boot, err := s.opts.bootID()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(dir, boot)
	}
	return filepath.Join(dir, filepath.Join(parts...)), nil
}

// checkName accepts a single visible path element: names starting with a
// dot are temporary files of earlier versions.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("%q is not a plain file name", name)
	}
	return nil
}

func readBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("reading boot id: %w", err)
	}
	boot := strings.TrimSpace(string(b))
	if err := checkName(boot); err != nil {
		return "", fmt.Errorf("boot id: %w", err)
	}
	return boot, nil
}

// errStale marks a path that no longer names the file a lock was taken on:
// a Prune moved it away meanwhile.
var errStale = errors.New("entry moved away")

// hold takes a shared lock on the entry at path, which must be a directory
// when dir is set and a regular file otherwise. A missing entry is an
// fs.ErrNotExist error, one of the wrong type errWrongType.
func hold(path string, dir bool) (*flock.Lock, error) {
	lock, err := flock.Shared(path)
	if err != nil {
		return nil, err
	}
	held, err := lock.File().Stat()
	if err != nil {
		lock.Close()
		return nil, err
	}
	now, err := os.Lstat(path)
	if err != nil || !os.SameFile(held, now) {
		lock.Close()
		return nil, errStale
	}
	if held.IsDir() != dir || (!dir && !held.Mode().IsRegular()) {
		lock.Close()
		return nil, errWrongType
	}
	return lock, nil
}

var errWrongType = errors.New("entry of the wrong type")

// touch stamps the entry's last use.
func (s *Store) touch(path string) {
	now := s.now()
	_ = os.Chtimes(path, now, now)
}

// Tree returns the directory entry key of kind k, holding it until the
// lease is closed. On a miss fill writes the entry into dir, an empty
// directory (mode 0700) in the store's temporary folder, which is synced
// to disk (unless k is volatile) and renamed into place only if fill
// succeeds: no reader, concurrent writer or crash sees half an entry. When
// several processes fill one key at once, the first to finish wins and the
// others use its entry; within a process, callers of one key wait for the
// one filling it instead of filling it too.
func (s *Store) Tree(ctx context.Context, k Kind, key string, fill func(dir string) error, opts ...TreeOption) (*Lease, error) {
	var o treeOptions
	for _, opt := range opts {
		opt(&o)
	}
	spec := k.spec()
	if spec.shape != shapeDir {
		return nil, fmt.Errorf("cache: %s entries are not directories", k)
	}
	path, err := s.entryPath(k, key)
	if err != nil {
		return nil, err
	}
	// Two steps of one build often need the same unpacked layers at once.
	mu, _ := treeUsers.LoadOrStore(path, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	for range 5 {
		lock, err := hold(path, true)
		switch {
		case err == nil:
			if o.sealed {
				if err := checkSealOnce(path); err != nil {
					lock.Close()
					s.drop(ctx, k, path, err.Error())
					break
				}
			}
			s.touch(path)
			return &Lease{Path: path, lock: lock}, nil
		case errors.Is(err, errStale):
			continue
		case errors.Is(err, errWrongType):
			s.drop(ctx, k, path, "not a directory")
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("reading cache entry %s: %w", path, err)
		}
		lease, err := s.fillTree(ctx, k, path, fill, o)
		if errors.Is(err, errStale) {
			continue // another process's entry appeared first
		}
		return lease, err
	}
	return nil, fmt.Errorf("reading cache entry %s: it keeps being removed", path)
}

func (s *Store) fillTree(ctx context.Context, k Kind, path string, fill func(dir string) error, o treeOptions) (*Lease, error) {
	if err := s.makeParent(k, path); err != nil {
		return nil, err
	}
	tmp, lock, err := s.tempDir(k.String() + "-")
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			lock.Close()
			removeAll(tmp)
		}
	}()
	if err := fill(tmp); err != nil {
		return nil, err
	}
	// A fill that returned while its build was being cancelled may have
	// taken a shortcut; what it left is not kept.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var sealed string
	if o.sealed {
		if sealed, err = seal(tmp); err != nil {
			return nil, err
		}
	}
	if !k.spec().volatile {
		if err := syncTree(tmp); err != nil {
			return nil, fmt.Errorf("syncing %s: %w", tmp, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		if fi, serr := os.Lstat(path); serr == nil && fi.IsDir() {
			return nil, errStale
		}
		return nil, fmt.Errorf("moving cache entry into place: %w", err)
	}
	keep = true
	if sealed != "" {
		// Just hashed: the first use need not hash it again.
		sealChecked.Store(sealCheckKey(path, sealed), struct{}{})
	}
	s.touch(path)
	return &Lease{Path: path, lock: lock}, nil
}

// makeParent makes the directories above the entry at path. The first
// entry of a volatile kind in this boot also removes the folders of
// earlier boots: no process of theirs is alive to use them, and their data
// may never have reached the disk.
func (s *Store) makeParent(k Kind, path string) error {
	spec := k.spec()
	perm := os.FileMode(0o755)
	if spec.private {
		perm = 0o700
	}
	parent := filepath.Dir(path)
	fresh := false
	if spec.volatile {
		if _, err := os.Stat(parent); errors.Is(err, fs.ErrNotExist) {
			fresh = true
		}
	}
	if err := os.MkdirAll(parent, perm); err != nil {
		return fmt.Errorf("making the cache folder for %s: %w", k, err)
	}
	if fresh {
		boots, _ := os.ReadDir(s.kindDir(k))
		for _, b := range boots {
			if b.Name() != filepath.Base(parent) {
				s.discard(filepath.Join(s.kindDir(k), b.Name()))
			}
		}
	}
	return nil
}

// tempDir makes a directory in the temporary folder and locks it, so that
// Prune leaves it alone.
func (s *Store) tempDir(pattern string) (string, *flock.Lock, error) {
	if err := os.MkdirAll(s.tmpDir(), 0o700); err != nil {
		return "", nil, fmt.Errorf("making the cache's temporary folder: %w", err)
	}
	dir, err := os.MkdirTemp(s.tmpDir(), pattern)
	if err != nil {
		return "", nil, fmt.Errorf("making a temporary folder in the cache: %w", err)
	}
	lock, err := flock.Shared(dir)
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, lock, nil
}

// TempDir makes an empty directory in the store's temporary folder, on the
// cache's file system, for scratch work; Prune and Clear leave it alone
// until remove deletes it. One that a process that died left behind is
// removed by the next Prune.
func (s *Store) TempDir(pattern string) (dir string, remove func() error, err error) {
	dir, lock, err := s.tempDir(pattern)
	if err != nil {
		return "", nil, err
	}
	return dir, func() error {
		err := removeAll(dir)
		lock.Close()
		return err
	}, nil
}

// drop removes a corrupt entry, so that it is made anew.
func (s *Store) drop(ctx context.Context, k Kind, path, why string) {
	slog.WarnContext(ctx, "dropping corrupt cache entry; it will be made anew", "kind", k.String(), "path", path, "reason", why)
	s.discard(path)
}

// discard moves path out of sight into the temporary folder, then removes
// it, so that no reader finds it half removed.
func (s *Store) discard(path string) error {
	trash, err := os.MkdirTemp(s.tmpDir(), "trash-")
	if err == nil {
		if err = os.Rename(path, filepath.Join(trash, "x")); err == nil {
			return removeAll(trash)
		}
		os.Remove(trash)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	}
	return removeAll(path)
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

// DefaultDir returns where the cache lives when no directory is given:
// KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln. getenv is
// os.Getenv at the CLI edge.
func DefaultDir(getenv func(string) string) (string, error) {
	if d := getenv("KILN_CACHE_DIR"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kiln"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", fmt.Errorf("finding the cache directory: none of KILN_CACHE_DIR, XDG_CACHE_HOME, HOME is set; pass --cache-dir")
	}
	return filepath.Join(home, ".cache", "kiln"), nil
}
