package golang

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packtest"
)

const (
	classicCode = "package function\n\nfunc Handle(req []byte) string {\n\treturn \"got \" + string(req)\n}\n"
	httpCode    = "package function\n\nimport handler \"github.com/openfaas/templates-sdk/go-http\"\n\nfunc Handle(req handler.Request) (handler.Response, error) {\n\treturn handler.Response{Body: req.Body}, nil\n}\n"
	middleCode  = "package function\n\nimport \"net/http\"\n\nfunc Handle(w http.ResponseWriter, r *http.Request) {}\n"
	mainCode    = "package main\n\nfunc main() {}\n"
)

var (
	httpEnv = []string{"fprocess=./handler", "mode=http", "upstream_url=http://127.0.0.1:8082", "prefix_logs=false"}
	forkEnv = []string{"fprocess=./handler"}
)

// TestPlanLayout: lang go builds a package main as it is and a package
// function as the classic template does; golang-http wants a package
// function; any other folder is a *languages.SourceError at Plan, which
// reads the package clauses only and starts no go command.
func TestPlanLayout(t *testing.T) {
	tests := []struct {
		name    string
		lang    string
		files   map[string]string
		wantEnv []string
		wantErr string // a part of the error; "" for none
		errFile string // the file the error names
		errLine int
	}{
		{name: "main", lang: LangMain, files: map[string]string{"go.mod": "module example.com/m\n", "main.go": mainCode}, wantEnv: httpEnv},
		{name: "main without go.mod", lang: LangMain, files: map[string]string{"main.go": mainCode}, wantErr: "needs a go.mod", errFile: "go.mod"},
		{name: "classic", lang: LangMain, files: map[string]string{"handler.go": classicCode}, wantEnv: forkEnv},
		{name: "classic with go.mod", lang: LangMain, files: map[string]string{"go.mod": "module example.com/fn\n", "handler.go": classicCode}, wantEnv: forkEnv},
		{name: "classic, module handler", lang: LangMain, files: map[string]string{"go.mod": "\nmodule handler\n", "handler.go": classicCode}, wantErr: "module handler is the name", errFile: "go.mod", errLine: 2},
		{name: "classic, a file for another OS", lang: LangMain, files: map[string]string{"handler.go": classicCode, "gen.go": "//go:build windows\n\npackage main\n"}, wantEnv: forkEnv},
		{name: "classic, an ignored file", lang: LangMain, files: map[string]string{"handler.go": classicCode, "gen.go": "//go:build ignore\n\npackage main\n"}, wantEnv: forkEnv},
		{name: "classic, tests of another package", lang: LangMain, files: map[string]string{"handler.go": classicCode, "handler_test.go": "package function_test\n"}, wantEnv: forkEnv},
		{name: "golang-http", lang: LangHTTP, files: map[string]string{"go.mod": "module handler/function\n", "handler.go": httpCode}, wantEnv: httpEnv},
		{name: "golang-http without go.mod", lang: LangHTTP, files: map[string]string{"handler.go": httpCode}, wantEnv: httpEnv},
		{name: "golang-http, package main", lang: LangHTTP, files: map[string]string{"main.go": mainCode}, wantErr: "golang-http wants a package function", errFile: "main.go", errLine: 1},
		{name: "neither: another package", lang: LangMain, files: map[string]string{"go.mod": "module example.com/x\n", "lib.go": "// Package lib is a library.\npackage lib\n"}, wantErr: "package lib: lang go builds a package main, or a package function", errFile: "lib.go", errLine: 2},
		{name: "neither: no Go files", lang: LangMain, files: map[string]string{"go.mod": "module example.com/x\n", "README": "hi\n"}, wantErr: "no Go files; lang go builds"},
		{name: "neither: two packages", lang: LangMain, files: map[string]string{"a.go": mainCode, "b.go": classicCode}, wantErr: "package function, while a.go is package main", errFile: "b.go", errLine: 1},
		{name: "neither: no package clause", lang: LangMain, files: map[string]string{"a.go": "func main() {}\n"}, wantErr: "expected 'package'", errFile: "a.go", errLine: 1},
		{name: "golang-http, no Go files", lang: LangHTTP, files: map[string]string{"go.mod": "module handler/function\n"}, wantErr: "no Go files; golang-http wants"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				write(t, filepath.Join(dir, name), content)
			}
			p := newPack(t, WithGo(filepath.Join(t.TempDir(), "no-go-here")))
			plan, err := p.Plan(context.Background(), languages.Function{Dir: dir, Lang: tc.lang, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Plan() = %v, want a plan", err)
				}
				if !slices.Equal(plan.Env, tc.wantEnv) {
					t.Errorf("Plan() env = %q, want %q", plan.Env, tc.wantEnv)
				}
				return
			}
			var se *languages.SourceError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Plan() = %v, want a *languages.SourceError saying %q", err, tc.wantErr)
			}
			if want := filepath.Join(dir, tc.errFile); se.Path != want || se.Line != tc.errLine {
				t.Errorf("Plan() error at %s:%d, want %s:%d", se.Path, se.Line, want, tc.errLine)
			}
		})
	}
}

// TestBuildNeither: the builder makes no image of a folder lang go cannot
// build, and says why.
func TestBuildNeither(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module example.com/x\n")
	write(t, filepath.Join(dir, "lib.go"), "package lib\n")
	b := packtest.NewBuilder(t, newPack(t, WithGo(filepath.Join(t.TempDir(), "no-go-here"))))
	res, err := b.Build(context.Background(), languages.Function{Name: "x", Dir: dir, Lang: LangMain, Platform: packtest.Platform, Epoch: packtest.Epoch})
	var se *languages.SourceError
	if !errors.As(err, &se) || res != nil {
		t.Fatalf("Build() = %v, %v; want no image and a *languages.SourceError", res, err)
	}
	if want := "package lib: lang go builds a package main, or a package function with func Handle(req []byte) string"; !strings.Contains(err.Error(), want) {
		t.Errorf("Build() = %v, want it to say %q", err, want)
	}
}

