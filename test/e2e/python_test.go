//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/test/registrytest"
	"github.com/kiln-build/kiln/test/wheelhouse"
)

// The Python samples in testdata/functions; both need kiln-greeting==1.0,
// which pythonWheelhouse provides, since no package index is reachable.
const (
	pyHTTP  = "python-http"  // python3-http
	pyFlask = "python-flask" // python3-flask
)

// maxPythonImage is the bound on a Python function's image,
// uncompressed.
const maxPythonImage = 50 << 20

// pythonWheelhouse writes kiln-greeting 1.0 and 1.1 as wheels, and puts the
// pinned Flask and waitress wheels, into a new folder and returns the
// environment that makes pip install from there and from nowhere else.
func pythonWheelhouse(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	for _, version := range []string{"1.0", "1.1"} {
		if _, err := wheelhouse.Write(dir, "kiln_greeting", version, map[string]string{
			"kiln_greeting/__init__.py": fmt.Sprintf("VERSION = %q\n\n\ndef greet(name):\n    return \"Hello from \" + name\n", version),
		}); err != nil {
			t.Fatal(err)
		}
	}
	// Flask, waitress and their dependencies, which the python3-http and
	// python3-flask server runs on, pinned by the pack: downloaded once.
	pins, err := os.ReadFile(filepath.Join(repoRoot, "languages", "python", "shim", "server-requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := wheelhouse.Pinned(dir, pins); err != nil {
		t.Fatal(err)
	}
	return wheelhouse.Env(dir)
}

// imageSizes returns the sum of ref's layers, compressed and uncompressed.
func imageSizes(t *testing.T, ref string) (compressed, uncompressed int64) {
	t.Helper()
	ls, err := remoteImage(t, ref).Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		compressed += size
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
	return compressed, uncompressed
}

// TestPythonFunctions builds and pushes the two samples with a cold cache,
// checks their size, runs them with `kiln run` from the registry and calls
// them as their templates' contracts say.
func TestPythonFunctions(t *testing.T) {
	type request struct {
		name, method, path, ctype, body string
		wantStatus                      int
		wantType                        string
		wantBody                        string
	}
	tests := []struct {
		sample, lang string
		requests     []request
	}{
		{pyHTTP, "python3-http", []request{
			{name: "GET with a query", method: "GET", path: "/?name=bob", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: "Hello from bob"},
			{name: "POST JSON", method: "POST", path: "/", ctype: "application/json", body: `{"name":"amy","n":[1,2]}`, wantStatus: 200, wantType: "application/json",
				wantBody: `{"greeting":"Hello from amy","received":{"n":[1,2],"name":"amy"}}` + "\n"},
			{name: "POST text", method: "POST", path: "/a/b", ctype: "text/plain", body: "it works", wantStatus: 200, wantBody: "Hello from kiln, you said: it works"},
			{name: "custom status", method: "PUT", path: "/created", body: "x", wantStatus: 201, wantBody: "created"},
			{name: "method not routed", method: "OPTIONS", path: "/", wantStatus: 200},
		}},
		{pyFlask, "python3-flask", []request{
			{name: "GET", method: "GET", path: "/", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: "Hello from kiln"},
			{name: "POST JSON", method: "POST", path: "/", ctype: "application/json", body: `{"name":"amy"}`, wantStatus: 200, wantType: "application/json",
				wantBody: `{"greeting":"Hello from amy","received":{"name":"amy"}}` + "\n"},
			{name: "POST text", method: "POST", path: "/x?y=z", ctype: "text/plain", body: "it works", wantStatus: 200, wantBody: "Hello from kiln, you said: it works"},
			{name: "custom status", method: "POST", path: "/", body: "teapot", wantStatus: 418, wantBody: "short and stout"},
			{name: "PUT is not routed", method: "PUT", path: "/", body: "x", wantStatus: 405},
		}},
	}
	reg := startRegistry(t)
	env := pythonWheelhouse(t)
	for _, tc := range tests {
		t.Run(tc.sample, func(t *testing.T) {
			repo := "e2e/" + tc.sample
			image := reg.Host + "/" + repo + ":v1"
			o := kilnOpts{cache: t.TempDir(), env: env}
			rep := buildJSON(t, o, sample(tc.sample), "--lang", tc.lang, "--image", image, "--push")
			took := 0.0
			for _, l := range rep.Layers {
				took += float64(l.Duration) / 1e9
			}
			if got, want := layerNames(rep.Layers), []string{"watchdog", "python standard library bytecode", "flask and waitress", "requirements", "python server", "handler code"}; !isSuffix(got, want) {
				t.Errorf("layers = %v, want them to end with %v", got, want)
			}
			pushed(t, reg, repo, "v1", rep.Digest)
			validateRemote(t, rep.Image)
			compressed, uncompressed := imageSizes(t, rep.Image)
			t.Logf("%s: %d layers, %.1f MB compressed, %.1f MB uncompressed", tc.sample, len(rep.Layers), float64(compressed)/1e6, float64(uncompressed)/1e6)
			if uncompressed > maxPythonImage {
				t.Errorf("image is %d bytes uncompressed, want at most %d", uncompressed, maxPythonImage)
			}

			p, ports := runFunction(t, t.TempDir(), image)
			for _, rq := range tc.requests {
				t.Run(rq.name, func(t *testing.T) {
					req, err := http.NewRequest(rq.method, fmt.Sprintf("http://127.0.0.1:%d%s", ports.http, rq.path), strings.NewReader(rq.body))
					if err != nil {
						t.Fatal(err)
					}
					if rq.ctype != "" {
						req.Header.Set("Content-Type", rq.ctype)
					}
					resp, err := httpClient.Do(req)
					if err != nil {
						t.Fatalf("%s %s: %v\n%s", rq.method, rq.path, err, p)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != rq.wantStatus {
						t.Fatalf("%s %s = %d %q, want %d", rq.method, rq.path, resp.StatusCode, b, rq.wantStatus)
					}
					if rq.wantBody != "" && string(b) != rq.wantBody {
						t.Errorf("%s %s body = %q, want %q", rq.method, rq.path, b, rq.wantBody)
					}
					if rq.wantType != "" && resp.Header.Get("Content-Type") != rq.wantType {
						t.Errorf("%s %s Content-Type = %q, want %q", rq.method, rq.path, resp.Header.Get("Content-Type"), rq.wantType)
					}
					if rq.wantStatus < 400 && rq.method != "OPTIONS" && resp.Header.Get("X-Kiln-Sample") != tc.sample {
						t.Errorf("%s %s X-Kiln-Sample = %q, want %q", rq.method, rq.path, resp.Header.Get("X-Kiln-Sample"), tc.sample)
					}
				})
			}
		})
	}
}

// TestPythonEdits proves from the registry's access log that an edit of
// handler.py uploads the handler's layer and the config only, and that a
// change to requirements.txt rebuilds and uploads the requirements layer
// only; it reports the cold build and the edit-to-pushed times.
func TestPythonEdits(t *testing.T) {
	reg := startRegistry(t)
	dir := copySample(t, pyHTTP)
	o := kilnOpts{cache: t.TempDir(), env: pythonWheelhouse(t)}
	repo := "e2e/python-edits"
	image := reg.Host + "/" + repo + ":v1"
	args := []string{dir, "--lang", "python3-http", "--image", image, "--push"}
	ctx := context.Background()

	cold := mustKiln(t, o, append([]string{"build"}, args...)...)
	first := buildJSON(t, o, args...)
	if first.Digest != digestOf(t, cold.stdout) {
		t.Fatalf("no-change rebuild digest = %s, want %s", first.Digest, digestOf(t, cold.stdout))
	}

	tests := []struct {
		name      string
		file      string
		old, new  string
		wantLayer string
	}{
		{"handler edit", "handler.py", `"created"`, `"made"`, "handler code"},
		{"requirements change", "requirements.txt", "kiln-greeting==1.0", "kiln-greeting==1.1", "requirements"},
	}
	prev := first
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			editFile(t, dir, tc.file, tc.old, tc.new)
			mark := reg.Mark()
			r := mustKiln(t, o, append(append([]string{"build"}, args...), "--json")...)
			reqs := requestsSince(t, reg, mark)
			var reports []buildReport
			if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil || len(reports) != 1 {
				t.Fatalf("kiln build --json: %v\n%s", err, r)
			}
			got := reports[0]
			for i, l := range got.Layers {
				changed := l.Name == tc.wantLayer
				if l.Cached == changed {
					t.Errorf("layer %q cached = %v, want %v", l.Name, l.Cached, !changed)
				}
				if same := l.Digest == prev.Layers[i].Digest; same == changed {
					t.Errorf("layer %q digest changed = %v, want %v", l.Name, !same, changed)
				}
			}
			m, err := reg.Manifest(ctx, repo, "v1")
			if err != nil {
				t.Fatal(err)
			}
			want := []string{got.layer(t, tc.wantLayer).Digest, m.Config.Digest}
			if ups := registrytest.BlobUploads(reqs); !sameSet(ups, want) {
				t.Errorf("blob uploads = %v, want exactly the %s layer and the config %v\n%s", ups, tc.wantLayer, want, registrytest.Summary(reqs))
			}
			if puts := registrytest.ManifestPuts(reqs); !slices.Equal(puts, []string{repo + ":v1"}) {
				t.Errorf("manifest puts = %v, want [%s:v1]", puts, repo)
			}
			t.Logf("%s -> pushed: %s (layer %s, %d bytes)", tc.name, r.took.Round(1e6), tc.wantLayer, got.layer(t, tc.wantLayer).Size)
			prev = got
		})
	}
	t.Logf("cold build and push: %s", cold.took.Round(1e6))
}

