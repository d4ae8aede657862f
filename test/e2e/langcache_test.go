//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/test/registrytest"
)

// TestLanguageCacheRepo builds a Go, a Node, a Python and a Java function
// with --cache-repo as three machines would: a cold build fills the
// repository; a build of a copy of the source in another folder with an
// empty cache dir (a fresh pod) takes every layer from it, runs no tool
// and gives the same digest; after a one-line edit, a third fresh pod
// builds only the handler's layer and sends the image's repository only
// that layer and the config. Then a read-only and an unreachable cache
// repository each cost one warning, not the build.
func TestLanguageCacheRepo(t *testing.T) {
	reg := startRegistry(t)
	tests := []struct {
		sample, lang string
		// env adds what the toolchain needs offline; need skips without it.
		env  func(t *testing.T) []string
		need []string
		// pod is added to the environment of the builds in fresh pods:
		// empty tool caches, and no proxy to prove they download nothing.
		pod func(t *testing.T) []string
		// file, old and new are the one-line edit; handler is the layer
		// it changes.
		file, old, new, handler string
	}{
		{sample: goHello, lang: "golang-middleware", need: []string{"go"}, pod: goPod,
			file: "handler.go", old: `"Hello from kiln")`, new: `"Hi from kiln")`, handler: "handler binary"},
		{sample: goDeps, lang: "golang-middleware", env: hostGoProxy, need: []string{"go"}, pod: goPod,
			file: "handler.go", old: `"uuid %s\n"`, new: `"UUID %s\n"`, handler: "handler binary"},
		{sample: nodeHello, lang: "node20", need: []string{"node", "npm"},
			file: "handler.js", old: "Hello from kiln", new: "Hello again from kiln", handler: "handler code"},
		{sample: pyHTTP, lang: "python3-http", env: pythonWheelhouse, need: []string{"python3"},
			file: "handler.py", old: `"created", "headers"`, new: `"made", "headers"`, handler: "handler code"},
		{sample: javaHello, lang: "java11", env: javaEnv,
			file: "src/main/java/com/openfaas/function/Handler.java", old: `"Hello, Java"`, new: `"Hi, Java"`, handler: "classes"},
	}
	for _, tc := range tests {
		t.Run(tc.sample, func(t *testing.T) {
			needBinaries(t, tc.need...)
			var env []string
			if tc.env != nil {
				env = tc.env(t)
			}
			cacheRepo := reg.Host + "/cache/" + tc.sample
			repo := "e2e/lc-" + tc.sample
			image := reg.Host + "/" + repo + ":v1"
			build := func(dir string, extra ...string) (buildReport, result, time.Duration) {
				t.Helper()
				start := time.Now()
				r := mustKiln(t, kilnOpts{cache: t.TempDir(), env: append(slices.Clone(env), extra...)}, "build", dir, "--lang", tc.lang, "--image", image, "--push",
					"--cache-repo", cacheRepo, "--progress", "plain", "--json")
				took := time.Since(start)
				if strings.Contains(r.stderr, "cache repository") {
					t.Errorf("warning about the cache repository:\n%s", r.stderr)
				}
				return parseBuildJSON(t, r), r, took
			}

			mark := reg.Mark()
			// The cold build is a pod too, with tool caches as empty, that
			// may download.
			coldPod := slices.DeleteFunc(podEnv(t, tc.pod), func(kv string) bool { return strings.HasPrefix(kv, "GOPROXY=") })
			cold, r, coldTook := build(copySample(t, tc.sample), coldPod...)
			coldRan := toolSteps(r.stderr, tc.sample)
			var toRepo int64
			for _, q := range requestsSince(t, reg, mark) {
				if to, d, ok := q.BlobUpload(); ok && to == "cache/"+tc.sample {
					toRepo += blobSize(t, reg.Host+"/"+to+"@"+d)
				}
			}
			warm, r, warmTook := build(copySample(t, tc.sample), podEnv(t, tc.pod)...)
			if warm.Digest != cold.Digest {
				t.Errorf("fresh pod: digest %s, want %s", warm.Digest, cold.Digest)
			}
			if got := notCached(warm); len(got) > 0 {
				t.Errorf("fresh pod: built %v, want every layer from the cache repository", got)
			}
			if work := toolSteps(r.stderr, tc.sample); len(work) > 0 {
				t.Errorf("fresh pod: ran %v, want no tool", work)
			}

			dir := copySample(t, tc.sample)
			editFile(t, dir, tc.file, tc.old, tc.new)
			mark = reg.Mark()
			edited, r, editTook := build(dir, podEnv(t, tc.pod)...)
			reqs := requestsSince(t, reg, mark)
			if got := notCached(edited); !slices.Equal(got, []string{tc.handler}) {
				t.Errorf("edit on a fresh pod: built %v, want [%s]", got, tc.handler)
			}
			m, err := reg.Manifest(context.Background(), repo, "v1")
			if err != nil {
				t.Fatal(err)
			}
			handler := edited.layer(t, tc.handler).Digest
			var toImage, toCache []string
			var sent int64
			for _, q := range reqs {
				to, d, ok := q.BlobUpload()
				if !ok {
					continue
				}
				sent += blobSize(t, reg.Host+"/"+to+"@"+d)
				if to == repo {
					toImage = append(toImage, d)
				} else {
					toCache = append(toCache, d)
				}
			}
			want := []string{handler, m.Config.Digest}
			if slices.ContainsFunc(toImage, func(d string) bool { return !slices.Contains(want, d) }) || !slices.Contains(toImage, m.Config.Digest) {
				t.Errorf("edit push: uploads to %s = %v, want only the handler layer %s and the config %s\n%s", repo, toImage, handler, m.Config.Digest, registrytest.Summary(reqs))
			}
			if n := count(append(toImage, toCache...), handler); n != 1 {
				t.Errorf("edit push: the handler layer went up %d times, want once", n)
			}
			t.Logf("%s: cold %s (ran %v, %d bytes to the cache repository), fresh pod with the cache repository %s, one-line edit on a fresh pod %s (ran %v); edit uploaded %d bytes: %d blobs to %s, %d to the cache repository (%v), %d mounts",
				tc.sample, coldTook.Round(time.Millisecond), coldRan, toRepo, warmTook.Round(time.Millisecond), editTook.Round(time.Millisecond),
				toolSteps(r.stderr, tc.sample), sent, len(toImage), repo, len(toCache), toCache, len(registrytest.Mounts(reqs)))
		})
	}

	t.Run("read-only and unreachable", func(t *testing.T) {
		needBinaries(t, "go")
		// A proxy that lets reads through and refuses writes, as a
		// repository the pod's credentials may only pull from.
		target, err := url.Parse(reg.URL("/"))
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(target)
		readOnly := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				w.Write([]byte(`{"errors":[{"code":"DENIED","message":"read-only"}]}`))
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		t.Cleanup(readOnly.Close)
		dir := copySample(t, goHello)
		editFile(t, dir, "handler.go", `"Hello from kiln")`, `"Read-only hello")`)
		for _, tc := range []struct{ repo, want string }{
			{strings.TrimPrefix(readOnly.URL, "http://") + "/cache/read-only", "could not be written"},
			{"127.0.0.1:1/cache", "could not be reached"},
		} {
			r := mustKiln(t, kilnOpts{cache: t.TempDir()}, "build", dir, "--lang", "golang-middleware", "--image", reg.Host+"/e2e/lc-warn:v1", "--push",
				"--cache-repo", tc.repo, "--progress", "plain")
			if n := strings.Count(r.stderr, "cache repository"); n != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("--cache-repo %s: %d warnings, want one saying %q:\n%s", tc.repo, n, tc.want, r.stderr)
			}
		}
	})
}

