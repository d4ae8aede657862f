package java

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

func TestCached(t *testing.T) {
	ctx := context.Background()
	cache := t.TempDir()
	key := layers.NewKey("test").String("k").Sum()
	fills := 0
	fill := func(content string) func(string) error {
		return func(dir string) error {
			fills++
			return os.WriteFile(filepath.Join(dir, "f"), []byte(content), 0o644)
		}
	}
	read := func(dir string) string {
		b, _ := os.ReadFile(filepath.Join(dir, "f"))
		return string(b)
	}
	b := &build{fn: languages.Function{ScratchDir: t.TempDir()}, cache: cache}
	first, err := b.cached(ctx, "deps", key, fill("one"))
	if err != nil || read(first) != "one" {
		t.Fatalf("cached() = %s (%q), %v", first, read(first), err)
	}
	if want := filepath.Join(cache, "java", "deps", key.Hex); first != want {
		t.Errorf("cached() = %s, want the entry at %s", first, want)
	}
	if again, err := b.cached(ctx, "deps", key, fill("two")); err != nil || again != first || fills != 1 {
		t.Errorf("cached() on a hit = %s, %v after %d fills, want %s and one fill", again, err, fills, first)
	}
	bad := layers.NewKey("test").String("bad").Sum()
	if _, err := b.cached(ctx, "deps", bad, func(string) error { return errors.New("offline") }); err == nil {
		t.Errorf("cached() with a failing fill = nil error")
	}
	if _, err := os.Stat(filepath.Join(cache, "java", "deps", bad.Hex)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed fill left a cache entry: %v", err)
	}
	if left, _ := os.ReadDir(filepath.Join(cache, "tmp")); len(left) != 0 {
		t.Errorf("a failed fill left %d temporary files", len(left))
	}

	// --no-cache fills afresh, in the scratch folder, and leaves the cache
	// as builds running meanwhile see it.
	b.fn.NoCache = true
	fresh, err := b.cached(ctx, "deps", key, fill("three"))
	if err != nil || read(fresh) != "three" || !strings.HasPrefix(fresh, b.fn.ScratchDir) {
		t.Errorf("cached() with NoCache = %s (%q), %v, want a fresh fill under %s", fresh, read(fresh), err, b.fn.ScratchDir)
	}
	if read(first) != "one" {
		t.Errorf("cached() with NoCache changed the cache entry to %q", read(first))
	}
}