// pythonProbe imports what functions commonly load from the standard
// library and uses the parts that need the base's shared libraries and
// data: OpenSSL with the CA bundle, SQLite, zlib, lzma, bz2, ctypes, time
// zones, and the interpreter's own version.
const pythonProbe = `import bz2, ctypes, decimal, hashlib, http.server, json, lzma, socketserver, sqlite3, ssl, sys, uuid, zlib, zoneinfo
import datetime


def handle(event, context):
    ctx = ssl.create_default_context()
    db = sqlite3.connect(":memory:")
    return {"body": {
        "version": "%d.%d" % sys.version_info[:2],
        "executable": sys.executable,
        "certs": ctx.cert_store_stats()["x509_ca"],
        "openssl": ssl.OPENSSL_VERSION.split()[0],
        "sqlite": db.execute("select 1 + 1").fetchone()[0],
        "zlib": zlib.decompress(zlib.compress(b"z")).decode(),
        "lzma": lzma.decompress(lzma.compress(b"l")).decode(),
        "bz2": bz2.decompress(bz2.compress(b"b")).decode(),
        "sha256": hashlib.sha256(b"").hexdigest()[:8],
        "libc": ctypes.CDLL("libc.so.6").abs(-3),
        "decimal": str(decimal.Decimal("0.1") + decimal.Decimal("0.2")),
        "berlin": datetime.datetime(2024, 7, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")).utcoffset().seconds,
        "uuid": len(str(uuid.uuid4())),
    }}
`

