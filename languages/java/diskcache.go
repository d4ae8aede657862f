package java

import (
	"context"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// cached returns the directory of the pack's step output for key, an entry
// of kind cache.JavaOutputs (java/<step>/<key> in kiln's cache, or in
// fn.Trees), making it with fill on a miss; the store renames fill's directory into place only
// when it succeeds, so concurrent builds and interrupted ones never see
// half a result. With fn.NoCache the result is made afresh in the build's
// scratch folder, which leaves the cache as it is for builds that read it
// meanwhile.
func (b *build) cached(ctx context.Context, step string, key v1.Hash, fill func(dir string) error) (string, error) {
	if b.fn.NoCache {
		dir, err := os.MkdirTemp(b.fn.ScratchDir, step+"-")
		if err != nil {
			return "", fmt.Errorf("making the java scratch folder: %w", err)
		}
		return dir, fill(dir)
	}
	trees := b.fn.Trees
	if trees == nil {
		store, err := cache.Open(b.cache)
		if err != nil {
			return "", err
		}
		trees = store
	}
	l, err := trees.Tree(ctx, cache.JavaOutputs, step+"/"+key.Hex, fill)
	if err != nil {
		return "", err
	}
	// The build reads the entry until the image is made, later than this
	// returns: its last use, stamped now, keeps Prune off it meanwhile.
	l.Close()
	return l.Path, nil
}
