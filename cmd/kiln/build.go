package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/stack"
)

type buildFlags struct {
	stackFlags
	lang, image, fnName string
	push, json          bool
	output, platform    string
	digestFile          string
	insecure, buildArgs []string
	buildOptions        []string
	copyExtra           []string
	buildLabels         []string
	parallel            int
	native              bool
	noCache, quiet      bool
	shrinkwrap          bool
	// Accepted for faas-cli's scripts; nothing in kiln needs them.
	squash, pull, disableStackPull bool
}

// stackFlags are the stack-file flags every stack command shares, as in
// faas-cli.
type stackFlags struct {
	stackFile, filter, regex, tag string
	envsubst                      bool
}

func addStackFlags(fl *pflag.FlagSet, f *stackFlags) {
	fl.StringVarP(&f.stackFile, "yaml", "f", "", "stack file or http(s) URL (default ./stack.yaml, else ./stack.yml)")
	fl.StringVar(&f.filter, "filter", "", "only the stack functions whose name matches (* is a wildcard)")
	fl.StringVar(&f.regex, "regex", "", "only the stack functions whose name matches this regular expression (unanchored)")
	fl.StringVar(&f.tag, "tag", "latest", "image tag format: latest, sha, branch, describe or digest (as faas-cli)")
	fl.BoolVar(&f.envsubst, "envsubst", true, "substitute ${VAR} in the stack file from the environment")
}

// loadStack reads the stack file the flags name and selects functions.
func loadStack(cmd *cobra.Command, g *globals, f stackFlags) (*stack.File, []string, error) {
	if _, err := stack.ParseTagFormat(f.tag); err != nil {
		return nil, nil, usageError{err}
	}
	path, err := stack.Find(f.stackFile)
	if err != nil {
		return nil, nil, usageError{err}
	}
	sf, err := stack.Read(cmd.Context(), path, stack.WithEnv(g.getenv), stack.WithEnvsubst(f.envsubst))
	if err != nil {
		return nil, nil, err
	}
	names, err := sf.Select(f.filter, f.regex)
	var nm *stack.NoMatchError
	if errors.As(err, &nm) {
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, usageError{err}
	}
	return sf, names, nil
}

func newBuildCmd(g *globals) *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build function images from a stack file or a handler folder",
		Long: `Build function images without Docker. With DIR, build the handler folder DIR
(--lang and --image required); without it, build the functions of the stack
file (-f, else ./stack.yaml, else ./stack.yml).

Without --push or --output the image goes to kiln's local image store,
where 'kiln run' finds it. Each built image is printed as NAME@DIGEST.`,
		Example: `  kiln build ./hello --lang golang-middleware --image localhost:5000/hello --push
  kiln build -f stack.yml --filter hello --push
  kiln build -f stack.yml --parallel 4 --tag sha --push
  kiln build ./hello --lang go --image hello:dev --output oci:./out
  kiln build ./hello --lang golang-middleware --image hello --output tar:hello.tar --platform linux/arm64`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.lang, "lang", "", "language of DIR: "+strings.Join(packs.Listed(), ", ")+", ...")
	fl.StringVar(&f.image, "image", "", "image reference for DIR, e.g. registry.example.com/team/fn:1.0")
	fl.StringVar(&f.fnName, "name", "", "function name for DIR (default: the folder's name)")
	addStackFlags(fl, &f.stackFlags)
	addBuildFlags(fl, &f)
	fl.BoolVar(&f.push, "push", false, "push to the image's registry (same as --output registry)")
	fl.StringVar(&f.output, "output", "", `where images go: "registry", "oci:DIR" or "tar:FILE" (default: the local image store)`)
	fl.StringVar(&f.digestFile, "digest-file", "", "write NAME@DIGEST lines of the built images to this file")
	fl.BoolVar(&f.json, "json", false, "print the results as JSON")
	return cmd
}

