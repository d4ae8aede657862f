package dockerfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/cache"
)

// BaseResolver gives the image a FROM line names.
type BaseResolver interface {
	// Resolve returns the image ref names (after ARG expansion; never
	// "scratch", which the engine handles) for platform.
	Resolve(ctx context.Context, ref string, platform v1.Platform) (v1.Image, error)
}

// StepRunner runs the command of one RUN instruction.
type StepRunner interface {
	// Run runs spec on a filesystem made of lower (the stage's layers,
	// bottom first) and returns what the command changed, as a layer:
	// the upper directory's diff, deletions as whiteouts. A runner
	// returns an error for what it cannot honour (a network mode, a
	// missing required secret).
	Run(ctx context.Context, lower []v1.Layer, spec RunSpec) (v1.Layer, error)
}

// Cache stores the layers of steps by key. *cache.Store is one; a
// registry-backed cache can decorate it.
type Cache interface {
	// Get returns the layer stored for key, or an error wrapping
	// cache.ErrNotFound.
	Get(ctx context.Context, key v1.Hash) (v1.Layer, error)
	// Put stores the uncompressed tar that build writes under key.
	Put(ctx context.Context, key v1.Hash, name string, build func(io.Writer) error) (v1.Layer, error)
}

var _ Cache = (*cache.Store)(nil)

// Options says what to build.
type Options struct {
	// Context is the build context directory. Required.
	Context string
	// Dockerfile is the Dockerfile's path; the default is Dockerfile in
	// Context. A Dockerfile.dockerignore beside it replaces the
	// context's .dockerignore.
	Dockerfile string
	// BuildArgs are --build-arg values (see ParseBuildArgs).
	BuildArgs map[string]string
	// Target is the stage to build; the default is the last one.
	Target string
	// Platform is the platform built for; the default is linux on the
	// host's architecture.
	Platform v1.Platform
	// BuildPlatform is the platform RUN executes on (BUILDPLATFORM); the
	// default is linux on the host's architecture.
	BuildPlatform v1.Platform
	// Epoch is SOURCE_DATE_EPOCH: the creation time of the image and its
	// history, and the latest modification time in its layers. The
	// default is the build arg SOURCE_DATE_EPOCH, as BuildKit reads it,
	// else the Unix epoch.
	Epoch time.Time
	// Bases resolves FROM images. Required unless every stage starts
	// from scratch or another stage.
	Bases BaseResolver
	// Runner runs RUN instructions. Required when the Dockerfile has any.
	Runner StepRunner
	// Cache stores every step's layer. Required.
	Cache Cache
	// HTTPClient fetches ADD <url> sources; the default is
	// http.DefaultClient.
	HTTPClient *http.Client
	// Indexes keeps, by diff ID, what each layer read holds (its tar's
	// headers), so that later builds list a stage's files without
	// reading its layers; a local *cache.Store, not a registry, since a
	// missing index costs a round trip. The default keeps them for the
	// build only.
	Indexes Cache
	// NoCache builds every step again instead of taking it from Cache.
	NoCache bool
}

// Error is a mistake in a Dockerfile, or a step that failed, at a line.
type Error struct {
	File string
	Line int
	Err  error
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// withDefaults checks the options and fills in their defaults.
func (opts Options) withDefaults() (Options, error) {
	if opts.Context == "" {
		return opts, errors.New("building a Dockerfile: no build context")
	}
	if opts.Cache == nil {
		return opts, errors.New("building a Dockerfile: no cache")
	}
	if opts.Dockerfile == "" {
		opts.Dockerfile = filepath.Join(opts.Context, "Dockerfile")
	}
	host := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opts.Platform.OS == "" {
		opts.Platform = host
	}
	if opts.BuildPlatform.OS == "" {
		opts.BuildPlatform = host
	}
	if opts.Epoch.IsZero() {
		opts.Epoch = time.Unix(0, 0)
		if v, ok := opts.BuildArgs["SOURCE_DATE_EPOCH"]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return opts, fmt.Errorf("--build-arg SOURCE_DATE_EPOCH=%s: not a number of seconds", v)
			}
			opts.Epoch = time.Unix(n, 0)
		}
	}
	opts.Epoch = opts.Epoch.UTC()
	if opts.HTTPClient == nil {
		opts.HTTPClient = http.DefaultClient
	}
	return opts, nil
}

// Build builds the image the Dockerfile describes.
func Build(ctx context.Context, opts Options) (v1.Image, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	df, err := parse(ctx, opts)
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp("", "kiln-dockerfile-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	b := &build{opts: opts, df: df, scratch: scratch, indexes: newLayerIndexes(opts.Indexes), stages: map[int]*stageFlight{}, declared: map[string]bool{}}
	target, err := df.target(opts.Target)
	if err != nil {
		return nil, err
	}
	if err := b.initArgs(); err != nil {
		return nil, err
	}
	// The stages the target needs start together, as in BuildKit; the
	// target waits for each where it uses it.
	deps := map[int]bool{}
	b.deps(target, deps)
	g, gctx := errgroup.WithContext(ctx)
	for i := range deps {
		g.Go(func() error { _, err := b.stage(gctx, i); return err })
	}
	var st *stage
	g.Go(func() error {
		var err error
		st, err = b.stage(gctx, target)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(opts.BuildArgs)) {
		if !b.declared[k] && !slices.Contains(proxyArgs, k) && k != "SOURCE_DATE_EPOCH" {
			slog.WarnContext(ctx, "a build arg is not used by the stages built", "arg", k)
		}
	}
	return st.image()
}
