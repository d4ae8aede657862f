package project

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/gateway"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/publish"
	"github.com/kiln-build/kiln/stack"
)

// Result is one built and published image.
type Result struct {
	Name string `json:"name"`
	// Image is NAME@DIGEST.
	Image  string                `json:"image"`
	Digest string                `json:"digest"`
	Output string                `json:"output"`
	Layers []builder.LayerReport `json:"layers"`
	// FProcess is the one the image's config sets, for deploy.
	FProcess string `json:"-"`
	// Outside lists the files and folders outside the handler folder
	// that the build read: what its manifests name (builder.Result) and
	// its configuration.copy paths. A failed build reports what it knew
	// of them, for `kiln dev` to watch for the fix.
	Outside []string `json:"-"`
}

// Output is where built images go.
type Output struct {
	publish.Publisher
	// Name is how results name the output: "local", "registry", "oci:DIR"
	// or "tar:FILE".
	Name string
}

// step names the publish step to out: push, store (the local image
// store) or write (an OCI layout or a tarball).
func (out Output) step() string {
	switch out.Name {
	case "registry":
		return "push"
	case "local":
		return "store"
	}
	return "write"
}

// LocalStore is the output into the project's local image store.
func (p *Project) LocalStore() Output {
	return Output{Publisher: p.images.Publisher(), Name: "local"}
}

// Registry is the output that pushes images to their registries.
func (p *Project) Registry() Output { return Output{Publisher: p.registry(), Name: "registry"} }

// registry is the project's registry publisher: one for all its pushes,
// so that a layer one push sent (a --cache-repo entry's, another
// function's) is mounted by the others instead of sent again.
func (p *Project) registry() *publish.Registry { return p.publisher }

// ParseOutput reads an --output value: "" for the local image store,
// "registry", "oci:DIR" or "tar:FILE".
func (p *Project) ParseOutput(s string) (Output, error) {
	if s == "" {
		return p.LocalStore(), nil
	}
	pub, err := publish.ParseOutput(s, p.registry())
	if err != nil {
		return Output{}, usage.Wrap(err)
	}
	return Output{Publisher: pub, Name: s}, nil
}

// Build builds targets, at most parallel at once (at least one), and
// publishes them to out, as faas-cli's workers do: every error is
// collected and reported at the end. Results keep the targets' order.
func (p *Project) Build(ctx context.Context, targets []Target, out Output, parallel int) ([]Result, error) {
	results, errs, err := p.BuildEach(ctx, targets, out, parallel)
	if err == nil {
		err = errors.Join(errs...)
	}
	if err != nil {
		return nil, err
	}
	return results, nil
}

// BuildEach builds targets as Build does and returns each one's result or
// error, in the targets' order; err is for what stops every build.
func (p *Project) BuildEach(ctx context.Context, targets []Target, out Output, parallel int) (results []Result, errs []error, err error) {
	b, err := p.Builder()
	if err != nil {
		return nil, nil, err
	}
	results = make([]Result, len(targets))
	errs = make([]error, len(targets))
	queue := make(chan int)
	// Layout and tarball publishers rewrite one index file: one at a time.
	var publishMu sync.Mutex
	serial := out.Name != "registry"
	var wg sync.WaitGroup
	for range min(max(parallel, 1), len(targets)) {
		wg.Go(func() {
			for i := range queue {
				results[i], errs[i] = p.buildOne(ctx, b, out, targets[i], serial, &publishMu)
			}
		})
	}
	for i := range targets {
		queue <- i
	}
	close(queue)
	wg.Wait()
	return results, errs, nil
}

// BuildOne builds one target and publishes it to out.
func (p *Project) BuildOne(ctx context.Context, t Target, out Output) (Result, error) {
	b, err := p.Builder()
	if err != nil {
		return Result{}, err
	}
	return p.buildOne(ctx, b, out, t, false, nil)
}

