package project

import (
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/gateway"
)

// buildBook keeps each function's last good build and hands build events
// to the local gateway once there is one, for its console: kiln up
// --local builds before the gateway starts, kiln dev while it serves.
type buildBook struct {
	mu   sync.Mutex
	last map[string]gateway.BuildInfo
	to   *gateway.Gateway
}

// record records e, and hands it to the gateway if there is one.
func (b *buildBook) record(e gateway.BuildEvent) {
	e.At = time.Now().UTC()
	b.mu.Lock()
	defer b.mu.Unlock()
	if e.Kind == gateway.BuildDone && e.Build != nil {
		if b.last == nil {
			b.last = map[string]gateway.BuildInfo{}
		}
		b.last[e.Function] = *e.Build
	}
	if b.to != nil {
		b.to.RecordBuild(e)
	}
}

// attach hands the builds so far, then the next events, to g.
func (b *buildBook) attach(g *gateway.Gateway) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.to = g
	for name, info := range b.last {
		g.RecordBuild(gateway.BuildEvent{Function: name, Kind: gateway.BuildDone, At: info.At, Build: &info})
	}
}

// buildInfo describes the image ref built, its layers from its manifest
// (base ones included), marked rebuilt where the builder's reports say
// the layer did not come from the cache. A Dockerfile's build reports no
// layers: none is marked.
func buildInfo(ref, digest string, img v1.Image, reports []builder.LayerReport, took time.Duration) gateway.BuildInfo {
	info := gateway.BuildInfo{Image: ref, Digest: digest, At: time.Now().UTC(), Took: took}
	m, err := img.Manifest()
	if err != nil {
		return info // the image was just published: its manifest is known
	}
	byDigest := map[v1.Hash]builder.LayerReport{}
	for _, r := range reports {
		byDigest[r.Digest] = r
	}
	for _, l := range m.Layers {
		bl := gateway.BuildLayer{Digest: l.Digest.String(), Size: l.Size}
		if r, ok := byDigest[l.Digest]; ok {
			bl.Name, bl.Rebuilt = r.Name, !r.Cached
			if bl.Rebuilt {
				bl.Took = r.Duration
			}
		}
		info.Layers = append(info.Layers, bl)
	}
	return info
}
