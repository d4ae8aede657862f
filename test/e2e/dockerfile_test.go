//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/test/registrytest"
)

// TestDockerfileFunction builds a lang: dockerfile function without a
// daemon: a multi-stage Dockerfile FROM kiln's debian base (pushed to the
// test registry first, as no public registry is reachable), with an ARG
// for the registry, a build arg, a secret mount and a cache mount, the
// classic watchdog copied from OpenFaaS's image (which kiln's own watchdog
// stands in for), USER, WORKDIR and a .dockerignore. It is pushed, run
// with kiln run and with runc, and called; the secret is in no layer; a rebuild with
// only an ignored file new uploads nothing; another cache dir gives the same digest; an edit of a copied
// file runs the steps from that one on, and no earlier one.
func TestDockerfileFunction(t *testing.T) {
	reg := startRegistry(t)
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
	const secret = "kiln-e2e-dockerfile-secret"
	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
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

// lineWith returns the first line of s that starts with prefix, or "".
func lineWith(s, prefix string) string {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimRight(line, "\n")
		}
	}
	return ""
}
