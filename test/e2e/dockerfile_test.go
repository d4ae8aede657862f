//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/cache/cacherepo"
	"github.com/kiln-build/kiln/test/registrytest"
)

// TestDockerfileFunction builds a lang: dockerfile function without a
// daemon: a multi-stage Dockerfile FROM kiln's debian base (pushed to the
// test registry first, as no public registry is reachable), with an ARG
// for the registry, a build arg, a secret mount and a cache mount, the
// classic watchdog copied from OpenFaaS's image (which kiln's own watchdog
// stands in for), USER, WORKDIR and a .dockerignore. It is pushed, run
// with kiln run and with runc, and called; the secret is in no layer; a
// rebuild with only an ignored file new uploads nothing; another cache dir
// gives the same digest; a RUN that runs again with the same output lets
// the next step hit; an edit of a copied file runs the steps from that
// one on, and no earlier one.
func TestDockerfileFunction(t *testing.T) {
	reg := startRegistry(t)
	const secret = "kiln-e2e-dockerfile-secret"
	dir := dockerfileProject(t, reg, secret)
	cache := t.TempDir()
	o := kilnOpts{cache: cache, dir: dir}
	first := digestOf(t, mustKiln(t, o, "build", "--push").stdout)
	image := reg.Host + "/fn/hello@" + first

	img := remoteImage(t, image)
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(tr)
			if bytes.Contains(b, []byte(secret)) || strings.HasPrefix(h.Name, "run/secrets") || strings.HasPrefix(h.Name, "cache/") {
				t.Errorf("layer %d holds %s, which is the secret or a mount's", i, h.Name)
			}
		}
		rc.Close()
	}

	p, ports := runFunction(t, cache, image)
	a, err := call(http.MethodPost, ports.http, "/", "hi there")
	if want := "bonjour from a Dockerfile, you said: hi there\n"; err != nil || a.status != 200 || a.body != want {
		t.Errorf("POST / = %d %q, %v; want 200 %q\n%s", a.status, a.body, err, want, p)
	}
	p.stop(t)
	// The standard OCI way too: skopeo, umoci, runc.
	c := startRunc(t, reg.Host+"/fn/hello:1", "1", first, "fprocess=/home/app/handler.sh")
	a, err = call(http.MethodPost, c.ports.http, "/", "runc")
	if want := "bonjour from a Dockerfile, you said: runc\n"; err != nil || a.status != 200 || a.body != want {
		t.Errorf("under runc, POST / = %d %q, %v; want 200 %q\n%s", a.status, a.body, err, want, c.p)
	}
	c.terminate(t)

	// .dockerignore leaves *.tmp out of the context: a new one changes
	// nothing.
	if err := os.WriteFile(filepath.Join(dir, "hello", "notes.tmp"), []byte("not for the image"), 0o644); err != nil {
		t.Fatal(err)
	}
	mark := reg.Mark()
	again := mustKiln(t, o, "build", "--push", "--progress", "plain")
	if got := digestOf(t, again.stdout); got != first {
		t.Errorf("unchanged rebuild: digest %s, want %s", got, first)
	}
	if got := registrytest.BlobUploads(requestsSince(t, reg, mark)); len(got) != 0 {
		t.Errorf("unchanged rebuild uploaded %v, want nothing", got)
	}
	if strings.Contains(again.stderr, "RUN") && !strings.Contains(again.stderr, "(cached)") {
		t.Errorf("unchanged rebuild ran a step:\n%s", again.stderr)
	}

	other := kilnOpts{cache: t.TempDir(), dir: dir}
	if got := digestOf(t, mustKiln(t, other, "build", "--push").stdout); got != first {
		t.Errorf("build in another cache dir: digest %s, want %s", got, first)
	}

	// A new file in the context re-runs the RUN after COPY . ., whose
	// output is the same bytes: the final stage's COPY --from hits, and
	// the image is the same.
	if err := os.WriteFile(filepath.Join(dir, "hello", "NOTES.md"), []byte("copied, unused"), 0o644); err != nil {
		t.Fatal(err)
	}
	same := mustKiln(t, o, "build", "--push", "--progress", "plain")
	if got := digestOf(t, same.stdout); got != first {
		t.Errorf("a RUN with the same output: digest %s, want %s", got, first)
	}
	if line := lineWith(same.stderr, "hello: RUN"); line == "" || strings.HasSuffix(line, "(cached)") {
		t.Errorf("a new file copied before the RUN did not run it again: %q\n%s", line, same.stderr)
	}
	if line := lineWith(same.stderr, "hello: COPY --chown=app:app /out/"); !strings.HasSuffix(line, "(cached)") {
		t.Errorf("the step after a RUN with the same output: %q, want it cached\n%s", line, same.stderr)
	}

	editFile(t, filepath.Join(dir, "hello"), "greeting.sh", "from a Dockerfile", "from an edited Dockerfile function")
	edited := mustKiln(t, o, "build", "--push", "--progress", "plain")
	if digestOf(t, edited.stdout) == first {
		t.Errorf("an edit of greeting.sh left the digest at %s", first)
	}
	for _, tc := range []struct {
		step   string
		cached bool
	}{
		{"WORKDIR /src", true},
		{"COPY . .", false},
		{"RUN test -s /run/secrets/token", false},
		{"COPY /fwatchdog", true},
	} {
		line := lineWith(edited.stderr, "hello: "+tc.step)
		if line == "" {
			t.Errorf("no progress line for %s:\n%s", tc.step, edited.stderr)
			continue
		}
		if got := strings.HasSuffix(line, "(cached)"); got != tc.cached {
			t.Errorf("after an edit of greeting.sh, %q: cached %v, want %v", line, got, tc.cached)
		}
	}
}

