package project

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/executorimage"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/runtime-images/bases"
)

// ExecutorImageFile is the file, in kiln's config folder (ConfigDir), that
// holds the executor image `kiln job` runs by default: the `all` image
// `kiln executor image build --push` last pushed, as one line
// REPO:all@sha256:….
const ExecutorImageFile = "executor-image"

// ExecutorImageFlags are the flags of `kiln executor image build`.
type ExecutorImageFlags struct {
	Push, Output, Platform, Kiln string
	Only, Insecure               []string
	// LocalCAs are PEM files of CA certificates the images trust beside
	// Debian's.
	LocalCAs []string
}

// DefaultExecutorRepo names the images written with --output and no --push.
const DefaultExecutorRepo = "kiln-executor"

// Add adds the flags to fl; kiln is the default of --kiln, the running
// binary.
func (f *ExecutorImageFlags) Add(fl *pflag.FlagSet, kiln string) {
	fl.StringVar(&f.Push, "push", "", "repository to push the images to, as REPO:go, REPO:node, REPO:python, REPO:java and REPO:all")
	fl.StringVar(&f.Output, "output", "", `"oci:DIR" or "tar:FILE" (one image) to write the images to instead, named REPO:TAG (REPO `+DefaultExecutorRepo+` without --push)`)
	fl.StringVar(&f.Platform, "platform", "linux/"+runtime.GOARCH, "platform of the images; --kiln must be a kiln built for it")
	fl.StringVar(&f.Kiln, "kiln", kiln, "the static kiln binary to put at /kaniko/executor")
	fl.StringSliceVar(&f.Only, "only", nil, "build only these images ("+strings.Join(executorimage.Names, ", ")+"); repeatable")
	fl.StringSliceVar(&f.Insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP; repeatable")
	fl.StringArrayVar(&f.LocalCAs, "ca-certificates", nil, "PEM file of CA certificates the images trust beside Debian's (a company's proxy or mirror), for Go, Node, pip, Maven and kiln; repeatable")
}

// ExecutorImage is one built executor image.
type ExecutorImage struct {
	Name string `json:"name"`
	// Image is REPO:TAG@DIGEST when published, else the digest.
	Image string `json:"image"`
	// Size is the sum of the image's compressed layers.
	Size int64 `json:"size"`
}

// BuildExecutorImages builds the executor images and publishes them as
// the flags say. After a registry push of the `all` image it records it
// in ExecutorImageFile and returns that file's path.
func (p *Project) BuildExecutorImages(ctx context.Context, f ExecutorImageFlags) (images []ExecutorImage, recorded string, err error) {
	platform, err := ParsePlatform("--platform", f.Platform)
	if err != nil {
		return nil, "", err
	}
	if f.Output != "" && !strings.HasPrefix(f.Output, "oci:") && !strings.HasPrefix(f.Output, "tar:") {
		return nil, "", usage.Errorf(`--output %q: want "oci:DIR" or "tar:FILE" (--push REPO pushes)`, f.Output)
	}
	if strings.HasPrefix(f.Output, "tar:") && len(f.Only) != 1 {
		return nil, "", usage.Errorf("--output %s holds one image: pick it with --only", f.Output)
	}
	opts := p.executorImageOptions()
	var cas []bases.LocalCA
	for _, path := range f.LocalCAs {
		ca, err := bases.ReadLocalCA(path)
		if err != nil {
			return nil, "", usage.Errorf("--ca-certificates: %w", err)
		}
		if i := slices.IndexFunc(cas, func(c bases.LocalCA) bool { return c.Name == ca.Name }); i >= 0 {
			return nil, "", usage.Errorf("--ca-certificates: %s and %s would both be /usr/local/share/ca-certificates/%s", f.LocalCAs[i], path, ca.Name)
		}
		cas = append(cas, ca)
	}
	if len(cas) > 0 {
		opts = append(opts, executorimage.WithLocalCAs(cas...))
	}
	if err := executorimage.CheckKiln(f.Kiln, platform.Architecture); err != nil {
		return nil, "", usage.Errorf("--kiln: %w", err)
	}
	deb, err := NewFetcher(p.opts.getenv, p.cache.Dir())
	if err != nil {
		return nil, "", err
	}
	src, err := executorimage.NewSource(p.cache, deb, f.Kiln, opts...)
	if err != nil {
		return nil, "", err
	}
	built, err := executorimage.Build(ctx, p.cache, src, *platform, f.Only)
	if err != nil {
		return nil, "", err
	}
	var out Output
	repo := f.Push
	switch {
	case f.Output != "":
		out, err = p.ParseOutput(f.Output)
		if repo == "" {
			repo = DefaultExecutorRepo
		}
	case f.Push != "":
		out = p.Registry()
	}
	if err != nil {
		return nil, "", err
	}
	for _, b := range built {
		p.emit(BaseBuilt{Name: "executor image " + b.Name, Platform: platform.String(), Layers: b.Layers, Took: b.Took})
		img := ExecutorImage{Name: b.Name}
		for _, l := range b.Layers {
			img.Size += l.Size
		}
		d, err := b.Image.Digest()
		if err != nil {
			return nil, "", err
		}
		img.Image = d.String()
		if out.Publisher != nil {
			ref, err := ParseImage("--push", repo+":"+b.Name, f.Insecure)
			if err != nil {
				return nil, "", err
			}
			pushed, err := out.Publish(ctx, b.Image, ref)
			if err != nil {
				return nil, "", err
			}
			img.Image = ref.String() + "@" + pushed.DigestStr()
			if out.Name == "registry" && b.Name == executorimage.All {
				if recorded, err = p.recordExecutorImage(img.Image); err != nil {
					return nil, "", err
				}
			}
		}
		images = append(images, img)
	}
	return images, recorded, nil
}

// recordExecutorImage writes ref to ExecutorImageFile in kiln's config
// folder and returns the file's path.
func (p *Project) recordExecutorImage(ref string) (string, error) {
	dir, err := ConfigDir(p.opts.getenv)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("recording the executor image: %w", err)
	}
	path := filepath.Join(dir, ExecutorImageFile)
	if err := atomicfile.Write(path, []byte(ref+"\n")); err != nil {
		return "", fmt.Errorf("recording the executor image: %w", err)
	}
	return path, nil
}

