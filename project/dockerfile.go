package project

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/cacherepo"
	"github.com/kiln-build/kiln/dockerfile"
	"github.com/kiln-build/kiln/imagestore"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/publish"
	"github.com/kiln-build/kiln/run"
	"github.com/kiln-build/kiln/stack"
)

// LangDockerfile is the lang of a function whose handler folder holds a
// Dockerfile, built as it is, as faas-cli builds it.
const LangDockerfile = "dockerfile"

// templateDockerfile returns lang's template folder, ./template/<lang>,
// as faas-cli template pull writes it, when it holds a Dockerfile.
func templateDockerfile(lang string) (string, bool) {
	cwd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	tmpl := filepath.Join(cwd, "template", lang)
	if _, err := os.Stat(filepath.Join(tmpl, "Dockerfile")); err != nil {
		return "", false
	}
	return tmpl, true
}

// viaDockerfile says whether fn builds through the Dockerfile engine, and
// from which template folder ("" for lang dockerfile): WithTemplates
// takes the template even for a lang kiln has a pack for, for which it
// says otherwise, once per lang, that the template is left aside.
func (p *Project) viaDockerfile(fn languages.Function, builtIn []string) (string, bool) {
	if fn.Lang == LangDockerfile {
		return "", true
	}
	tmpl, ok := templateDockerfile(fn.Lang)
	switch {
	case !ok:
		return "", false
	case p.opts.templates || !slices.Contains(builtIn, fn.Lang):
		return tmpl, true
	}
	if _, said := p.templateNotice.LoadOrStore(fn.Lang, true); !said {
		p.emit(Warning{Msg: fmt.Sprintf("lang %s: built with kiln's own %s pack, not ./template/%s/Dockerfile (--use-template builds through the template)", fn.Lang, fn.Lang, fn.Lang)})
	}
	return "", false
}

// dockerfileContext lays out t's build context in scratch as faas-cli lays
// out ./build/<fn>: the template folder tmpl, with the handler folder and
// the copy paths in function/; for lang dockerfile (tmpl "") the handler
// folder itself, with the copy paths, which needs no copy when there are
// none.
func dockerfileContext(t Target, tmpl, scratch string) (string, error) {
	fn := t.Function
	cwd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	if tmpl == "" {
		if _, err := os.Stat(filepath.Join(fn.Dir, "Dockerfile")); err != nil && t.Dockerfile == "" {
			return "", fmt.Errorf("lang dockerfile: %s holds no Dockerfile", fn.Dir)
		}
		if len(t.Copies) == 0 {
			return fn.Dir, nil
		}
		return scratch, stack.Stage(fn.Dir, scratch, cwd, t.Copies)
	}
	if err := os.CopyFS(scratch, os.DirFS(tmpl)); err != nil {
		return "", fmt.Errorf("laying out template %s: %w", tmpl, err)
	}
	return scratch, stack.Stage(fn.Dir, filepath.Join(scratch, "function"), cwd, t.Copies)
}