func (p *Project) buildOne(ctx context.Context, b *builder.Builder, out Output, t Target, serial bool, publishMu *sync.Mutex) (_ Result, err error) {
	start := time.Now()
	fn := t.Function
	// The cache repository's pushes, which overlap the image's, end
	// before the build does and never fail it.
	defer p.flushShared(ctx, fn.Name)
	p.emit(BuildStarted{Function: fn.Name, Lang: fn.Lang, Platform: fn.Platform.String()})
	p.builds.record(gateway.BuildEvent{Function: fn.Name, Kind: gateway.BuildStarted})
	defer func() {
		if err != nil {
			p.builds.record(gateway.BuildEvent{Function: fn.Name, Kind: gateway.BuildFailed, Err: err.Error()})
		}
	}()
	if p.opts.progress != nil {
		ctx = step.WithSink(ctx, func(e step.Event) { p.emit(stepEvent(fn.Name, e)) })
	}
	var img v1.Image
	var built []builder.LayerReport
	var outside []string
	if tmpl, ok := p.viaDockerfile(fn, b.Langs()); ok {
		// The template and the copy paths are read too: kiln dev
		// watches them.
		if tmpl != "" {
			outside = append(outside, tmpl)
		}
		if cwd, err := os.Getwd(); err == nil {
			outside = append(outside, copiedPaths(cwd, fn.Dir, t.Copies)...)
		}
		var err error
		if img, err = p.buildDockerfile(ctx, t, tmpl); err != nil {
			return Result{Name: fn.Name, Outside: outside}, fmt.Errorf("building %s: %w", fn.Name, err)
		}
	} else {
		var err error
		if img, built, outside, err = p.buildPack(ctx, b, t); err != nil {
			return Result{Name: fn.Name, Outside: outside}, fmt.Errorf("building %s: %w", fn.Name, err)
		}
	}
	for _, l := range built {
		p.emit(LayerDone{Function: fn.Name, Layer: l})
	}
	buildTime := time.Since(start)
	if serial {
		publishMu.Lock()
		defer publishMu.Unlock()
	}
	dref, err := publish.Reporting(out.Publisher, out.step()).Publish(ctx, img, t.Ref)
	if err != nil {
		return Result{}, fmt.Errorf("publishing %s: %w", fn.Name, err)
	}
	p.emit(Published{Function: fn.Name, Output: out.Name, Build: buildTime, Publish: time.Since(start) - buildTime})
	im, err := Describe(RepoAsNamed(t.Image, t.Ref), img)
	if err != nil {
		return Result{}, err
	}
	info := buildInfo(im.Ref, dref.DigestStr(), img, built, buildTime)
	p.builds.record(gateway.BuildEvent{Function: fn.Name, Kind: gateway.BuildDone, Build: &info})
	return Result{Name: fn.Name, Image: im.Ref, Digest: dref.DigestStr(), Output: out.Name, Layers: built, FProcess: im.FProcess, Outside: outside}, nil
}

// buildPack builds t with its language pack. It returns the image, its
// layers, and what the build read outside the handler folder, the last
// even when the build fails.
func (p *Project) buildPack(ctx context.Context, b *builder.Builder, t Target) (v1.Image, []builder.LayerReport, []string, error) {
	fn := t.Function
	if !slices.Contains(b.Langs(), fn.Lang) {
		return nil, nil, nil, unknownLang(fn.Lang, "lang", b.Langs())
	}
	var copied []string
	if len(t.Copies) > 0 {
		staged, err := os.MkdirTemp("", "kiln-stage-")
		if err != nil {
			return nil, nil, nil, err
		}
		defer os.RemoveAll(staged)
		cwd, err := os.Getwd()
		if err != nil {
			return nil, nil, nil, err
		}
		copied = copiedPaths(cwd, fn.Dir, t.Copies)
		if err := stack.Stage(fn.Dir, staged, cwd, t.Copies); err != nil {
			return nil, nil, copied, err
		}
		// What go.mod, package.json or requirements.txt name outside
		// the folder is beside the user's, not the copy.
		fn.Origin, fn.Dir = fn.Dir, staged
	}
	if len(t.Secrets) > 0 {
		dir, err := stageSecrets(t.Secrets)
		if err != nil {
			return nil, nil, nil, err
		}
		defer os.RemoveAll(dir)
		fn.SecretsDir = dir
	}
	res, err := b.Build(ctx, fn)
	var outside []string
	if res != nil {
		outside = res.Outside
	}
	outside = slices.Compact(slices.Sorted(slices.Values(append(copied, outside...))))
	if err != nil {
		return nil, nil, outside, unstage(err, fn.Dir, t.Function.Dir)
	}
	return res.Image, res.Layers, outside, nil
}

