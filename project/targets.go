package project

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/publish"
	"github.com/kiln-build/kiln/stack"
)

// BuildSettings shape every target of one build: the flags build, up and
// dev share.
type BuildSettings struct {
	Platform v1.Platform
	// Epoch is the timestamp of every layer entry (SOURCE_DATE_EPOCH).
	Epoch time.Time
	// BuildArgs are the --build-arg flags, over the stack's build_args.
	BuildArgs map[string]string
	// BuildOptions name template.yml build options, after the stack's.
	BuildOptions []string
	// CopyExtra are project paths staged into every build, after the
	// stack's configuration.copy.
	CopyExtra []string
	// Insecure names registry hosts spoken to over plain HTTP.
	Insecure []string
}

// Target is one function to build and the reference to publish it under.
type Target struct {
	Function languages.Function
	// Ref is the reference the image is published under; a name without
	// a registry means Docker Hub, as in docker and faas-cli.
	Ref name.Reference
	// Image is the reference as the user wrote it, which results print.
	Image string
	// Copies are configuration.copy paths: when set, the handler is staged
	// with them into a temporary folder that is built instead.
	Copies []string
	// Secrets are build_secrets: id to absolute path.
	Secrets map[string]string
	// Dockerfile is the Dockerfile of a lang dockerfile target; default
	// the handler folder's Dockerfile.
	Dockerfile string
	// Stage is the Dockerfile stage built (--target); default the last.
	Stage string
}

// Dir names a handler folder built without a stack file.
type Dir struct {
	Path, Lang, Image string
	// Name is the function's name; default the folder's name.
	Name string
}

// DirTarget returns the target of a handler folder.
func DirTarget(d Dir, s BuildSettings) (Target, error) {
	dir, err := filepath.Abs(d.Path)
	if err != nil {
		return Target{}, err
	}
	ref, err := ParseImage("--image", d.Image, s.Insecure)
	if err != nil {
		return Target{}, err
	}
	fnName := d.Name
	if fnName == "" {
		fnName = filepath.Base(dir)
	}
	args := maps.Clone(s.BuildArgs)
	if args == nil {
		args = map[string]string{}
	}
	packages, err := additionalPackages(d.Lang, s.BuildOptions, args)
	if err != nil {
		return Target{}, err
	}
	fn := languages.Function{Name: fnName, Dir: dir, Lang: d.Lang, BuildArgs: args, Packages: packages, Platform: s.Platform, Epoch: s.Epoch}
	return Target{Function: fn, Ref: ref, Image: d.Image, Copies: s.CopyExtra}, nil
}

// Targets returns the targets of a build: those of the handler folder d
// when it is not nil, else the selected functions of the stack file sel
// names, of which there must be one at least.
func (p *Project) Targets(ctx context.Context, sel Selection, d *Dir, s BuildSettings) ([]Target, error) {
	if d != nil {
		switch {
		case sel.File != "" || sel.Filter != "" || sel.Regex != "":
			return nil, usage.Errorf("give either DIR or a stack file (-f/--filter/--regex), not both")
		case d.Lang == "":
			return nil, usage.Errorf("--lang is required with DIR")
		case d.Image == "":
			return nil, usage.Errorf("--image is required with DIR")
		}
		_, hasTemplate := templateDockerfile(d.Lang)
		if l, ok := packs.Lookup(d.Lang); d.Lang != LangDockerfile && !hasTemplate && (!ok || l.DeployOnly) {
			err := unknownLang(d.Lang, "--lang", BuiltLangs())
			var ue *builder.UnknownLangError
			if errors.As(err, &ue) {
				return nil, usage.Errorf("--lang: %w", err)
			}
			return nil, usage.Wrap(err)
		}
		t, err := DirTarget(*d, s)
		if err != nil {
			return nil, err
		}
		return []Target{t}, nil
	}
	st, err := p.LoadStack(ctx, sel)
	if err != nil {
		return nil, err
	}
	targets, err := p.StackTargets(ctx, st, s)
	if err == nil && len(targets) == 0 {
		err = errors.New("no function to build: every selected one has skip_build or no lang")
	}
	return targets, err
}

// StackTargets turns the selected stack functions into build targets,
// skipping skip_build ones and, as faas-cli does, those with no lang.
func (p *Project) StackTargets(ctx context.Context, st *Stack, s BuildSettings) ([]Target, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for i, c := range st.Configuration.Copy {
		if _, err := stack.CopyPath(cwd, c); err != nil {
			return nil, st.CopyError(i, "%q: %v", c, err)
		}
	}
	var targets []Target
	for _, fnName := range st.Names {
		sfn := st.Functions[fnName]
		if sfn.SkipBuild {
			p.emit(Skipped{Function: fnName, Reason: "skip_build is set"})
			continue
		}
		if sfn.Lang == "" {
			p.emit(Skipped{Function: fnName, Reason: "it has no lang (please provide a valid language)", Warning: true})
			continue
		}
		t, err := stackTarget(ctx, st, fnName, s)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	return targets, nil
}

func stackTarget(ctx context.Context, st *Stack, fnName string, s BuildSettings) (Target, error) {
	sfn := st.Functions[fnName]
	dir, err := st.HandlerDir(sfn)
	if err != nil {
		return Target{}, err
	}
	image, err := st.Image(ctx, fnName)
	if err != nil {
		return Target{}, err
	}
	ref, err := publish.ParseReference(image, s.Insecure)
	if err != nil {
		return Target{}, st.FuncError(sfn, "image", "%v", err)
	}
	args := maps.Clone(sfn.BuildArgs)
	if args == nil {
		args = map[string]string{}
	}
	maps.Copy(args, s.BuildArgs)
	secrets := map[string]string{}
	for id, p := range sfn.BuildSecrets {
		abs, err := filepath.Abs(p)
		if err != nil {
			return Target{}, err
		}
		if _, err := os.Stat(abs); err != nil {
			return Target{}, st.FuncError(sfn, "build_secrets", "secret %s: %s not found", id, p)
		}
		secrets[id] = abs
	}
	packages, err := additionalPackages(sfn.Lang, append(slices.Clone(sfn.BuildOptions), s.BuildOptions...), args)
	if err != nil {
		return Target{}, st.FuncError(sfn, "build_options", "%v", err)
	}
	return Target{
		Function: languages.Function{Name: fnName, Dir: dir, Lang: sfn.Lang, BuildArgs: args, Packages: packages, Platform: s.Platform, Epoch: s.Epoch},
		Ref:      ref,
		Image:    image,
		Copies:   append(slices.Clone(st.Configuration.Copy), s.CopyExtra...),
		Secrets:  secrets,
	}, nil
}

// RepoAsNamed returns the repository of image, a reference as the user
// wrote it, without its tag or digest: "user/fn:dev" gives "user/fn",
// where ref.Context().Name() would give "index.docker.io/user/fn". An
// empty image gives ref's full name.
func RepoAsNamed(image string, ref name.Reference) string {
	if image == "" {
		return ref.Context().Name()
	}
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
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
