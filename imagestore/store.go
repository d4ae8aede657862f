package imagestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/publish"
)

// Store is kiln's local image store: an OCI image layout whose entries are
// named by the reference they were built for.
type Store struct {
	layout *publish.Layout
	dir    string
}

// Open returns the local image store of the cache directory cacheDir. The
// layout is created by the first image put in it.
func Open(cacheDir string) *Store {
	dir := filepath.Join(cacheDir, "images")
	return &Store{layout: publish.NewLayout(dir), dir: dir}
}

// Dir is the store's OCI layout directory.
func (s *Store) Dir() string { return s.dir }

// Publisher returns the publisher that puts images in the store, replacing
// the one stored under the same name.
func (s *Store) Publisher() publish.Publisher { return s.layout }

// Lookup returns the image stored under ref's name.
func (s *Store) Lookup(ref name.Reference) (v1.Image, error) {
	return s.layout.Lookup(ref)
}

// Names lists the names of the stored images, sorted.
func (s *Store) Names(ctx context.Context) ([]string, error) { return s.layout.Names(ctx) }

// Image returns the stored image with digest h.
func (s *Store) Image(h v1.Hash) (v1.Image, error) {
	return s.layout.Image(h)
}

// FindOption configures Find.
type FindOption func(*findOptions)

type findOptions struct {
	pull          bool
	registryFirst bool
	insecure      []string
	resolve       []ResolveOption
	onPull        func(string)
}

// Pull skips the local store: the image comes from its registry. Default:
// the local store is asked first.
func Pull() FindOption { return func(o *findOptions) { o.pull = true } }

// RegistryFirst asks the registry before the local store, as a deploy does:
// a cluster pulls from the registry. Default: the local store first.
func RegistryFirst() FindOption { return func(o *findOptions) { o.registryFirst = true } }

// WithInsecureRegistries names registry hosts spoken to over plain HTTP.
// Default none (loopback registries use HTTP anyway).
func WithInsecureRegistries(hosts []string) FindOption {
	return func(o *findOptions) { o.insecure = hosts }
}

// WithResolveOptions passes options to Resolve for images that are not in
// the local store.
func WithResolveOptions(opts ...ResolveOption) FindOption {
	return func(o *findOptions) { o.resolve = append(o.resolve, opts...) }
}

// OnPull sets what is told, before it happens, that an image is pulled
// from its registry. Default: nothing.
func OnPull(f func(image string)) FindOption { return func(o *findOptions) { o.onPull = f } }

// ReferenceError is an image reference that does not parse.
type ReferenceError struct {
	Image string
	Err   error
}

func (e *ReferenceError) Error() string { return e.Err.Error() }

func (e *ReferenceError) Unwrap() error { return e.Err }

// Find returns the image that image names: oci:DIR[:NAME] and tar:FILE as
// Resolve reads them; a NAME@DIGEST or NAME in the local store, by digest
// or by the name it was built for; else from its registry.
func (s *Store) Find(ctx context.Context, image string, opts ...FindOption) (v1.Image, error) {
	var o findOptions
	for _, opt := range opts {
		opt(&o)
	}
	if strings.HasPrefix(image, "oci:") || strings.HasPrefix(image, "tar:") {
		return Resolve(ctx, image, o.resolve...)
	}
	ref, err := publish.ParseReference(image, o.insecure)
	if err != nil {
		return nil, &ReferenceError{Image: image, Err: err}
	}
	ropts := o.resolve
	if slices.Contains(o.insecure, ref.Context().RegistryStr()) {
		ropts = append(slices.Clone(ropts), WithInsecure())
	}
	pull := func() (v1.Image, error) {
		if o.onPull != nil {
			o.onPull(image)
		}
		return Resolve(ctx, image, ropts...)
	}
	if o.pull {
		return pull()
	}
	if o.registryFirst {
		ro := newResolveOptions(ropts)
		img, rerr := fromRegistry(ctx, image, &ro)
		if rerr == nil {
			return img, nil
		}
		if img, err := s.local(ref); err == nil {
			return img, nil
		}
		return nil, fmt.Errorf("image %s is neither in its registry (%v) nor in kiln's local store: build it first (kiln build --push, or kiln up)", ref, rerr)
	}
	img, err := s.local(ref)
	switch {
	case err == nil:
		return img, nil
	case !errors.Is(err, publish.ErrNotFound):
		// Built here, but unreadable: pulling would run something else.
		return nil, fmt.Errorf("image %s in kiln's local store: %w (build it again, or give --pull)", image, err)
	}
	return pull()
}

// local finds ref in the store: a digest reference by its digest, else by
// its name.
func (s *Store) local(ref name.Reference) (v1.Image, error) {
	if d, ok := ref.(name.Digest); ok {
		h, err := v1.NewHash(d.DigestStr())
		if err != nil {
			return nil, err
		}
		return s.Image(h)
	}
	return s.Lookup(ref)
}
