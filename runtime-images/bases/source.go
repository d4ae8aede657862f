package bases

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// Source is kiln's runtime bases: the recipes and locks compiled into
// kiln, whose packages a Fetcher fetches. It is the builder's base source,
// and the Debian the language packs read. It is safe for concurrent use.
type Source struct {
	fetcher Fetcher
}

var (
	_ builder.BaseSource = (*Source)(nil)
	_ languages.Debian   = (*Source)(nil)
)

// NewSource returns the bases whose packages f fetches.
func NewSource(f Fetcher) (*Source, error) {
	if f == nil {
		return nil, errors.New("creating the runtime bases: no Debian fetcher")
	}
	return &Source{fetcher: f}, nil
}

// Base implements builder.BaseSource. Bases keep the epoch 0 whatever
// SOURCE_DATE_EPOCH says: their content is pinned, and so every function
// shares their layers. Added packages are resolved against the mirror's
// signed indexes as they are now.
func (s *Source) Base(ctx context.Context, name string, p v1.Platform, packages []string) (*builder.Base, error) {
	r, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	var opts []Option
	if len(packages) > 0 {
		extra, err := Extend(ctx, r, p.Architecture, packages, s.fetcher)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithExtraPackages(extra))
	}
	return Assemble(ctx, r, p.Architecture, s.fetcher, opts...)
}

// Locked implements languages.Debian.
func (s *Source) Locked(base, arch string) ([]languages.Deb, error) {
	r, err := Lookup(base)
	if err != nil {
		return nil, err
	}
	pkgs, err := r.locked(arch)
	if err != nil {
		return nil, err
	}
	out := make([]languages.Deb, 0, len(pkgs))
	for _, p := range pkgs {
		out = append(out, debOf(p.Package()))
	}
	return out, nil
}

// Versions implements languages.Debian.
func (s *Source) Versions(ctx context.Context, base, arch, name string) ([]languages.Deb, error) {
	r, err := Lookup(base)
	if err != nil {
		return nil, err
	}
	var out []languages.Deb
	for _, suite := range r.Suites {
		ix, err := s.fetcher.Index(ctx, suite, r.Component, arch)
		if err != nil {
			return nil, fmt.Errorf("reading Debian's %s index for %s: %w", suite, arch, err)
		}
		if p, err := ix.Package(name); err == nil {
			out = append(out, debOf(p))
		}
	}
	return out, nil
}

// Unpack implements languages.Debian.
func (s *Source) Unpack(ctx context.Context, p languages.Deb, dir string) ([]layers.File, error) {
	deb, err := s.fetcher.Download(ctx, debian.Package{
		Name: p.Name, Version: p.Version, Architecture: p.Architecture, Suite: p.Suite,
		Filename: p.Filename, Size: p.Size, SHA256: p.SHA256,
	})
	if err != nil {
		return nil, err
	}
	c, err := debian.Extract(ctx, deb, dir)
	if err != nil {
		return nil, err
	}
	return c.Files, nil
}

// debOf describes p as the packs see it.
func debOf(p debian.Package) languages.Deb {
	return languages.Deb{
		Name: p.Name, Version: p.Version, Architecture: p.Architecture, Suite: p.Suite,
		Filename: p.Filename, Size: p.Size, SHA256: p.SHA256, Unpacker: debian.ExtractVersion,
	}
}
