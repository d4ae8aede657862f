package registrytest

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestParseAccessLine(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		wantOK   bool
		want     Request
		upload   string // digest, if a completed blob upload
		mount    string
		manifest string
	}{
		{
			name:   "ping",
			line:   `127.0.0.1 - - [25/Nov/2026:10:42:38 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`,
			wantOK: true,
			want:   Request{Method: "GET", URI: "/v2/", Status: 200},
		},
		{
			name:   "upload closed",
			line:   `127.0.0.1 - - [25/Nov/2026:10:42:38 +0000] "PUT /v2/a/b/blobs/uploads/0f1e?_state=x&digest=sha256%3Aabc HTTP/1.1" 201 0 "" "go-containerregistry/v0.22.1"`,
			wantOK: true,
			want:   Request{Method: "PUT", URI: "/v2/a/b/blobs/uploads/0f1e?_state=x&digest=sha256%3Aabc", Status: 201},
			upload: "sha256:abc",
		},
		{
			name:   "upload refused",
			line:   `127.0.0.1 - - [25/Nov/2026:10:42:38 +0000] "PUT /v2/a/blobs/uploads/0f1e?digest=sha256%3Aabc HTTP/1.1" 401 0 "" "x"`,
			wantOK: true,
			want:   Request{Method: "PUT", URI: "/v2/a/blobs/uploads/0f1e?digest=sha256%3Aabc", Status: 401},
		},
		{
			name:   "upload started",
			line:   `127.0.0.1 - - [25/Nov/2026:10:42:38 +0000] "POST /v2/a/blobs/uploads/ HTTP/1.1" 202 0 "" "x"`,
			wantOK: true,
			want:   Request{Method: "POST", URI: "/v2/a/blobs/uploads/", Status: 202},
		},
		{
			name:   "monolithic upload",
			line:   `127.0.0.1 - - [25/Nov/2026:10:42:38 +0000] "POST /v2/a/blobs/uploads/?digest=sha256%3Aabc HTTP/1.1" 201 0 "" "x"`,
			wantOK: true,
			want:   Request{Method: "POST", URI: "/v2/a/blobs/uploads/?digest=sha256%3Aabc", Status: 201},
			upload: "sha256:abc",
		},
		{
			name:   "mount",
			line:   `127.0.0.1 - - [25/Nov/2026:10:42:38 +0000] "POST /v2/a/blobs/uploads/?from=base&mount=sha256%3Aabc HTTP/1.1" 201 0 "" "x"`,
			wantOK: true,
			want:   Request{Method: "POST", URI: "/v2/a/blobs/uploads/?from=base&mount=sha256%3Aabc", Status: 201},
			mount:  "sha256:abc",
		},
		{
			name:     "manifest put",
			line:     `127.0.0.1 - - [25/Nov/2026:10:42:38 +0000] "PUT /v2/a/b/manifests/v1 HTTP/1.1" 201 0 "" "x"`,
			wantOK:   true,
			want:     Request{Method: "PUT", URI: "/v2/a/b/manifests/v1", Status: 201},
			manifest: "a/b:v1",
		},
		{
			name: "application log",
			line: `time="2026-11-25T10:42:37Z" level=info msg="listening on 127.0.0.1:5999"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseAccessLine(tc.line)
			if ok != tc.wantOK {
				t.Fatalf("ParseAccessLine() ok = %v, want %v", ok, tc.wantOK)
			}
			if !ok {
				return
			}
			tc.want.Line = tc.line
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseAccessLine() mismatch (-want +got):\n%s", diff)
			}
			reqs := []Request{got}
			if got, want := BlobUploads(reqs), nonEmpty(tc.upload); !slices.Equal(got, want) {
				t.Errorf("BlobUploads() = %v, want %v", got, want)
			}
			if got, want := Mounts(reqs), nonEmpty(tc.mount); !slices.Equal(got, want) {
				t.Errorf("Mounts() = %v, want %v", got, want)
			}
			if got, want := ManifestPuts(reqs), nonEmpty(tc.manifest); !slices.Equal(got, want) {
				t.Errorf("ManifestPuts() = %v, want %v", got, want)
			}
		})
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// TestRegistryCounts pushes with go-containerregistry and checks that the
// access log tells a first push from a repeated one.
func TestRegistryCounts(t *testing.T) {
	reg := startOrSkip(t)
	ctx := context.Background()
	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Host + "/counts/img:v1")
	if err != nil {
		t.Fatal(err)
	}

	mark := reg.Mark()
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("remote.Write() = %v", err)
	}
	reqs, err := reg.Since(ctx, mark)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(BlobUploads(reqs)), 4; got != want {
		t.Errorf("first push: blob uploads = %d, want %d (3 layers + config)\n%s", got, want, Summary(reqs))
	}
	if got, want := ManifestPuts(reqs), []string{"counts/img:v1"}; !slices.Equal(got, want) {
		t.Errorf("first push: manifest puts = %v, want %v", got, want)
	}

	mark = reg.Mark()
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("remote.Write() again = %v", err)
	}
	reqs, err = reg.Since(ctx, mark)
	if err != nil {
		t.Fatal(err)
	}
	if got := BlobUploads(reqs); len(got) != 0 {
		t.Errorf("second push: blob uploads = %v, want none\n%s", got, Summary(reqs))
	}

	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	status, digest, err := reg.ManifestDigest(ctx, "counts/img", "v1")
	if err != nil || status != http.StatusOK || digest != want.String() {
		t.Errorf("ManifestDigest() = %d, %q, %v; want 200, %q, nil", status, digest, err, want)
	}
	if status, _, err := reg.ManifestDigest(ctx, "counts/img", "absent"); err != nil || status != http.StatusNotFound {
		t.Errorf("ManifestDigest(absent) = %d, %v; want 404, nil", status, err)
	}
	m, err := reg.Manifest(ctx, "counts/img", "v1")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 3 || m.Digest != want.String() {
		t.Errorf("Manifest() = %d layers, digest %s; want 3, %s", len(m.Layers), m.Digest, want)
	}
}

func TestRegistryAuth(t *testing.T) {
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Skip("docker-registry not installed (Debian package docker-registry)")
	}
	ctx := context.Background()
	reg, err := Start(ctx, t.TempDir(), WithHtpasswd("kiln", "s3cret-pass"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg.Host + "/auth/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(ref, img)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusUnauthorized {
		t.Errorf("remote.Write() without credentials = %v, want a 401", err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: "kiln", Password: "s3cret-pass"})
	if err := remote.Write(ref, img, auth); err != nil {
		t.Errorf("remote.Write() with credentials = %v, want nil", err)
	}
	if status, _, err := reg.ManifestDigest(ctx, "auth/img", "v1"); err != nil || status != http.StatusOK {
		t.Errorf("ManifestDigest() = %d, %v; want 200, nil", status, err)
	}
}

func startOrSkip(t *testing.T) *Registry {
	t.Helper()
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Skip("docker-registry not installed (Debian package docker-registry)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := Start(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Error(err)
		}
	})
	return reg
}
