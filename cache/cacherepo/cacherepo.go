package cacherepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/publish"
)

// The annotations of an entry's manifest (see the package doc).
const (
	AnnotationKey  = "dev.kiln.cache.key"
	AnnotationStep = "dev.kiln.cache.step"
)

// pushes is how many entries go up at once; each pushes one layer.
const pushes = 3

// Local is the cache a Cache decorates; *cache.Store is one.
type Local interface {
	Get(ctx context.Context, key v1.Hash) (v1.Layer, error)
	Put(ctx context.Context, key v1.Hash, name string, build func(io.Writer) error) (v1.Layer, error)
	PutCompressed(ctx context.Context, key v1.Hash, name string, desc layers.Descriptor, r io.Reader) (v1.Layer, error)
	Tree(ctx context.Context, k cache.Kind, key string, fill func(dir string) error, opts ...cache.TreeOption) (*cache.Lease, error)
}

var _ Local = (*cache.Store)(nil)

// Cache is a local cache backed by a registry repository. It is safe for
// concurrent use.
type Cache struct {
	local     Local
	repo      name.Repository
	keychain  authn.Keychain
	transport http.RoundTripper
	publisher publish.Publisher
	jobs      chan struct{}

	wg sync.WaitGroup
	mu sync.Mutex
	// cancels stop the pushes still running when Flush's context ends.
	cancels []context.CancelFunc
	// readErr and pushErr are the first failures to read and to push:
	// after one, the repository is not read (or written) again, so an
	// unreachable registry costs one timeout, not one a step. unreachable
	// is a read that got no answer at all: nothing is pushed either.
	readErr, pushErr error
	unreachable      bool
}

// Option configures a Cache.
type Option func(*options)

type options struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	publisher publish.Publisher
}

// WithKeychain sets where credentials come from. Default:
// authn.DefaultKeychain (docker's config.json and its helpers).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithTransport sets the transport of every request to the repository.
// Default: publish.NewTransport with publish.DefaultTimeout and
// publish.DefaultRetries, as kiln's pushes.
func WithTransport(t http.RoundTripper) Option { return func(o *options) { o.transport = t } }

// WithPublisher sets what pushes the entries. Default: a publish.Registry
// with the keychain and transport of the other options. Passing the
// publisher the build's images go through lets their pushes mount the
// layers the entries uploaded to the same registry instead of sending
// them again.
func WithPublisher(p publish.Publisher) Option { return func(o *options) { o.publisher = p } }

// New returns local backed by repo.
func New(local Local, repo name.Repository, opts ...Option) *Cache {
	o := options{keychain: authn.DefaultKeychain}
	for _, opt := range opts {
		opt(&o)
	}
	if o.transport == nil {
		o.transport = publish.NewTransport(publish.DefaultTimeout, publish.DefaultRetries)
	}
	if o.publisher == nil {
		o.publisher = publish.NewRegistry(publish.WithTransport(o.transport), publish.WithKeychain(o.keychain))
	}
	return &Cache{
		local: local, repo: repo, keychain: o.keychain, transport: o.transport, publisher: o.publisher,
		jobs: make(chan struct{}, pushes),
	}
}

// Tag is where the entry for key lives in repo.
func Tag(repo name.Repository, key v1.Hash) name.Tag { return repo.Tag(key.Hex) }