// addBuildFlags adds the flags that shape a build, shared with up and dev.
func addBuildFlags(fl *pflag.FlagSet, f *buildFlags) {
	fl.StringVar(&f.platform, "platform", "linux/"+runtime.GOARCH, "platform to build for, OS/ARCH[/VARIANT]")
	fl.StringSliceVar(&f.insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP (loopback always is); repeatable")
	fl.StringArrayVarP(&f.buildArgs, "build-arg", "b", nil, "build argument KEY=VALUE (e.g. GOFLAGS=-mod=vendor), over the stack's build_args; repeatable")
	fl.StringArrayVarP(&f.buildOptions, "build-option", "o", nil, "build option of ./template/<lang>/template.yml whose Debian packages join the runtime base; repeatable")
	fl.StringArrayVar(&f.copyExtra, "copy-extra", nil, "project path copied into every function's build, as configuration.copy; repeatable")
	fl.StringArrayVar(&f.buildLabels, "build-label", nil, "image label KEY=VALUE; repeatable")
	fl.IntVar(&f.parallel, "parallel", 1, "build this many stack functions at once")
	fl.BoolVar(&f.native, "native", false, "compile Java functions with GraalVM's native-image (same as --build-arg NATIVE=true)")
	fl.BoolVar(&f.noCache, "no-cache", false, "rebuild every layer instead of taking it from kiln's cache")
	fl.BoolVar(&f.quiet, "quiet", false, "print no build progress, only the results")
	fl.BoolVar(&f.shrinkwrap, "shrinkwrap", false, "faas-cli's Docker build context; kiln has none (use --output oci:DIR for the image)")
	fl.BoolVar(&f.squash, "squash", false, "accepted for faas-cli; no effect: kiln keeps layers apart so an edit uploads one")
	fl.BoolVar(&f.pull, "pull", false, "accepted for faas-cli; no effect: kiln's bases are pinned by digest in its lock")
	fl.BoolVar(&f.disableStackPull, "disable-stack-pull", false, "accepted for faas-cli; no effect: kiln pulls no templates")
}

// builderOptions are the builder settings of the flags.
func (f buildFlags) builderOptions() ([]builder.Option, error) {
	labels, err := parseKeyValues("--build-label", f.buildLabels)
	if err != nil {
		return nil, err
	}
	opts := []builder.Option{builder.WithLabels(labels)}
	if f.noCache {
		opts = append(opts, builder.WithNoCache())
	}
	return opts, nil
}

type buildTarget struct {
	fn  languages.Function
	ref name.Reference
	// copies are configuration.copy paths: when set, the handler is staged
	// with them into a temporary folder that is built instead.
	copies []string
	// secrets are build_secrets: id to absolute path.
	secrets map[string]string
}

type buildOutput struct {
	Name   string                `json:"name"`
	Image  string                `json:"image"`
	Digest string                `json:"digest"`
	Output string                `json:"output"`
	Layers []builder.LayerReport `json:"layers"`
	// fprocess is the one the image's config sets, for deploy.
	fprocess string
}

func runBuild(cmd *cobra.Command, g *globals, f buildFlags, args []string) error {
	ctx := cmd.Context()
	if f.parallel < 1 {
		return usageError{fmt.Errorf("--parallel %d: want 1 or more", f.parallel)}
	}
	bopts, err := f.builderOptions()
	if err != nil {
		return err
	}
	targets, err := buildTargets(cmd, g, f, args)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return errors.New("no function to build: every selected one has skip_build or no lang")
	}
	store, err := g.store()
	if err != nil {
		return err
	}
	b, err := newBuilder(g, store, bopts...)
	if err != nil {
		return err
	}
	output := f.output
	if f.push {
		if output != "" && output != "registry" {
			return usageError{errors.New("--push and --output " + output + " disagree; give one")}
		}
		output = "registry"
	}
	var pub builder.Publisher
	if output == "" {
		pub, output = builder.NewLayout(localImages(store)), "local"
	} else if pub, err = builder.ParseOutput(output, builder.NewRegistry()); err != nil {
		return usageError{err}
	}
	results, err := buildAll(ctx, g, b, pub, output, targets, f.parallel)
	if err != nil {
		return err
	}
	return printResults(g, results, f.digestFile, f.json)
}

