package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/envlist"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// Base is a runtime base: the layers and the config a function's image
// starts from.
type Base struct {
	Name   string
	Steps  []layers.Step
	Config v1.Config
}

// BaseSource provides runtime bases by name.
type BaseSource interface {
	// Base returns the base called name for platform, with packages
	// (Debian package names, usually none) added on top.
	Base(ctx context.Context, name string, platform v1.Platform, packages []string) (*Base, error)
}

// WatchdogSource returns the path of the watchdog binary for a platform.
type WatchdogSource func(platform v1.Platform) (string, error)

// LayerReport says how one layer of a build was obtained.
type LayerReport struct {
	Name     string        `json:"name"`
	Digest   v1.Hash       `json:"digest"`
	Size     int64         `json:"size"`
	Cached   bool          `json:"cached"`
	Duration time.Duration `json:"duration"`
}

// Result is a built image and how it was made.
type Result struct {
	Image      v1.Image
	BaseDigest v1.Hash
	Layers     []LayerReport
	// Outside lists the files and folders outside the handler folder
	// that the build read, as the function's manifests name them
	// (languages.Plan.Named), sorted: what a watcher watches beside the
	// folder.
	Outside []string
}

// Option configures a Builder.
type Option func(*options) error

type options struct {
	packs    map[string]languages.Pack
	bases    BaseSource
	watchdog WatchdogSource
	labels   map[string]string
	noCache  bool
	trees    languages.Trees
}

// WithPack registers a language pack for every lang it declares. There is
// no default: a builder without packs builds nothing.
func WithPack(p languages.Pack) Option {
	return func(o *options) error {
		for _, lang := range p.Langs() {
			if _, dup := o.packs[lang]; dup {
				return fmt.Errorf("two packs claim lang %q", lang)
			}
			o.packs[lang] = p
		}
		return nil
	}
}

// WithBases sets where runtime bases come from. Required.
func WithBases(s BaseSource) Option {
	return func(o *options) error { o.bases = s; return nil }
}

// WithWatchdog sets where the watchdog binary comes from. Required.
func WithWatchdog(s WatchdogSource) Option {
	return func(o *options) error { o.watchdog = s; return nil }
}

// WithLabels adds labels to every image built. Default none.
func WithLabels(labels map[string]string) Option {
	return func(o *options) error { maps.Copy(o.labels, labels); return nil }
}

// WithTrees sets where the packs keep what they make between builds
// (languages.Function.Trees), such as a cache repository shared with
// other machines. Default: each pack's own cache directory.
func WithTrees(t languages.Trees) Option { return func(o *options) error { o.trees = t; return nil } }

// WithNoCache rebuilds every layer instead of taking it from the cache
// (--no-cache), for steps whose inputs the key cannot see, such as a
// dependency install with no lockfile. A layer is still built once per
// builder, however many images share it. Default: the cache is used.
func WithNoCache() Option { return func(o *options) error { o.noCache = true; return nil } }

// Cache keeps built layers by key: *cache.Store, or a *cacherepo.Cache
// that shares them with other machines through a registry. Get's miss is
// an error wrapping cache.ErrNotFound.
type Cache interface {
	Get(ctx context.Context, key v1.Hash) (v1.Layer, error)
	Put(ctx context.Context, key v1.Hash, name string, build func(io.Writer) error) (v1.Layer, error)
}

var _ Cache = (*cache.Store)(nil)

// Builder builds function images. It is safe for concurrent use: builds
// that need the same missing layer at the same time build it once.
type Builder struct {
	store Cache
	opts  options

	mu      sync.Mutex
	flights map[v1.Hash]*flight
	// built holds, under WithNoCache, the keys this builder has built,
	// which later steps reuse.
	built map[v1.Hash]bool
}

// flight is a layer being built, which other builds wait for.
type flight struct {
	done  chan struct{}
	layer v1.Layer
	err   error
}

// New returns a builder that keeps its layers in store.
func New(store Cache, opts ...Option) (*Builder, error) {
	o := options{packs: map[string]languages.Pack{}, labels: map[string]string{}}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if store == nil || o.bases == nil || o.watchdog == nil {
		return nil, errors.New("builder needs a cache, a base source and a watchdog source")
	}
	return &Builder{store: store, opts: o, flights: map[v1.Hash]*flight{}, built: map[v1.Hash]bool{}}, nil
}

// Langs lists the lang values the builder can build, sorted.
func (b *Builder) Langs() []string {
	return slices.Sorted(maps.Keys(b.opts.packs))
}

// UnknownLangError is returned for a lang no pack builds.
type UnknownLangError struct {
	Lang  string
	Known []string
}

