package cacherepo

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/cache"
)

// TestTreeAcrossMachines: a tree filled on one machine is pushed; another
// machine's empty store gets it from the repository, files, modes and
// links, without filling it.
func TestTreeAcrossMachines(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	fill := func(dir string) error {
		if err := os.MkdirAll(filepath.Join(dir, "node_modules", "a", "bin"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "node_modules", "a", "bin", "run"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "node_modules", "a", "index.js"), []byte("module.exports = 1\n"), 0o644); err != nil {
			return err
		}
		return os.Symlink("../a/bin/run", filepath.Join(dir, "node_modules", "run"))
	}
	first, _ := newCache(t, srv.repo(t))
	l, err := first.Tree(ctx, cache.NodeModules, key("deps").Hex, fill)
	if err != nil {
		t.Fatal(err)
	}
	want := listTree(t, l.Path)
	l.Close()
	if w := first.Flush(ctx); len(w) > 0 {
		t.Fatalf("Flush() = %v, want no warnings", w)
	}

	second, _ := newCache(t, srv.repo(t))
	l, err = second.Tree(ctx, cache.NodeModules, key("deps").Hex, func(string) error { return errors.New("filled, want it from the repository") })
	if err != nil {
		t.Fatalf("Tree() on a fresh store = %v", err)
	}
	defer l.Close()
	if diff := cmp.Diff(want, listTree(t, l.Path)); diff != "" {
		t.Errorf("tree from the repository (-want +got):\n%s", diff)
	}
	if w := second.Flush(ctx); len(w) > 0 {
		t.Errorf("Flush() = %v, want no warnings", w)
	}

	// Another key is not there: filled here.
	filled := false
	l, err = second.Tree(ctx, cache.NodeModules, key("other").Hex, func(string) error { filled = true; return nil })
	if err != nil || !filled {
		t.Errorf("Tree() of a new key = %v, filled %v; want it filled", err, filled)
	}
	l.Close()
}

// listTree describes every entry under dir: mode, and content or target.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		switch {
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(b)
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
