package dev

import (
	"context"
	"os"
	"path/filepath"
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
	ch, err := Watch(ctx, map[string]string{"fa": a, "fb": b}, WithDebounce(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
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
