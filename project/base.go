package project

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/usage"
	"github.com/kiln-build/kiln/runtime-images/bases"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// BaseFlags are the flags of `kiln base build`.
type BaseFlags struct {
	Platform, Image, Output string
	Insecure                []string
}

// Add adds the flags to fl.
func (f *BaseFlags) Add(fl *pflag.FlagSet) {
	fl.StringVar(&f.Platform, "platform", "linux/"+runtime.GOARCH, "platform of the base")
	fl.StringVar(&f.Image, "image", "", "reference to publish the base under")
	fl.StringVar(&f.Output, "output", "", `"registry", "oci:DIR" or "tar:FILE"`)
	fl.StringSliceVar(&f.Insecure, "insecure-registry", nil, "registry host spoken to over plain HTTP; repeatable")
}

// BaseBuilt: a runtime base was built.
type BaseBuilt struct {
	Name, Platform string
	Layers         []builder.LayerReport
	Took           time.Duration
}

func (BaseBuilt) EventKind() string { return "base-built" }

// BuildBase builds the runtime base called name into the cache and, when
// the flags name an output, publishes it. It returns the base's digest, or
// NAME@DIGEST of the published image.
func (p *Project) BuildBase(ctx context.Context, name string, f BaseFlags) (string, error) {
	platform, err := ParsePlatform("--platform", f.Platform)
	if err != nil {
		return "", err
	}
	if (f.Output == "") != (f.Image == "") {
		return "", usage.Errorf("--output and --image go together")
	}
	if _, err := bases.Lookup(name); err != nil {
		var unknown *bases.UnknownRecipeError
		if errors.As(err, &unknown) {
			err = usage.Wrap(err)
		}
		return "", err
	}
	b, err := p.Builder()
	if err != nil {
		return "", err
	}
	defer p.flushShared(ctx, name)
	start := time.Now()
	res, err := b.BuildBase(ctx, name, *platform)
	if err != nil {
		return "", err
	}
	p.emit(BaseBuilt{Name: name, Platform: platform.String(), Layers: res.Layers, Took: time.Since(start)})
	if f.Output == "" {
		return res.BaseDigest.String(), nil
	}
	ref, err := ParseImage("--image", f.Image, f.Insecure)
	if err != nil {
		return "", err
	}
	out, err := p.ParseOutput(f.Output)
	if err != nil {
		return "", err
	}
	d, err := out.Publish(ctx, res.Image, ref)
	if err != nil {
		return "", err
	}
	return d.Context().Name() + "@" + d.DigestStr(), nil
}

// LockBases pins the newest version of every package the named recipes
// (all when none) name, from the mirror's signed indexes checked with
// keyring, and writes NAME.lock.json into dir, or every lock to w when
// dir is "-". It returns the files written.
func (p *Project) LockBases(ctx context.Context, names []string, keyring, dir string, w io.Writer) ([]string, error) {
	if len(names) == 0 {
		names = bases.Names()
	}
	if dir != "-" {
		if info, err := os.Stat(dir); err != nil || !info.IsDir() {
			return nil, usage.Errorf("--out %s is not a directory; run in a kiln checkout or pass --out DIR (or - for stdout)", dir)
		}
	}
	f, err := NewFetcher(p.opts.getenv, p.cache.Dir(), debian.WithKeyring(keyring))
	if err != nil {
		return nil, err
	}
	var written []string
	for _, name := range names {
		r, err := bases.Lookup(name)
		if err != nil {
			return written, err
		}
		lock, err := bases.Lock(ctx, r, f)
		if err != nil {
			return written, fmt.Errorf("locking %s: %w", name, err)
		}
		data, err := lock.Marshal()
		if err != nil {
			return written, err
		}
		if dir == "-" {
			if _, err := w.Write(data); err != nil {
				return written, err
			}
			continue
		}
		path := filepath.Join(dir, bases.LockFileName(name))
		if err := atomicfile.Write(path, data); err != nil {
			return written, fmt.Errorf("writing %s: %w", path, err)
		}
		written = append(written, path)
	}
	return written, nil
}