// copiedPaths returns the configuration.copy paths that exist, as
// absolute paths, but those inside the handler folder: what the build
// reads outside it. stack.Stage reports the others.
func copiedPaths(cwd, handler string, copies []string) []string {
	var out []string
	for _, c := range copies {
		rel, err := stack.CopyPath(cwd, c)
		if err != nil {
			continue
		}
		p := filepath.Join(cwd, rel)
		if r, err := filepath.Rel(handler, p); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// unstage points a source error at the user's handler folder instead of
// the staged copy that was built.
func unstage(err error, staged, handler string) error {
	var se *languages.SourceError
	if staged == handler || !errors.As(err, &se) {
		return err
	}
	fixed := *se
	fixed.Path = strings.ReplaceAll(se.Path, staged, handler)
	fixed.Detail = strings.ReplaceAll(se.Detail, staged, handler)
	return &fixed
}

// stageSecrets copies build_secrets into a private folder, one file per
// id, that the build reads (languages.Function.SecretsDir) and that is
// removed after it.
func stageSecrets(secrets map[string]string) (string, error) {
	dir, err := os.MkdirTemp("", "kiln-secrets-")
	if err != nil {
		return "", err
	}
	for id, src := range secrets {
		b, err := os.ReadFile(src)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, id), b, 0o600)
		}
		if err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("build secret %s: %w", id, err)
		}
	}
	return dir, nil
}

// unknownLang explains a lang no pack builds, named by what (a flag or
// the stack's key); a ./template/<lang>/ folder means a faas-cli
// Dockerfile template, which kiln does not run.
func unknownLang(lang, what string, known []string) error {
	if info, err := os.Stat(filepath.Join("template", lang)); err == nil && info.IsDir() {
		return fmt.Errorf("%s %q: its template folder ./template/%s/ holds no Dockerfile", what, lang, lang)
	}
	return &builder.UnknownLangError{Lang: lang, Known: slices.Sorted(slices.Values(append(slices.Clone(known), LangDockerfile)))}
}

// BuiltLangs lists the langs kiln builds, sorted.
func BuiltLangs() []string {
	var out []string
	for _, l := range packs.Langs() {
		if !l.DeployOnly {
			out = append(out, l.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Image is what a deploy sends of one function.
type Image struct {
	// Ref is the image reference: by digest for built images.
	Ref string
	// FProcess is the one the image's own config sets, if known.
	FProcess string
}

// Describe returns the reference of img by digest in repo, and its
// fprocess.
func Describe(repo string, img v1.Image) (Image, error) {
	d, err := img.Digest()
	if err != nil {
		return Image{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return Image{}, fmt.Errorf("reading the config of %s: %w", repo, err)
	}
	fp := ""
	for _, e := range cf.Config.Env {
		if v, ok := strings.CutPrefix(e, "fprocess="); ok {
			fp = v
		}
	}
	return Image{Ref: repo + "@" + d.String(), FProcess: fp}, nil
}

// StackBuild is what up builds before it deploys.
type StackBuild struct {
	Results []Result
	// Images holds every selected function's: by digest for those built,
	// by the stack's name for skip_build ones and those with no lang.
	Images map[string]Image
}

// BuildStack builds the selected functions of st into out, parallel at
// once.
func (p *Project) BuildStack(ctx context.Context, st *Stack, s BuildSettings, out Output, parallel int) (*StackBuild, error) {
	targets, err := p.StackTargets(ctx, st, s)
	if err != nil {
		return nil, err
	}
	results, err := p.Build(ctx, targets, out, parallel)
	if err != nil {
		return nil, err
	}
	images := Images(results)
	if err := WithStackImages(ctx, st, images); err != nil {
		return nil, err
	}
	return &StackBuild{Results: results, Images: images}, nil
}
