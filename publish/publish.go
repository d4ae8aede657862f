package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// Publisher sends an image somewhere under a reference and returns the
// digest it can be pulled by.
type Publisher interface {
	Publish(ctx context.Context, img v1.Image, ref name.Reference) (name.Digest, error)
}

// ParseReference parses an image reference. Registries named in insecure
// are spoken to over plain HTTP; go-containerregistry already does so for
// loopback addresses.
func ParseReference(s string, insecure []string) (name.Reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	if slices.Contains(insecure, ref.Context().RegistryStr()) {
		ref, err = name.ParseReference(s, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("image reference %q: %w", s, err)
		}
	}
	return ref, nil
}

// RegistryOption configures a Registry publisher.
type RegistryOption func(*Registry)

// WithKeychain sets where credentials come from. The default is docker's
// config.json and its credential helpers (authn.DefaultKeychain).
func WithKeychain(k authn.Keychain) RegistryOption { return func(r *Registry) { r.keychain = k } }

// WithTransport sets the HTTP transport. The default is NewTransport with
// the timeout and retries of the other options.
func WithTransport(t http.RoundTripper) RegistryOption { return func(r *Registry) { r.transport = t } }

// WithTimeout sets how long a registry may send nothing before a push
// fails with a *SilentError (see NewTransport). The default is
// DefaultTimeout.
func WithTimeout(d time.Duration) RegistryOption { return func(r *Registry) { r.timeout = d } }

// WithRetries sets how many times a request, and an operation (an
// existence check, a layer's upload, the manifest's), is tried again after
// a network fault or a 408, 429 or 5xx answer, with exponential backoff
// from 200 ms; an operation and its requests retry 4n times at most in
// all. The default is DefaultRetries.
func WithRetries(n int) RegistryOption { return func(r *Registry) { r.retries = n } }

// Registry publishes to an OCI distribution registry. Layers go up in
// parallel, blobs the registry has are skipped, and the manifest goes last,
// so a failed push never leaves a tag pointing at a partial image.
type Registry struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	timeout   time.Duration
	retries   int

	// homes records, per registry, a repository that holds each blob this
	// publisher pushed, so that pushing it to another repository of the
	// same registry becomes a cross-repository mount instead of an upload.
	// uploading holds, per registry, the layers a push is sending now:
	// concurrent pushes of other images wait for them and mount them, so a
	// layer shared by the functions of a stack goes up once.
	mu        sync.Mutex
	homes     map[string]map[v1.Hash]name.Repository
	uploading map[string]map[v1.Hash]chan struct{}
}

var _ Publisher = (*Registry)(nil)

// NewRegistry returns a registry publisher.
func NewRegistry(opts ...RegistryOption) *Registry {
	r := &Registry{keychain: authn.DefaultKeychain, timeout: DefaultTimeout, retries: DefaultRetries,
		homes: map[string]map[v1.Hash]name.Repository{}, uploading: map[string]map[v1.Hash]chan struct{}{}}
	for _, opt := range opts {
		opt(r)
	}
	if r.transport == nil {
		r.transport = NewTransport(r.timeout, r.retries)
	}
	return r
}

// remoteOptions leave retries to kiln: to the transport for single
// requests, and to try for whole uploads, which log them.
func (r *Registry) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.keychain),
		remote.WithTransport(r.transport),
		remote.WithJobs(4),
		remote.WithRetryBackoff(remote.Backoff{Duration: firstBackoff, Factor: 3, Steps: 1}),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}
}

