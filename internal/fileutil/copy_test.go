package fileutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestCopyNew(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	if err := os.WriteFile(src, []byte("content"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CopyNew(src, dst); err != nil {
		t.Fatalf("CopyNew() = %v", err)
	}
	if b, err := os.ReadFile(dst); err != nil || string(b) != "content" {
		t.Errorf("dst holds %q (%v), want the source's content", b, err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o644&^umask(t) {
		t.Errorf("dst mode = %v (%v), want 0644 less the umask", fi.Mode().Perm(), err)
	}
	if err := CopyNew(src, dst); !errors.Is(err, fs.ErrExist) {
		t.Errorf("CopyNew() onto an existing file = %v, want fs.ErrExist", err)
	}
	if err := CopyNew(filepath.Join(dir, "none"), filepath.Join(dir, "other")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("CopyNew() of a missing file = %v, want fs.ErrNotExist", err)
	}
}

// umask is the process's umask, read from a file it creates.
func umask(t *testing.T) fs.FileMode {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(p, nil, 0o777); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ fi.Mode().Perm()
}
