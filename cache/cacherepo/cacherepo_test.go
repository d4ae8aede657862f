package cacherepo

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layers"
)

// server is an in-process registry that counts its requests and can refuse
// writes, as a read-only cache repository does.
type server struct {
	*httptest.Server
	requests atomic.Int64
	// writes counts the requests that would change the repository.
	writes   atomic.Int64
	readOnly atomic.Bool
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.writes.Add(1)
		}
		if s.readOnly.Load() && r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, `{"errors":[{"code":"DENIED","message":"read-only"}]}`, http.StatusForbidden)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) repo(t *testing.T) name.Repository {
	t.Helper()
	repo, err := name.NewRepository(strings.TrimPrefix(s.URL, "http://") + "/cache")
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func newCache(t *testing.T, repo name.Repository) (*Cache, *cache.Store) {
	t.Helper()
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return New(store, repo, WithTransport(http.DefaultTransport), WithKeychain(authn.NewMultiKeychain())), store
}

func key(s string) v1.Hash { return layers.NewKey("test").String(s).Sum() }

func tarOf(content string) func(io.Writer) error {
	return func(w io.Writer) error {
		return layers.WriteTar(w, []layers.File{layers.Bytes("f", 0o644, []byte(content))})
	}
}

func digest(t *testing.T, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func flush(t *testing.T, c *Cache) {
	t.Helper()
	if w := c.Flush(context.Background()); len(w) != 0 {
		t.Fatalf("Flush() = %v, want no warnings", w)
	}
}

// TestMissPutHit: a key neither store has is a miss; Put pushes it; a
// cache with an empty local store then takes it from the repository and
// keeps it, byte for byte, in its local store.
func TestMissPutHit(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	repo := srv.repo(t)

	a, _ := newCache(t, repo)
	if _, err := a.Get(ctx, key("x")); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
	put, err := a.Put(ctx, key("x"), "RUN make x", tarOf("x"))
	if err != nil {
		t.Fatalf("Put() = %v", err)
	}
	flush(t, a)

	img, err := remote.Image(Tag(repo, key("x")))
	if err != nil {
		t.Fatalf("reading the entry: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image(entry) = %v", err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("entry media types = %s, %s; want OCI's", m.MediaType, m.Config.MediaType)
	}
	if m.Annotations[AnnotationKey] != key("x").String() || m.Annotations[AnnotationStep] != "RUN make x" {
		t.Errorf("entry annotations = %v", m.Annotations)
	}
	if len(m.Layers) != 1 || m.Layers[0].Digest != digest(t, put) {
		t.Errorf("entry layers = %v, want the one layer %s", m.Layers, digest(t, put))
	}

	b, bstore := newCache(t, repo)
	got, err := b.Get(ctx, key("x"))
	if err != nil {
		t.Fatalf("Get() from the repository = %v", err)
	}
	if digest(t, got) != digest(t, put) {
		t.Errorf("Get() digest = %s, want %s", digest(t, got), digest(t, put))
	}
	if err := validate.Layer(got); err != nil {
		t.Errorf("validate.Layer(Get()) = %v", err)
	}
	local, err := bstore.Get(ctx, key("x"))
	if err != nil {
		t.Fatalf("local Get() after a repository hit = %v, want the layer kept", err)
	}
	if digest(t, local) != digest(t, put) {
		t.Errorf("local digest = %s, want %s", digest(t, local), digest(t, put))
	}
	before := srv.requests.Load()
	if _, err := b.Get(ctx, key("x")); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load() - before; n != 0 {
		t.Errorf("a local hit made %d registry requests, want 0", n)
	}
	flush(t, b)
}

// TestPushTwiceUploadsNothing: an entry is the same image whoever pushes
// it, so pushing a layer the repository has sends no blob.
func TestPushTwiceUploadsNothing(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	a, _ := newCache(t, srv.repo(t))
	if _, err := a.Put(ctx, key("x"), "RUN make x", tarOf("x")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	srv.readOnly.Store(true)
	b, _ := newCache(t, srv.repo(t))
	if _, err := b.Put(ctx, key("x"), "RUN make x", tarOf("x")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
}

// TestNotTheKey: an entry whose annotation names another key, as a tag
// copied over another, is a miss, and the Put after it fixes the tag.
func TestNotTheKey(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	repo := srv.repo(t)
	a, _ := newCache(t, repo)
	if _, err := a.Put(ctx, key("x"), "x", tarOf("x")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if err := remote.Tag(Tag(repo, key("y")), mustDescriptor(t, Tag(repo, key("x")))); err != nil {
		t.Fatal(err)
	}
	b, _ := newCache(t, repo)
	if _, err := b.Get(ctx, key("y")); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("Get() of an entry for another key = %v, want ErrNotFound", err)
	}
	if _, err := b.Put(ctx, key("y"), "y", tarOf("y")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	c, _ := newCache(t, repo)
	if _, err := c.Get(ctx, key("y")); err != nil {
		t.Errorf("Get() after the Put that fixed the tag = %v", err)
	}
}

func mustDescriptor(t *testing.T, ref name.Reference) *remote.Descriptor {
	t.Helper()
	d, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFailures: a repository that refuses writes or cannot be reached
// never fails Get or Put; Flush says so once, and the repository is not
// tried again in the build.
func TestFailures(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(srv *server)
		wantWarn string
	}{
		{"read-only", func(srv *server) { srv.readOnly.Store(true) }, "could not be written"},
		{"unreachable", func(srv *server) { srv.Close() }, "could not be reached"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := newServer(t)
			c, store := newCache(t, srv.repo(t))
			tc.setup(srv)
			for _, k := range []string{"x", "y"} {
				if _, err := c.Get(ctx, key(k)); !errors.Is(err, cache.ErrNotFound) {
					t.Fatalf("Get(%s) = %v, want ErrNotFound", k, err)
				}
				if _, err := c.Put(ctx, key(k), "RUN make "+k, tarOf(k)); err != nil {
					t.Fatalf("Put(%s) = %v, want the layer stored locally", k, err)
				}
			}
			warnings := c.Flush(ctx)
			if len(warnings) != 1 || !strings.Contains(warnings[0].Error(), tc.wantWarn) {
				t.Fatalf("Flush() = %v, want one warning saying %q", warnings, tc.wantWarn)
			}
			for _, k := range []string{"x", "y"} {
				if _, err := store.Get(ctx, key(k)); err != nil {
					t.Errorf("local Get(%s) = %v, want the layer", k, err)
				}
			}
			writes := srv.writes.Load()
			if _, err := c.Get(ctx, key("z")); !errors.Is(err, cache.ErrNotFound) {
				t.Fatalf("Get(z) = %v, want ErrNotFound", err)
			}
			if _, err := c.Put(ctx, key("z"), "z", tarOf("z")); err != nil {
				t.Fatal(err)
			}
			c.Flush(ctx)
			if n := srv.writes.Load() - writes; n != 0 {
				t.Errorf("after a failed push, Put made %d write requests, want 0", n)
			}
		})
	}
}

// TestFlushCancelled: Flush stops the pushes still running when its
// context ends, and reports no warning for them.
func TestFlushCancelled(t *testing.T) {
	stalled := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case stalled <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	defer srv.Close()
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://") + "/cache")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := newCache(t, repo)
	if _, err := c.Put(context.Background(), key("x"), "x", tarOf("x")); err != nil {
		t.Fatal(err)
	}
	<-stalled
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if w := c.Flush(ctx); len(w) != 0 {
		t.Errorf("Flush(cancelled) = %v, want no warnings", w)
	}
}
