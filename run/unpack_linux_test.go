package run

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestUnpack(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]entry
		want   map[string]string
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
			whiteoutEntry("never/there"),
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
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := newImage(t, v1.Config{}, tc.layers...)
			rootfs, err := Unpack(context.Background(), img, t.TempDir())
			if err != nil {
				t.Fatalf("Unpack() = %v", err)
			}
			if diff := cmp.Diff(tc.want, listTree(t, rootfs)); diff != "" {
				t.Errorf("Unpack() tree mismatch (-want +got):\n%s", diff)
			}
		})
	}
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
	if err := syscall.Lstat(filepath.Join(rootfs, "owned"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1000 || st.Gid != 2000 {
		t.Errorf("Unpack() owner = %d:%d, want 1000:2000", st.Uid, st.Gid)
	}
	for _, p := range []string{"owned", "d"} {
		fi, err := os.Lstat(filepath.Join(rootfs, p))
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
		name:   "absolute symlink parent",
		layers: [][]entry{{symlinkEntry("evil", host)}, {fileEntry("evil/escaped", 0o644, "x")}},
		inside: filepath.Join(host, "escaped"),
	}, {
		name:   "relative symlink parent climbing out",
		layers: [][]entry{{symlinkEntry("evil", strings.Repeat("../", 20)+host)}, {fileEntry("evil/escaped", 0o644, "x")}},
		inside: filepath.Join(host, "escaped"),
	}, {
		name:    "symlink loop",
		layers:  [][]entry{{symlinkEntry("a", "b"), symlinkEntry("b", "a")}, {fileEntry("a/x", 0o644, "x")}},
		wantErr: syscall.ELOOP,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img := newImage(t, v1.Config{}, tc.layers...)
			cache := t.TempDir()
			rootfs, err := Unpack(context.Background(), img, cache)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Unpack() = %v, want %v", err, tc.wantErr)
			}
			if left, _ := os.ReadDir(host); len(left) != 0 {
				t.Errorf("Unpack() wrote %v outside the rootfs", left)
			}
			if tc.wantErr != nil {
				assertNoRootfs(t, cache)
				return
			}
			if _, err := os.Stat(filepath.Join(rootfs, tc.inside)); err != nil {
				t.Errorf("Unpack() did not put the file at %s inside: %v", tc.inside, err)
			}
		})
	}
}

// assertNoRootfs checks that a failed Unpack left nothing in cache.
func assertNoRootfs(t *testing.T, cache string) {
	t.Helper()
	left, err := os.ReadDir(filepath.Join(cache, "rootfs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("Unpack() left %v in the cache", left)
	}
}

func TestUnpackReuse(t *testing.T) {
	img := newImage(t, v1.Config{}, []entry{fileEntry("f", 0o644, "f")})
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	first, err := Unpack(context.Background(), img, cache)
	if err != nil {
		t.Fatalf("Unpack() = %v", err)
	}
	if want := filepath.Join(cache, "rootfs", d.Hex); first != want {
		t.Errorf("Unpack() = %s, want %s", first, want)
	}
	// A mark the second call must find: it reuses, it does not unpack.
	if err := os.WriteFile(filepath.Join(first, "mark"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := Unpack(context.Background(), img, cache)
	if err != nil {
		t.Fatalf("Unpack() = %v", err)
	}
	if second != first {
		t.Errorf("Unpack() = %s, want %s", second, first)
	}
	if _, err := os.Stat(filepath.Join(second, "mark")); err != nil {
		t.Errorf("Unpack() unpacked again: %v", err)
	}
}

func TestUnpackConcurrent(t *testing.T) {
	img := newImage(t, v1.Config{}, []entry{fileEntry("a", 0o644, "a")}, []entry{fileEntry("b", 0o644, "b")})
	cache := t.TempDir()
	const n = 8
	var wg sync.WaitGroup
	got := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { got[i], errs[i] = Unpack(context.Background(), img, cache) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || got[i] != got[0] {
			t.Errorf("Unpack() #%d = %s, %v, want %s, nil", i, got[i], errs[i], got[0])
		}
	}
	entries, err := os.ReadDir(filepath.Join(cache, "rootfs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || filepath.Join(cache, "rootfs", entries[0].Name()) != got[0] {
		t.Errorf("Unpack() left %v in the cache, want only %s", entries, filepath.Base(got[0]))
	}
	want := map[string]string{"a": "-rw-r--r-- a", "b": "-rw-r--r-- b"}
	if diff := cmp.Diff(want, listTree(t, got[0])); diff != "" {
		t.Errorf("Unpack() tree mismatch (-want +got):\n%s", diff)
	}
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
		t.Run(tc.name, func(t *testing.T) {
			img := withLayers(t, v1.Config{}, tc.layers...)
			cache := t.TempDir()
			if _, err := Unpack(tc.ctx, img, cache); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Unpack() = %v, want %v", err, tc.wantErr)
			}
			assertNoRootfs(t, cache)
		})
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
	pulled, err := Resolve(context.Background(), ref)
	if err != nil {
		t.Fatalf("Resolve() = %v", err)
	}
	rootfs, err := Unpack(context.Background(), pulled, t.TempDir())
	if err != nil {
		t.Fatalf("Unpack() = %v", err)
	}
	want := map[string]string{"b": "-rw-r--r-- b"}
	if diff := cmp.Diff(want, listTree(t, rootfs)); diff != "" {
		t.Errorf("Unpack() tree mismatch (-want +got):\n%s", diff)
	}
}
