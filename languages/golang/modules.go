package golang

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// modules returns the environment that points go at a module cache
// holding the function's modules, kept in fn.Trees by what pins them
// (go.mod and go.sum, the handler's and those its replaces name, and the
// go version), when the builder shares its caches with other machines
// (--cache-repo): a fresh machine then compiles the handler without
// downloading its modules again. go mod download fills it in dir, where
// go build runs, with env. Nil without fn.Trees, vendored modules or a
// go.sum: go's own module cache serves, as it always did.
func (s *binaryStep) modules(ctx context.Context, dir string, env []string) ([]string, error) {
	if s.fn.Trees == nil || strings.Contains(s.fn.BuildArgs["GOFLAGS"], "-mod=vendor") {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(s.fn.Dir, "vendor")); err == nil {
		return nil, nil
	}
	sum := filepath.Join(s.fn.Dir, "go.sum")
	if info, err := os.Stat(sum); err != nil || info.Size() == 0 {
		return nil, nil
	}
	goVersion, err := s.goVersion.Get(ctx)
	if err != nil {
		return nil, err
	}
	// GOPROXY is not an input: go.sum pins what any proxy serves.
	k := layers.NewKey("golang/modules/v1").String(goVersion).String(s.layout.String())
	for _, name := range []string{"go.mod", "go.sum"} {
		if err := k.File(filepath.Join(s.fn.Dir, name)); err != nil {
			return nil, fmt.Errorf("hashing %s: %w", name, err)
		}
	}
	replaced, err := replacedFiles(s.replaced)
	if err != nil {
		return nil, err
	}
	replaced = slices.DeleteFunc(replaced, func(f layers.File) bool {
		base := path.Base(f.Path)
		return base != "go.mod" && base != "go.sum"
	})
	if err := k.Files(replaced); err != nil {
		return nil, fmt.Errorf("hashing what go.mod replaces: %w", err)
	}
	// Writable, so that the cache can remove the folder; the binary does
	// not change.
	flags := "GOFLAGS=-modcacherw " + s.fn.BuildArgs["GOFLAGS"]
	l, err := s.fn.Trees.Tree(ctx, cache.GoModules, k.Sum().Hex, func(modcache string) error {
		cmd := exec.CommandContext(ctx, s.pack.opts.goBin, "mod", "download")
		cmd.Dir = dir
		cmd.Env = append(slices.Clone(env), "GOMODCACHE="+modcache, flags)
		st := step.Start(ctx, "go mod download")
		out, err := cmd.CombinedOutput()
		st.End(err)
		if err != nil {
			return &languages.SourceError{Path: filepath.Join(s.fn.Dir, "go.mod"), Reason: "go mod download failed", Detail: strings.TrimSpace(string(out))}
		}
		// go's own download cache of the proxy's answers (zips, lists)
		// duplicates the modules: only what the build reads is kept.
		return removeDownloads(modcache)
	})
	if err != nil {
		return nil, err
	}
	// The build reads it until the binary is made, later than this
	// returns: its last use, stamped now, keeps Prune off it meanwhile.
	l.Close()
	return []string{"GOMODCACHE=" + l.Path, flags}, nil
}

// removeDownloads removes the zips of cache/download, which go build does
// not read once the modules are extracted, keeping the .mod, .info and
// .ziphash files it checks against go.sum.
func removeDownloads(modcache string) error {
	return filepath.WalkDir(filepath.Join(modcache, "cache", "download"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".zip") || strings.HasSuffix(p, ".lock")) {
			return os.Remove(p)
		}
		return nil
	})
}