// dockerfileProject pushes kiln's debian base to reg and returns a stack
// project whose function hello is testdata/functions/dockerfile-hello,
// built FROM that base, with secret as its build secret token.
func dockerfileProject(t *testing.T, reg *registrytest.Registry, secret string) string {
	t.Helper()
	mustKiln(t, kilnOpts{cache: warmCache}, "base", "build", "debian", "--image", reg.Host+"/debian:bookworm", "--output", "registry")
	dir := stackProject(t, map[string]string{"hello": "dockerfile-hello"}, `provider:
  name: openfaas
functions:
  hello:
    lang: dockerfile
    handler: ./hello
    image: `+reg.Host+`/fn/hello:1
    build_args:
      REGISTRY: `+reg.Host+`
      GREETING: bonjour
    build_secrets:
      token: ./token.txt
`)
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// lineWith returns the first line of s that starts with prefix, or "".
func lineWith(s, prefix string) string {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimRight(line, "\n")
		}
	}
	return ""
}

// TestDockerfileCacheRepo: a build with --cache-repo pushes every step's
// layer to the repository, tagged with its key; a build with a fresh cache
// dir and the same --cache-repo then runs no step, uploads nothing and
// gives the same digest.
func TestDockerfileCacheRepo(t *testing.T) {
	reg := startRegistry(t)
	dir := dockerfileProject(t, reg, "kiln-e2e-secret")
	cacheRepo := reg.Host + "/cache/hello"
	mark := reg.Mark()
	start := time.Now()
	first := mustKiln(t, kilnOpts{cache: t.TempDir(), dir: dir}, "build", "--push", "--cache-repo", cacheRepo, "--progress", "plain")
	firstTook := time.Since(start)
	if line := lineWith(first.stderr, "hello: RUN"); line == "" || strings.HasSuffix(line, "(cached)") {
		t.Fatalf("first build: RUN line %q, want it run:\n%s", line, first.stderr)
	}
	if strings.Contains(first.stderr, "cache repository") {
		t.Errorf("first build warned about the cache repository:\n%s", first.stderr)
	}
	// The image's push mounts the layers the cache entries sent.
	toCache := map[string]bool{}
	var again []string
	for _, q := range requestsSince(t, reg, mark) {
		repo, digest, ok := q.BlobUpload()
		switch {
		case !ok:
		case repo == "cache/hello":
			toCache[digest] = true
		case toCache[digest]:
			again = append(again, digest)
		}
	}
	if len(again) > 0 {
		t.Errorf("first build sent to the image's repository blobs the cache entries sent: %v", again)
	}

	repo, err := name.NewRepository(cacheRepo)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(repo)
	if err != nil {
		t.Fatalf("listing %s: %v", cacheRepo, err)
	}
	steps := map[string]bool{}
	for _, tag := range tags {
		m, err := remoteImage(t, cacheRepo+":"+tag).Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.Annotations[cacherepo.AnnotationKey] != "sha256:"+tag || len(m.Layers) != 1 {
			t.Errorf("entry %s: key %q, %d layers; want sha256:%s, 1 layer", tag, m.Annotations[cacherepo.AnnotationKey], len(m.Layers), tag)
		}
		steps[m.Annotations[cacherepo.AnnotationStep]] = true
	}
	t.Logf("%d entries in %s: %v", len(tags), cacheRepo, slices.Sorted(maps.Keys(steps)))

	mark = reg.Mark()
	start = time.Now()
	second := mustKiln(t, kilnOpts{cache: t.TempDir(), dir: dir}, "build", "--push", "--cache-repo", cacheRepo, "--progress", "plain")
	t.Logf("build with --cache-repo: %s cold, %s from the repository in a fresh cache dir", firstTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if got, want := digestOf(t, second.stdout), digestOf(t, first.stdout); got != want {
		t.Errorf("fresh cache dir with --cache-repo: digest %s, want %s", got, want)
	}
	for _, step := range []string{"WORKDIR /src", "COPY . .", "RUN", "COPY /fwatchdog"} {
		line := lineWith(second.stderr, "hello: "+step)
		if line == "" || !strings.HasSuffix(line, "(cached)") {
			t.Errorf("fresh cache dir with --cache-repo: %s line %q, want (cached):\n%s", step, line, second.stderr)
		}
	}
	if got := registrytest.BlobUploads(requestsSince(t, reg, mark)); len(got) != 0 {
		t.Errorf("fresh cache dir with --cache-repo uploaded %v, want nothing", got)
	}
	if strings.Contains(second.stderr, "cache repository") {
		t.Errorf("second build warned about the cache repository:\n%s", second.stderr)
	}

	// A cache repository that cannot be reached is a warning: the build
	// runs its steps and gives the same image.
	unreachable := mustKiln(t, kilnOpts{cache: t.TempDir(), dir: dir}, "build", "--push", "--cache-repo", "127.0.0.1:1/cache", "--progress", "plain")
	if got, want := digestOf(t, unreachable.stdout), digestOf(t, first.stdout); got != want {
		t.Errorf("unreachable --cache-repo: digest %s, want %s", got, want)
	}
	if !strings.Contains(unreachable.stderr, "cache repository 127.0.0.1:1/cache could not be reached") {
		t.Errorf("unreachable --cache-repo: no warning:\n%s", unreachable.stderr)
	}
}