// try runs op, and again after a network fault or a temporary answer of
// the registry, up to r.retries times, as long as the operation's budget
// lasts: the requests op makes draw on the same budget.
func (r *Registry) try(ctx context.Context, what string, op func(ctx context.Context) error) error {
	b := newBudget(r.retries)
	ctx = withBudget(ctx, b)
	for n := 1; ; n++ {
		err := op(ctx)
		if err == nil || !retryable(err) {
			return err
		}
		delay, again := retryAfter(ctx, b, n, r.retries, what, err.Error())
		if !again {
			return err
		}
		if err := sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// Publish implements Publisher.
func (r *Registry) Publish(ctx context.Context, img v1.Image, ref name.Reference) (name.Digest, error) {
	digest, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	dref := ref.Context().Digest(digest.String())
	// An unchanged image is already there under this tag: one HEAD, no upload.
	var desc *v1.Descriptor
	err = r.try(ctx, "HEAD "+ref.String(), func(ctx context.Context) error {
		var err error
		desc, err = remote.Head(ref, r.remoteOptions(ctx)...)
		return err
	})
	if err == nil && desc.Digest == digest {
		return dref, nil
	}
	// No answer at all (silence, refused or dropped connections, retried
	// already): the uploads would meet the same.
	var answer *transport.Error
	if err != nil && !errors.As(err, &answer) {
		return name.Digest{}, pushError(ref, err)
	}
	if err := r.sendLayers(ctx, img, ref.Context()); err != nil {
		return name.Digest{}, pushError(ref, err)
	}
	err = r.try(ctx, "pushing the manifest of "+ref.String(), func(ctx context.Context) error {
		return remote.Write(ref, r.mounting(img, ref.Context()), r.remoteOptions(ctx)...)
	})
	if err != nil {
		return name.Digest{}, pushError(ref, err)
	}
	r.remember(img, ref.Context())
	return dref, nil
}

func pushError(ref name.Reference, err error) error {
	var silent *SilentError
	if errors.As(err, &silent) {
		return fmt.Errorf("pushing %s: %w", ref, silent)
	}
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("pushing %s: %s refused the credentials kiln found (log in with: docker login %s): %w", ref, ref.Context().RegistryStr(), ref.Context().RegistryStr(), err)
	}
	return fmt.Errorf("pushing %s: %w", ref, err)
}

// sendLayers uploads the layers of img that no repository of the registry
// has from this publisher and no other push is sending, and waits for
// those another push is sending; remote.Write then mounts those. Each
// layer this push owns is released to the waiting ones as soon as it is
// up, or when its upload failed (they then send it themselves).
func (r *Registry) sendLayers(ctx context.Context, img v1.Image, repo name.Repository) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	reg := repo.RegistryStr()
	var owned []v1.Layer
	var waits []chan struct{}
	r.mu.Lock()
	if r.uploading[reg] == nil {
		r.uploading[reg] = map[v1.Hash]chan struct{}{}
	}
	inFlight := r.uploading[reg]
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			r.mu.Unlock()
			return err
		}
		if _, ok := r.homes[reg][d]; ok {
			continue
		}
		if ch, ok := inFlight[d]; ok {
			if !slices.Contains(waits, ch) {
				waits = append(waits, ch)
			}
			continue
		}
		inFlight[d] = make(chan struct{})
		owned = append(owned, l)
	}
	r.mu.Unlock()

	release := func(l v1.Layer, sent bool) {
		d, _ := l.Digest()
		r.mu.Lock()
		defer r.mu.Unlock()
		if sent {
			r.home(reg)[d] = repo
		}
		close(inFlight[d])
		delete(inFlight, d)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, l := range owned {
		g.Go(func() error {
			d, _ := l.Digest()
			err := r.try(gctx, "uploading layer "+d.String()+" to "+repo.String(), func(ctx context.Context) error {
				return remote.WriteLayer(repo, l, r.remoteOptions(ctx)...)
			})
			release(l, err == nil)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, ch := range waits {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// home returns the blob homes of a registry; r.mu must be held.
func (r *Registry) home(reg string) map[v1.Hash]name.Repository {
	homes := r.homes[reg]
	if homes == nil {
		homes = map[v1.Hash]name.Repository{}
		r.homes[reg] = homes
	}
	return homes
}

// mounting returns img with the layers another repository of the same
// registry got from this publisher marked mountable from there.
func (r *Registry) mounting(img v1.Image, repo name.Repository) v1.Image {
	r.mu.Lock()
	defer r.mu.Unlock()
	from := map[v1.Hash]name.Repository{}
	for d, home := range r.homes[repo.RegistryStr()] {
		if home.RepositoryStr() != repo.RepositoryStr() {
			from[d] = home
		}
	}
	if len(from) == 0 {
		return img
	}
	return &mountingImage{Image: img, from: from}
}

func (r *Registry) remember(img v1.Image, repo name.Repository) {
	ls, err := img.Layers()
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	homes := r.home(repo.RegistryStr())
	for _, l := range ls {
		if d, err := l.Digest(); err == nil {
			homes[d] = repo
		}
	}
}

// mountingImage is an image whose layers remote.Write may mount from
// another repository; its manifest and digest are unchanged.
type mountingImage struct {
	v1.Image
	from map[v1.Hash]name.Repository
}

func (m *mountingImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = l
		if d, err := l.Digest(); err == nil {
			if home, ok := m.from[d]; ok {
				out[i] = &remote.MountableLayer{Layer: l, Reference: home.Digest(d.String())}
			}
		}
	}
	return out, nil
}

// Tarball publishes a docker-loadable tarball (`docker load -i FILE`).
type Tarball struct {
	path string
}

var _ Publisher = (*Tarball)(nil)

// NewTarball returns a publisher writing to the file at path.
func NewTarball(path string) *Tarball { return &Tarball{path: path} }

// Publish implements Publisher. The file appears complete or not at all.
func (t *Tarball) Publish(ctx context.Context, img v1.Image, ref name.Reference) (name.Digest, error) {
	digest, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	if err := atomicfile.WriteFrom(t.path, func(w io.Writer) error { return tarball.Write(ref, img, w) }); err != nil {
		return name.Digest{}, fmt.Errorf("writing %s: %w", t.path, err)
	}
	return ref.Context().Digest(digest.String()), nil
}

// ParseOutput turns an --output value into a publisher: "registry",
// "oci:DIR" or "tar:FILE".
func ParseOutput(s string, registry *Registry) (Publisher, error) {
	switch {
	case s == "" || s == "registry":
		return registry, nil
	case strings.HasPrefix(s, "oci:") && len(s) > 4:
		return NewLayout(s[4:]), nil
	case strings.HasPrefix(s, "tar:") && len(s) > 4:
		return NewTarball(s[4:]), nil
	}
	return nil, errors.New(`--output: want "registry", "oci:DIR" or "tar:FILE", got ` + fmt.Sprintf("%q", s))
}
