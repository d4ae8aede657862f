package xattr

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSetGet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Get(path, "user.kiln.test"); errors.Is(err, errors.ErrUnsupported) {
		t.Skip("no user extended attributes on this filesystem")
	} else if !errors.Is(err, ErrNoAttr) {
		t.Fatalf("Get() of an unset attribute = %v, want ErrNoAttr", err)
	}
	if err := Set(path, "user.kiln.test", "v1"); err != nil {
		t.Fatal(err)
	}
	if got, err := Get(path, "user.kiln.test"); err != nil || got != "v1" {
		t.Errorf("Get() = %q, %v, want v1", got, err)
	}
}
