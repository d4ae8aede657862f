//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/test/registrytest"
)

// nodeHello is the Node sample: node20 layout, one npm dependency (ms).
const nodeHello = "node-hello"

// The layers the node pack adds above the base, and the one an edit of
// handler.js changes.
var nodeLayers = []string{"watchdog", "node 20.20.2 runtime", "node dependencies", "node server", "handler code"}

// TestNodeFunction builds node-hello with a cold cache, pushes it, runs it
// with kiln run and checks the event and context contract over HTTP; then
// proves from the registry's log that an edit of handler.js uploads one
// layer plus the config, and that a lockfile change rebuilds only the
// dependency layer.
func TestNodeFunction(t *testing.T) {
	needBinaries(t, "node", "npm")
	reg := startRegistry(t)
	ctx := context.Background()
	dir := copySample(t, nodeHello)
	o := kilnOpts{cache: t.TempDir()}
	repo := "e2e/" + nodeHello
	image := reg.Host + "/" + repo + ":v1"
	args := []string{dir, "--lang", "node20", "--image", image, "--push"}

	start := time.Now()
	first := buildJSON(t, o, args...)
	t.Logf("cold build and push: %s", time.Since(start).Round(time.Millisecond))
	if names := layerNames(first.Layers); !isSuffix(names, nodeLayers) {
		t.Errorf("kiln build layers = %v, want them to end with %v", names, nodeLayers)
	}
	validateRemote(t, first.Image)
	r, err := name.ParseReference(first.Image)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	checkNodeImageSize(t, img)

	t.Run("contract", func(t *testing.T) {
		_, ports := runFunction(t, t.TempDir(), image)
		checkNodeContract(t, ports.http)
	})

	t.Run("edit uploads one layer", func(t *testing.T) {
		editFile(t, dir, "handler.js", "Hello from kiln", "Hello again from kiln")
		mark := reg.Mark()
		start := time.Now()
		edited := buildJSON(t, o, args...)
		t.Logf("edit -> pushed: %s", time.Since(start).Round(time.Millisecond))
		reqs := requestsSince(t, reg, mark)
		checkOnlyLayer(t, first, edited, "handler code")
		m, err := reg.Manifest(ctx, repo, "v1")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{edited.layer(t, "handler code").Digest, m.Config.Digest}
		if got := registrytest.BlobUploads(reqs); !sameSet(got, want) {
			t.Errorf("edit push: blob uploads = %v, want exactly the code layer and the config %v\n%s", got, want, registrytest.Summary(reqs))
		}
		if got := registrytest.ManifestPuts(reqs); !slices.Equal(got, []string{repo + ":v1"}) {
			t.Errorf("edit push: manifest puts = %v, want [%s:v1]", got, repo)
		}
		first = edited
	})

	t.Run("lockfile change rebuilds dependencies only", func(t *testing.T) {
		npm := exec.Command("npm", "install", "ms@2.1.2", "--package-lock-only", "--no-audit", "--no-fund")
		npm.Dir = dir
		if out, err := npm.CombinedOutput(); err != nil {
			t.Fatalf("npm install ms@2.1.2: %v\n%s", err, out)
		}
		mark := reg.Mark()
		start := time.Now()
		changed := buildJSON(t, o, args...)
		t.Logf("dependency change -> pushed: %s", time.Since(start).Round(time.Millisecond))
		reqs := requestsSince(t, reg, mark)
		checkOnlyLayer(t, first, changed, "node dependencies")
		m, err := reg.Manifest(ctx, repo, "v1")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{changed.layer(t, "node dependencies").Digest, m.Config.Digest}
		if got := registrytest.BlobUploads(reqs); !sameSet(got, want) {
			t.Errorf("lockfile push: blob uploads = %v, want exactly the dependency layer and the config %v\n%s", got, want, registrytest.Summary(reqs))
		}
	})
}

