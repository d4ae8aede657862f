package project

import (
	"crypto/tls"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/imagestore"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/publish"
)

// Project runs kiln's workflow with one cache and one local image store.
// It is safe for concurrent use.
type Project struct {
	cache  *cache.Store
	images *imagestore.Store
	opts   options
	// transport carries every registry request: pushes, checks, pulls.
	transport http.RoundTripper
	// publisher makes every push.
	publisher *publish.Registry

	builderOnce sync.Once
	builder     *builder.Builder
	builderErr  error
	// templateNotice holds the langs whose left-aside template was said.
	templateNotice sync.Map
}

// Option configures a Project.
type Option func(*options) error

type options struct {
	getenv   func(string) string
	toolEnv  []string
	progress Progress
	version  string
	labels   map[string]string
	noCache  bool
	// templates: langs kiln has a pack for build through their
	// ./template/<lang>/Dockerfile when there is one.
	templates bool
	// realWatchdog: OpenFaaS's watchdog images are pulled, not kiln's
	// watchdog put in their place.
	realWatchdog bool
	// mirrors are tried, in order, before Docker Hub for the images FROM
	// names there.
	mirrors         []string
	registryTimeout time.Duration
	cacheRepo       *name.Repository
	stdout, stderr  io.Writer
	// insecure names registries pulled from over plain HTTP.
	insecure []string
	tlsFor   func(host string) *tls.Config
	// cacheRepoReadOnly: the cache repository is read, never written.
	cacheRepoReadOnly bool
	// mirrorsOnly: Docker Hub is not tried after the mirrors.
	mirrorsOnly bool
}

// WithGetenv sets where kiln's own settings (KILN_*, SOURCE_DATE_EPOCH,
// OPENFAAS_URL, the Debian mirrors) are read from. Default: none is set.
func WithGetenv(getenv func(string) string) Option {
	return func(o *options) error { o.getenv = getenv; return nil }
}

// WithToolEnv sets the environment the build tools (go, mvn, npm, pip)
// run with. Default: empty.
func WithToolEnv(env []string) Option {
	return func(o *options) error { o.toolEnv = env; return nil }
}

// WithProgress sets the callback that receives the workflow's events.
// Default: none.
func WithProgress(p Progress) Option {
	return func(o *options) error { o.progress = p; return nil }
}

// WithVersion sets kiln's version, sent as the gateways' user agent and
// reported by the local gateway. Default "dev".
func WithVersion(v string) Option {
	return func(o *options) error { o.version = v; return nil }
}

// WithLabels adds labels to every image built. Default none.
func WithLabels(labels map[string]string) Option {
	return func(o *options) error { maps.Copy(o.labels, labels); return nil }
}

// WithNoCache rebuilds every layer instead of taking it from the cache
// (--no-cache). Default: the cache is used.
func WithNoCache(on bool) Option {
	return func(o *options) error { o.noCache = on; return nil }
}

// WithTemplates builds the functions whose ./template/<lang>/ holds a
// Dockerfile through it, as faas-cli does, even when kiln has a pack for
// the lang. Default: kiln's pack, saying once that the template is left
// aside.
func WithTemplates(on bool) Option {
	return func(o *options) error { o.templates = on; return nil }
}

// WithRealWatchdog pulls OpenFaaS's watchdog images where Dockerfiles
// name them. Default: kiln's own watchdog, which keeps their contract,
// stands in for them, and nothing is pulled.
func WithRealWatchdog(on bool) Option {
	return func(o *options) error { o.realWatchdog = on; return nil }
}

// WithRegistryMirrors sets registries (HOST[:PORT][/PATH]) tried, in
// order, before Docker Hub for the images Dockerfiles' FROM lines name
// there, as dockerd's and kaniko's --registry-mirror. Default: none.
func WithRegistryMirrors(mirrors []string) Option {
	return func(o *options) error {
		for _, m := range mirrors {
			if m == "" || strings.Contains(m, "://") || strings.HasSuffix(m, "/") {
				return usage.Errorf("--registry-mirror %q: want HOST[:PORT][/PATH], without a scheme", m)
			}
			if _, err := name.NewRegistry(strings.SplitN(m, "/", 2)[0]); err != nil {
				return usage.Errorf("--registry-mirror %q: %v", m, err)
			}
		}
		o.mirrors = mirrors
		return nil
	}
}

