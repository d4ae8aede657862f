package publish

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// countingRegistry counts blob uploads and manifest writes; uploads
// counts those that are not cross-repository mounts.
type countingRegistry struct {
	blobs, manifests, uploads atomic.Int32
	next                      http.Handler
}

func (c *countingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && strings.Contains(r.URL.Path, "/blobs/uploads/"):
		c.blobs.Add(1)
		if r.URL.Query().Get("mount") == "" {
			c.uploads.Add(1)
		}
	case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/"):
		c.manifests.Add(1)
	}
	c.next.ServeHTTP(w, r)
}

func TestRegistryPublish(t *testing.T) {
	ctx := context.Background()
	reg := &countingRegistry{next: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := ParseReference(host+"/fn:latest", nil)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	pub := NewRegistry(WithKeychain(authn.NewMultiKeychain()))
	got, err := pub.Publish(ctx, img, ref)
	if err != nil {
		t.Fatalf("Publish() = %v", err)
	}
	want, _ := img.Digest()
	if got.DigestStr() != want.String() {
		t.Errorf("Publish() = %s, want digest %s", got, want)
	}
	if n := reg.blobs.Load(); n != 4 {
		t.Errorf("first push uploaded %d blobs, want 4 (3 layers + config)", n)
	}
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Errorf("validate.Image(pulled) = %v", err)
	}
	// Pushing the same image again uploads nothing at all.
	reg.blobs.Store(0)
	reg.manifests.Store(0)
	if _, err := pub.Publish(ctx, img, ref); err != nil {
		t.Fatal(err)
	}
	if b, m := reg.blobs.Load(), reg.manifests.Load(); b != 0 || m != 0 {
		t.Errorf("unchanged push uploaded %d blobs and %d manifests, want none", b, m)
	}
}

// TestRegistryPublishShared pushes images that share layers to
// repositories of one registry at the same time, as a stack built with
// --parallel does: each shared layer goes up once, and is mounted into
// the other repositories.
func TestRegistryPublishShared(t *testing.T) {
	ctx := context.Background()
	reg := &countingRegistry{next: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(reg)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	base, err := random.Image(256<<10, 4)
	if err != nil {
		t.Fatal(err)
	}
	const functions = 6
	pub := NewRegistry(WithKeychain(authn.NewMultiKeychain()))
	errs := make(chan error, functions)
	var imgs [functions]v1.Image
	for i := range functions {
		top, err := random.Layer(1024, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		if imgs[i], err = mutate.AppendLayers(base, top); err != nil {
			t.Fatal(err)
		}
	}
	for i, img := range imgs {
		go func() {
			ref, err := ParseReference(fmt.Sprintf("%s/fn-%d:latest", host, i), nil)
			if err == nil {
				_, err = pub.Publish(ctx, img, ref)
			}
			errs <- err
		}()
	}
	for range functions {
		if err := <-errs; err != nil {
			t.Fatalf("Publish() = %v", err)
		}
	}
	// 4 shared layers once, then per function its own layer and config.
	if got, want := reg.uploads.Load(), int32(4+2*functions); got != want {
		t.Errorf("blob uploads = %d, want %d: each shared layer once", got, want)
	}
	for i, img := range imgs {
		ref, err := name.ParseReference(fmt.Sprintf("%s/fn-%d:latest", host, i), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(pulled); err != nil {
			t.Errorf("fn-%d: validate.Image() = %v", i, err)
		}
		if got, want := mustDigest(t, pulled), mustDigest(t, img); got != want {
			t.Errorf("fn-%d digest = %s, want %s", i, got, want)
		}
	}
}

func mustDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRegistryPublishErrors(t *testing.T) {
	ctx := context.Background()
	img, _ := random.Image(64, 1)
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
	}))
	defer unauthorized.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedHost := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()
	tests := []struct {
		name string
		ref  string
		want string
	}{
		{"401 names the registry", strings.TrimPrefix(unauthorized.URL, "http://") + "/fn:1", strings.TrimPrefix(unauthorized.URL, "http://")},
		{"unreachable registry", closedHost + "/fn:1", closedHost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := ParseReference(tc.ref, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = NewRegistry(WithKeychain(authn.NewMultiKeychain()), WithRetries(1)).Publish(ctx, img, ref)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Publish() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		in       string
		insecure []string
		scheme   string
		wantErr  bool
	}{
		{"127.0.0.1:5000/fn:1", nil, "http", false},
		{"localhost:5000/fn", nil, "http", false},
		{"registry.example.com/fn", nil, "https", false},
		{"registry.example.com/fn", []string{"registry.example.com"}, "http", false},
		{"UPPER/case", nil, "", true},
		{"fn:bad:tag", nil, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			ref, err := ParseReference(tc.in, tc.insecure)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseReference(%q) = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err == nil && ref.Context().Scheme() != tc.scheme {
				t.Errorf("ParseReference(%q) scheme = %s, want %s", tc.in, ref.Context().Scheme(), tc.scheme)
			}
		})
	}
}

func TestLayoutPublish(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "oci")
	ref, _ := name.ParseReference("example.com/fn:1")
	var last v1.Hash
	for range 2 {
		img, _ := random.Image(256, 2)
		if _, err := NewLayout(dir).Publish(ctx, img, ref); err != nil {
			t.Fatalf("Publish() = %v", err)
		}
		last, _ = img.Digest()
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	if len(m.Manifests) != 1 || m.Manifests[0].Digest != last {
		t.Fatalf("layout holds %+v, want only %s", m.Manifests, last)
	}
	img, err := NewLayout(dir).Lookup(ref)
	if err != nil {
		t.Fatalf("Lookup() = %v", err)
	}
	if d, _ := img.Digest(); d != last {
		t.Errorf("Lookup() digest = %s, want %s", d, last)
	}
	other, _ := name.ParseReference("example.com/other:1")
	if _, err := NewLayout(dir).Lookup(other); err == nil {
		t.Error("Lookup(absent) = nil error")
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image() = %v", err)
	}
}

func TestTarballPublish(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fn.tar")
	ref, _ := name.ParseReference("example.com/fn:1")
	img, _ := random.Image(256, 2)
	if _, err := NewTarball(path).Publish(context.Background(), img, ref); err != nil {
		t.Fatalf("Publish() = %v", err)
	}
	tag := ref.(name.Tag)
	back, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(back); err != nil {
		t.Errorf("validate.Image() = %v", err)
	}
	if _, err := NewTarball(filepath.Join(t.TempDir(), "missing", "x.tar")).Publish(context.Background(), img, ref); err == nil {
		t.Error("Publish(into a missing directory) = nil error")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the tarball", len(entries))
	}
}

func TestParseOutput(t *testing.T) {
	reg := NewRegistry()
	for in, want := range map[string]string{"": "*publish.Registry", "registry": "*publish.Registry", "oci:/tmp/x": "*publish.Layout", "tar:/tmp/x.tar": "*publish.Tarball"} {
		p, err := ParseOutput(in, reg)
		if err != nil || typeName(p) != want {
			t.Errorf("ParseOutput(%q) = %s, %v, want %s", in, typeName(p), err, want)
		}
	}
	for _, bad := range []string{"oci:", "docker", "tar:"} {
		if _, err := ParseOutput(bad, reg); err == nil {
			t.Errorf("ParseOutput(%q) = nil error", bad)
		}
	}
}

func typeName(p Publisher) string {
	switch p.(type) {
	case *Registry:
		return "*publish.Registry"
	case *Layout:
		return "*publish.Layout"
	case *Tarball:
		return "*publish.Tarball"
	}
	return "nil"
}