// checkOnlyLayer checks that only the layer named changed has a new digest
// between two builds.
func checkOnlyLayer(t *testing.T, before, after buildReport, changed string) {
	t.Helper()
	if len(before.Layers) != len(after.Layers) {
		t.Fatalf("layers = %v, were %v", layerNames(after.Layers), layerNames(before.Layers))
	}
	for i, l := range after.Layers {
		if differs := l.Digest != before.Layers[i].Digest; differs != (l.Name == changed) {
			t.Errorf("layer %q digest changed = %v, want %v", l.Name, differs, l.Name == changed)
		}
	}
}

// checkNodeImageSize sums an image's layers, compressed as pushed and
// uncompressed as unpacked, and holds the latter to the 130 MB budget.
func checkNodeImageSize(t *testing.T, img v1.Image) {
	t.Helper()
	var compressed, uncompressed int64
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		compressed += layerSize(t, l)
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		uncompressed += n
	}
	t.Logf("image size: %.1f MB compressed, %.1f MB uncompressed", float64(compressed)/1e6, float64(uncompressed)/1e6)
	if uncompressed > 130e6 {
		t.Errorf("image uncompressed size = %d bytes, want at most 130 MB", uncompressed)
	}
}

func layerSize(t *testing.T, l v1.Layer) int64 {
	t.Helper()
	n, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNode22 builds node-hello for node22 into an OCI layout and runs it:
// Node 22 answers, and every method reaches the handler as under Express
// 5, where node20 routes a fixed set. Node 22's binary is the larger one,
// so this image is the one the size budget binds.
func TestNode22(t *testing.T) {
	needBinaries(t, "node", "npm")
	o := kilnOpts{cache: t.TempDir()}
	layout := filepath.Join(t.TempDir(), "layout")
	mustKiln(t, o, "build", sample(nodeHello), "--lang", "node22", "--image", "localhost/e2e/node22-hello:v1", "--output", "oci:"+layout)
	checkNodeImageSize(t, layoutImage(t, layout))
	_, ports := runFunction(t, o.cache, "oci:"+layout)
	a, err := call(http.MethodGet, ports.http, "/", "")
	if err != nil || a.status != 200 || a.body != "Hello from kiln on Node 22, in 1m" {
		t.Errorf("GET / = %d %q (%v), want 200 %q", a.status, a.body, err, "Hello from kiln on Node 22, in 1m")
	}
	a, err = call("PROPFIND", ports.http, "/", "")
	if err != nil || a.status != 200 {
		t.Errorf("PROPFIND / = %d %q (%v), want 200 (node22 takes every method)", a.status, a.body, err)
	}
}

// TestNode18 builds node-hello for node18 and runs it: the image runs
// Node 18, the major the lang names (the official build, pinned in the
// pack's lock), and routes as node18's Express 4 template does.
func TestNode18(t *testing.T) {
	needBinaries(t, "node", "npm")
	o := kilnOpts{cache: warmCache}
	image := "kiln.local/e2e/node18-hello:v1"
	b := buildJSON(t, o, sample(nodeHello), "--lang", "node18", "--image", image)
	if names := layerNames(b.Layers); !slices.Contains(names, "node 18.20.8 runtime") {
		t.Errorf("kiln build layers = %v, want node 18.20.8 runtime", names)
	}
	_, ports := runFunction(t, o.cache, image)
	a, err := call(http.MethodGet, ports.http, "/", "")
	if err != nil || a.status != 200 || a.body != "Hello from kiln on Node 18, in 1m" {
		t.Errorf("GET / = %d %q (%v), want 200 %q", a.status, a.body, err, "Hello from kiln on Node 18, in 1m")
	}
	a, err = call("PROPFIND", ports.http, "/", "")
	if err != nil || a.status != 404 {
		t.Errorf("PROPFIND / = %d %q (%v), want 404 (node18 routes a fixed set of methods)", a.status, a.body, err)
	}
}

// TestNodeBuildErrors: the user's mistakes come back as one line naming
// the file (and line), with the tool's output below, and exit code 1.
func TestNodeBuildErrors(t *testing.T) {
	needBinaries(t, "node", "npm")
	tests := []struct {
		name  string
		edit  func(t *testing.T, dir string)
		want  []string
		wantD string // in the detail below the first line
	}{
		{
			name: "syntax error",
			edit: func(t *testing.T, dir string) {
				editFile(t, dir, "handler.js", "const ms = require('ms');", "const ms = require('ms'));")
			},
			want: []string{"handler.js:3", "SyntaxError"},
		},
		{
			name: "no function exported",
			edit: func(t *testing.T, dir string) {
				editFile(t, dir, "handler.js", "module.exports = async (event, context) =>", "module.exports.handle = async (event, context) =>")
			},
			want: []string{"handler.js", "module.exports must be a function"},
		},
		{
			name: "unknown dependency",
			edit: func(t *testing.T, dir string) {
				os.Remove(filepath.Join(dir, "package-lock.json"))
				editFile(t, dir, "package.json", `"ms": "^2.1.3"`, `"ms": "^2.1.3", "kiln-e2e-no-such-package-4f1c": "1.0.0"`)
			},
			want:  []string{"package.json", "npm install failed"},
			wantD: "404",
		},
		{
			name: "lockfile out of sync",
			edit: func(t *testing.T, dir string) {
				editFile(t, dir, "package.json", `"ms": "^2.1.3"`, `"ms": "^2.1.3", "escape-html": "^1.0.3"`)
			},
			want: []string{"package-lock.json", "out of sync with", "package.json"},
		},
	}
	o := kilnOpts{cache: t.TempDir()}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := copySample(t, nodeHello)
			tc.edit(t, dir)
			r := kiln(t, o, "build", dir, "--lang", "node20", "--image", "localhost/e2e/bad:v1")
			_, rest := checkOneLineError(t, r, 1, tc.want, true)
			if tc.wantD != "" && !strings.Contains(rest, tc.wantD) {
				t.Errorf("kiln stderr detail = %q, want it to contain %q", rest, tc.wantD)
			}
		})
	}
}

