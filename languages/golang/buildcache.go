package golang

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/fileutil"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/layers"
)

// buildCache returns the environment that gives go build and go test a
// warm build cache when the builder shares its caches with other
// machines (--cache-repo) and go's own build cache is empty, as on a
// fresh pod, where a one-line edit would compile the standard library and
// every module again (40 s for net/http on two cores, 65 s more for the
// tests). A machine whose own cache has been used keeps using it: it is
// warmer than any shared one, and making a shared one compiles every
// package again. The cache is
// kept in fn.Trees by what decides which packages are compiled and how
// (go version, lang and layout, target and GOFLAGS, go.mod and go.sum);
// on a miss it is made by compiling the function in dir with env, and
// its tests with warmTests, whose failures the build proper reports. go
// writes to its cache, so the build gets a copy, of hard links where it
// can. Nil without fn.Trees or with a used cache of go's own: that one
// serves, as it always did.
func (s *binaryStep) buildCache(ctx context.Context, dir string, env []string, warmTests func(gocache []string)) ([]string, error) {
	if s.fn.Trees == nil {
		return nil, nil
	}
	own, err := s.pack.goEnv(ctx, "GOCACHE")
	if err != nil {
		return nil, err
	}
	// go writes trim.txt into its cache on the first build.
	if _, err := os.Stat(filepath.Join(own, "trim.txt")); err == nil {
		return nil, nil
	}
	goVersion, err := s.goVersion.Get(ctx)
	if err != nil {
		return nil, err
	}
	// The handler's own sources are no input: go's cache is addressed by
	// content, so any cache is right, and one of the same dependencies is
	// warm.
	k := layers.NewKey("golang/build-cache/v1").String(goVersion).String(s.fn.Lang).String(s.layout.String()).
		Strings(s.buildEnv()...).String(fmt.Sprint(s.testsEnabled())).String(string(shims[s.layout]))
	for _, name := range []string{"go.mod", "go.sum"} {
		k.String(name)
		if err := k.File(filepath.Join(s.fn.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("hashing %s: %w", name, err)
		}
	}
	l, err := s.fn.Trees.Tree(ctx, cache.GoBuildCaches, k.Sum().Hex, func(gocache string) error {
		warm := step.Start(ctx, "warm the go build cache")
		cmd := exec.CommandContext(ctx, s.pack.opts.goBin, "build", "-trimpath", "-buildvcs=false", "-o", os.DevNull, ".")
		cmd.Dir = dir
		cmd.Env = append(slices.Clone(env), "GOCACHE="+gocache)
		// A compile error is the build proper's to report, with the
		// handler's paths.
		_ = cmd.Run()
		warmTests([]string{"GOCACHE=" + gocache})
		warm.End(nil)
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	gocache := filepath.Join(s.fn.ScratchDir, "gocache")
	if err := linkTree(l.Path, gocache); err != nil {
		return nil, fmt.Errorf("copying the go build cache: %w", err)
	}
	return []string{"GOCACHE=" + gocache}, nil
}

// linkTree copies the tree src to dst, hard-linking its files where the
// file system allows: go only adds files to its cache, and replaces them
// by renames.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case !d.Type().IsRegular():
			return nil
		}
		if os.Link(p, target) == nil {
			return nil
		}
		return fileutil.CopyNew(p, target)
	})
}