func (e *UnknownLangError) Error() string {
	return fmt.Sprintf("lang %q is not one kiln builds, and ./template/%s/ holds no faas-cli template (faas-cli template pull, or faas-cli template store pull %s, fetches it); kiln builds: %s", e.Lang, e.Lang, e.Lang, strings.Join(e.Known, ", "))
}

// Build builds fn's image. fn.ScratchDir, fn.NoCache and fn.Trees are set
// by Build.
// When the build fails after its plan, Build returns with the error a
// Result that holds only Outside: a fix may come from there.
func (b *Builder) Build(ctx context.Context, fn languages.Function) (*Result, error) {
	pack, ok := b.opts.packs[fn.Lang]
	if !ok {
		return nil, &UnknownLangError{Lang: fn.Lang, Known: b.Langs()}
	}
	scratch, err := os.MkdirTemp("", "kiln-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	fn.ScratchDir = scratch
	fn.NoCache = b.opts.noCache
	fn.Trees = b.opts.trees

	plan, err := pack.Plan(ctx, fn)
	if err != nil {
		return nil, err
	}
	res, err := b.build(ctx, fn, plan)
	if err != nil {
		return &Result{Outside: outside(plan)}, err
	}
	res.Outside = outside(plan)
	return res, nil
}

// outside lists what plan names outside the handler folder, sorted.
func outside(plan *languages.Plan) []string {
	var out []string
	for _, n := range plan.Named {
		if n.Outside() {
			out = append(out, n.Path)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// build builds fn's image as plan says.
func (b *Builder) build(ctx context.Context, fn languages.Function, plan *languages.Plan) (*Result, error) {
	packages := slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(fn.Packages), plan.Packages...))))
	base, err := b.opts.bases.Base(ctx, plan.Base, fn.Platform, packages)
	if err != nil {
		return nil, fmt.Errorf("getting runtime base %q: %w", plan.Base, err)
	}
	wdPath, err := b.opts.watchdog(fn.Platform)
	if err != nil {
		return nil, fmt.Errorf("finding the watchdog for %s: %w", fn.Platform.String(), err)
	}
	// The watchdog layer keeps the epoch 0 whatever SOURCE_DATE_EPOCH says,
	// so that it is byte-identical in every image and stored once.
	wd := layers.FilesStep("watchdog", []layers.File{layers.HostFile(strings.TrimPrefix(contract.WatchdogPath, "/"), 0o755, wdPath)})

	steps := append(append(slices.Clone(base.Steps), wd), plan.Steps...)
	built, reports, err := b.resolve(ctx, steps)
	if err != nil {
		return nil, err
	}
	steps, built, nBase := withLayers(steps, built, len(base.Steps))
	if plan.Finish != nil {
		if err := plan.Finish(ctx, plan); err != nil {
			return nil, err
		}
	}
	baseImg, err := Assemble(built[:nBase], steps[:nBase], base.Config, fn.Platform, fn.Epoch)
	if err != nil {
		return nil, err
	}
	baseDigest, err := baseImg.Digest()
	if err != nil {
		return nil, err
	}

	cfg := base.Config
	cfg.Env = envlist.Merge(base.Config.Env, plan.Env)
	cfg.Entrypoint = []string{contract.WatchdogPath}
	cfg.Cmd = nil
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = "/" + contract.AppDir
	}
	cfg.ExposedPorts = map[string]struct{}{strconv.Itoa(contract.WatchdogPort) + "/tcp": {}}
	cfg.Labels = map[string]string{}
	maps.Copy(cfg.Labels, base.Config.Labels)
	maps.Copy(cfg.Labels, plan.Labels)
	maps.Copy(cfg.Labels, b.opts.labels)
	cfg.Labels["org.opencontainers.image.base.name"] = "kiln/base/" + base.Name
	cfg.Labels["org.opencontainers.image.base.digest"] = baseDigest.String()
	if fn.Name != "" {
		cfg.Labels["com.openfaas.function"] = fn.Name
	}
	img, err := Assemble(built, steps, cfg, fn.Platform, fn.Epoch)
	if err != nil {
		return nil, err
	}
	img = mutate.Annotations(img, map[string]string{
		"org.opencontainers.image.base.name":   cfg.Labels["org.opencontainers.image.base.name"],
		"org.opencontainers.image.base.digest": baseDigest.String(),
	}).(v1.Image)
	return &Result{Image: img, BaseDigest: baseDigest, Layers: reports}, nil
}