// buildDockerfile builds t's image through the Dockerfile engine, from
// the template folder tmpl ("" for lang dockerfile), its RUN steps in
// run's sandbox.
func (p *Project) buildDockerfile(ctx context.Context, t Target, tmpl string) (v1.Image, error) {
	scratch, err := os.MkdirTemp("", "kiln-context-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	dir, err := dockerfileContext(t, tmpl, scratch)
	if err != nil {
		return nil, err
	}
	fn := t.Function
	var c dockerfile.Cache = p.cache
	if p.opts.cacheRepo != nil {
		var pub publish.Publisher = p.publisher
		if p.opts.cacheRepoReadOnly {
			pub = discard{}
		}
		repo := cacherepo.New(p.cache, *p.opts.cacheRepo, cacherepo.WithTransport(p.transport), cacherepo.WithPublisher(pub))
		// The pushes end before the build does, and never fail it.
		defer func() {
			for _, w := range repo.Flush(ctx) {
				p.emit(Warning{Msg: fn.Name + ": " + w.Error()})
			}
		}()
		c = repo
	}
	img, err := dockerfile.Build(ctx, dockerfile.Options{
		Context:    dir,
		Dockerfile: t.Dockerfile,
		Target:     t.Stage,
		BuildArgs:  fn.BuildArgs,
		Platform:   fn.Platform,
		Epoch:      fn.Epoch,
		Bases:      &dockerfileBases{p: p},
		Runner:     &sandboxRunner{cacheDir: p.cache.Dir(), secrets: t.Secrets, epoch: fn.Epoch, getenv: p.opts.getenv},
		Cache:      c,
		Indexes:    p.cache,
		NoCache:    p.opts.noCache,
	})
	if err != nil || len(p.opts.labels) == 0 {
		return img, err
	}
	// --build-label, as docker build --label adds it.
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := cf.Config.DeepCopy()
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	maps.Copy(cfg.Labels, p.opts.labels)
	return mutate.Config(img, *cfg)
}

// dockerfileBases resolves FROM images as every other image is found: the
// local image store first, then the registry. The watchdog images
// OpenFaaS's templates copy fwatchdog from are kiln's own watchdog, which
// keeps their contract (the classic one's when no mode is set), so a
// template builds offline.
type dockerfileBases struct {
	p    *Project
	once sync.Once
	// found holds a *lazy.Value[v1.Image] per image and platform.
	found sync.Map
}

func (b *dockerfileBases) Resolve(ctx context.Context, ref string, platform v1.Platform) (v1.Image, error) {
	// Stages FROM one image find it once.
	v, _ := b.found.LoadOrStore(ref+" "+platform.String(), lazy.New(func(ctx context.Context) (v1.Image, error) {
		return b.find(ctx, ref, platform)
	}))
	return v.(*lazy.Value[v1.Image]).Get(ctx)
}

// find finds the image ref names for platform: on each mirror, then where
// it names.
func (b *dockerfileBases) find(ctx context.Context, ref string, platform v1.Platform) (v1.Image, error) {
	if isOpenFaaSWatchdog(ref) && !b.p.opts.realWatchdog {
		b.once.Do(func() {
			b.p.emit(Warning{Msg: ref + " is kiln's own watchdog, which keeps its contract (the classic one where no mode is set): nothing is pulled"})
		})
		return b.watchdogImage(ctx, platform)
	}
	opts := append(b.p.findOptions(), imagestore.WithResolveOptions(imagestore.WithPlatform(platform)))
	// A registry image reads its layers later, with the context it was
	// found with: the publish reads them after the engine's stages, whose
	// context is then done, have ended.
	ctx = context.WithoutCancel(ctx)
	mirrors := mirrored(ref, b.p.opts.mirrors)
	var last error
	for _, m := range mirrors {
		img, err := b.p.images.Find(ctx, m, opts...)
		if err == nil {
			return img, nil
		}
		last = err
		slog.DebugContext(ctx, "registry mirror failed", "image", m, "error", err)
	}
	if len(mirrors) > 0 && b.p.opts.mirrorsOnly {
		return nil, fmt.Errorf("%s: no registry mirror has it, and Docker Hub is not tried: %w", ref, last)
	}
	return b.p.images.Find(ctx, ref, opts...)
}

// mirrored returns ref on each mirror when it names a Docker Hub image,
// as dockerd rewrites it: library/ included.
func mirrored(ref string, mirrors []string) []string {
	r, err := name.ParseReference(ref)
	if err != nil || r.Context().RegistryStr() != name.DefaultRegistry {
		return nil
	}
	var out []string
	for _, m := range mirrors {
		out = append(out, m+"/"+r.Context().RepositoryStr()+refSuffix(r))
	}
	return out
}

// refSuffix is r's ":tag" or "@digest".
func refSuffix(r name.Reference) string {
	if d, ok := r.(name.Digest); ok {
		return "@" + d.DigestStr()
	}
	return ":" + r.Identifier()
}

// watchdogRepositories are the repositories of OpenFaaS's watchdog images,
// on both registries it publishes to.
var watchdogRepositories = []string{
	"index.docker.io/openfaas/of-watchdog", "index.docker.io/openfaas/classic-watchdog",
	"ghcr.io/openfaas/of-watchdog", "ghcr.io/openfaas/classic-watchdog",
}

// isOpenFaaSWatchdog reports whether ref names one of OpenFaaS's watchdog
// images, at any tag or digest.
func isOpenFaaSWatchdog(ref string) bool {
	r, err := name.ParseReference(ref)
	if err != nil {
		return false
	}
	repo := r.Context().RegistryStr() + "/" + r.Context().RepositoryStr()
	for _, w := range watchdogRepositories {
		if repo == w {
			return true
		}
	}
	return false
}

// openFaaSWatchdogPath is where OpenFaaS's watchdog images keep the
// watchdog, which templates COPY --from.
const openFaaSWatchdogPath = "fwatchdog"

// watchdogImage is an image holding only kiln's watchdog for platform, at
// /fwatchdog, as OpenFaaS's watchdog images hold theirs.
func (b *dockerfileBases) watchdogImage(ctx context.Context, platform v1.Platform) (v1.Image, error) {
	path, err := watchdogFinder(b.p.opts.getenv)(platform)
	if err != nil {
		return nil, err
	}
	// In kiln's cache, so that it is compressed once per watchdog.
	files := []layers.File{layers.HostFile(openFaaSWatchdogPath, 0o755, path)}
	k := layers.NewKey("openfaas-watchdog-image")
	if err := k.Files(files); err != nil {
		return nil, err
	}
	l, err := b.p.cache.Get(ctx, k.Sum())
	if errors.Is(err, cache.ErrNotFound) {
		l, err = b.p.cache.Put(ctx, k.Sum(), "watchdog", func(w io.Writer) error { return layers.WriteTar(w, files) })
	}
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = platform.OS, platform.Architecture, platform.Variant
	return mutate.ConfigFile(img, cf)
}

// sandboxRunner runs the RUN steps of a Dockerfile in run's sandbox.
type sandboxRunner struct {
	cacheDir string
	// secrets maps build secret IDs to their files.
	secrets map[string]string
	epoch   time.Time
	// getenv gives the SSH agent's socket, SSH_AUTH_SOCK.
	getenv func(string) string
}

func (r *sandboxRunner) Run(ctx context.Context, lower []v1.Layer, spec dockerfile.RunSpec) (v1.Layer, error) {
	if spec.Platform.Architecture != runtime.GOARCH {
		return nil, fmt.Errorf("RUN for %s: kiln runs commands for this machine's linux/%s only", spec.Platform, runtime.GOARCH)
	}
	if spec.Network == "host" {
		return nil, errors.New("RUN --network=host is not supported: each RUN has a network of its own")
	}
	step := run.StepSpec{Args: spec.Args, Env: spec.Env, User: spec.User, Workdir: spec.Workdir, NoNetwork: spec.Network == "none", Epoch: r.epoch}
	for _, m := range spec.Mounts {
		sm := run.StepMount{Type: run.MountType(m.Type), ID: m.ID, Source: m.Source, Target: m.Target, ReadWrite: !m.ReadOnly, Sharing: m.Sharing}
		if m.UID != nil {
			sm.UID = *m.UID
		}
		if m.GID != nil {
			sm.GID = *m.GID
		}
		if m.Mode != nil {
			sm.Mode = *m.Mode
		}
		switch m.Type {
		case dockerfile.MountSecret:
			file, ok := r.secrets[m.ID]
			if !ok {
				if m.Required {
					return nil, fmt.Errorf("secret %s: not given (build_secrets in the stack file)", m.ID)
				}
				continue
			}
			if m.Env != "" {
				b, err := os.ReadFile(file)
				if err != nil {
					return nil, fmt.Errorf("secret %s: %w", m.ID, err)
				}
				step.Env = append(step.Env, m.Env+"="+string(b))
				continue
			}
			sm.Source = file
		case dockerfile.MountSSH:
			sock := r.getenv("SSH_AUTH_SOCK")
			if sock == "" {
				if m.Required {
					return nil, errors.New("RUN --mount=type=ssh: SSH_AUTH_SOCK is not set")
				}
				continue
			}
			sm.Source = sock
		}
		step.Mounts = append(step.Mounts, sm)
	}
	var out tailBuffer
	l, err := run.Step(ctx, lower, step, run.WithCacheDir(r.cacheDir), run.WithStdout(&out), run.WithStderr(&out))
	var exit *run.StepExitError
	if errors.As(err, &exit) {
		if last := out.lastLine(); last != "" {
			return nil, fmt.Errorf("exit code %d: %s", exit.Code, last)
		}
		return nil, fmt.Errorf("exit code %d", exit.Code)
	}
	return l, err
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	b []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) lastLine() string {
	s := strings.TrimRight(string(t.b), "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// discard is the publisher of a read-only cache repository.
type discard struct{}

func (discard) Publish(_ context.Context, img v1.Image, ref name.Reference) (name.Digest, error) {
	d, err := img.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return ref.Context().Digest(d.String()), nil
}
