//go:build e2e

package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestGoClassic builds go-classic, a function of OpenFaaS's classic go
// template (package function, Handle(req []byte) string, no go.mod), with
// --lang go, runs it with `kiln run` and calls it. The template's main
// writes Handle's answer with fmt.Println, so the body is Handle's string
// and a newline, and the classic watchdog answers 200.
//
// The image sets fprocess=./handler and no mode, as classic images do, so
// kiln's watchdog runs it as the classic watchdog would: the request body
// goes to ./handler's stdin, its stdout is the response.
func TestGoClassic(t *testing.T) {
	reg := startRegistry(t)
	image := reg.Host + "/e2e/go-classic:v1"
	r := mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(goClassic), "--lang", "go", "--image", image, "--push")
	pushed(t, reg, "e2e/go-classic", "v1", digestOf(t, r.stdout))

	checkClassicEnv(t, image, "./handler")

	p, ports := runFunction(t, t.TempDir(), image)
	tests := []struct {
		name, method, path, body string
		want                     string
	}{
		{name: "body", method: http.MethodPost, path: "/", body: "it works", want: "Hello, Go. You said: it works\n"},
		{name: "no body", method: http.MethodGet, path: "/", want: "Hello, Go. You said: \n"},
		{name: "any path and query", method: http.MethodPost, path: "/a/b?c=d", body: "x", want: "Hello, Go. You said: x\n"},
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
		})
	}
}

// TestGoHTTP builds go-http with --lang golang-http, whose go.mod requires
// github.com/openfaas/templates-sdk/go-http, which kiln provides; runs it
// and checks what the template answers: the handler.Request carries the
// method, query string, host, headers and body; a StatusCode of 0 is 200;
// the Response's headers are sent; an error gives 500 with the Response's
// headers and body.
func TestGoHTTP(t *testing.T) {
	image := "kiln.local/e2e/go-http:v1"
	buildJSON(t, kilnOpts{cache: warmCache}, sample(goHTTP), "--lang", "golang-http", "--image", image)
	p, ports := runFunction(t, warmCache, image)
	host := "127.0.0.1:" + strconv.Itoa(ports.http)
	tests := []struct {
		name, method, path, body, greeting string
		wantStatus                         int
		wantBody                           string
	}{
		{name: "GET with a query and a header", method: http.MethodGet, path: "/?a=1&b=two", greeting: "hi", wantStatus: http.StatusOK,
			wantBody: "method=GET query=a=1&b=two host=" + host + " greeting=hi context=live body="},
		{name: "POST with a body", method: http.MethodPost, path: "/any/path", body: "hello", wantStatus: http.StatusCreated,
			wantBody: "method=POST query= host=" + host + " greeting= context=live body=hello"},
		{name: "an error", method: http.MethodGet, path: "/?fail=1", wantStatus: http.StatusInternalServerError,
			wantBody: "failing as asked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://"+host+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.greeting != "" {
				req.Header.Set("X-Greeting", tc.greeting)
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", tc.method, tc.path, err, p)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus || string(b) != tc.wantBody {
				t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, b, tc.wantStatus, tc.wantBody)
			}
			if got := resp.Header.Get("X-Kiln-Sample"); got != "go-http" {
				t.Errorf("%s %s: X-Kiln-Sample = %q, want go-http", tc.method, tc.path, got)
			}
		})
	}
}

// TestGoNeither builds, with --lang go, folders that are neither a package
// main nor a classic function, and golang-middleware's go-hello: each fails
// with a one-line cause naming the file and what to do, and nothing is
// pushed.
func TestGoNeither(t *testing.T) {
	reg := startRegistry(t)
	lib := t.TempDir()
	for name, content := range map[string]string{
		"go.mod": "module example.com/lib\n\ngo 1.24.0\n",
		"lib.go": "// Package lib is a library, not a function.\npackage lib\n\n// Greet greets.\nfunc Greet() string { return \"hi\" }\n",
	} {
		if err := os.WriteFile(filepath.Join(lib, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	empty := t.TempDir()
	tests := []struct {
		name string
		dir  string
		want []string
	}{
		{"another package", lib, []string{filepath.Join(lib, "lib.go") + ":2", "package lib", "lang go builds a package main, or a package function with func Handle(req []byte) string"}},
		{"no Go files", empty, []string{empty, "no Go files"}},
		{"golang-middleware's Handle", sample(goHello), []string{filepath.Join(sample(goHello), "handler.go") + ":10", "build it with --lang golang-middleware"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo, tag := "e2e/neither", "v"+strconv.Itoa(i)
			mark := reg.Mark()
			r := kiln(t, kilnOpts{cache: warmCache}, "build", tc.dir, "--lang", "go", "--image", reg.Host+"/"+repo+":"+tag, "--push")
			checkOneLineError(t, r, 1, tc.want, false)
			assertNothingPushed(t, reg, mark, repo, tag)
		})
	}
}

// remoteImage reads the image ref from its registry.
func remoteImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("remote.Image(%s) = %v", ref, err)
	}
	return img
}

// imageEnv returns the environment of the image ref in a registry.
func imageEnv(t *testing.T, ref string) []string {
	t.Helper()
	cf, err := remoteImage(t, ref).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cf.Config.Env
}

// checkClassicEnv wants the image ref to set fprocess and neither mode
// nor upstream_url: the classic watchdog's contract, which makes kiln's
// watchdog fork fprocess per request.
func checkClassicEnv(t *testing.T, ref, fprocess string) {
	t.Helper()
	env := imageEnv(t, ref)
	if !slices.Contains(env, "fprocess="+fprocess) {
		t.Errorf("image env = %q, want fprocess=%s", env, fprocess)
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "mode=") || strings.HasPrefix(kv, "upstream_url=") {
			t.Errorf("image env has %s, want no mode and no upstream: the classic watchdog's contract", kv)
		}
	}
}