// Get returns the layer stored for key: from the local store, else from
// the repository, which it then keeps in the local store (a layer from
// the repository is a remote.MountableLayer). A key neither
// has, or a repository that cannot be read, is an error wrapping
// cache.ErrNotFound.
func (c *Cache) Get(ctx context.Context, key v1.Hash) (v1.Layer, error) {
	l, err := c.local.Get(ctx, key)
	if err == nil || !errors.Is(err, cache.ErrNotFound) {
		return l, err
	}
	c.mu.Lock()
	down := c.readErr != nil
	c.mu.Unlock()
	if down {
		return nil, err
	}
	l, err = c.pull(ctx, key)
	if err == nil {
		return l, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if !errors.Is(err, cache.ErrNotFound) {
		var answer *transport.Error
		c.mu.Lock()
		if c.readErr == nil {
			c.readErr = err
			c.unreachable = !errors.As(err, &answer)
		}
		c.mu.Unlock()
	}
	return nil, fmt.Errorf("%s: %w", Tag(c.repo, key), cache.ErrNotFound)
}

// pull reads the entry for key and keeps its layer in the local store. An
// entry that is not there, or not one for key, wraps cache.ErrNotFound.
func (c *Cache) pull(ctx context.Context, key v1.Hash) (v1.Layer, error) {
	tag := Tag(c.repo, key)
	img, err := remote.Image(tag, c.remoteOptions(ctx)...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil, cache.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	l, step, err := entryLayer(img, key)
	if err != nil {
		// Someone else's tag, or a damaged one: the Put that follows
		// the miss writes it again.
		return nil, fmt.Errorf("%s: %w: %w", tag, err, cache.ErrNotFound)
	}
	var desc layers.Descriptor
	if desc.Digest, err = l.Digest(); err == nil {
		if desc.DiffID, err = l.DiffID(); err == nil {
			desc.Size, err = l.Size()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", tag, err)
	}
	defer rc.Close()
	local, err := c.local.PutCompressed(ctx, key, step, desc, rc)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", tag, err)
	}
	// An image's push to another repository of the same registry mounts
	// the blob from here rather than uploading it again: a fresh pod
	// sends only what it built.
	return &remote.MountableLayer{Layer: local, Reference: c.repo.Digest(desc.Digest.String())}, nil
}

// entryLayer returns the layer of an entry and its step's name, if img is
// the entry for key in this package's format.
func entryLayer(img v1.Image, key v1.Hash) (v1.Layer, string, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, "", err
	}
	if got := m.Annotations[AnnotationKey]; got != key.String() {
		return nil, "", fmt.Errorf("the entry is for key %q", got)
	}
	if len(m.Layers) != 1 || (m.Layers[0].MediaType != types.OCILayer && m.Layers[0].MediaType != types.DockerLayer) {
		return nil, "", errors.New("the entry is not one gzip layer")
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, "", err
	}
	if len(cf.RootFS.DiffIDs) != 1 {
		return nil, "", fmt.Errorf("the entry's config has %d diff IDs, want 1", len(cf.RootFS.DiffIDs))
	}
	l, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, "", err
	}
	return l, m.Annotations[AnnotationStep], nil
}

// Put stores the layer build writes under key in the local store, and
// starts pushing it to the repository; Flush waits for the push. A push
// that fails does not fail Put: Flush reports it.
func (c *Cache) Put(ctx context.Context, key v1.Hash, name string, build func(io.Writer) error) (v1.Layer, error) {
	l, err := c.local.Put(ctx, key, name, build)
	if err != nil {
		return nil, err
	}
	c.push(ctx, key, name, l)
	return l, nil
}

// push sends the entry for key in the background, with ctx's values but
// not its end: the step that made the layer is over long before its push.
func (c *Cache) push(ctx context.Context, key v1.Hash, step string, l v1.Layer) {
	img, err := entryImage(key, step, l)
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pushErr != nil || c.unreachable {
		cancel()
		return
	}
	if err != nil {
		c.pushErr = fmt.Errorf("making the entry of %s: %w", step, err)
		cancel()
		return
	}
	c.cancels = append(c.cancels, cancel)
	c.wg.Go(func() {
		defer cancel()
		select {
		case c.jobs <- struct{}{}:
		case <-pctx.Done():
			return
		}
		defer func() { <-c.jobs }()
		c.mu.Lock()
		down := c.pushErr != nil
		c.mu.Unlock()
		if down {
			return
		}
		if _, err := c.publisher.Publish(pctx, img, Tag(c.repo, key)); err != nil && pctx.Err() == nil {
			c.mu.Lock()
			if c.pushErr == nil {
				c.pushErr = err
			}
			c.mu.Unlock()
		}
	})
}

// Flush waits for the pushes Put started, or stops them when ctx ends,
// and returns what kept the repository from serving this build: the first
// failure to read it and the first to push to it (after which it was not
// read, or written, again). They are warnings: the build's layers are
// all in the local store. The Cache may be used again after Flush.
func (c *Cache) Flush(ctx context.Context) []error {
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		c.mu.Lock()
		for _, cancel := range c.cancels {
			cancel()
		}
		c.mu.Unlock()
		<-done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cancels = nil
	var warnings []error
	if c.unreachable {
		return []error{fmt.Errorf("cache repository %s could not be reached, so it was neither read nor written: %w", c.repo, c.readErr)}
	}
	if c.readErr != nil {
		warnings = append(warnings, fmt.Errorf("cache repository %s could not be read, so the steps after were built here: %w", c.repo, c.readErr))
	}
	if c.pushErr != nil {
		warnings = append(warnings, fmt.Errorf("cache repository %s could not be written, so it lacks this build's new layers: %w", c.repo, c.pushErr))
	}
	return warnings
}

// remoteOptions leave retries to the transport, as kiln's pushes do.
func (c *Cache) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}

// entryImage is the entry for key: an OCI image of the one layer l, made
// by the step named step (see the package doc).
func entryImage(key v1.Hash, step string, l v1.Layer) (v1.Image, error) {
	epoch := v1.Time{Time: time.Unix(0, 0).UTC()}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: l, History: v1.History{Created: epoch, CreatedBy: step}})
	if err != nil {
		return nil, err
	}
	img, err = mutate.CreatedAt(img, epoch)
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.Annotations(img, map[string]string{AnnotationKey: key.String(), AnnotationStep: step}).(v1.Image), nil
}
