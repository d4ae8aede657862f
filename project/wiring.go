package project

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/runtime-images/bases"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// newBuilder wires the language packs, runtime bases and watchdog into a
// builder that keeps its layers in layers; the packs and the bases keep
// their own files in store.
func newBuilder(getenv func(string) string, toolEnv []string, store *cache.Store, layers builder.Cache, extra ...builder.Option) (*builder.Builder, error) {
	f, err := NewFetcher(getenv, store.Dir())
	if err != nil {
		return nil, err
	}
	src, err := bases.NewSource(f)
	if err != nil {
		return nil, err
	}
	all, err := packs.New(packs.WithEnv(toolEnv), packs.WithCacheDir(store.Dir()), packs.WithDebian(src),
		packs.WithGradle(getenv("KILN_GRADLE")), packs.WithNpmRegistry(getenv("KILN_NPM_REGISTRY")))
	if err != nil {
		return nil, err
	}
	opts := []builder.Option{builder.WithBases(src), builder.WithWatchdog(watchdogFinder(getenv))}
	for _, p := range all {
		opts = append(opts, builder.WithPack(p))
	}
	return builder.New(layers, append(opts, extra...)...)
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