// WithRegistryTimeout sets how long a registry may send nothing (not
// reached, not answering, or stopped in the middle of a transfer) before
// the push or pull fails (--registry-timeout). Default
// publish.DefaultTimeout.
func WithRegistryTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return usage.Errorf("--registry-timeout %s: want more than 0", d)
		}
		o.registryTimeout = d
		return nil
	}
}

// WithCacheRepo keeps the layers of Dockerfile steps in repo too
// (--cache-repo), in cacherepo's format, so that builds elsewhere reuse
// them. Default: the local cache only.
func WithCacheRepo(repo name.Repository) Option {
	return func(o *options) error { o.cacheRepo = &repo; return nil }
}

// WithInsecureRegistries names registry hosts that Dockerfiles' FROM
// images are pulled from over plain HTTP. Default none (loopback
// registries use HTTP anyway).
func WithInsecureRegistries(hosts []string) Option {
	return func(o *options) error { o.insecure = hosts; return nil }
}

// WithTLSConfig sets the TLS configuration of the registry requests to
// each host (kaniko's --skip-tls-verify, --registry-certificate); a nil
// result keeps the default. Default Go's: the system's certificate
// authorities.
func WithTLSConfig(tlsFor func(host string) *tls.Config) Option {
	return func(o *options) error { o.tlsFor = tlsFor; return nil }
}

// WithMirrorsOnly fails a Docker Hub image that no WithRegistryMirrors
// mirror has, instead of pulling it from Docker Hub (kaniko's
// --skip-default-registry-fallback). Default: Docker Hub is tried last.
// Without mirrors it has no effect.
func WithMirrorsOnly(on bool) Option {
	return func(o *options) error { o.mirrorsOnly = on; return nil }
}

// WithCacheRepoReadOnly reads WithCacheRepo's repository without
// pushing the layers built (kaniko's --no-push-cache). Default: they are
// pushed.
func WithCacheRepoReadOnly(on bool) Option {
	return func(o *options) error { o.cacheRepoReadOnly = on; return nil }
}

// WithFunctionOutput sets where functions served by the local gateway
// write their logs. Default: discarded.
func WithFunctionOutput(stdout, stderr io.Writer) Option {
	return func(o *options) error { o.stdout, o.stderr = stdout, stderr; return nil }
}

// New returns a project keeping its cache, and its local image store, in
// cacheDir; "" means the default (cache.DefaultDir).
func New(cacheDir string, opts ...Option) (*Project, error) {
	o := options{
		getenv:  func(string) string { return "" },
		version: "dev",
		labels:  map[string]string{},
		stdout:  io.Discard,
		stderr:  io.Discard,

		registryTimeout: publish.DefaultTimeout,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if cacheDir == "" {
		var err error
		if cacheDir, err = cache.DefaultDir(o.getenv); err != nil {
			return nil, err
		}
	}
	store, err := cache.Open(cacheDir)
	if err != nil {
		return nil, err
	}
	transport := publish.NewTransport(o.registryTimeout, publish.DefaultRetries, publish.WithTLSConfig(o.tlsFor))
	return &Project{cache: store, images: imagestore.Open(store.Dir()), opts: o,
		transport: transport, publisher: publish.NewRegistry(publish.WithTransport(transport))}, nil
}

// Cache is the project's layer cache.
func (p *Project) Cache() *cache.Store { return p.cache }

// Images is the project's local image store.
func (p *Project) Images() *imagestore.Store { return p.images }

func (p *Project) emit(e Event) {
	if p.opts.progress != nil {
		p.opts.progress(e)
	}
}

// findOptions are how the project finds images: with its transport, and
// saying when an image is pulled.
func (p *Project) findOptions() []imagestore.FindOption {
	return []imagestore.FindOption{
		imagestore.WithResolveOptions(imagestore.WithTransport(p.transport)),
		imagestore.OnPull(func(image string) { p.emit(Pulling{Image: image}) }),
		imagestore.WithInsecureRegistries(p.opts.insecure),
	}
}

// Builder returns the project's builder, made on first use: every build
// of the project shares it, so a layer two functions need is built once.
func (p *Project) Builder() (*builder.Builder, error) {
	p.builderOnce.Do(func() {
		var opts []builder.Option
		opts = append(opts, builder.WithLabels(p.opts.labels))
		if p.opts.noCache {
			opts = append(opts, builder.WithNoCache())
		}
		p.builder, p.builderErr = newBuilder(p.opts.getenv, p.opts.toolEnv, p.cache, opts...)
	})
	return p.builder, p.builderErr
}