// hostGoProxy serves the modules of this machine's module cache as a Go
// module proxy: the network stays off.
func hostGoProxy(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	return []string{"GOPROXY=file://" + filepath.Join(strings.TrimSpace(string(out)), "cache", "download")}
}

// goPod is a fresh pod's Go: an empty build cache, and no proxy.
func goPod(t *testing.T) []string {
	return []string{"GOCACHE=" + t.TempDir(), "GOPROXY=off"}
}

// podEnv is pod's environment, none when pod is nil.
func podEnv(t *testing.T, pod func(*testing.T) []string) []string {
	if pod == nil {
		return nil
	}
	return pod(t)
}

// parseBuildJSON reads `kiln build --json`'s one image.
func parseBuildJSON(t *testing.T, r result) buildReport {
	t.Helper()
	var reports []buildReport
	if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil || len(reports) != 1 {
		t.Fatalf("kiln build --json: %v, %d images, want 1\n%s", err, len(reports), r)
	}
	return reports[0]
}

// notCached names the layers a build made.
func notCached(b buildReport) []string {
	var out []string
	for _, l := range b.Layers {
		if !l.Cached {
			out = append(out, l.Name)
		}
	}
	return out
}

// toolSteps lists the steps of --progress plain that ran a tool or
// downloaded something: all but layers, the store and the push.
func toolSteps(stderr, fn string) []string {
	var out []string
	for line := range strings.Lines(stderr) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), fn+": ")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "layer "), strings.HasPrefix(rest, "store "), strings.HasPrefix(rest, "built "),
			strings.HasPrefix(rest, "push"), strings.HasPrefix(rest, "publish"):
			continue
		}
		out = append(out, rest)
	}
	return out
}

// blobSize is the size of the blob ref names.
func blobSize(t *testing.T, ref string) int64 {
	t.Helper()
	d, err := name.NewDigest(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	l, err := remote.Layer(d)
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.Size()
	if err != nil {
		t.Fatalf("size of %s: %v", ref, err)
	}
	return n
}
