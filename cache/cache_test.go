package cache

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/layers"
)

func tarOf(content string) func(io.Writer) error {
	return func(w io.Writer) error {
		return layers.WriteTar(w, []layers.File{layers.Bytes("f", 0o644, []byte(content))})
	}
}

func key(s string) v1.Hash { return layers.NewKey("test").String(s).Sum() }

func TestPutGet(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, key("a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(empty) = %v, want ErrNotFound", err)
	}
	put, err := s.Put(ctx, key("a"), "layer a", tarOf("A"))
	if err != nil {
		t.Fatalf("Put() = %v", err)
	}
	got, err := s.Get(ctx, key("a"))
	if err != nil {
		t.Fatalf("Get() = %v", err)
	}
	if err := validate.Layer(got); err != nil {
		t.Errorf("validate.Layer(Get()) = %v", err)
	}
	pd, _ := put.Digest()
	gd, _ := got.Digest()
	if pd != gd {
		t.Errorf("Get() digest = %s, want %s", gd, pd)
	}
}

func TestCorruptEntries(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, s *Store, blob, keyFile string)
	}{
		{"flipped byte", func(t *testing.T, s *Store, blob, keyFile string) {
			b, err := os.ReadFile(blob)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			if err := os.WriteFile(blob, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated blob", func(t *testing.T, s *Store, blob, keyFile string) {
			if err := os.Truncate(blob, 10); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing blob", func(t *testing.T, s *Store, blob, keyFile string) {
			if err := os.Remove(blob); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbled key file", func(t *testing.T, s *Store, blob, keyFile string) {
			if err := os.WriteFile(keyFile, []byte("{"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			l, err := s.Put(ctx, key("a"), "a", tarOf("content"))
			if err != nil {
				t.Fatal(err)
			}
			d, _ := l.Digest()
			tc.damage(t, s, s.blobPath(d), s.keyPath(key("a")))
			if _, err := s.Get(ctx, key("a")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(corrupt) = %v, want ErrNotFound", err)
			}
			if _, err := os.Stat(s.keyPath(key("a"))); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("key file after Get(corrupt): stat = %v, want it removed", err)
			}
			if _, err := s.Put(ctx, key("a"), "a", tarOf("content")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, key("a")); err != nil {
				t.Errorf("Get(rebuilt) = %v, want a hit", err)
			}
		})
	}
}

func TestPutFailureStoresNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("compile error")
	_, err = s.Put(ctx, key("a"), "a", func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Put() = %v, want %v", err, boom)
	}
	for _, d := range []string{s.keysDir(), s.blobsDir(), s.tmpDir()} {
		if des, _ := os.ReadDir(d); len(des) != 0 {
			t.Errorf("%s holds %d files after a failed Put, want none", d, len(des))
		}
	}
}

// TestPutCancelledStoresNothing: a build that returns nil while its
// context is being cancelled (a tool it asked for was killed, and it went
// on without) stores nothing, so the next build redoes the work.
func TestPutCancelledStoresNothing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = s.Put(ctx, key("a"), "a", func(w io.Writer) error {
		cancel()
		return layers.WriteTar(w, []layers.File{layers.Bytes("shortcut", 0o644, []byte("x"))})
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Put() = %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), key("a")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get() after a cancelled Put = %v, want ErrNotFound", err)
	}
}

func TestConcurrentPut(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Separate Store values stand in for separate processes.
			s, err := Open(dir)
			if err == nil {
				_, err = s.Put(ctx, key("shared"), "shared", tarOf("same"))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Put() = %v", err)
		}
	}
	s, _ := Open(dir)
	if _, err := s.Get(ctx, key("shared")); err != nil {
		t.Errorf("Get() after concurrent Puts = %v", err)
	}
}

