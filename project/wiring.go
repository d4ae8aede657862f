package project

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/languages/golang"
	"github.com/kiln-build/kiln/languages/java"
	"github.com/kiln-build/kiln/languages/node"
	"github.com/kiln-build/kiln/languages/python"
	"github.com/kiln-build/kiln/runtime-images/bases"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// newBuilder wires the language packs, runtime bases and watchdog into a
// builder.
func newBuilder(getenv func(string) string, toolEnv []string, store *cache.Store, extra ...builder.Option) (*builder.Builder, error) {
	bases, err := newBaseSource(getenv, store)
	if err != nil {
		return nil, err
	}
	return builder.New(store, append([]builder.Option{
		builder.WithPack(golang.New(golang.WithEnv(toolEnv))),
		builder.WithPack(java.New(java.WithEnv(toolEnv), java.WithCacheDir(store.Dir()), java.WithDebian(bases.fetcher), java.WithGradle(getenv("KILN_GRADLE")))),
		builder.WithPack(python.New(python.WithEnv(toolEnv), python.WithDebian(bases.fetcher))),
		builder.WithPack(node.New(store.Dir(), node.WithEnv(toolEnv), node.WithRegistry(getenv("KILN_NPM_REGISTRY")))),
		builder.WithBases(bases),
		builder.WithWatchdog(watchdogFinder(getenv)),
	}, extra...)...)
}

// watchdogFinder finds kiln-watchdog-OS-ARCH[-VARIANT] in $KILN_WATCHDOG_DIR,
// else beside the kiln executable, else in ../lib/kiln from it.
func watchdogFinder(getenv func(string) string) builder.WatchdogSource {
	return func(p v1.Platform) (string, error) {
		base := "kiln-watchdog-" + p.OS + "-" + p.Architecture
		if p.Variant != "" && p.Architecture == "arm" {
			base += "-" + p.Variant
		}
		var dirs []string
		if d := getenv("KILN_WATCHDOG_DIR"); d != "" {
			dirs = append(dirs, d)
		}
		if exe, err := os.Executable(); err == nil {
			if resolved, err := filepath.EvalSymlinks(exe); err == nil {
				exe = resolved
			}
			dirs = append(dirs, filepath.Dir(exe), filepath.Join(filepath.Dir(exe), "..", "lib", "kiln"))
		}
		for _, d := range dirs {
			path := filepath.Join(d, base)
			if info, err := os.Stat(path); err == nil && info.Mode().IsRegular() {
				return path, nil
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
		return "", fmt.Errorf("no %s in %s; build it with 'make build' or set KILN_WATCHDOG_DIR", base, strings.Join(dirs, ", "))
	}
}

// baseSource assembles runtime bases from the recipes compiled into kiln.
type baseSource struct {
	fetcher *debian.Fetcher
}

func newBaseSource(getenv func(string) string, store *cache.Store) (*baseSource, error) {
	f, err := NewFetcher(getenv, store.Dir())
	if err != nil {
		return nil, err
	}
	return &baseSource{fetcher: f}, nil
}

// Base implements builder.BaseSource. Bases keep the epoch 0 whatever
// SOURCE_DATE_EPOCH says: their content is pinned, and so every function
// shares their layers. Added packages are resolved against the mirror's
// signed indexes as they are now.
func (s *baseSource) Base(ctx context.Context, name string, p v1.Platform, packages []string) (*builder.Base, error) {
	r, err := bases.Lookup(name)
	if err != nil {
		return nil, err
	}
	var opts []bases.Option
	if len(packages) > 0 {
		extra, err := bases.Extend(ctx, r, p.Architecture, packages, s.fetcher)
		if err != nil {
			return nil, err
		}
		opts = append(opts, bases.WithExtraPackages(extra))
	}
	b, err := bases.Assemble(ctx, r, p.Architecture, s.fetcher, opts...)
	if err != nil {
		return nil, err
	}
	return &builder.Base{Name: b.Name, Steps: b.Steps, Config: b.Config}, nil
}

// NewFetcher makes the Debian package fetcher, with the mirrors
// $KILN_DEBIAN_MIRROR and $KILN_DEBIAN_SECURITY_MIRROR when getenv sets
// them, keeping its downloads in cacheDir.
func NewFetcher(getenv func(string) string, cacheDir string, opts ...debian.Option) (*debian.Fetcher, error) {
	if m := getenv("KILN_DEBIAN_MIRROR"); m != "" {
		opts = append(opts, debian.WithMirror(m))
	}
	if m := getenv("KILN_DEBIAN_SECURITY_MIRROR"); m != "" {
		opts = append(opts, debian.WithSecurityMirror(m))
	}
	return debian.NewFetcher(cacheDir, opts...)
}
