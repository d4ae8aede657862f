package dockerfile

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/step"
)

// writeContext writes files into a new build context.
func writeContext(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func buildDigest(t *testing.T, opts Options) v1.Hash {
	t.Helper()
	img, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const cacheDockerfile = `FROM scratch AS build
ARG VERSION=1
RUN echo compiled > /app
COPY . /src/
RUN echo tested > /tested

FROM scratch
COPY --from=build /app /app
RUN echo packaged > /packaged
`

// TestCacheSteps counts the RUNs of a rebuild after each kind of change.
func TestCacheSteps(t *testing.T) {
	tests := []struct {
		name string
		// change edits the context or the options of the second build.
		change   func(t *testing.T, dir string, opts *Options)
		wantRuns int
		sameImg  bool
	}{
		{
			name:     "unchanged rebuild runs nothing",
			change:   func(t *testing.T, dir string, opts *Options) {},
			wantRuns: 0,
			sameImg:  true,
		},
		{
			// The first RUN and the final stage hit; the RUN after the
			// COPY runs again. The final stage does not hold the file.
			name: "an edit of a copied file rebuilds from that step",
			change: func(t *testing.T, dir string, opts *Options) {
				if err := os.WriteFile(filepath.Join(dir, "input.txt"), []byte("edited\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantRuns: 1,
			sameImg:  true,
		},
		{
			name: "another target reuses the stages' steps",
			change: func(t *testing.T, dir string, opts *Options) {
				opts.Target = "build"
			},
			wantRuns: 0,
		},
		{
			// Both RUNs of the build stage see VERSION and run again; the
			// first writes the same bytes, so the final stage's COPY
			// --from and its RUN hit.
			name: "a RUN with identical output lets the next steps hit",
			change: func(t *testing.T, dir string, opts *Options) {
				opts.BuildArgs["VERSION"] = "2"
			},
			wantRuns: 2,
			sameImg:  true,
		},
		{
			name: "no cache runs everything",
			change: func(t *testing.T, dir string, opts *Options) {
				opts.NoCache = true
			},
			wantRuns: 3,
			sameImg:  true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeContext(t, map[string]string{"Dockerfile": cacheDockerfile, "input.txt": "input\n"})
			first := &fakeRunner{}
			opts := testOptions(t, dir, testCase{}, first)
			d1 := buildDigest(t, opts)
			if got := first.runs(); got != 3 {
				t.Fatalf("first build ran %d RUNs, want 3", got)
			}
			second := &fakeRunner{}
			opts.Runner = second
			tc.change(t, dir, &opts)
			d2 := buildDigest(t, opts)
			if got := second.runs(); got != tc.wantRuns {
				t.Errorf("second build ran %d RUNs, want %d: %v", got, tc.wantRuns, second.specs)
			}
			if (d1 == d2) != tc.sameImg {
				t.Errorf("digests %s and %s: same = %v, want %v", d1, d2, d1 == d2, tc.sameImg)
			}
		})
	}
}

// TestCacheDirsAgree builds one Dockerfile with two cache directories.
func TestCacheDirsAgree(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": cacheDockerfile, "input.txt": "input\n"})
	var digests []v1.Hash
	for range 2 {
		opts := testOptions(t, dir, testCase{}, &fakeRunner{})
		store, err := cache.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		opts.Cache = store
		digests = append(digests, buildDigest(t, opts))
	}
	if digests[0] != digests[1] {
		t.Errorf("Build() with two cache dirs = %s and %s, want one digest", digests[0], digests[1])
	}
}

// countingBases counts how often the layers of the images it resolves are
// read.
type countingBases struct {
	fakeBases
	reads atomic.Int32
}

func (b *countingBases) Resolve(ctx context.Context, ref string, platform v1.Platform) (v1.Image, error) {
	img, err := b.fakeBases.Resolve(ctx, ref, platform)
	if err != nil {
		return nil, err
	}
	return &countingImage{Image: img, reads: &b.reads}, nil
}

type countingImage struct {
	v1.Image
	reads *atomic.Int32
}

func (i *countingImage) Layers() ([]v1.Layer, error) {
	ls, err := i.Image.Layers()
	for n, l := range ls {
		ls[n] = &countingLayer{Layer: l, reads: i.reads}
	}
	return ls, err
}

type countingLayer struct {
	v1.Layer
	reads *atomic.Int32
}

func (l *countingLayer) Uncompressed() (io.ReadCloser, error) {
	l.reads.Add(1)
	return l.Layer.Uncompressed()
}

// TestRebuildReadsNoLayer rebuilds a Dockerfile whose steps read the
// base's files (a WORKDIR, a --chown by name, a COPY --from an image):
// the second build finds every step by key and reads no layer.
func TestRebuildReadsNoLayer(t *testing.T) {
	dir := writeContext(t, map[string]string{
		"Dockerfile": "FROM example/tools:1\nWORKDIR /w\nCOPY --chown=app x.txt .\nCOPY --from=example/tools:1 /usr/bin/tool /tool\n",
		"x.txt":      "x\n",
	})
	bases := &countingBases{fakeBases: fakeBases{"example/tools:1": {Files: map[string]string{
		"usr/bin/tool": "tool",
		"etc/passwd":   "app:x:10:10::/:/bin/sh\n",
	}}}}
	opts := testOptions(t, dir, testCase{}, &fakeRunner{})
	opts.Bases = bases
	d1 := buildDigest(t, opts)
	if bases.reads.Load() == 0 {
		t.Fatal("the first build read no layer of the image")
	}
	bases.reads.Store(0)
	if d2 := buildDigest(t, opts); d2 != d1 {
		t.Errorf("rebuild = %s, want %s", d2, d1)
	}
	if got := bases.reads.Load(); got != 0 {
		t.Errorf("the rebuild read the image's layers %d times, want 0", got)
	}
}

// BenchmarkUnchangedRebuild measures a rebuild that hits every step: the
// engine's own overhead, hashing a context of 500 files of 4 KiB.
func BenchmarkUnchangedRebuild(b *testing.B) {
	files := map[string]string{"Dockerfile": cacheDockerfile, "input.txt": "input\n"}
	for i := range 500 {
		files[fmt.Sprintf("src/%03d/file.txt", i)] = strings.Repeat("x", 4096)
	}
	dir := writeContext(b, files)
	store, err := cache.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{Context: dir, Cache: store, Runner: &fakeRunner{}, BuildArgs: map[string]string{}}
	if _, err := Build(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Build(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStepEvents reports each layer step of a rebuild as cached, by the
// name of its instruction.
func TestStepEvents(t *testing.T) {
	dir := writeContext(t, map[string]string{"Dockerfile": cacheDockerfile, "input.txt": "input\n"})
	opts := testOptions(t, dir, testCase{}, &fakeRunner{})
	if _, err := Build(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	done := map[string]bool{}
	ctx := step.WithSink(context.Background(), func(e step.Event) {
		if e.State == step.Done {
			mu.Lock()
			done[e.Step] = e.Cached
			mu.Unlock()
		}
	})
	if _, err := Build(ctx, opts); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"RUN echo compiled > /app": true, "COPY . /src/": true, "RUN echo tested > /tested": true,
		"COPY /app /app": true, "RUN echo packaged > /packaged": true,
	}
	if diff := cmp.Diff(want, done); diff != "" {
		t.Errorf("steps done and cached (-want +got):\n%s", diff)
	}
}
