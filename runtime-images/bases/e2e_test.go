//go:build e2e

package bases

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/runtime-images/debian"
)

var update = flag.Bool("update", false, "refresh the committed lock files from the Debian mirror")

// realMirror returns fetcher options for the mirror CI uses, or skips the
// test when it cannot be reached quickly.
func realMirror(t *testing.T) []debian.Option {
	t.Helper()
	mirror, security := debian.DefaultMirror, debian.DefaultSecurityMirror
	if m := os.Getenv("KILN_DEBIAN_MIRROR"); m != "" {
		mirror = m
	}
	if m := os.Getenv("KILN_DEBIAN_SECURITY_MIRROR"); m != "" {
		security = m
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, mirror+"/dists/bookworm/InRelease", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Skipf("the Debian mirror %s is unreachable within 5s, skipping: %v", mirror, err)
	}
	resp.Body.Close()
	return []debian.Option{debian.WithMirror(mirror), debian.WithSecurityMirror(security)}
}

// TestRefreshLocks rewrites the lock of every recipe from the mirror's
// current indexes; it runs only with -update:
//
//	go test -tags e2e ./runtime-images/bases -run TestRefreshLocks -update
func TestRefreshLocks(t *testing.T) {
	if !*update {
		t.Skip("pass -update to refresh the lock files")
	}
	opts := realMirror(t)
	cache := os.Getenv("KILN_CACHE_DIR")
	if cache == "" {
		cache = t.TempDir()
	}
	f, err := debian.NewFetcher(cache, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Names() {
		data, err := os.ReadFile(name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseRecipe(name, data)
		if err != nil {
			t.Fatal(err)
		}
		lock, err := Lock(context.Background(), r, f)
		if err != nil {
			t.Fatalf("Lock(%s) = %v", name, err)
		}
		out, err := lock.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(LockFileName(name), out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", LockFileName(name))
	}
}

func TestStaticBase(t *testing.T) {
	opts := realMirror(t)
	r, err := Lookup("static")
	if err != nil {
		t.Fatalf("Lookup(static) = %v", err)
	}
	f, err := debian.NewFetcher(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	for _, arch := range r.Architectures {
		t.Run(arch, func(t *testing.T) {
			b, err := Assemble(context.Background(), r, arch, f)
			if err != nil {
				t.Fatalf("Assemble() = %v", err)
			}
			img, _ := image(t, b) // validates the image
			files := flatten(t, img)

			bundle := []byte(files["etc/ssl/certs/ca-certificates.crt"].Content)
			n := 0
			for block, rest := pem.Decode(bundle); block != nil; block, rest = pem.Decode(rest) {
				if _, err := x509.ParseCertificate(block.Bytes); err != nil {
					t.Errorf("certificate %d of the CA bundle: %v", n, err)
				}
				n++
			}
			if n <= 100 {
				t.Errorf("CA bundle holds %d certificates, want more than 100", n)
			}
			if _, ok := files["usr/share/zoneinfo/Europe/Berlin"]; !ok {
				t.Errorf("/usr/share/zoneinfo/Europe/Berlin is missing")
			}
			if _, ok := files["etc/os-release"]; !ok {
				t.Errorf("/etc/os-release is missing")
			}

			nLayers, compressed, uncompressed := imageSizes(t, img)
			var content int64
			for _, e := range files {
				content += int64(len(e.Content))
			}
			t.Logf("static/%s: %d layers, %d packages, %d certificates; %d bytes compressed, %d bytes of tar, %d bytes of file content",
				arch, nLayers, len(locked(t, r, arch)), n, compressed, uncompressed, content)
			for _, p := range locked(t, r, arch) {
				t.Logf("  %s %s (%s)", p.Name, p.Version, p.Suite)
			}
		})
	}
}

// imageSizes returns the number of an image's layers and their sizes,
// compressed and as tar streams.
func imageSizes(t *testing.T, img v1.Image) (n int, compressed, uncompressed int64) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		compressed += size
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		size, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		uncompressed += size
	}
	return len(layers), compressed, uncompressed
}
