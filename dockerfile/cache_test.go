package dockerfile

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
)

// writeContext writes files into a new build context.
func writeContext(t *testing.T, files map[string]string) string {
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
COPY input.txt /input.txt
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
