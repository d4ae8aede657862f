package run

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-build/kiln/imagestore"

	"github.com/google/go-cmp/cmp"
)

// firstWrite closes started on the first byte written to it.
type firstWrite struct {
	once    sync.Once
	started chan struct{}
}

func (w *firstWrite) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	return len(p), nil
}

// TestStartTime measures how long Image takes to start the entrypoint of each
// image in $KILN_RUN_BENCH (comma-separated references, run in order in one
// cache, so the later ones find the earlier ones' layers), up to the first
// byte the entrypoint writes. A measurement, not a check: it runs only when
// asked, e.g.
//
//	KILN_RUN_BENCH=oci:/tmp/a,oci:/tmp/b go test -run TestStartTime -v ./run/
func TestStartTime(t *testing.T) {
	refs := os.Getenv("KILN_RUN_BENCH")
	if refs == "" {
		t.Skip("KILN_RUN_BENCH not set")
	}
	requireNamespaces(t)
	cache := t.TempDir()
	for _, ref := range strings.Split(refs, ",") {
		img, err := imagestore.Resolve(context.Background(), ref)
		if err != nil {
			t.Fatalf("Resolve(%s) = %v", ref, err)
		}
		l := listenLoopback(t)
		w := &firstWrite{started: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			done <- Image(ctx, img, WithCacheDir(cache), WithPublish(l, 8080), WithStdout(w), WithStderr(w),
				WithGracePeriod(2*time.Second), WithEnv([]string{"port=8080"}))
		}()
		select {
		case <-w.started:
			t.Logf("%s: entrypoint started in %d ms", ref, time.Since(start).Milliseconds())
		case err := <-done:
			t.Fatalf("Image(%s) = %v before any output", ref, err)
		case <-time.After(60 * time.Second):
			t.Fatalf("Image(%s): no output within 60 s", ref)
		}
		cancel()
		<-done
	}
}

// TestStackedViewOfImages checks, for each image in $KILN_RUN_BENCH, that
// the stacked layers show the same tree as the flattened image.
func TestStackedViewOfImages(t *testing.T) {
	refs := os.Getenv("KILN_RUN_BENCH")
	if refs == "" {
		t.Skip("KILN_RUN_BENCH not set")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting the stacked view needs root")
	}
	cache := t.TempDir()
	for _, ref := range strings.Split(refs, ",") {
		img, err := imagestore.Resolve(context.Background(), ref)
		if err != nil {
			t.Fatalf("Resolve(%s) = %v", ref, err)
		}
		got, err := unpackTree(t, stacked, img, cache)
		if err != nil {
			t.Fatalf("Unpack(%s) = %v", ref, err)
		}
		want, err := unpackTree(t, flat, img, cache)
		if err != nil {
			t.Fatalf("flatten(%s) = %v", ref, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: stacked tree mismatch (-flat +stacked):\n%s", ref, diff)
		} else {
			t.Logf("%s: %d paths, same view", ref, len(got))
		}
	}
}
