package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/stack"
)

type buildFlags struct {
	lang, image, fnName string
	stackFile, filter   string
	push, json          bool
	output, platform    string
	digestFile          string
	insecure, buildArgs []string
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
  kiln build ./hello --lang go --image hello:dev --output oci:./out
  kiln build ./hello --lang golang-middleware --image hello --output tar:hello.tar --platform linux/arm64`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.lang, "lang", "", "language of DIR: golang-middleware or go")
	fl.StringVar(&f.image, "image", "", "image reference for DIR, e.g. registry.example.com/team/fn:1.0")
	fl.StringVar(&f.fnName, "name", "", "function name for DIR (default: the folder's name)")
	fl.StringVarP(&f.stackFile, "yaml", "f", "", "stack file (default ./stack.yaml, else ./stack.yml)")
	fl.StringVar(&f.filter, "filter", "", "build only the stack function with this name (* is a wildcard)")
	fl.BoolVar(&f.push, "push", false, "push to the image's registry (same as --output registry)")
	fl.StringVar(&f.output, "output", "", `where images go: "registry", "oci:DIR" or "tar:FILE" (default: the local image store)`)
	fl.StringVar(&f.platform, "platform", "linux/"+runtime.GOARCH, "platform to build for, OS/ARCH[/VARIANT]")
	fl.StringVar(&f.digestFile, "digest-file", "", "write NAME@DIGEST lines of the built images to this file")
	fl.StringSliceVar(&f.insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP (loopback always is); repeatable")
	fl.StringArrayVarP(&f.buildArgs, "build-arg", "b", nil, "build argument KEY=VALUE (e.g. GOFLAGS=-mod=vendor); repeatable")
	fl.BoolVar(&f.json, "json", false, "print the results as JSON")
	return cmd
}

type buildTarget struct {
	fn  languages.Function
	ref name.Reference
}

type buildOutput struct {
	Name   string                `json:"name"`
	Image  string                `json:"image"`
	Digest string                `json:"digest"`
	Output string                `json:"output"`
	Layers []builder.LayerReport `json:"layers"`
}

func runBuild(cmd *cobra.Command, g *globals, f buildFlags, args []string) error {
	ctx := cmd.Context()
	platform, err := v1.ParsePlatform(f.platform)
	if err != nil || platform.OS == "" || platform.Architecture == "" {
		return usageError{fmt.Errorf("--platform %q: want OS/ARCH, e.g. linux/arm64", f.platform)}
	}
	epoch, err := sourceDateEpoch(g.getenv)
	if err != nil {
		return err
	}
	buildArgs, err := parseKeyValues("--build-arg", f.buildArgs)
	if err != nil {
		return err
	}
	targets, err := buildTargets(f, args, buildArgs)
	if err != nil {
		return err
	}
	for i := range targets {
		targets[i].fn.Platform = *platform
		targets[i].fn.Epoch = epoch
	}

	store, err := g.store()
	if err != nil {
		return err
	}
	b, err := newBuilder(g, store)
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

	var results []buildOutput
	for _, t := range targets {
		start := time.Now()
		g.logf("building %s (%s, %s)", t.fn.Name, t.fn.Lang, platform)
		res, err := b.Build(ctx, t.fn)
		if err != nil {
			return fmt.Errorf("building %s: %w", t.fn.Name, err)
		}
		for _, l := range res.Layers {
			how := "cached"
			if !l.Cached {
				how = "built in " + l.Duration.Round(time.Millisecond).String()
			}
			g.logf("  %-16s %9s  %s", l.Name, humanSize(l.Size), how)
		}
		built := time.Since(start)
		dref, err := pub.Publish(ctx, res.Image, t.ref)
		if err != nil {
			return fmt.Errorf("publishing %s: %w", t.fn.Name, err)
		}
		g.logf("  %s: built in %s, published to %s in %s", t.fn.Name, built.Round(time.Millisecond), output, (time.Since(start) - built).Round(time.Millisecond))
		results = append(results, buildOutput{Name: t.fn.Name, Image: dref.Context().Name() + "@" + dref.DigestStr(), Digest: dref.DigestStr(), Output: output, Layers: res.Layers})
	}
	if f.digestFile != "" {
		var sb strings.Builder
		for _, r := range results {
			fmt.Fprintln(&sb, r.Image)
		}
		if err := atomicfile.Write(f.digestFile, []byte(sb.String())); err != nil {
			return fmt.Errorf("--digest-file: %w", err)
		}
	}
	if f.json {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	for _, r := range results {
		fmt.Fprintln(g.stdout, r.Image)
	}
	return nil
}

func buildTargets(f buildFlags, args []string, buildArgs map[string]string) ([]buildTarget, error) {
	if len(args) == 1 {
		if f.stackFile != "" || f.filter != "" {
			return nil, usageError{errors.New("give either DIR or a stack file (-f/--filter), not both")}
		}
		if f.lang == "" {
			return nil, usageError{errors.New("--lang is required with DIR")}
		}
		if f.image == "" {
			return nil, usageError{errors.New("--image is required with DIR")}
		}
		dir, err := filepath.Abs(args[0])
		if err != nil {
			return nil, err
		}
		ref, err := builder.ParseReference(f.image, f.insecure)
		if err != nil {
			return nil, usageError{fmt.Errorf("--image: %w", err)}
		}
		fnName := f.fnName
		if fnName == "" {
			fnName = filepath.Base(dir)
		}
		return []buildTarget{{fn: languages.Function{Name: fnName, Dir: dir, Lang: f.lang, BuildArgs: buildArgs}, ref: ref}}, nil
	}
	if f.lang != "" || f.image != "" {
		return nil, usageError{errors.New("--lang and --image go with DIR; a stack file names them per function")}
	}
	path, err := stack.Find(f.stackFile)
	if err != nil {
		return nil, usageError{err}
	}
	sf, err := stack.Read(path)
	if err != nil {
		return nil, err
	}
	var targets []buildTarget
	for _, fnName := range sf.Names() {
		sfn := sf.Functions[fnName]
		if f.filter != "" && !globMatch(f.filter, fnName) {
			continue
		}
		if sfn.SkipBuild {
			continue
		}
		dir, err := stack.HandlerDir(sfn)
		if err != nil {
			return nil, err
		}
		ref, err := builder.ParseReference(imageWithTag(sfn.Image), f.insecure)
		if err != nil {
			return nil, &stack.Error{Path: path, Line: sfn.Line, Key: "functions." + fnName + ".image", Msg: err.Error()}
		}
		args := map[string]string{}
		for k, v := range sfn.BuildArgs {
			args[k] = v
		}
		for k, v := range buildArgs {
			args[k] = v
		}
		targets = append(targets, buildTarget{fn: languages.Function{Name: fnName, Dir: dir, Lang: sfn.Lang, BuildArgs: args}, ref: ref})
	}
	if len(targets) == 0 {
		if f.filter != "" {
			return nil, fmt.Errorf("no functions matching --filter %q in %s", f.filter, path)
		}
		return nil, fmt.Errorf("%s has no functions to build", path)
	}
	return targets, nil
}

// imageWithTag appends :latest when the last path segment has no tag, as
// faas-cli does, so a registry port is not taken for a tag.
func imageWithTag(image string) string {
	last := image[strings.LastIndex(image, "/")+1:]
	if strings.Contains(last, ":") || strings.Contains(last, "@") {
		return image
	}
	return image + ":latest"
}

// globMatch matches faas-cli's --filter: * is the only wildcard.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
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
