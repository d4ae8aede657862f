package flock

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLocks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, file} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			a, err := Shared(path)
			if err != nil {
				t.Fatalf("Shared() = %v", err)
			}
			b, err := Shared(path)
			if err != nil {
				t.Fatalf("second Shared() = %v, want shared locks to coexist", err)
			}
			if _, err := TryExclusive(path); !errors.Is(err, ErrBusy) {
				t.Fatalf("TryExclusive() under shared locks = %v, want ErrBusy", err)
			}
			a.Close()
			if _, err := TryExclusive(path); !errors.Is(err, ErrBusy) {
				t.Fatalf("TryExclusive() under one shared lock = %v, want ErrBusy", err)
			}
			b.Close()
			x, err := TryExclusive(path)
			if err != nil {
				t.Fatalf("TryExclusive() with no holder = %v", err)
			}
			if _, err := TryExclusive(path); !errors.Is(err, ErrBusy) {
				t.Errorf("TryExclusive() under an exclusive lock = %v, want ErrBusy", err)
			}
			x.Close()
		})
	}
	if _, err := Shared(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Shared(missing) = %v, want os.ErrNotExist", err)
	}
}