// resolve returns a layer for every step: from the cache when the step's
// key is there, else built, in parallel, and stored. A step whose key is
// layers.ErrNoLayer gets a nil layer and no report. A cause that several
// steps share, such as a missing tool, is returned once.
func (b *Builder) resolve(ctx context.Context, steps []layers.Step) ([]v1.Layer, []LayerReport, error) {
	out := make([]v1.Layer, len(steps))
	reports := make([]LayerReport, len(steps))
	errs := make([]error, len(steps))
	var wg sync.WaitGroup
	for i, st := range steps {
		wg.Go(func() {
			start := time.Now()
			s := step.Start(ctx, "layer "+st.Name())
			l, cached, err := b.layer(ctx, st, s)
			if err != nil || l == nil {
				s.Finish(step.Result{Err: err, Empty: err == nil})
				errs[i] = err
				return
			}
			out[i] = l
			d, _ := l.Digest()
			size, _ := l.Size()
			s.Finish(step.Result{Bytes: size, Cached: cached})
			reports[i] = LayerReport{Name: st.Name(), Digest: d, Size: size, Cached: cached, Duration: time.Since(start)}
		})
	}
	wg.Wait()
	if err := joinDistinct(errs); err != nil {
		return nil, nil, err
	}
	var kept []LayerReport
	for i, r := range reports {
		if out[i] != nil {
			kept = append(kept, r)
		}
	}
	return out, kept, nil
}

// joinDistinct joins the errors, each message once.
func joinDistinct(errs []error) error {
	var distinct []error
	seen := map[string]bool{}
	for _, err := range errs {
		if err != nil && !seen[err.Error()] {
			seen[err.Error()] = true
			distinct = append(distinct, err)
		}
	}
	return errors.Join(distinct...)
}

// withLayers drops the steps that added no layer from steps and their
// layers ls; the first n steps are the base's, and nBase says how many of
// those are kept.
func withLayers(steps []layers.Step, ls []v1.Layer, n int) (kept []layers.Step, keptLayers []v1.Layer, nBase int) {
	for i, l := range ls {
		if l == nil {
			continue
		}
		kept = append(kept, steps[i])
		keptLayers = append(keptLayers, l)
		if i < n {
			nBase++
		}
	}
	return kept, keptLayers, nBase
}

// layer returns step's layer and whether it came from the cache; nil and
// no error when the step adds no layer. The bytes of the tar built count
// as the progress of report.
func (b *Builder) layer(ctx context.Context, st layers.Step, report *step.Step) (v1.Layer, bool, error) {
	stepKey, err := st.Key(ctx)
	if errors.Is(err, layers.ErrNoLayer) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	// The namespace lets a change in how layers are made or stored retire
	// old keys; v2: the function's files belong to its user.
	k := layers.NewKey("kiln/layer/v2").Hash(stepKey).Sum()
	b.mu.Lock()
	useCache := !b.opts.noCache || b.built[k]
	b.mu.Unlock()
	if useCache {
		l, err := b.store.Get(ctx, k)
		if err == nil {
			return l, true, nil
		}
		if !errors.Is(err, cache.ErrNotFound) {
			return nil, false, err
		}
	}
	b.mu.Lock()
	if f, ok := b.flights[k]; ok {
		b.mu.Unlock()
		select {
		case <-f.done:
			return f.layer, true, f.err
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	b.flights[k] = f
	b.mu.Unlock()

	f.layer, f.err = b.store.Put(ctx, k, st.Name(), func(w io.Writer) error { return st.Build(ctx, report.Writer(w)) })
	b.mu.Lock()
	delete(b.flights, k)
	if f.err == nil && b.opts.noCache {
		b.built[k] = true
	}
	b.mu.Unlock()
	close(f.done)
	if f.err != nil {
		return nil, false, f.err
	}
	return f.layer, false, nil
}

// Assemble stacks layers into an OCI image with the given config. steps
// name the layers in the image history.
func Assemble(ls []v1.Layer, steps []layers.Step, cfg v1.Config, platform v1.Platform, epoch time.Time) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(ls))
	for i, l := range ls {
		adds[i] = mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: epoch}, CreatedBy: "kiln: " + steps[i].Name(), Comment: "kiln"},
		}
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("stacking layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = platform.Architecture
	cf.OS = platform.OS
	cf.Variant = platform.Variant
	cf.OSVersion = platform.OSVersion
	cf.Created = v1.Time{Time: epoch}
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("writing image config: %w", err)
	}
	return img, nil
}

// BuildBase builds the runtime base called name on its own, as `kiln base
// build` does.
func (b *Builder) BuildBase(ctx context.Context, name string, platform v1.Platform) (*Result, error) {
	base, err := b.opts.bases.Base(ctx, name, platform, nil)
	if err != nil {
		return nil, fmt.Errorf("getting runtime base %q: %w", name, err)
	}
	epoch := time.Unix(0, 0).UTC()
	built, reports, err := b.resolve(ctx, base.Steps)
	if err != nil {
		return nil, err
	}
	steps, built, _ := withLayers(base.Steps, built, 0)
	img, err := Assemble(built, steps, base.Config, platform, epoch)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &Result{Image: img, BaseDigest: d, Layers: reports}, nil
}