// TestPythonBase runs a function on the python base that exercises the
// interpreter and the standard library's native parts.
func TestPythonBase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "probe")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "handler.py"), []byte(pythonProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	image := "kiln.local/e2e/python-probe:v1"
	mustKiln(t, kilnOpts{cache: warmCache}, "build", dir, "--lang", "python3-http", "--image", image)
	p, ports := runFunction(t, warmCache, image)
	a, err := call(http.MethodGet, ports.http, "/", "")
	if err != nil || a.status != http.StatusOK {
		t.Fatalf("GET / = %v %d %q\n%s", err, a.status, a.body, p)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(a.body), &got); err != nil {
		t.Fatalf("probe answered %q: %v", a.body, err)
	}
	want := map[string]any{
		"version": "3.11", "executable": "/usr/bin/python3", "openssl": "OpenSSL", "sqlite": 2.0, "zlib": "z", "lzma": "l", "bz2": "b",
		"sha256": "e3b0c442", "libc": 3.0, "decimal": "0.3", "berlin": 7200.0, "uuid": 36.0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("probe %s = %v, want %v", k, got[k], v)
		}
	}
	if n, _ := got["certs"].(float64); n < 100 {
		t.Errorf("probe certs = %v, want more than 100 CA certificates loaded", got["certs"])
	}
}