// printResults writes --digest-file and prints NAME@DIGEST lines, or JSON.
func printResults(g *globals, results []buildOutput, digestFile string, asJSON bool) error {
	if digestFile != "" {
		var sb strings.Builder
		for _, r := range results {
			fmt.Fprintln(&sb, r.Image)
		}
		if err := atomicfile.Write(digestFile, []byte(sb.String())); err != nil {
			return fmt.Errorf("--digest-file: %w", err)
		}
	}
	if asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	for _, r := range results {
		fmt.Fprintln(g.stdout, r.Image)
	}
	return nil
}

// buildAll builds targets with at most parallel at once, as faas-cli's
// workers do: every error is collected and reported at the end. Results
// keep the targets' order.
func buildAll(ctx context.Context, g *globals, b *builder.Builder, pub builder.Publisher, output string, targets []buildTarget, parallel int) ([]buildOutput, error) {
	results := make([]buildOutput, len(targets))
	errs := make([]error, len(targets))
	queue := make(chan int)
	// Layout and tarball publishers rewrite one index file: one at a time.
	var publishMu sync.Mutex
	serial := output != "registry"
	var wg sync.WaitGroup
	for range min(parallel, len(targets)) {
		wg.Go(func() {
			for i := range queue {
				results[i], errs[i] = buildOne(ctx, g, b, pub, output, targets[i], serial, &publishMu)
			}
		})
	}
	for i := range targets {
		queue <- i
	}
	close(queue)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return results, nil
}