// TestCheckHandle: a package function whose Handle is another template's
// is told which lang builds it, before the compiler runs.
func TestCheckHandle(t *testing.T) {
	tests := []struct {
		name    string
		code    string
		want    layout
		wantErr string // "" for none
	}{
		{"classic", classicCode, layoutClassic, ""},
		{"golang-http", httpCode, layoutHTTP, ""},
		{"middleware as classic", middleCode, layoutClassic, "Handle is golang-middleware's (func Handle(w http.ResponseWriter, r *http.Request)); build it with --lang golang-middleware, or write func Handle(req []byte) string"},
		{"golang-http as classic", httpCode, layoutClassic, "build it with --lang golang-http"},
		{"classic as golang-http", classicCode, layoutHTTP, "Handle is the classic go template's (func Handle(req []byte) string); build it with --lang go"},
		{"no Handle", "package function\n\nfunc Other() {}\n", layoutClassic, "package function has no func Handle; lang go wants func Handle(req []byte) string"},
		{"a method Handle", "package function\n\ntype T struct{}\n\nfunc (T) Handle(req []byte) string { return \"\" }\n", layoutClassic, "has no func Handle"},
		{"another signature: the compiler's to judge", "package function\n\nfunc Handle(req string) string { return req }\n", layoutClassic, ""},
		{"a syntax error: the compiler's to report", "package function\n\nfunc Handle(\n", layoutClassic, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "handler.go"), tc.code)
			err := checkHandle(dir, tc.want)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("checkHandle() = %v, want nil", err)
				}
				return
			}
			var se *languages.SourceError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("checkHandle() = %v, want a *languages.SourceError saying %q", err, tc.wantErr)
			}
		})
	}
}

// TestBuildFunctions builds classic and golang-http functions for this
// machine, with and without a go.mod, and runs the binaries as the
// watchdog would: the classic one with the request on stdin, the
// golang-http one as a server on $http_port. The handler folder is left
// as it was.
func TestBuildFunctions(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go on PATH")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the binaries are built for linux")
	}
	tests := []struct {
		name  string
		lang  string
		files map[string]string
	}{
		{"classic", LangMain, map[string]string{"handler.go": classicCode}},
		{"classic with go.mod and a test", LangMain, map[string]string{"go.mod": "module example.com/fn\n\ngo 1.22\n", "handler.go": classicCode, "handler_test.go": "package function\n\nimport \"testing\"\n\nfunc TestHandle(t *testing.T) {\n\tif Handle([]byte(\"x\")) != \"got x\" {\n\t\tt.Fail()\n\t}\n}\n"}},
		{"golang-http", LangHTTP, map[string]string{"handler.go": httpCode}},
		{"golang-http with go.mod and a test", LangHTTP, map[string]string{"go.mod": "module handler/function\n\ngo 1.22\n\nrequire github.com/openfaas/templates-sdk/go-http v0.0.0-20220408082716-5981c545cb03\n", "handler.go": httpCode, "handler_test.go": "package function\n\nimport (\n\t\"testing\"\n\n\thandler \"github.com/openfaas/templates-sdk/go-http\"\n)\n\nfunc TestHandle(t *testing.T) {\n\tif r, _ := Handle(handler.Request{Body: []byte(\"x\")}); string(r.Body) != \"x\" {\n\t\tt.Fail()\n\t}\n}\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				write(t, filepath.Join(dir, name), content)
			}
			before := snapshot(t, dir)
			fn := languages.Function{Dir: dir, Lang: tc.lang, Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}, Epoch: packtest.Epoch, ScratchDir: t.TempDir()}
			// Nothing is downloaded: the SDK is kiln's, and a replaced
			// module needs no go.sum line.
			plan, err := newPack(t, WithEnv(append(os.Environ(), "GOPROXY=off"))).Plan(context.Background(), fn)
			if err != nil {
				t.Fatalf("Plan() = %v", err)
			}
			if err := plan.Steps[0].Build(context.Background(), io.Discard); err != nil {
				t.Fatalf("Build() = %v", err)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the build changed the handler folder:\nbefore %s\nafter %s", before, after)
			}
			bin := filepath.Join(fn.ScratchDir, "handler")
			if tc.lang == LangMain {
				cmd := exec.Command(bin)
				cmd.Stdin = strings.NewReader("hello")
				out, err := cmd.Output()
				if got, want := string(out), "got hello\n"; err != nil || got != want {
					t.Errorf("handler < hello = %q, %v; want %q", got, err, want)
				}
				return
			}
			port := freePort(t)
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), fmt.Sprintf("http_port=%d", port))
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			body, err := post(fmt.Sprintf("http://127.0.0.1:%d/", port), "hello")
			if err != nil || body != "hello" {
				t.Errorf("POST hello = %q, %v; want %q", body, err, "hello")
			}
		})
	}
}

// snapshot lists a folder's files with their contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := os.ReadFile(p)
		fmt.Fprintf(&b, "%s=%q;", strings.TrimPrefix(p, dir), content)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// post sends body to url until the server answers, for up to ten seconds.
func post(url, body string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Post(url, "text/plain", strings.NewReader(body))
		if err == nil {
			defer res.Body.Close()
			var out bytes.Buffer
			_, err = out.ReadFrom(res.Body)
			return out.String(), err
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
