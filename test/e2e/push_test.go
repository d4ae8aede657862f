//go:build e2e

package e2e

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/test/registrytest"
)

// TestPushAndRebuild builds and pushes the Go samples with a cold kiln
// cache, then proves from the registry's access log that a rebuild without
// changes uploads nothing and that a one-line handler edit uploads exactly
// the handler's layer and the config, under one manifest.
func TestPushAndRebuild(t *testing.T) {
	tests := []struct {
		name     string
		sample   string
		lang     string
		layers   []string // layer names, bottom first, above the base
		old, new string   // the one-line edit of handler.go
	}{
		{
			name:   "golang-middleware with static files",
			sample: goHello,
			lang:   "golang-middleware",
			layers: []string{"watchdog", "handler binary", "static files"},
			old:    `fmt.Fprintf(w, "Hello from kiln")`,
			new:    `fmt.Fprintf(w, "Hello again from kiln")`,
		},
		{
			name:   "golang-middleware with a module dependency",
			sample: goDeps,
			lang:   "golang-middleware",
			layers: []string{"watchdog", "handler binary"},
			old:    `fmt.Fprintln(w, "slow done")`,
			new:    `fmt.Fprintln(w, "slow finished")`,
		},
	}
	reg := startRegistry(t)
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copySample(t, tc.sample)
			o := kilnOpts{cache: t.TempDir()}
			repo := "e2e/" + tc.sample
			image := reg.Host + "/" + repo + ":v1"
			args := []string{dir, "--lang", tc.lang, "--image", image, "--push"}

			// Cold: every layer is built and uploaded.
			mark := reg.Mark()
			first := buildJSON(t, o, args...)
			reqs := requestsSince(t, reg, mark)
			if first.Output != "registry" {
				t.Errorf("kiln build --json output = %q, want %q", first.Output, "registry")
			}
			names := layerNames(first.Layers)
			if !isSuffix(names, tc.layers) {
				t.Errorf("kiln build layers = %v, want them to end with %v", names, tc.layers)
			}
			for _, l := range first.Layers {
				if l.Cached {
					t.Errorf("cold build: layer %q cached = true, want false (empty cache)", l.Name)
				}
			}
			m, err := reg.Manifest(ctx, repo, "v1")
			if err != nil {
				t.Fatal(err)
			}
			if m.Digest != first.Digest {
				t.Errorf("registry digest of %s = %s, want the printed %s", image, m.Digest, first.Digest)
			}
			if got, want := manifestLayerDigests(m), reportDigests(first.Layers); !slices.Equal(got, want) {
				t.Errorf("manifest layers = %v, want the reported %v", got, want)
			}
			wantUploads := append(manifestLayerDigests(m), m.Config.Digest)
			if got := registrytest.BlobUploads(reqs); !sameSet(got, wantUploads) {
				t.Errorf("cold push: blob uploads = %v, want every layer and the config %v\n%s", got, wantUploads, registrytest.Summary(reqs))
			}
			if got, want := registrytest.ManifestPuts(reqs), []string{repo + ":v1"}; !slices.Equal(got, want) {
				t.Errorf("cold push: manifest puts = %v, want %v", got, want)
			}
			validateRemote(t, first.Image)

			// No change: same digest, everything cached, nothing uploaded.
			mark = reg.Mark()
			again := buildJSON(t, o, args...)
			reqs = requestsSince(t, reg, mark)
			if again.Digest != first.Digest {
				t.Errorf("no-change rebuild digest = %s, want %s", again.Digest, first.Digest)
			}
			for _, l := range again.Layers {
				if !l.Cached {
					t.Errorf("no-change rebuild: layer %q cached = false, want true", l.Name)
				}
			}
			if got := registrytest.BlobUploads(reqs); len(got) != 0 {
				t.Errorf("no-change push: blob uploads = %v, want none\n%s", got, registrytest.Summary(reqs))
			}
			if got := registrytest.ManifestPuts(reqs); len(got) != 0 {
				t.Errorf("no-change push: manifest puts = %v, want none", got)
			}

			// One-line edit: one layer and the config go up, one manifest.
			editFile(t, dir, "handler.go", tc.old, tc.new)
			mark = reg.Mark()
			edited := buildJSON(t, o, args...)
			reqs = requestsSince(t, reg, mark)
			if edited.Digest == first.Digest {
				t.Fatalf("edited rebuild digest = %s, want a new one", edited.Digest)
			}
			for i, l := range edited.Layers {
				changed := l.Name == "handler binary"
				if l.Cached == changed {
					t.Errorf("edited rebuild: layer %q cached = %v, want %v", l.Name, l.Cached, !changed)
				}
				if sameDigest := l.Digest == first.Layers[i].Digest; sameDigest == changed {
					t.Errorf("edited rebuild: layer %q digest %s, was %s; want changed = %v", l.Name, l.Digest, first.Layers[i].Digest, changed)
				}
			}
			m2, err := reg.Manifest(ctx, repo, "v1")
			if err != nil {
				t.Fatal(err)
			}
			if m2.Digest != edited.Digest {
				t.Errorf("registry digest of %s = %s, want the printed %s", image, m2.Digest, edited.Digest)
			}
			wantUploads = []string{edited.layer(t, "handler binary").Digest, m2.Config.Digest}
			if got := registrytest.BlobUploads(reqs); !sameSet(got, wantUploads) {
				t.Errorf("edit push: blob uploads = %v, want exactly the handler layer and the config %v\n%s", got, wantUploads, registrytest.Summary(reqs))
			}
			if got, want := registrytest.ManifestPuts(reqs), []string{repo + ":v1"}; !slices.Equal(got, want) {
				t.Errorf("edit push: manifest puts = %v, want %v", got, want)
			}
			validateRemote(t, edited.Image)
		})
	}
}

// validateRemote pulls ref and checks every blob against its digest with
// go-containerregistry's validate.Image.
func validateRemote(t *testing.T, ref string) {
	t.Helper()
	if err := validate.Image(remoteImage(t, ref)); err != nil {
		t.Errorf("validate.Image(%s) = %v, want nil", ref, err)
	}
}

func layerNames(ls []layerReport) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return out
}

func reportDigests(ls []layerReport) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Digest)
	}
	return out
}

func manifestLayerDigests(m *registrytest.Manifest) []string {
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// sameSet reports whether a and b hold the same strings, each once.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b) && len(slices.Compact(a)) == len(b)
}

func isSuffix(s, suffix []string) bool {
	return len(s) >= len(suffix) && slices.Equal(s[len(s)-len(suffix):], suffix)
}

// registryStatus is a helper for messages: HEAD of repo:tag.
func registryStatus(t *testing.T, reg *registrytest.Registry, repo, tag string) (int, string) {
	t.Helper()
	status, digest, err := reg.ManifestDigest(context.Background(), repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return status, digest
}

// pushed checks that repo:tag is in the registry with digest.
func pushed(t *testing.T, reg *registrytest.Registry, repo, tag, digest string) {
	t.Helper()
	status, got := registryStatus(t, reg, repo, tag)
	if status != http.StatusOK || got != digest {
		t.Errorf("HEAD /v2/%s/manifests/%s = %d %s, want 200 %s", repo, tag, status, got, digest)
	}
}

// digestOf returns the digest of a NAME@sha256:... line.
func digestOf(t *testing.T, line string) string {
	t.Helper()
	_, d, ok := strings.Cut(strings.TrimSpace(line), "@")
	if !ok || !strings.HasPrefix(d, "sha256:") || len(d) != len("sha256:")+64 {
		t.Fatalf("kiln build printed %q, want NAME@sha256:DIGEST", line)
	}
	return d
}
