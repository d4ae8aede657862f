package dev

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestGitignore(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("# comment\n*.log\n/out\ncache/\n!keep.log\nsub/gen.go\n"), 0o644)
	gi := readGitignore(dir)
	tests := []struct {
		rel   string
		isDir bool
		want  bool
	}{
		{"a.log", false, true},
		{"deep/x/a.log", false, true},
		{"keep.log", false, false},
		{"out", true, true},
		{"out/file", false, true},
		{"x/out", true, false},
		{"cache", true, true},
		{"cache", false, false},
		{"x/cache/f", false, true},
		{"sub/gen.go", false, true},
		{"other/sub/gen.go", false, false},
		{"handler.go", false, false},
	}
	for _, tt := range tests {
		if got := gi.match(tt.rel, tt.isDir); got != tt.want {
			t.Errorf("match(%q, dir=%v) = %v, want %v", tt.rel, tt.isDir, got, tt.want)
		}
	}
}

func next(t *testing.T, ch <-chan Change, d time.Duration) (Change, bool) {
	t.Helper()
	select {
	case c, ok := <-ch:
		return c, ok
	case <-time.After(d):
		return Change{}, false
	}
}

func TestWatch(t *testing.T) {
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	for _, d := range []string{a, b, filepath.Join(a, ".git"), filepath.Join(a, "pkg")} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(filepath.Join(a, ".gitignore"), []byte("*.tmp\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := Watch(ctx, map[string]string{"fa": a, "fb": b}, WithDebounce(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ch := w.Changes()
	write := func(p string) { os.WriteFile(p, []byte(time.Now().String()), 0o644) }

	// Noise only: no change is reported.
	write(filepath.Join(a, ".git", "index"))
	write(filepath.Join(a, "handler.go.swp"))
	write(filepath.Join(a, "handler.go~"))
	write(filepath.Join(a, ".#handler.go"))
	write(filepath.Join(a, "4913"))
	write(filepath.Join(a, "x.tmp"))
	if c, ok := next(t, ch, 300*time.Millisecond); ok {
		t.Fatalf("Watch reported %+v for ignored files", c)
	}

	// A burst of saves is one change, naming the files.
	start := time.Now()
	write(filepath.Join(a, "handler.go"))
	write(filepath.Join(a, "pkg", "util.go"))
	write(filepath.Join(a, "handler.go"))
	c, ok := next(t, ch, 2*time.Second)
	if !ok || c.Function != "fa" || !slices.Equal(c.Paths, []string{"handler.go", "pkg/util.go"}) {
		t.Fatalf("Watch() = %+v, %v, want fa with handler.go and pkg/util.go", c, ok)
	}
	if c.First.Before(start) || time.Since(start) > time.Second {
		t.Errorf("change First = %v, reported after %v", c.First, time.Since(start))
	}
	if c, ok := next(t, ch, 200*time.Millisecond); ok {
		t.Errorf("Watch reported a second change %+v for one burst", c)
	}

	// A folder created later is watched too; b is separate from a.
	os.MkdirAll(filepath.Join(b, "new"), 0o755)
	if c, ok := next(t, ch, 2*time.Second); !ok || c.Function != "fb" {
		t.Fatalf("Watch() after mkdir = %+v, %v, want fb", c, ok)
	}
	time.Sleep(50 * time.Millisecond)
	write(filepath.Join(b, "new", "f.go"))
	if c, ok := next(t, ch, 2*time.Second); !ok || c.Function != "fb" || !slices.Equal(c.Paths, []string{"new/f.go"}) {
		t.Fatalf("Watch() in a new folder = %+v, %v, want fb new/f.go", c, ok)
	}
	cancel()
	if _, ok := next(t, ch, 2*time.Second); ok {
		t.Errorf("the channel stayed open after cancel")
	}
}

// TestWatchOutside: what builds read outside their folders is watched
// for the functions that named it, a file on its own, a folder with its
// subfolders (new ones too) under the handler folder's rules; what no
// build names any more is no longer watched.
func TestWatchOutside(t *testing.T) {
	root := t.TempDir()
	a, b, lib := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "lib")
	for _, d := range []string{a, b, filepath.Join(lib, "sub"), filepath.Join(lib, "node_modules", "x")} {
		os.MkdirAll(d, 0o755)
	}
	base := filepath.Join(root, "base.txt")
	write := func(p string) { os.WriteFile(p, []byte(time.Now().String()), 0o644) }
	write(base)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := Watch(ctx, map[string]string{"fa": a, "fb": b}, WithDebounce(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ch := w.Changes()
	if err := w.SetOutside("fa", []string{lib}); err != nil {
		t.Fatalf("SetOutside(fa) = %v", err)
	}
	if err := w.SetOutside("fb", []string{lib, base, lib}); err != nil {
		t.Fatalf("SetOutside(fb) = %v", err)
	}
	// changes returns the paths changes report, per function, until a
	// quiet 300ms.
	changes := func() map[string][]string {
		t.Helper()
		got := map[string][]string{}
		for {
			c, ok := next(t, ch, 300*time.Millisecond)
			if !ok {
				return got
			}
			got[c.Function] = slices.Compact(slices.Sorted(slices.Values(append(got[c.Function], c.Paths...))))
		}
	}
	tests := []struct {
		name string
		edit func()
		want map[string][]string
	}{
		{"a file of the shared folder", func() { write(filepath.Join(lib, "sub", "x.go")) },
			map[string][]string{"fa": {"../lib/sub/x.go"}, "fb": {"../lib/sub/x.go"}}},
		{"the named file", func() { write(base) }, map[string][]string{"fb": {"../base.txt"}}},
		{"beside the named file", func() { write(filepath.Join(root, "notes.txt")) }, map[string][]string{}},
		{"installed packages in the folder", func() { write(filepath.Join(lib, "node_modules", "x", "i.js")) }, map[string][]string{}},
		{"a new folder in it", func() {
			os.MkdirAll(filepath.Join(lib, "new"), 0o755)
			time.Sleep(100 * time.Millisecond)
			write(filepath.Join(lib, "new", "n.go"))
		}, map[string][]string{"fa": {"../lib/new", "../lib/new/n.go"}, "fb": {"../lib/new", "../lib/new/n.go"}}},
		{"a file of the handler folder", func() { write(filepath.Join(a, "handler.go")) }, map[string][]string{"fa": {"handler.go"}}},
		{"no longer named by fa", func() {
			if err := w.SetOutside("fa", nil); err != nil {
				t.Fatalf("SetOutside(fa, nil) = %v", err)
			}
			write(filepath.Join(lib, "lib.go"))
		}, map[string][]string{"fb": {"../lib/lib.go"}}},
		{"named by none", func() {
			if err := w.SetOutside("fb", []string{}); err != nil {
				t.Fatalf("SetOutside(fb, nil) = %v", err)
			}
			write(filepath.Join(lib, "lib.go"))
			write(base)
		}, map[string][]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.edit()
			if got := changes(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("changes = %v, want %v", got, tc.want)
			}
		})
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if want := []string{a, b}; !slices.Equal(slices.Sorted(maps.Keys(w.watched)), want) {
		t.Errorf("watched %v once nothing outside is named, want %v", slices.Sorted(maps.Keys(w.watched)), want)
	}
}