// DefaultExecutorImage returns the executor image recorded in the config
// folder dir.
func DefaultExecutorImage(dir string) (string, error) {
	path := filepath.Join(dir, ExecutorImageFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", usage.Errorf("--executor-image: none given, and none recorded in %s (kiln executor image build --push REPO records one)", path)
	}
	if err != nil {
		return "", fmt.Errorf("reading the default executor image: %w", err)
	}
	ref := strings.TrimSpace(string(b))
	if _, err := name.NewDigest(ref); err != nil {
		return "", fmt.Errorf("%s: want one line REF@sha256:…: %w", path, err)
	}
	return ref, nil
}

// LockExecutorImages pins the executor images' inputs as their sources
// serve them now and writes the lock into dir, returning the path
// written; when dir is "-" it writes nothing and returns the lock's bytes.
func (p *Project) LockExecutorImages(ctx context.Context, dir string) (string, []byte, error) {
	if dir != "-" {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return "", nil, usage.Errorf("--out %s is not a directory; run in a kiln checkout or pass --out DIR (or - for stdout)", dir)
		}
	}
	deb, err := NewFetcher(p.opts.getenv, p.cache.Dir())
	if err != nil {
		return "", nil, err
	}
	lock, err := executorimage.Refresh(ctx, p.cache, deb, p.executorImageOptions()...)
	if err != nil {
		return "", nil, err
	}
	data, err := lock.Marshal()
	if err != nil || dir == "-" {
		return "", data, err
	}
	path := filepath.Join(dir, executorimage.LockFile)
	if err := atomicfile.Write(path, data); err != nil {
		return "", nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return path, nil, nil
}

// executorImageOptions are the toolchains' sources the environment names:
// the first proxy of GOPROXY and KILN_NPM_REGISTRY.
func (p *Project) executorImageOptions() []executorimage.Option {
	var opts []executorimage.Option
	proxy, _, _ := strings.Cut(p.opts.getenv("GOPROXY"), ",")
	if proxy, _, _ = strings.Cut(proxy, "|"); strings.HasPrefix(proxy, "http") {
		opts = append(opts, executorimage.WithGoProxy(proxy))
	}
	if r := p.opts.getenv("KILN_NPM_REGISTRY"); r != "" {
		opts = append(opts, executorimage.WithNPMRegistry(r))
	}
	return opts
}