func buildOne(ctx context.Context, g *globals, b *builder.Builder, pub builder.Publisher, output string, t buildTarget, serial bool, publishMu *sync.Mutex) (buildOutput, error) {
	start := time.Now()
	fn := t.fn
	g.logf("building %s (%s, %s)", fn.Name, fn.Lang, fn.Platform.String())
	if !slices.Contains(b.Langs(), fn.Lang) {
		return buildOutput{}, unknownLang(fn, b.Langs())
	}
	if len(t.copies) > 0 {
		staged, err := os.MkdirTemp("", "kiln-stage-")
		if err != nil {
			return buildOutput{}, err
		}
		defer os.RemoveAll(staged)
		cwd, err := os.Getwd()
		if err != nil {
			return buildOutput{}, err
		}
		if err := stack.Stage(fn.Dir, staged, cwd, t.copies); err != nil {
			return buildOutput{}, fmt.Errorf("building %s: %w", fn.Name, err)
		}
		fn.Dir = staged
	}
	if len(t.secrets) > 0 {
		dir, err := stageSecrets(t.secrets)
		if err != nil {
			return buildOutput{}, fmt.Errorf("building %s: %w", fn.Name, err)
		}
		defer os.RemoveAll(dir)
		fn.SecretsDir = dir
	}
	res, err := b.Build(ctx, fn)
	if err != nil {
		return buildOutput{}, fmt.Errorf("building %s: %w", fn.Name, unstage(err, fn.Dir, t.fn.Dir))
	}
	for _, l := range res.Layers {
		how := "cached"
		if !l.Cached {
			how = "built in " + l.Duration.Round(time.Millisecond).String()
		}
		g.logf("  %s %-16s %9s  %s", fn.Name, l.Name, humanSize(l.Size), how)
	}
	built := time.Since(start)
	if serial {
		publishMu.Lock()
		defer publishMu.Unlock()
	}
	dref, err := pub.Publish(ctx, res.Image, t.ref)
	if err != nil {
		return buildOutput{}, fmt.Errorf("publishing %s: %w", fn.Name, err)
	}
	g.logf("  %s: built in %s, published to %s in %s", fn.Name, built.Round(time.Millisecond), output, (time.Since(start) - built).Round(time.Millisecond))
	di, err := describeImage(t.ref, res.Image)
	if err != nil {
		return buildOutput{}, err
	}
	return buildOutput{Name: fn.Name, Image: di.ref, Digest: dref.DigestStr(), Output: output, Layers: res.Layers, fprocess: di.fprocess}, nil
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

// unknownLang explains a lang no pack builds; a ./template/<lang>/ folder
// means a faas-cli Dockerfile template, which kiln does not run.
func unknownLang(fn languages.Function, known []string) error {
	if info, err := os.Stat(filepath.Join("template", fn.Lang)); err == nil && info.IsDir() {
		return fmt.Errorf("building %s: lang %q is a faas-cli Dockerfile template (./template/%s/); kiln builds without Docker and natively knows only: %s", fn.Name, fn.Lang, fn.Lang, strings.Join(known, ", "))
	}
	return fmt.Errorf("building %s: %w", fn.Name, &builder.UnknownLangError{Lang: fn.Lang, Known: known})
}

func buildTargets(cmd *cobra.Command, g *globals, f buildFlags, args []string) ([]buildTarget, error) {
	platform, err := v1.ParsePlatform(f.platform)
	if err != nil || platform.OS == "" || platform.Architecture == "" {
		return nil, usageError{fmt.Errorf("--platform %q: want OS/ARCH, e.g. linux/arm64", f.platform)}
	}
	epoch, err := sourceDateEpoch(g.getenv)
	if err != nil {
		return nil, err
	}
	if f.shrinkwrap {
		return nil, usageError{errors.New("--shrinkwrap: kiln builds without a Docker build context; use --output oci:DIR or tar:FILE to keep the image")}
	}
	if f.quiet {
		g.quiet = true
	}
	flagArgs, err := parseBuildArgs(f.buildArgs)
	if err != nil {
		return nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for _, c := range f.copyExtra {
		if _, err := stack.CopyPath(cwd, c); err != nil {
			return nil, usageError{fmt.Errorf("--copy-extra %q: %w", c, err)}
		}
	}
	if f.native {
		if v, ok := flagArgs["NATIVE"]; ok && v != "true" {
			return nil, usageError{fmt.Errorf("--native and --build-arg NATIVE=%s disagree", v)}
		}
		flagArgs["NATIVE"] = "true"
	}
	var targets []buildTarget
	if len(args) == 1 {
		t, err := dirTarget(f, args[0], flagArgs)
		if err != nil {
			return nil, err
		}
		targets = []buildTarget{t}
	} else {
		if f.lang != "" || f.image != "" {
			return nil, usageError{errors.New("--lang and --image go with DIR; a stack file names them per function")}
		}
		sf, names, err := loadStack(cmd, g, f.stackFlags)
		if err != nil {
			return nil, err
		}
		for i, c := range sf.Configuration.Copy {
			if _, err := stack.CopyPath(cwd, c); err != nil {
				return nil, sf.CopyError(i, "%q: %v", c, err)
			}
		}
		if targets, err = stackTargets(cmd.Context(), g, sf, names, f, flagArgs); err != nil {
			return nil, err
		}
	}
	for i := range targets {
		targets[i].fn.Platform = *platform
		targets[i].fn.Epoch = epoch
	}
	return targets, nil
}

func dirTarget(f buildFlags, dirArg string, buildArgs map[string]string) (buildTarget, error) {
	if f.stackFile != "" || f.filter != "" || f.regex != "" {
		return buildTarget{}, usageError{errors.New("give either DIR or a stack file (-f/--filter/--regex), not both")}
	}
	if f.lang == "" {
		return buildTarget{}, usageError{errors.New("--lang is required with DIR")}
	}
	if f.image == "" {
		return buildTarget{}, usageError{errors.New("--image is required with DIR")}
	}
	dir, err := filepath.Abs(dirArg)
	if err != nil {
		return buildTarget{}, err
	}
	ref, err := builder.ParseReference(f.image, f.insecure)
	if err != nil {
		return buildTarget{}, usageError{fmt.Errorf("--image: %w", err)}
	}
	fnName := f.fnName
	if fnName == "" {
		fnName = filepath.Base(dir)
	}
	packages, err := additionalPackages(f.lang, f.buildOptions, buildArgs)
	if err != nil {
		return buildTarget{}, err
	}
	return buildTarget{fn: languages.Function{Name: fnName, Dir: dir, Lang: f.lang, BuildArgs: buildArgs, Packages: packages}, ref: ref, copies: f.copyExtra}, nil
}

// additionalPackages lists the Debian packages added to the runtime base,
// as faas-cli forms ADDITIONAL_PACKAGE: the build options' packages (from
// ./template/<lang>/template.yml) and the ADDITIONAL_PACKAGE build arg.
func additionalPackages(lang string, options []string, args map[string]string) ([]string, error) {
	fromOptions, err := stack.BuildOptionPackages(".", lang, options)
	if err != nil {
		return nil, err
	}
	return stack.AdditionalPackages(fromOptions, []string{args["ADDITIONAL_PACKAGE"]}), nil
}

// stackTargets turns the selected stack functions into build targets,
// skipping skip_build ones and, as faas-cli does, those with no lang.
func stackTargets(ctx context.Context, g *globals, sf *stack.File, names []string, f buildFlags, flagArgs map[string]string) ([]buildTarget, error) {
	format, _ := stack.ParseTagFormat(f.tag)
	var targets []buildTarget
	for _, fnName := range names {
		sfn := sf.Functions[fnName]
		if sfn.SkipBuild {
			g.logf("skipping %s: skip_build is set", fnName)
			continue
		}
		if sfn.Lang == "" {
			fmt.Fprintf(g.stderr, "kiln: skipping %s: it has no lang (please provide a valid language)\n", fnName)
			continue
		}
		dir, err := sf.HandlerDir(sfn)
		if err != nil {
			return nil, err
		}
		image, err := sf.FunctionImage(ctx, fnName, format)
		if err != nil {
			return nil, err
		}
		ref, err := builder.ParseReference(image, f.insecure)
		if err != nil {
			return nil, sf.FuncError(sfn, "image", "%v", err)
		}
		args := maps.Clone(sfn.BuildArgs)
		if args == nil {
			args = map[string]string{}
		}
		maps.Copy(args, flagArgs)
		secrets := map[string]string{}
		for id, p := range sfn.BuildSecrets {
			abs, err := filepath.Abs(p)
			if err != nil {
				return nil, err
			}
			if _, err := os.Stat(abs); err != nil {
				return nil, sf.FuncError(sfn, "build_secrets", "secret %s: %s not found", id, p)
			}
			secrets[id] = abs
		}
		packages, err := additionalPackages(sfn.Lang, append(slices.Clone(sfn.BuildOptions), f.buildOptions...), args)
		if err != nil {
			return nil, sf.FuncError(sfn, "build_options", "%v", err)
		}
		targets = append(targets, buildTarget{
			fn:      languages.Function{Name: fnName, Dir: dir, Lang: sfn.Lang, BuildArgs: args, Packages: packages},
			ref:     ref,
			copies:  append(slices.Clone(sf.Configuration.Copy), f.copyExtra...),
			secrets: secrets,
		})
	}
	return targets, nil
}

// parseBuildArgs reads -b flags as faas-cli does: neither side may be
// empty, and several ADDITIONAL_PACKAGE flags are space-joined.
func parseBuildArgs(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, usageError{fmt.Errorf("--build-arg %q: want KEY=VALUE, neither empty", kv)}
		}
		if prev := out[k]; k == "ADDITIONAL_PACKAGE" && prev != "" {
			v = prev + " " + v
		}
		out[k] = v
	}
	return out, nil
}

func parseKeyValues(flag string, kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("%s %q: want KEY=VALUE", flag, kv)}
		}
		out[k] = v
	}
	return out, nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH, the reproducible-builds
// convention for the timestamp in every layer; unset means 0.
func sourceDateEpoch(getenv func(string) string) (time.Time, error) {
	s := getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", s)
	}
	return time.Unix(n, 0).UTC(), nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
