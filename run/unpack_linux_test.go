package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/imagestore"
	"github.com/kiln-build/kiln/internal/xattr"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"
)

func TestUnpack(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]entry
		want   map[string]string
		// wantStacked, when set, is the stacked view where it differs
		// from the flat one.
		wantStacked map[string]string
	}{{
		name: "files, dirs, links, implicit parents",
		layers: [][]entry{{
			dirEntry("etc", 0o750),
			fileEntry("etc/a", 0o640, "A"),
			symlinkEntry("etc/b", "a"),
			hardlinkEntry("etc/c", "etc/a"),
			fileEntry("/usr/bin/tool", 0o755, "T"),
			fileEntry("./usr/bin/suid", 0o4755, "S"),
		}},
		want: map[string]string{
			"etc":          "drwxr-x---",
			"etc/a":        "-rw-r----- A",
			"etc/b":        "Lrwxrwxrwx -> a",
			"etc/c":        "-rw-r----- A",
			"usr":          "drwxr-xr-x",
			"usr/bin":      "drwxr-xr-x",
			"usr/bin/tool": "-rwxr-xr-x T",
			"usr/bin/suid": "urwxr-xr-x S",
		},
	}, {
		name: "whiteouts remove files and dirs of lower layers",
		layers: [][]entry{{
			fileEntry("a/x", 0o644, "x"),
			fileEntry("a/y", 0o644, "y"),
			fileEntry("b/z", 0o644, "z"),
		}, {
			whiteoutEntry("a/x"),
			whiteoutEntry("b"),
			// Only at the top: a stacked layer creates the parents of its
			// whiteouts, and overlayfs lists a whiteout in a directory
			// that no lower layer has.
			whiteoutEntry("never"),
		}},
		want: map[string]string{
			"a":   "drwxr-xr-x",
			"a/y": "-rw-r--r-- y",
		},
	}, {
		name: "opaque dir hides lower layers, keeps its own layer, marker first",
		layers: [][]entry{{
			fileEntry("d/old", 0o644, "old"),
			fileEntry("d/sub/old", 0o644, "old"),
			fileEntry("e/kept", 0o644, "kept"),
		}, {
			dirEntry("d", 0o755),
			opaqueEntry("d"),
			fileEntry("d/new", 0o644, "new"),
			fileEntry("d/sub/new", 0o644, "new"),
		}},
		want: map[string]string{
			"d":         "drwxr-xr-x",
			"d/new":     "-rw-r--r-- new",
			"d/sub":     "drwxr-xr-x",
			"d/sub/new": "-rw-r--r-- new",
			"e":         "drwxr-xr-x",
			"e/kept":    "-rw-r--r-- kept",
		},
	}, {
		name: "opaque dir hides lower layers, keeps its own layer, marker last",
		layers: [][]entry{{
			fileEntry("d/old", 0o644, "old"),
			fileEntry("d/sub/old", 0o644, "old"),
		}, {
			fileEntry("d/sub/new", 0o644, "new"),
			opaqueEntry("d"),
		}},
		want: map[string]string{
			"d":         "drwxr-xr-x",
			"d/sub":     "drwxr-xr-x",
			"d/sub/new": "-rw-r--r-- new",
		},
	}, {
		name: "later layers replace files with dirs and back",
		layers: [][]entry{{
			fileEntry("x/f", 0o644, "f"),
			fileEntry("y", 0o644, "y"),
			fileEntry("z", 0o644, "old"),
		}, {
			fileEntry("x", 0o600, "now a file"),
			dirEntry("y", 0o700),
			fileEntry("z", 0o600, "new"),
		}},
		want: map[string]string{
			"x": "-rw------- now a file",
			"y": "drwx------",
			"z": "-rw------- new",
		},
	}, {
		name: "writes through a symlinked dir stay inside",
		layers: [][]entry{{
			dirEntry("usr/lib", 0o755),
			symlinkEntry("lib", "/usr/lib"),
		}, {
			fileEntry("lib/libc.so", 0o644, "c"),
		}},
		want: map[string]string{
			"lib":             "Lrwxrwxrwx -> /usr/lib",
			"usr":             "drwxr-xr-x",
			"usr/lib":         "drwxr-xr-x",
			"usr/lib/libc.so": "-rw-r--r-- c",
		},
		// A layer extracted on its own cannot see the symlink below
		// it: its directory hides the symlink, as with containerd and
		// Docker, which stack layers the same way.
		wantStacked: map[string]string{
			"lib":         "drwxr-xr-x",
			"lib/libc.so": "-rw-r--r-- c",
			"usr":         "drwxr-xr-x",
			"usr/lib":     "drwxr-xr-x",
		},
	}}
	for _, tc := range tests {
		for _, mode := range unpackModes(t) {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				img := newImage(t, v1.Config{}, tc.layers...)
				got, err := unpackTree(t, mode, img, t.TempDir())
				if err != nil {
					t.Fatalf("Unpack() = %v", err)
				}
				want := tc.want
				if mode == stacked && tc.wantStacked != nil {
					want = tc.wantStacked
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Unpack() tree mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// The two ways layers reach the disk: stacked, Unpack's own, and flat, its
// fallback.
const (
	stacked = "stacked"
	flat    = "flat"
)

// unpackModes returns the modes the tests can check here: the stacked view
// is checked by mounting it, which needs root.
func unpackModes(t *testing.T) []string {
	if os.Geteuid() != 0 {
		t.Log("not root: the stacked view is only checked through Image")
		return []string{flat}
	}
	return []string{stacked, flat}
}

// unpackTree unpacks img the mode's way and returns the tree a run sees.
func unpackTree(t *testing.T, mode string, img v1.Image, cache string) (map[string]string, error) {
	t.Helper()
	if mode == flat {
		dir, err := flatten(context.Background(), img, cache)
		if err != nil {
			return nil, err
		}
		return listTree(t, dir), nil
	}
	r, err := Unpack(context.Background(), img, cache)
	if err != nil {
		return nil, err
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Layers) != len(ls) {
		t.Fatalf("Unpack() = %d lower dirs, want one per layer (%d)", len(r.Layers), len(ls))
	}
	return mountedTree(t, r), nil
}

// mountedTree mounts r as a run does, and lists it.
func mountedTree(t *testing.T, r *Rootfs) map[string]string {
	t.Helper()
	// Not t.TempDir: test names hold commas, which the options cannot.
	dir, err := os.MkdirTemp("", "kiln-run-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"upper", "work", "mnt"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var lowers []string
	for i, p := range r.paths() {
		l := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Symlink(p, l); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, l)
	}
	mnt := filepath.Join(dir, "mnt")
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", strings.Join(lowers, ":"), dir, dir)
	if err := unix.Mount("overlay", mnt, "overlay", 0, opts); err != nil {
		t.Fatalf("mounting %s: %v", opts, err)
	}
	defer func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Error(err)
		}
	}()
	return listTree(t, mnt)
}

func TestUnpackMetadata(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners are applied only as root")
	}
	owned := fileEntry("owned", 0o644, "o")
	owned.hdr.Uid, owned.hdr.Gid = 1000, 2000
	img := newImage(t, v1.Config{}, []entry{owned, dirEntry("d", 0o755)})
	rootfs, err := Unpack(context.Background(), img, t.TempDir())
	if err != nil {
		t.Fatalf("Unpack() = %v", err)
	}
	var st syscall.Stat_t
	top := rootfs.paths()[0]
	if err := syscall.Lstat(filepath.Join(top, "owned"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 2000 {
		t.Errorf("Unpack() owner = %d:%d, want 1000:2000", st.Uid, st.Gid)
	}
	for _, p := range []string{"owned", "d"} {
		fi, err := os.Lstat(filepath.Join(top, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(epoch) {
			t.Errorf("Unpack() mtime of %s = %v, want %v", p, fi.ModTime(), epoch)
		}
	}
}

func TestUnpackEscapes(t *testing.T) {
	// host stands for the rest of the machine: nothing may appear in it.
	host := t.TempDir()
	tests := []struct {
		name    string
		layers  [][]entry
		wantErr error  // nil: unpacks, inside the rootfs
		inside  string // with wantErr nil: where the file must land
		// crossLayer: the entry leaves through a symlink of a lower
		// layer, which a stacked layer does not see: it unpacks.
		crossLayer bool
	}{{
		name:    "dot-dot name",
		layers:  [][]entry{{fileEntry("../escaped", 0o644, "x")}},
		wantErr: errEscapes,
	}, {
		name:    "dot-dot in the middle",
		layers:  [][]entry{{fileEntry("a/../../escaped", 0o644, "x")}},
		wantErr: errEscapes,
	}, {
		name:    "whiteout of the parent dir",
		layers:  [][]entry{{fileEntry(".wh...", 0o644, "")}},
		wantErr: errEscapes,
	}, {
		name:    "whiteout of the dir itself",
		layers:  [][]entry{{fileEntry("a/.wh..", 0o644, "")}},
		wantErr: errEscapes,
	}, {
		name:    "hardlink to outside",
		layers:  [][]entry{{hardlinkEntry("passwd", "../../../../etc/passwd")}},
		wantErr: errEscapes,
	}, {
		name:    "hardlink through an absolute symlink",
		layers:  [][]entry{{symlinkEntry("hostetc", "/etc"), hardlinkEntry("passwd", "hostetc/passwd")}},
		wantErr: os.ErrNotExist, // the image's /etc/passwd, which does not exist
	}, {
		name:       "absolute symlink parent",
		layers:     [][]entry{{symlinkEntry("evil", host)}, {fileEntry("evil/escaped", 0o644, "x")}},
		inside:     filepath.Join(host, "escaped"),
		crossLayer: true,
	}, {
		name:       "relative symlink parent climbing out",
		layers:     [][]entry{{symlinkEntry("evil", strings.Repeat("../", 20)+host)}, {fileEntry("evil/escaped", 0o644, "x")}},
		inside:     filepath.Join(host, "escaped"),
		crossLayer: true,
	}, {
		name:       "symlink parent climbing out in the same layer",
		layers:     [][]entry{{symlinkEntry("evil", "../../"+host), fileEntry("evil/escaped", 0o644, "x")}},
		inside:     filepath.Join(host, "escaped"),
		crossLayer: false,
	}, {
		name:       "symlink loop",
		layers:     [][]entry{{symlinkEntry("a", "b"), symlinkEntry("b", "a")}, {fileEntry("a/x", 0o644, "x")}},
		wantErr:    syscall.ELOOP,
		crossLayer: true,
	}, {
		name:    "symlink loop in the same layer",
		layers:  [][]entry{{symlinkEntry("a", "b"), symlinkEntry("b", "a"), fileEntry("a/x", 0o644, "x")}},
		wantErr: syscall.ELOOP,
	}}
	for _, tc := range tests {
		for _, mode := range []string{stacked, flat} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				img := newImage(t, v1.Config{}, tc.layers...)
				cache := t.TempDir()
				var layers []string
				var err error
				if mode == flat {
					var dir string
					dir, err = flatten(context.Background(), img, cache)
					layers = []string{dir}
				} else {
					var r *Rootfs
					if r, err = Unpack(context.Background(), img, cache); r != nil {
						layers = r.paths()
					}
				}
				wantErr := tc.wantErr
				if mode == stacked && tc.crossLayer {
					wantErr = nil
				}
				if !errors.Is(err, wantErr) {
					t.Fatalf("Unpack() = %v, want %v", err, wantErr)
				}
				if left, _ := os.ReadDir(host); len(left) != 0 {
					t.Errorf("Unpack() wrote %v outside the rootfs", left)
				}
				if wantErr != nil {
					assertNoRootfs(t, cache)
					return
				}
				if mode == stacked && tc.crossLayer {
					return // the lower symlink is hidden: there is no inside
				}
				if _, err := resolveInLayers(layers, tc.inside); err != nil {
					t.Errorf("Unpack() did not put the file at %s inside: %v", tc.inside, err)
				}
			})
		}
	}
}

// assertNoRootfs checks that a failed Unpack left nothing in cache but
// the directories that hold layers and whole layers (those unpacked side
// by side with a broken one are kept: each is sealed, as a complete entry
// is), and nothing in its temporary folder.
func assertNoRootfs(t *testing.T, cache string) {
	t.Helper()
	if left, _ := os.ReadDir(filepath.Join(cache, "tmp")); len(left) != 0 {
		t.Errorf("Unpack() left %d temporary files in the cache", len(left))
	}
	root := filepath.Join(cache, "rootfs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if whole, _ := filepath.Match("layers/*/*", rel); whole {
			if _, err := xattr.Get(p, "user.kiln.tree"); err != nil && !errors.Is(err, errors.ErrUnsupported) {
				t.Errorf("Unpack() left %s in the cache, not sealed: %v", rel, err)
			}
			return fs.SkipDir
		}
		if m, _ := filepath.Match("layers/*", rel); rel != "layers" && !m {
			t.Errorf("Unpack() left %s in the cache", rel)
			return fs.SkipDir
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

func TestFlattenReuse(t *testing.T) {
	img := newImage(t, v1.Config{}, []entry{fileEntry("f", 0o644, "f")})
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	first, err := flatten(context.Background(), img, cacheDir)
	if err != nil {
		t.Fatalf("flatten() = %v", err)
	}
	if want := filepath.Join(cacheDir, "rootfs", d.Hex); first != want {
		t.Errorf("flatten() = %s, want %s", first, want)
	}
	// The same directory the second time: it reuses, it does not unpack.
	before, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	second, err := flatten(context.Background(), img, cacheDir)
	if err != nil {
		t.Fatalf("flatten() = %v", err)
	}
	if second != first {
		t.Errorf("flatten() = %s, want %s", second, first)
	}
	if after, err := os.Stat(second); err != nil || !os.SameFile(before, after) {
		t.Errorf("flatten() unpacked again: %v", err)
	}
	// A file added since: the next process (forgetting the checks stands
	// for one) checks the tree before reuse, and unpacks it again.
	if err := os.WriteFile(filepath.Join(first, "mark"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cache.ForgetSealChecks()
	third, err := flatten(context.Background(), img, cacheDir)
	if err != nil {
		t.Fatalf("flatten() = %v", err)
	}
	if _, err := os.Stat(filepath.Join(third, "mark")); err == nil {
		t.Errorf("flatten() reused a rootfs changed since it was unpacked")
	}
}

// countingLayer counts how often its content is read.
type countingLayer struct {
	v1.Layer
	reads *atomic.Int32
}

func (l countingLayer) Uncompressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Uncompressed()
}

func TestUnpackSharesLayers(t *testing.T) {
	var ls []v1.Layer
	reads := make([]*atomic.Int32, 4)
	for i, es := range [][]entry{
		{fileEntry("base", 0o644, "base")},
		{fileEntry("lib", 0o644, "lib")},
		{fileEntry("handler", 0o755, "v1")},
		{fileEntry("handler", 0o755, "v2")},
	} {
		l, err := newLayer(es...)
		if err != nil {
			t.Fatal(err)
		}
		reads[i] = &atomic.Int32{}
		ls = append(ls, countingLayer{l, reads[i]})
	}
	v1Img := withLayers(t, v1.Config{}, ls[0], ls[1], ls[2])
	v2Img := withLayers(t, v1.Config{}, ls[0], ls[1], ls[3])
	cache := t.TempDir()
	first, err := Unpack(context.Background(), v1Img, cache)
	if err != nil {
		t.Fatalf("Unpack() = %v", err)
	}
	before, err := os.Stat(first.paths()[2])
	if err != nil {
		t.Fatal(err)
	}
	second, err := Unpack(context.Background(), v2Img, cache)
	if err != nil {
		t.Fatalf("Unpack() = %v", err)
	}
	got := []int32{reads[0].Load(), reads[1].Load(), reads[2].Load(), reads[3].Load()}
	if want := []int32{1, 1, 1, 1}; !cmp.Equal(got, want) {
		t.Errorf("Unpack() read the layers %v times, want %v", got, want)
	}
	if !cmp.Equal(first.Layers[1:], second.Layers[1:]) || first.Layers[0] == second.Layers[0] || first.Dir != second.Dir {
		t.Errorf("Unpack() = %v then %v, want the same lower layers", first, second)
	}
	after, err := os.Stat(second.paths()[2])
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Errorf("Unpack() replaced the shared layer's directory")
	}
	if os.Geteuid() == 0 {
		want := map[string]string{"base": "-rw-r--r-- base", "lib": "-rw-r--r-- lib", "handler": "-rwxr-xr-x v2"}
		if diff := cmp.Diff(want, mountedTree(t, second)); diff != "" {
			t.Errorf("Unpack() tree mismatch (-want +got):\n%s", diff)
		}
	}
}

func TestUnpackConcurrent(t *testing.T) {
	img := newImage(t, v1.Config{}, []entry{fileEntry("a", 0o644, "a")}, []entry{fileEntry("b", 0o644, "b")})
	want := map[string]string{"a": "-rw-r--r-- a", "b": "-rw-r--r-- b"}
	const n = 8
	t.Run(stacked, func(t *testing.T) {
		cache := t.TempDir()
		var wg sync.WaitGroup
		got := make([]*Rootfs, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { got[i], errs[i] = Unpack(context.Background(), img, cache) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || !cmp.Equal(got[i], got[0]) {
				t.Errorf("Unpack() #%d = %v, %v, want %v, nil", i, got[i], errs[i], got[0])
			}
		}
		if got[0] == nil {
			return
		}
		entries, err := os.ReadDir(got[0].Dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if !cmp.Equal(names, got[0].Layers, cmpopts.SortSlices(func(a, b string) bool { return a < b })) {
			t.Errorf("Unpack() left %v in the cache, want only %v", names, got[0].Layers)
		}
		if os.Geteuid() == 0 {
			if diff := cmp.Diff(want, mountedTree(t, got[0])); diff != "" {
				t.Errorf("Unpack() tree mismatch (-want +got):\n%s", diff)
			}
		}
	})
	t.Run(flat, func(t *testing.T) {
		cache := t.TempDir()
		var wg sync.WaitGroup
		got := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { got[i], errs[i] = flatten(context.Background(), img, cache) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil || got[i] != got[0] {
				t.Errorf("flatten() #%d = %s, %v, want %s, nil", i, got[i], errs[i], got[0])
			}
		}
		entries, err := os.ReadDir(filepath.Join(cache, "rootfs"))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || filepath.Join(cache, "rootfs", entries[0].Name()) != got[0] {
			t.Errorf("flatten() left %v in the cache, want only %s", entries, filepath.Base(got[0]))
		}
		if diff := cmp.Diff(want, listTree(t, got[0])); diff != "" {
			t.Errorf("flatten() tree mismatch (-want +got):\n%s", diff)
		}
	})
}

// brokenLayer fails halfway through its content, as a dropped download does.
type brokenLayer struct{ v1.Layer }

var errBroken = errors.New("connection reset")

func (l brokenLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Uncompressed()
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, 1024), failingReader{}), rc}, nil
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errBroken }

func TestUnpackFailureLeavesNothing(t *testing.T) {
	good, err := newLayer(fileEntry("good", 0o644, "g"))
	if err != nil {
		t.Fatal(err)
	}
	big, err := newLayer(fileEntry("big", 0o644, strings.Repeat("x", 64<<10)))
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		layers  []v1.Layer
		wantErr error
	}{
		{"broken layer", context.Background(), []v1.Layer{good, brokenLayer{big}}, errBroken},
		{"cancelled", cancelled, []v1.Layer{good}, context.Canceled},
	}
	for _, tc := range tests {
		for _, mode := range []string{stacked, flat} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				img := withLayers(t, v1.Config{}, tc.layers...)
				cache := t.TempDir()
				var err error
				if mode == flat {
					_, err = flatten(tc.ctx, img, cache)
				} else {
					_, err = Unpack(tc.ctx, img, cache)
				}
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Unpack() = %v, want %v", err, tc.wantErr)
				}
				assertNoRootfs(t, cache)
			})
		}
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	for _, e := range []struct{ name, target string }{
		{"abs", "/usr/lib"},
		{"rel", "usr/lib"},
		{"up", "../../../../usr"},
		{"usr/lib/self", "."},
		{"loop1", "loop2"},
		{"loop2", "loop1"},
	} {
		p := filepath.Join(root, e.name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(e.target, p); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		followLast bool
		want       string
		wantErr    error
	}{
		{"/", true, "", nil},
		{"abs/x", true, "usr/lib/x", nil},
		{"abs", false, "abs", nil},
		{"abs", true, "usr/lib", nil},
		{"rel/../x", true, "usr/x", nil},
		{"up/lib/self/self/f", true, "usr/lib/f", nil},
		{"../../etc/passwd", true, "etc/passwd", nil},
		{"missing/../x", true, "x", nil},
		{"loop1/x", true, "", syscall.ELOOP},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveIn(root, tc.name, tc.followLast)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("resolveIn() = %v, want %v", err, tc.wantErr)
			}
			if want := filepath.Join(root, tc.want); err == nil && got != want {
				t.Errorf("resolveIn() = %s, want %s", got, want)
			}
		})
	}
}

// TestUnpackFromRegistry streams the layers of a pulled image.
func TestUnpackFromRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/fn/layers:1"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img := newImage(t, v1.Config{}, []entry{fileEntry("a", 0o644, "a"), fileEntry("b", 0o644, "b")}, []entry{whiteoutEntry("a")})
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	pulled, err := imagestore.Resolve(context.Background(), ref)
	if err != nil {
		t.Fatalf("Resolve() = %v", err)
	}
	want := map[string]string{"b": "-rw-r--r-- b"}
	for _, mode := range unpackModes(t) {
		got, err := unpackTree(t, mode, pulled, t.TempDir())
		if err != nil {
			t.Fatalf("Unpack() %s = %v", mode, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Unpack() %s tree mismatch (-want +got):\n%s", mode, diff)
		}
	}
}

func TestResolveInLayers(t *testing.T) {
	// Three layers, top first, unpacked as Unpack does.
	img := newImage(t, v1.Config{},
		[]entry{
			fileEntry("etc/passwd", 0o644, "bottom"),
			fileEntry("etc/group", 0o644, "bottom"),
			fileEntry("opq/old", 0o644, "old"),
			fileEntry("usr/lib/os-release", 0o644, "bottom"),
			fileEntry("gone/f", 0o644, "f"),
			fileEntry("file", 0o644, "file"),
		},
		[]entry{
			symlinkEntry("etc/os-release", "../usr/lib/os-release"),
			fileEntry("etc/group", 0o644, "middle"),
			whiteoutEntry("gone"),
			dirEntry("file", 0o755),
			fileEntry("file/in", 0o644, "in"),
			symlinkEntry("lib", "usr/lib"),
		},
		[]entry{
			dirEntry("opq", 0o755),
			opaqueEntry("opq"),
			fileEntry("opq/new", 0o644, "new"),
			fileEntry("usr/lib/top", 0o644, "top"),
		},
	)
	r, err := Unpack(context.Background(), img, t.TempDir())
	if err != nil {
		t.Fatalf("Unpack() = %v", err)
	}
	layers := r.paths()
	tests := []struct {
		name    string
		want    string // content of the file found
		wantErr error
	}{
		{name: "/etc/passwd", want: "bottom"},
		{name: "/etc/group", want: "middle"},
		{name: "/etc/os-release", want: "bottom"},
		{name: "/lib/top", want: "top"},
		{name: "/lib/../lib/top", want: "top"},
		{name: "/lib/../etc/group", wantErr: fs.ErrNotExist}, // /usr/etc/group
		{name: "/opq/new", want: "new"},
		{name: "/opq/old", wantErr: fs.ErrNotExist},
		{name: "/gone/f", wantErr: fs.ErrNotExist},
		{name: "/gone", wantErr: fs.ErrNotExist},
		{name: "/file/in", want: "in"},
		{name: "/etc/passwd/x", wantErr: syscall.ENOTDIR},
		{name: "/missing", wantErr: fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveInLayers(layers, tc.name)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("resolveInLayers() = %s, %v, want %v", got, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if b, err := os.ReadFile(got); err != nil || string(b) != tc.want {
				t.Errorf("resolveInLayers() = %s holding %q, %v, want %q", got, b, err, tc.want)
			}
		})
	}
}

func TestUnpackChecksDiffID(t *testing.T) {
	img := newImage(t, v1.Config{}, []entry{fileEntry("a", 0o644, "a")})
	other, err := newLayer(fileEntry("b", 0o644, "b"))
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := other.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0] = claimed
	lying, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	if _, err := Unpack(context.Background(), lying, cache); err == nil || !strings.Contains(err.Error(), "diff id") {
		t.Errorf("Unpack() = %v, want a diff id mismatch", err)
	}
	assertNoRootfs(t, cache)
}
