package executorimage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
)

// Built is one executor image.
type Built struct {
	// Name is the image's name in Names, its tag when pushed.
	Name   string
	Image  v1.Image
	Layers []builder.LayerReport
	// Took is how long the image took, its layers built or found.
	Took time.Duration
}

// Build builds the named images (every one when names is empty) for
// platform, their layers through store: a layer two images share is built
// once, and one built by an earlier run is reused.
func Build(ctx context.Context, store *cache.Store, src *Source, platform v1.Platform, names []string) ([]Built, error) {
	if len(names) == 0 {
		names = Names
	}
	for _, n := range names {
		if !slices.Contains(Names, n) {
			return nil, fmt.Errorf("no executor image %q (known: %s)", n, strings.Join(Names, ", "))
		}
	}
	b, err := builder.New(store, builder.WithBases(src), builder.WithWatchdog(noWatchdog))
	if err != nil {
		return nil, err
	}
	out := make([]Built, 0, len(names))
	for _, n := range names {
		start := time.Now()
		res, err := b.BuildBase(ctx, n, platform)
		if err != nil {
			return nil, fmt.Errorf("building the executor image %s: %w", n, err)
		}
		out = append(out, Built{Name: n, Image: res.Image, Layers: res.Layers, Took: time.Since(start)})
	}
	return out, nil
}

// noWatchdog is the builder's watchdog source: executor images have none.
func noWatchdog(v1.Platform) (string, error) {
	return "", errors.New("executor images have no watchdog")
}
