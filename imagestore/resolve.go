package imagestore

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/publish"
)

// ResolveOption configures Resolve.
type ResolveOption func(*resolveOptions)

type resolveOptions struct {
	insecure  bool
	platform  v1.Platform
	keychain  authn.Keychain
	transport http.RoundTripper
}

// WithInsecure allows plain HTTP and unverified TLS for the registry of a
// registry reference. Default: off (localhost registries use HTTP anyway).
func WithInsecure() ResolveOption {
	return func(o *resolveOptions) { o.insecure = true }
}

// WithPlatform picks the image for p when a reference or layout entry is a
// multi-platform index. Default: linux on the architecture kiln runs on.
func WithPlatform(p v1.Platform) ResolveOption {
	return func(o *resolveOptions) { o.platform = p }
}

// WithKeychain sets where registry credentials come from.
// Default: authn.DefaultKeychain (the docker config).
func WithKeychain(k authn.Keychain) ResolveOption {
	return func(o *resolveOptions) { o.keychain = k }
}

// WithTransport sets the HTTP transport for registry requests.
// Default: publish.NewTransport with publish.DefaultTimeout and
// publish.DefaultRetries, which bounds how long a silent registry is
// waited for and logs each retry.
func WithTransport(t http.RoundTripper) ResolveOption {
	return func(o *resolveOptions) { o.transport = t }
}

// Resolve finds the image that ref names. ref is one of:
//
//   - oci:DIR, an OCI image layout holding one image (or one index, from
//     which the platform's image is taken); oci:DIR:NAME picks the entry whose
//     org.opencontainers.image.ref.name annotation is NAME and
//     oci:DIR@sha256:... the entry with that digest;
//   - tar:FILE, a tarball that `docker load` accepts, holding one image;
//   - anything else, a registry reference.
//
// Registry images are fetched lazily with ctx: ctx must stay alive while the
// image is read (by Unpack or Image).
func Resolve(ctx context.Context, ref string, opts ...ResolveOption) (v1.Image, error) {
	o := newResolveOptions(opts)
	var (
		img v1.Image
		err error
	)
	switch {
	case strings.HasPrefix(ref, "oci:"):
		img, err = fromLayout(strings.TrimPrefix(ref, "oci:"), o.platform)
	case strings.HasPrefix(ref, "tar:"):
		img, err = tarball.ImageFromPath(strings.TrimPrefix(ref, "tar:"), nil)
	default:
		img, err = fromRegistry(ctx, ref, &o)
	}
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", ref, err)
	}
	return img, nil
}

func newResolveOptions(opts []ResolveOption) resolveOptions {
	o := resolveOptions{
		platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
		keychain: authn.DefaultKeychain,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func fromRegistry(ctx context.Context, ref string, o *resolveOptions) (v1.Image, error) {
	var nopts []name.Option
	if o.insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, err
	}
	t := o.transport
	if t == nil {
		t = publish.NewTransport(publish.DefaultTimeout, publish.DefaultRetries)
	}
	// The transport retries, and logs it; go-containerregistry does not.
	return remote.Image(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain), remote.WithPlatform(o.platform),
		remote.WithTransport(t), remote.WithRetryBackoff(remote.Backoff{Duration: time.Second, Steps: 1}))
}

// fromLayout reads spec, which is DIR, DIR:NAME or DIR@DIGEST.
func fromLayout(spec string, platform v1.Platform) (v1.Image, error) {
	dir, refName, digest := spec, "", ""
	if i := strings.LastIndex(spec, "@"); i >= 0 {
		dir, digest = spec[:i], spec[i+1:]
	} else if i := strings.LastIndex(spec, ":"); i >= 0 && !strings.Contains(spec[i+1:], "/") {
		// DIR itself may contain a colon: only split when DIR alone is not
		// a directory.
		if fi, err := os.Stat(spec); err != nil || !fi.IsDir() {
			dir, refName = spec[:i], spec[i+1:]
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range m.Manifests {
		switch {
		case digest != "" && d.Digest.String() != digest:
		case refName != "" && d.Annotations[publish.RefNameAnnotation] != refName:
		default:
			found = append(found, d)
		}
	}
	switch {
	case len(found) == 1:
		return imageFor(idx, found[0], platform)
	case len(m.Manifests) == 0:
		return nil, fmt.Errorf("%s holds no image", dir)
	case len(found) == 0:
		return nil, fmt.Errorf("%s has no image %s%s; it holds %s", dir, refName, digest, describe(m.Manifests))
	default:
		return nil, fmt.Errorf("%s holds %d images, pick one with oci:DIR:NAME or oci:DIR@DIGEST: %s", dir, len(found), describe(found))
	}
}

// imageFor returns the image d points at, or the image for platform when d
// is a multi-platform index.
func imageFor(idx v1.ImageIndex, d v1.Descriptor, platform v1.Platform) (v1.Image, error) {
	switch {
	case d.MediaType.IsImage():
		return idx.Image(d.Digest)
	case d.MediaType.IsIndex():
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		m, err := child.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, cd := range m.Manifests {
			if cd.Platform != nil && cd.Platform.Satisfies(platform) {
				return imageFor(child, cd, platform)
			}
		}
		return nil, fmt.Errorf("index %s has no image for %s", d.Digest, platform)
	default:
		return nil, fmt.Errorf("%s has media type %s, not an image", d.Digest, d.MediaType)
	}
}

// describe lists layout entries for an error message, by name when they
// have one.
func describe(ds []v1.Descriptor) string {
	s := make([]string, 0, len(ds))
	for _, d := range ds {
		if n := d.Annotations[publish.RefNameAnnotation]; n != "" {
			s = append(s, fmt.Sprintf("%s (%s)", n, d.Digest))
		} else {
			s = append(s, d.Digest.String())
		}
	}
	return strings.Join(s, ", ")
}
