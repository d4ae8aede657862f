package cacherepo

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layers"
)

// TreeKey is the key of the entry that holds the tree of kind k and key
// key: the packs' keys are theirs, so the namespace keeps them apart from
// the layers' keys.
func TreeKey(k cache.Kind, key string) v1.Hash {
	return layers.NewKey("kiln/tree/v1").String(k.String()).String(key).Sum()
}

// Tree returns the local store's directory of kind k and key, as
// cache.Store.Tree does. On a local miss the entry for TreeKey(k, key) is
// unpacked into it when the repository has it; else fill makes it, and
// the tree is pushed there as an entry, so that the packs' outputs a
// fresh machine would recompute (installed dependencies, compiled
// classes, module lists) come from the repository, as the layers do.
func (c *Cache) Tree(ctx context.Context, k cache.Kind, key string, fill func(dir string) error, opts ...cache.TreeOption) (*cache.Lease, error) {
	entry := TreeKey(k, key)
	filled := false
	l, err := c.local.Tree(ctx, k, key, func(dir string) error {
		if layer, err := c.Get(ctx, entry); err == nil {
			if err := unpack(layer, dir); err == nil {
				return nil
			}
			// A damaged entry: make the tree here, and push it again.
			if err := emptyDir(dir); err != nil {
				return err
			}
		}
		filled = true
		return fill(dir)
	}, opts...)
	if err != nil || !filled {
		return l, err
	}
	c.mu.Lock()
	down := c.pushErr != nil || c.unreachable
	c.mu.Unlock()
	if down {
		// The entry would only take room in the local store.
		return l, nil
	}
	// The tree is in place, and the lease keeps Prune off it while the
	// layer is made: a tree of the store as it is, not of fill's folder.
	name := "tree " + k.String() + "/" + key
	if _, err := c.Put(ctx, entry, name, func(w io.Writer) error {
		files, err := layers.FromDir(l.Path, "")
		if err != nil {
			return err
		}
		return layers.WriteTar(w, files)
	}); err != nil {
		c.mu.Lock()
		if c.pushErr == nil {
			c.pushErr = fmt.Errorf("making the entry of %s: %w", name, err)
		}
		c.mu.Unlock()
	}
	return l, nil
}

// unpack writes the files of a tree's layer into dir: directories,
// regular files and symbolic links, with their modes; any other entry, or
// a path leaving dir, fails.
func unpack(l v1.Layer, dir string) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel := path.Clean(h.Name)
		if rel == "." {
			continue
		}
		if rel == ".." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
			return fmt.Errorf("tree entry %q leaves its folder", h.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		mode := os.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(target, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(target, tr, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("tree entry %q: type %q", h.Name, h.Typeflag)
		}
	}
}

func writeFile(target string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// emptyDir removes what dir holds, leaving dir.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}
