package stack

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Stage lays out a function's build folder in dst as faas-cli's build
// context overlay does: every top-level entry of handler except build and
// template, then each copy path (configuration.copy, --copy-extra) at the
// path as written. Copy paths must lie inside cwd and not be cwd itself.
// The user's handler folder is never written to.
func Stage(handler, dst, cwd string, copies []string) error {
	entries, err := os.ReadDir(handler)
	if err != nil {
		return fmt.Errorf("staging %s: %w", handler, err)
	}
	for _, e := range entries {
		if e.Name() == "build" || e.Name() == "template" {
			continue
		}
		if err := copyTree(filepath.Join(handler, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return fmt.Errorf("staging %s: %w", handler, err)
		}
	}
	for _, c := range copies {
		rel, err := CopyPath(cwd, c)
		if err != nil {
			return fmt.Errorf("copy %q: %w", c, err)
		}
		if err := copyTree(filepath.Join(cwd, rel), filepath.Join(dst, rel)); err != nil {
			return fmt.Errorf("copy %q: %w", c, err)
		}
	}
	return nil
}

// CopyPath checks a configuration.copy or --copy-extra path as faas-cli
// does, and that it exists; it returns the path relative to cwd.
func CopyPath(cwd, p string) (string, error) {
	abs := p
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(cwd, p)
	}
	rel, err := filepath.Rel(cwd, abs)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("must be a path inside %s, not the folder itself", cwd)
	}
	if _, err := os.Lstat(abs); err != nil {
		return "", fmt.Errorf("%s not found", p)
	}
	return rel, nil
}

// copyTree copies src (file, folder or symlink) to dst, keeping modes.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