// TestPythonBuildErrors: the user's mistakes fail the build with the file,
// the line where known, and the cause, and nothing is pushed.
func TestPythonBuildErrors(t *testing.T) {
	reg := startRegistry(t)
	env := pythonWheelhouse(t)
	syntax := copySample(t, pyHTTP)
	editFile(t, syntax, "handler.py", `return {"statusCode": 201, "body": "created", "headers": headers}`, `return {"statusCode": 201, "body": "created" "headers": headers`)
	noHandle := copySample(t, pyFlask)
	editFile(t, noHandle, "handler.py", "def handle(req):", "def handler(req):")
	unknown := copySample(t, pyHTTP)
	editFile(t, unknown, "requirements.txt", "kiln-greeting==1.0\n", "kiln-greeting==1.0\nkiln-no-such-package==3\n")
	tests := []struct {
		name, dir, lang string
		want            []string
		detail          bool
	}{
		{"syntax error", syntax, "python3-http", []string{filepath.Join(syntax, "handler.py") + ":9:", "syntax error"}, true},
		{"no handle", noHandle, "python3-flask", []string{filepath.Join(noHandle, "handler.py"), "no top-level handle function"}, false},
		{"unknown dependency", unknown, "python3-http", []string{filepath.Join(unknown, "requirements.txt") + ":2:", "kiln-no-such-package"}, true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := fmt.Sprintf("e2e/python-bad-%d", i)
			mark := reg.Mark()
			r := kiln(t, kilnOpts{cache: warmCache, env: env}, "build", tc.dir, "--lang", tc.lang, "--image", reg.Host+"/"+repo+":v1", "--push")
			checkOneLineError(t, r, 1, tc.want, tc.detail)
			assertNothingPushed(t, reg, mark, repo, "v1")
		})
	}
}

// TestPythonRunc runs the python3-http sample on the standard OCI path:
// skopeo copies it from the registry, umoci unpacks it, runc runs it on
// the host network as user 65532.
func TestPythonRunc(t *testing.T) {
	needBinaries(t, "skopeo", "umoci", "runc")
	reg := startRegistry(t)
	repo, tag := "e2e/runc-python", "v1"
	image := reg.Host + "/" + repo + ":" + tag
	r := mustKiln(t, kilnOpts{cache: warmCache, env: pythonWheelhouse(t)}, "build", sample(pyHTTP), "--lang", "python3-http", "--image", image, "--push")
	c := startRunc(t, image, tag, digestOf(t, r.stdout), "fprocess=python3 /home/app/index.py http", "mode=http", "upstream_url=http://127.0.0.1:5000")
	for _, tc := range []struct{ method, path, body, want string }{
		{http.MethodGet, "/?name=runc", "", "Hello from runc"},
		{http.MethodPost, "/", "text", "Hello from kiln, you said: text"},
	} {
		a, err := call(tc.method, c.ports.http, tc.path, tc.body)
		if err != nil || a.status != http.StatusOK || a.body != tc.want {
			t.Errorf("%s %s = %d %q, %v; want 200 %q\n%s", tc.method, tc.path, a.status, a.body, err, tc.want, c.p)
		}
	}
	c.terminate(t)
}
