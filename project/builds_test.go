package project

import (
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/gateway"
)

func TestBuildInfo(t *testing.T) {
	img, err := random.Image(100, 3)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	base, cached, rebuilt := m.Layers[0], m.Layers[1], m.Layers[2]
	for _, tc := range []struct {
		name    string
		reports []builder.LayerReport
		want    []gateway.BuildLayer
	}{{
		name: "a Dockerfile's build reports no layers",
		want: []gateway.BuildLayer{
			{Digest: base.Digest.String(), Size: base.Size},
			{Digest: cached.Digest.String(), Size: cached.Size},
			{Digest: rebuilt.Digest.String(), Size: rebuilt.Size},
		},
	}, {
		name: "a pack's build: base layers unreported, one step cached, one rebuilt",
		reports: []builder.LayerReport{
			{Name: "deps", Digest: cached.Digest, Size: cached.Size, Cached: true, Duration: time.Millisecond},
			{Name: "handler", Digest: rebuilt.Digest, Size: rebuilt.Size, Duration: 2 * time.Second},
		},
		want: []gateway.BuildLayer{
			{Digest: base.Digest.String(), Size: base.Size},
			{Name: "deps", Digest: cached.Digest.String(), Size: cached.Size},
			{Name: "handler", Digest: rebuilt.Digest.String(), Size: rebuilt.Size, Rebuilt: true, Took: 2 * time.Second},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			info := buildInfo("example.com/fn@sha256:abc", "sha256:abc", img, tc.reports, time.Second)
			if len(info.Layers) != len(tc.want) {
				t.Fatalf("buildInfo() layers = %+v, want %+v", info.Layers, tc.want)
			}
			for i := range tc.want {
				if info.Layers[i] != tc.want[i] {
					t.Errorf("buildInfo() layer %d = %+v, want %+v", i, info.Layers[i], tc.want[i])
				}
			}
			if info.Image != "example.com/fn@sha256:abc" || info.Took != time.Second || info.At.IsZero() {
				t.Errorf("buildInfo() = %+v, want the ref, the time taken and when", info)
			}
		})
	}
}

// TestBuildBookAttach: builds made before the gateway starts (kiln up
// --local) reach it when it does; later events go straight to it.
func TestBuildBookAttach(t *testing.T) {
	var b buildBook
	b.record(gateway.BuildEvent{Function: "fn", Kind: gateway.BuildStarted})
	b.record(gateway.BuildEvent{Function: "fn", Kind: gateway.BuildDone, Build: &gateway.BuildInfo{Image: "fn@sha256:1"}})
	g := gateway.New(nil)
	defer g.Close()
	b.attach(g)
	if got := g.LastBuilds()["fn"].Image; got != "fn@sha256:1" {
		t.Errorf("after attach, LastBuilds()[fn].Image = %q, want fn@sha256:1", got)
	}
	b.record(gateway.BuildEvent{Function: "fn", Kind: gateway.BuildFailed, Err: "syntax error"})
	recent, _, stop := g.FollowBuilds()
	stop()
	var kinds []string
	for _, e := range recent {
		kinds = append(kinds, e.Kind)
	}
	if want := []string{gateway.BuildDone, gateway.BuildFailed}; len(kinds) != 2 || kinds[0] != want[0] || kinds[1] != want[1] {
		t.Errorf("the gateway's events = %v, want %v", kinds, want)
	}
}
