package bases

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// packageStep builds the layer of one pinned package: its files without
// documentation or what the recipe drops, its status.d entry, and what its
// hooks generate, which replaces what the package ships at those paths.
type packageStep struct {
	base  string
	pkg   debian.Package
	drop  []string
	hooks []hook
	// merged lists the top-level directories moved into /usr (mergeUsr);
	// none when the base's /usr is not merged.
	merged []string
	dl     Fetcher
	epoch  time.Time
}

var _ layers.Step = (*packageStep)(nil)

func (s *packageStep) Name() string { return s.base + ": " + s.pkg.String() }

// Key covers the pinned file (its SHA256 decides every byte extracted
// from it), how it is extracted and filtered, the hooks and the epoch. The
// base's name and architecture are left out on purpose: an
// Architecture: all package gives one layer shared by every base.
func (s *packageStep) Key(ctx context.Context) (v1.Hash, error) {
	k := layers.NewKey("kiln/base/debian-package/v1").
		String(debian.ExtractVersion).
		Strings(s.pkg.Name, s.pkg.Version, s.pkg.Architecture, s.pkg.Filename, strconv.FormatInt(s.pkg.Size, 10), s.pkg.SHA256).
		Strings(s.drop...).
		String(s.epoch.Format(time.RFC3339Nano))
	if len(s.merged) > 0 {
		k.String("merged-usr/v1").Strings(s.merged...)
	}
	for _, h := range s.hooks {
		k.String(h.id)
	}
	return k.Sum(), nil
}

func (s *packageStep) Build(ctx context.Context, w io.Writer) error {
	deb, err := s.dl.Download(ctx, s.pkg)
	if err != nil {
		return fmt.Errorf("building the layer of %s: %w", s.pkg, err)
	}
	dir, err := os.MkdirTemp("", "kiln-deb-")
	if err != nil {
		return fmt.Errorf("building the layer of %s: %w", s.pkg, err)
	}
	defer os.RemoveAll(dir)
	c, err := debian.Extract(ctx, deb, dir)
	if err != nil {
		return fmt.Errorf("building the layer of %s: %w", s.pkg, err)
	}
	if c.Package != s.pkg.Name || c.Version != s.pkg.Version {
		return fmt.Errorf("building the layer of %s: the file holds %s %s", s.pkg, c.Package, c.Version)
	}
	all := c.Files
	if len(s.merged) > 0 {
		all = mergeUsr(all, s.merged)
	}
	var generated []layers.File
	for _, h := range s.hooks {
		g, err := h.run(all)
		if err != nil {
			return fmt.Errorf("building the layer of %s: %s: %w", s.pkg, h.id, err)
		}
		generated = append(generated, g...)
	}
	files := replaceFiles(dropPaths(all, s.drop), generated)
	return layers.WriteTar(w, files, layers.WithEpoch(s.epoch))
}

// dropPaths returns files without those whose path, or one of whose parent
// directories, matches a pattern. Patterns are checked when the recipe is
// read.
func dropPaths(files []layers.File, patterns []string) []layers.File {
	if len(patterns) == 0 {
		return files
	}
	out := make([]layers.File, 0, len(files))
	for _, f := range files {
		if !dropped(f.Path, patterns) {
			out = append(out, f)
		}
	}
	return out
}

func dropped(p string, patterns []string) bool {
	for q := p; q != "." && q != "/" && q != ""; q = path.Dir(q) {
		for _, pattern := range patterns {
			if ok, _ := path.Match(pattern, q); ok {
				return true
			}
		}
	}
	return false
}

// hook generates files from a package's contents (its paths as in the
// image: under /usr when the base merges it), as its maintainer scripts
// would on a real system. id names the hook and its version in step keys.
type hook struct {
	id  string
	run func(files []layers.File) ([]layers.File, error)
}

// hooksFor returns the hooks of a package in a recipe's base.
func hooksFor(pkg string, r *Recipe) []hook {
	switch pkg {
	case "ca-certificates":
		local, localID := localCAFiles(r.LocalCAs)
		hooks := []hook{{id: "ca-bundle/v1" + localID, run: func(files []layers.File) ([]layers.File, error) {
			bundle, err := caBundle(slices.Concat(files, local))
			if err != nil {
				return nil, err
			}
			return append([]layers.File{layers.Bytes(CABundle[1:], fileMode, bundle)}, local...), nil
		}}}
		if store := r.JavaTrustStore; store != "" {
			hooks = append(hooks, hook{id: "java-truststore/v1 " + store + localID, run: func(files []layers.File) ([]layers.File, error) {
				jks, err := javaTrustStore(slices.Concat(files, local))
				if err != nil {
					return nil, err
				}
				return []layers.File{layers.Bytes(store, fileMode, jks)}, nil
			}})
		}
		return hooks
	default:
		if r.Configure {
			return configureHooks(pkg, r)
		}
		return nil
	}
}