// checkNodeContract sends node-hello the event and context contract's
// cases on port: GET and POST with JSON and text bodies, a custom status
// and header, and a body that is not the JSON it claims.
func checkNodeContract(t *testing.T, port int) {
	t.Helper()
	tests := []struct {
		method, path, contentType, body string
		wantStatus                      int
		wantBody                        string
		wantHeader                      [2]string
	}{
		{http.MethodGet, "/", "", "", 200, "Hello from kiln on Node 20, in 1m", [2]string{"Content-Type", "text/html; charset=utf-8"}},
		{http.MethodPost, "/", "application/json", `{"n":[1,2]}`, 200, `{"received":{"n":[1,2]},"type":"object"}`, [2]string{}},
		{http.MethodPost, "/", "text/plain", "some text", 200, `{"received":"some text","type":"string"}`, [2]string{}},
		{http.MethodPost, "/", "", "no type", 200, `{"received":"no type","type":"string"}`, [2]string{}},
		{http.MethodGet, "/custom", "", "", 201, `{"created":true}`, [2]string{"X-Kiln", "custom"}},
		{http.MethodPost, "/", "application/json", `{"broken":`, 400, "", [2]string{}},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(tc.method, "http://127.0.0.1:"+strconv.Itoa(port)+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || (tc.wantBody != "" && string(body) != tc.wantBody) {
			t.Errorf("%s %s (%s) = %d %q, want %d %q", tc.method, tc.path, tc.contentType, resp.StatusCode, body, tc.wantStatus, tc.wantBody)
		}
		if h := tc.wantHeader; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
			t.Errorf("%s %s header %s = %q, want %q", tc.method, tc.path, h[0], resp.Header.Get(h[0]), h[1])
		}
	}
}
