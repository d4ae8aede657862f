package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerify damages one entry of each kind Verify checks: each is
// reported, and nothing else is.
func TestVerify(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	if _, err := s.Put(ctx, key("a"), "layer a", tarOf("A")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, key("b"), "layer b", tarOf("B")); err != nil {
		t.Fatal(err)
	}
	content := []byte("a debian file")
	sum := sha256.Sum256(content)
	want := SHA256(hex.EncodeToString(sum[:]), int64(len(content)))
	l, err := s.File(ctx, DebianFiles, want.Hex+".bin", want, func(p string) error { return os.WriteFile(p, content, 0o644) })
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	tl, err := s.Tree(ctx, Rootfs, "img", func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	}, Sealed())
	if err != nil {
		t.Fatal(err)
	}
	tl.Close()
	images := filepath.Join(s.Dir(), "images", "blobs", "sha256")
	if err := os.MkdirAll(images, 0o755); err != nil {
		t.Fatal(err)
	}
	good := sha256.Sum256([]byte("blob"))
	if err := os.WriteFile(filepath.Join(images, hex.EncodeToString(good[:])), []byte("blob"), 0o644); err != nil {
		t.Fatal(err)
	}

	v, err := s.Verify(ctx)
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	if len(v.Problems) != 0 {
		t.Fatalf("Verify() of a sound store = %+v, want no problem", v.Problems)
	}

	// Now damage one of each.
	kb, _ := os.ReadFile(s.keyPath(key("b")))
	os.WriteFile(s.keyPath(key("a")), kb, 0o644)
	os.WriteFile(filepath.Join(images, hex.EncodeToString(good[:])), []byte("blub"), 0o644)
	os.WriteFile(filepath.Join(s.kindDir(DebianFiles), want.Hex+".bin"), []byte("a debian filE"), 0o644)
	os.WriteFile(filepath.Join(tl.Path, "f"), []byte("y"), 0o644)
	v, err = s.Verify(ctx)
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	found := map[Kind]string{}
	for _, p := range v.Problems {
		found[p.Kind] += p.Reason + "; "
	}
	for k, reason := range map[Kind]string{Layers: "for key", Images: "hashes to", DebianFiles: "content is", Rootfs: "changed since"} {
		if !strings.Contains(found[k], reason) {
			t.Errorf("Verify() problems of %s = %q, want one saying %q", k, found[k], reason)
		}
	}
	if len(v.Problems) != 4 {
		t.Errorf("Verify() = %d problems, want 4: %+v", len(v.Problems), v.Problems)
	}
}