func TestListPrune(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"old", "new"} {
		if _, err := s.Put(ctx, key(k), k, tarOf(k)); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(s.keyPath(key("old")), old, old); err != nil {
		t.Fatal(err)
	}
	entries, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name != "new" || entries[1].Name != "old" {
		t.Fatalf("List() = %+v, want new then old", entries)
	}
	res, err := s.Prune(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if res := res.Of(Layers); res.Entries != 1 || res.Bytes == 0 {
		t.Errorf("Prune() = %+v, want 1 entry and its bytes", res)
	}
	if _, err := s.Get(ctx, key("old")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(pruned) = %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, key("new")); err != nil {
		t.Errorf("Get(kept) = %v", err)
	}
}

func TestDefaultDir(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"override", map[string]string{"KILN_CACHE_DIR": "/c", "XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/c"},
		{"xdg", map[string]string{"XDG_CACHE_HOME": "/x", "HOME": "/h"}, "/x/kiln"},
		{"home", map[string]string{"HOME": "/h"}, filepath.Join("/h", ".cache", "kiln")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DefaultDir(func(k string) string { return tc.env[k] })
			if err != nil || got != tc.want {
				t.Errorf("DefaultDir() = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
	if _, err := DefaultDir(func(string) string { return "" }); err == nil {
		t.Error("DefaultDir(no env) = nil error, want one naming --cache-dir")
	}
}

// TestSwappedKeyFile copies the key file of one entry over another's: the
// entry names another valid blob, and must not be used.
func TestSwappedKeyFile(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, key("a"), "layer a", tarOf("A")); err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(ctx, key("b"), "layer b", tarOf("B"))
	if err != nil {
		t.Fatal(err)
	}
	kb, err := os.ReadFile(s.keyPath(key("b")))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.keyPath(key("a")), kb, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, key("a")); !errors.Is(err, ErrNotFound) {
		d, _ := got.Digest()
		t.Errorf("Get(a) with b's key file = %s, %v; want ErrNotFound", d, err)
	}
	// b's own entry and blob are untouched.
	got, err := s.Get(ctx, key("b"))
	if err != nil {
		t.Fatalf("Get(b) = %v", err)
	}
	if gd, bd := mustLayerDigest(t, got), mustLayerDigest(t, b); gd != bd {
		t.Errorf("Get(b) = %s, want %s", gd, bd)
	}
}

func mustLayerDigest(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestPutCompressed stores a layer made elsewhere as it is, and refuses
// bytes that do not match their descriptor.
func TestPutCompressed(t *testing.T) {
	ctx := context.Background()
	src, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := src.Put(ctx, key("a"), "layer a", tarOf("A"))
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := l.Digest()
	diffID, _ := l.DiffID()
	size, _ := l.Size()
	good := layers.Descriptor{Digest: digest, DiffID: diffID, Size: size}
	other := mustLayerDigest(t, mustPut(t, src, "b"))
	tests := []struct {
		name    string
		desc    layers.Descriptor
		wantErr bool
	}{
		{"matching", good, false},
		{"other digest", layers.Descriptor{Digest: other, DiffID: diffID, Size: size}, true},
		{"other size", layers.Descriptor{Digest: digest, DiffID: diffID, Size: size + 1}, true},
		{"other diffID", layers.Descriptor{Digest: digest, DiffID: other, Size: size}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			_, err = s.PutCompressed(ctx, key("a"), "layer a", tc.desc, rc)
			if (err != nil) != tc.wantErr {
				t.Fatalf("PutCompressed() = %v, want error %v", err, tc.wantErr)
			}
			got, gerr := s.Get(ctx, key("a"))
			if tc.wantErr {
				if !errors.Is(gerr, ErrNotFound) {
					t.Errorf("Get() after a refused PutCompressed = %v, want ErrNotFound", gerr)
				}
				return
			}
			if gerr != nil {
				t.Fatalf("Get() = %v", gerr)
			}
			if d := mustLayerDigest(t, got); d != digest {
				t.Errorf("Get() digest = %s, want %s", d, digest)
			}
			if err := validate.Layer(got); err != nil {
				t.Errorf("validate.Layer(Get()) = %v", err)
			}
		})
	}
}

func mustPut(t *testing.T, s *Store, content string) v1.Layer {
	t.Helper()
	l, err := s.Put(context.Background(), key(content), "layer "+content, tarOf(content))
	if err != nil {
		t.Fatal(err)
	}
	return l
}
