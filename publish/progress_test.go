package publish

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/kiln-build/kiln/internal/step"
)

// TestReporting publishes an image twice to each kind of sink and checks
// the step's end: every layer and its bytes the first time, none the
// second, and the digest unchanged by the counting.
func TestReporting(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	img, err := random.Image(2048, 3)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		n, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		size += n
	}
	ref, err := ParseReference(strings.TrimPrefix(srv.URL, "http://")+"/fn:v1", nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  Publisher
	}{
		{"registry", NewRegistry()},
		{"layout", NewLayout(filepath.Join(t.TempDir(), "oci"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i, want := range []step.Event{
				{Step: "push", State: step.Done, Count: 3, Unit: "layer", Bytes: size},
				{Step: "push", State: step.Done, Count: 0, Unit: "layer", Bytes: 0},
			} {
				var mu sync.Mutex
				var done []step.Event
				ctx := step.WithSink(context.Background(), func(e step.Event) {
					mu.Lock()
					defer mu.Unlock()
					if e.State == step.Done || e.State == step.Failed {
						e.ID, e.Took = 0, 0
						done = append(done, e)
					}
				})
				d, err := Reporting(tc.pub, "push").Publish(ctx, img, ref)
				if err != nil {
					t.Fatalf("publish %d: %v", i, err)
				}
				if d.DigestStr() != mustDigest(t, img).String() {
					t.Errorf("publish %d: digest %s, want %s", i, d.DigestStr(), mustDigest(t, img))
				}
				if len(done) != 1 || done[0] != want {
					t.Errorf("publish %d: step ends = %+v, want %+v", i, done, want)
				}
			}
		})
	}
}
