package imagestore

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/publish"
)

// labelled is a small image told apart from others by its command.
func labelled(t *testing.T, label string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "label", Mode: 0o644, Size: int64(len(label))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(label))
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	if img, err = mutate.Config(img, v1.Config{Cmd: []string{label}}); err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestResolveLayout(t *testing.T) {
	one, two := labelled(t, "one"), labelled(t, "two")
	amd64, arm64 := labelled(t, "amd64"), labelled(t, "arm64")

	single := t.TempDir()
	lp, err := layout.Write(single, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(one); err != nil {
		t.Fatal(err)
	}

	// several holds two named images and an unnamed multi-platform index.
	several := filepath.Join(t.TempDir(), "with:colon")
	lp, err = layout.Write(several, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for label, img := range map[string]v1.Image{"one": one, "two": two} {
		if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{publish.RefNameAnnotation: label})); err != nil {
			t.Fatal(err)
		}
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm64, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	if err := lp.AppendIndex(idx); err != nil {
		t.Fatal(err)
	}
	idxDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		ref     string
		opts    []ResolveOption
		want    v1.Image
		wantErr []string // substrings of the error
	}{
		{name: "single image", ref: "oci:" + single, want: one},
		{name: "by name", ref: "oci:" + several + ":two", want: two},
		{name: "by digest", ref: "oci:" + several + "@" + digestOf(t, one).String(), want: one},
		{name: "index by digest, default platform", ref: "oci:" + several + "@" + idxDigest.String(),
			opts: []ResolveOption{WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})}, want: amd64},
		{name: "index by digest, other platform", ref: "oci:" + several + "@" + idxDigest.String(),
			opts: []ResolveOption{WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"})}, want: arm64},
		{name: "ambiguous", ref: "oci:" + several,
			wantErr: []string{"oci:" + several, "holds 3 images", "one (", "two (", idxDigest.String()}},
		{name: "unknown name", ref: "oci:" + several + ":three", wantErr: []string{"no image three", "one ("}},
		{name: "no layout", ref: "oci:" + filepath.Join(single, "nope"), wantErr: []string{"oci:" + filepath.Join(single, "nope")}},
		{name: "no platform", ref: "oci:" + several + "@" + idxDigest.String(),
			opts: []ResolveOption{WithPlatform(v1.Platform{OS: "linux", Architecture: "s390x"})}, wantErr: []string{"no image for linux/s390x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(context.Background(), tc.ref, tc.opts...)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Resolve() = %v, want an error", digestOf(t, got))
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("Resolve() = %v, want it to mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve() = %v", err)
			}
			if g, w := digestOf(t, got), digestOf(t, tc.want); g != w {
				t.Errorf("Resolve() = %v, want %v", g, w)
			}
			if err := validate.Image(got); err != nil {
				t.Errorf("validate.Image() = %v", err)
			}
		})
	}
}

func TestResolveTarball(t *testing.T) {
	img := labelled(t, "tar")
	path := filepath.Join(t.TempDir(), "image.tar")
	tag, err := name.NewTag("example.com/fn:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	got, err := Resolve(context.Background(), "tar:"+path)
	if err != nil {
		t.Fatalf("Resolve() = %v", err)
	}
	// A docker tarball keeps the config and layers; the manifest is rebuilt.
	g, err := got.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	w, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if g != w {
		t.Errorf("Resolve() config = %v, want %v", g, w)
	}
	if _, err := Resolve(context.Background(), "tar:"+path+".missing"); err == nil || !strings.Contains(err.Error(), "tar:"+path+".missing") {
		t.Errorf("Resolve() = %v, want an error naming the reference", err)
	}
}

func TestResolveRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img := labelled(t, "registry")
	ref, err := name.ParseReference(host + "/fn/hello:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	counting := &countingTransport{next: http.DefaultTransport}
	tests := []struct {
		name    string
		ref     string
		opts    []ResolveOption
		wantErr bool
	}{
		{name: "tag", ref: host + "/fn/hello:1"},
		{name: "digest", ref: host + "/fn/hello@" + digestOf(t, img).String()},
		{name: "insecure", ref: host + "/fn/hello:1", opts: []ResolveOption{WithInsecure(), WithKeychain(authn.NewMultiKeychain())}},
		{name: "transport", ref: host + "/fn/hello:1", opts: []ResolveOption{WithTransport(counting)}},
		{name: "missing tag", ref: host + "/fn/hello:2", wantErr: true},
		{name: "bad reference", ref: host + "/FN:::", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(context.Background(), tc.ref, tc.opts...)
			if tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), tc.ref) {
					t.Errorf("Resolve() = %v, want an error naming %s", err, tc.ref)
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve() = %v", err)
			}
			if g, w := digestOf(t, got), digestOf(t, img); g != w {
				t.Errorf("Resolve() = %v, want %v", g, w)
			}
		})
	}
	if counting.n.Load() == 0 {
		t.Errorf("Resolve() with WithTransport made no request through it")
	}
}

type countingTransport struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}
