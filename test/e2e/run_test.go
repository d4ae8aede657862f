//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/test/registrytest"
)

// TestKilnRun pushes go-hello and runs it with `kiln run` from the
// registry, with an empty cache so the image is pulled, then stops it with
// SIGINT (Ctrl-C).
func TestKilnRun(t *testing.T) {
	reg := startRegistry(t)
	image := reg.Host + "/e2e/run-hello:v1"
	r := mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(goHello), "--lang", "golang-middleware", "--image", image, "--push")
	pushed(t, reg, "e2e/run-hello", "v1", digestOf(t, r.stdout))

	mark := reg.Mark()
	p, ports := runFunction(t, t.TempDir(), image)
	reqs := requestsSince(t, reg, mark)
	if !pulled(reqs, "e2e/run-hello") {
		t.Errorf("kiln run with an empty cache did not pull %s from the registry; requests:\n%s", image, registrytest.Summary(reqs))
	}

	tests := []struct {
		name, method, path, body string
		want                     string
	}{
		{name: "no body", method: http.MethodGet, path: "/", want: "Hello from kiln"},
		{name: "echo", method: http.MethodPost, path: "/", body: "it works", want: "Hello from kiln, you said: it works"},
		{name: "any path", method: http.MethodPost, path: "/a/b?c=d", body: "x", want: "Hello from kiln, you said: x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := call(tc.method, ports.http, tc.path, tc.body)
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", tc.method, tc.path, err, p)
			}
			if a.status != http.StatusOK || a.body != tc.want {
				t.Errorf("%s %s = %d %q, want 200 %q", tc.method, tc.path, a.status, a.body, tc.want)
			}
			if got := a.header.Get("X-Kiln-Sample"); got != "go-hello" {
				t.Errorf("%s %s: X-Kiln-Sample = %q, want %q", tc.method, tc.path, got, "go-hello")
			}
		})
	}

	// Ctrl-C is passed on like SIGTERM: a drain, then exit 0.
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	code, ok := p.wait(exitTimeout)
	if !ok {
		t.Fatalf("kiln run did not exit within %s of SIGINT\n%s", exitTimeout, p)
	}
	if code != 0 {
		t.Errorf("kiln run exit code after SIGINT = %d, want 0\n%s", code, p)
	}
}

// TestKilnRunDrain sends SIGTERM to `kiln run` while a slow request is in
// flight: the request completes, the replica leaves service at once, and
// kiln run exits 0.
func TestKilnRunDrain(t *testing.T) {
	// No --push: the image goes to the local store, where kiln run finds it.
	image := "kiln.local/e2e/drain:v1"
	mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(goDeps), "--lang", "golang-middleware", "--image", image)
	p, ports := runFunction(t, warmCache, image)

	type reply struct {
		a   answer
		err error
	}
	slow := make(chan reply, 1)
	start := time.Now()
	go func() {
		a, err := call(http.MethodGet, ports.http, "/slow", "")
		slow <- reply{a, err}
	}()
	waitInFlight(t, ports.metrics, 1)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Since(start)

	// Out of service while draining: /_/health stops answering 200.
	deadline := time.Now().Add(time.Second)
	for {
		a, err := call(http.MethodGet, ports.http, "/_/health", "")
		if err != nil || a.status != http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/_/health still answers 200 one second after SIGTERM, want 503 or a closed port")
			break
		}
		time.Sleep(pollEvery)
	}

	var got reply
	select {
	case got = <-slow:
	case <-time.After(exitTimeout):
		t.Fatalf("GET /slow did not finish within %s of SIGTERM\n%s", exitTimeout, p)
	}
	if got.err != nil || got.a.status != http.StatusOK || got.a.body != "slow done\n" {
		t.Errorf("GET /slow across SIGTERM (sent after %s) = %d %q, %v; want 200 %q, nil\n%s", signalled.Round(time.Millisecond), got.a.status, got.a.body, got.err, "slow done\n", p)
	}
	code, ok := p.wait(exitTimeout)
	if !ok {
		t.Fatalf("kiln run did not exit within %s of SIGTERM\n%s", exitTimeout, p)
	}
	if code != 0 {
		t.Errorf("kiln run exit code after the drain = %d, want 0\n%s", code, p)
	}
}

// TestOCILayoutRun writes go-main to an OCI layout with --output oci:DIR
// and runs it from there with `kiln run oci:DIR`.
func TestOCILayoutRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	r := mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(goMain), "--lang", "go", "--image", "kiln.local/e2e/main:v1", "--output", "oci:"+dir)
	digest := digestOf(t, r.stdout)
	if got, want := r.lines(), []string{"kiln.local/e2e/main@" + digest}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("kiln build printed %q, want %q", got, want)
	}

	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatalf("kiln build --output oci:%s wrote no index.json: %v", dir, err)
	}
	var index struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].Digest != digest {
		t.Errorf("index.json = %s, want one manifest %s", b, digest)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))); err != nil {
		t.Errorf("layout has no manifest blob: %v", err)
	}

	// A fresh cache: the run must not depend on the store the build used.
	p, ports := runFunction(t, t.TempDir(), "oci:"+dir)
	a, err := call(http.MethodGet, ports.http, "/hello", "")
	if err != nil {
		t.Fatalf("GET /hello: %v\n%s", err, p)
	}
	// go-main listens on 127.0.0.1:$http_port, default 8082.
	if want := "plain main says hi on /hello\n"; a.status != http.StatusOK || a.body != want {
		t.Errorf("GET /hello = %d %q, want 200 %q", a.status, a.body, want)
	}
}

// pulled reports whether reqs fetched a manifest of repo and at least one
// of its blobs.
func pulled(reqs []registrytest.Request, repo string) bool {
	var manifest, blob bool
	for _, q := range reqs {
		if q.Method != http.MethodGet || q.Status != http.StatusOK {
			continue
		}
		switch path := q.Path(); {
		case strings.HasPrefix(path, "/v2/"+repo+"/manifests/"):
			manifest = true
		case strings.HasPrefix(path, "/v2/"+repo+"/blobs/sha256:"):
			blob = true
		}
	}
	return manifest && blob
}
