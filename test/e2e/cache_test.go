//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/test/registrytest"
)

// TestCorruptCacheEntry damages the cached layers of a pushed image in
// several ways; each time the next build must notice, rebuild the layer
// to the same bytes, and leave the image and the registry unchanged.
func TestCorruptCacheEntry(t *testing.T) {
	reg := startRegistry(t)
	cache := t.TempDir()
	o := kilnOpts{cache: cache}
	repo := "e2e/corrupt"
	args := []string{sample(goHello), "--lang", "golang-middleware", "--image", reg.Host + "/" + repo + ":v1", "--push"}
	first := buildJSON(t, o, args...)
	blobs := filepath.Join(cache, "layers", "v1", "blobs", "sha256")
	keys := filepath.Join(cache, "layers", "v1", "keys")

	tests := []struct {
		name    string
		layer   string
		corrupt func(t *testing.T, blob string)
	}{
		{
			name:  "blob bytes flipped",
			layer: "handler binary",
			corrupt: func(t *testing.T, blob string) {
				b := readFile(t, blob)
				for i := len(b) / 2; i < len(b)/2+16 && i < len(b); i++ {
					b[i] ^= 0xff
				}
				writeFile(t, blob, b)
			},
		},
		{
			name:    "blob truncated",
			layer:   "static files",
			corrupt: func(t *testing.T, blob string) { writeFile(t, blob, readFile(t, blob)[:10]) },
		},
		{
			name:  "blob removed",
			layer: "watchdog",
			corrupt: func(t *testing.T, blob string) {
				if err := os.Remove(blob); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:  "entry unreadable",
			layer: "handler binary",
			corrupt: func(t *testing.T, blob string) {
				// Every key file that points at the blob.
				des, err := os.ReadDir(keys)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, de := range des {
					p := filepath.Join(keys, de.Name())
					if strings.Contains(string(readFile(t, p)), filepath.Base(blob)) {
						writeFile(t, p, []byte(`{"digest": "sha256:`))
						n++
					}
				}
				if n == 0 {
					t.Fatalf("no cache entry in %s refers to %s", keys, filepath.Base(blob))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := first.layer(t, tc.layer)
			blob := filepath.Join(blobs, strings.TrimPrefix(l.Digest, "sha256:"))
			if _, err := os.Stat(blob); err != nil {
				t.Fatalf("the cache has no blob for layer %q: %v", tc.layer, err)
			}
			tc.corrupt(t, blob)

			mark := reg.Mark()
			again := buildJSON(t, o, args...)
			if again.Digest != first.Digest {
				t.Errorf("rebuild after corruption digest = %s, want %s", again.Digest, first.Digest)
			}
			for _, al := range again.Layers {
				if want := al.Name != tc.layer; al.Cached != want {
					t.Errorf("rebuild after corruption: layer %q cached = %v, want %v", al.Name, al.Cached, want)
				}
			}
			if got := sha256File(t, blob); got != l.Digest {
				t.Errorf("cached blob of %q after rebuild hashes to %s, want %s", tc.layer, got, l.Digest)
			}
			reqs := requestsSince(t, reg, mark)
			if got := registrytest.BlobUploads(reqs); len(got) != 0 {
				t.Errorf("push after rebuild: blob uploads = %v, want none (same image)", got)
			}

			// Repaired: the next build takes everything from the cache.
			third := buildJSON(t, o, args...)
			for _, al := range third.Layers {
				if !al.Cached {
					t.Errorf("build after repair: layer %q cached = false, want true", al.Name)
				}
			}
		})
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	sum := sha256.Sum256(readFile(t, p))
	return "sha256:" + hex.EncodeToString(sum[:])
}
