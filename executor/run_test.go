package executor

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/buildcontext"
	"github.com/kiln-build/kiln/project"
)

// startRegistry starts go-containerregistry's registry on 127.0.0.1 and
// returns its host.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// sources are the two kinds of context every context form is tried with:
// a Go function built with its pack, and a Dockerfile (FROM and COPY).
func sources(t *testing.T, reg string) map[string]struct {
	dir  string
	args []string
} {
	t.Helper()
	goDir := t.TempDir()
	if err := os.CopyFS(goDir, os.DirFS(filepath.Join("..", "testdata", "functions", "go-hello"))); err != nil {
		t.Fatal(err)
	}
	base, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	baseRef := reg + "/base:1"
	if err := remote.Write(mustRef(t, baseRef), base); err != nil {
		t.Fatal(err)
	}
	dfDir := t.TempDir()
	writeFiles(t, dfDir, map[string]string{
		"Dockerfile": "FROM " + baseRef + "\nCOPY hello.txt /srv/hello.txt\n",
		"hello.txt":  "hello from a kaniko context\n",
	})
	return map[string]struct {
		dir  string
		args []string
	}{
		"go":         {goDir, []string{"--lang", "golang-middleware"}},
		"dockerfile": {dfDir, nil},
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// tarGz writes dir as a gzipped tar.
func tarGz(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// gitRepo commits dir into a new repository on branch main and returns
// the repository's path.
func gitRepo(t *testing.T, dir string) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "repo.git")
	if err := os.CopyFS(repo, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"}, {"add", "-A"},
		{"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "context"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
	}
	return repo
}

// gitHTTP serves the repositories under root with git's smart HTTP
// backend, for clients that send token as their basic-auth user.
func gitHTTP(t *testing.T, root, token string) string {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git --exec-path: %v", err)
	}
	backend := &cgi.Handler{Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(token+":"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// buildWatchdog builds kiln's watchdog, which every function image holds,
// as make build does, into a folder for KILN_WATCHDOG_DIR.
func buildWatchdog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-tags", "nethttpomithttp2", "-o", filepath.Join(dir, "kiln-watchdog-linux-"+runtime.GOARCH), "../cmd/watchdog")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the watchdog: %v: %s", err, out)
	}
	return dir
}

// TestRunContexts builds a Go function and a Dockerfile context from each
// form of --context, pushes them to a registry, and checks the image
// there and the digest files.
func TestRunContexts(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	ctx := context.Background()
	reg := startRegistry(t)
	cacheDir := t.TempDir()
	watchdogDir := buildWatchdog(t)
	const token = "s3cret-token"
	for kind, src := range sources(t, reg) {
		tgz := tarGz(t, src.dir)
		httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(tgz) }))
		t.Cleanup(httpSrv.Close)
		tgzPath := filepath.Join(t.TempDir(), "context.tar.gz")
		if err := os.WriteFile(tgzPath, tgz, 0o644); err != nil {
			t.Fatal(err)
		}
		repo := gitRepo(t, src.dir)
		gitHost := gitHTTP(t, filepath.Dir(repo), token)
		img, err := buildcontext.Pack(ctx, src.dir)
		if err != nil {
			t.Fatal(err)
		}
		ctxRef, err := buildcontext.Push(ctx, mustRef(t, reg+"/contexts/"+kind), img)
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, context string
			stdin         []byte
			env           map[string]string
		}{
			{name: "dir", context: "dir://" + src.dir},
			{name: "plain path", context: src.dir},
			{name: "tar", context: "tar://" + tgzPath},
			{name: "tar stdin", context: "tar://stdin", stdin: tgz},
			{name: "http", context: httpSrv.URL + "/context.tar.gz"},
			{name: "git local", context: "git://" + repo + "#main"},
			{name: "git http with token", context: "git://" + gitHost + "/repo.git#main", env: map[string]string{"GIT_PULL_METHOD": "http", "GIT_TOKEN": token}},
			{name: "oci", context: "oci://" + ctxRef.String()},
		}
		for _, tc := range tests {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				env := map[string]string{"KILN_CACHE_DIR": cacheDir, "KILN_WATCHDOG_DIR": watchdogDir}
				for k, v := range tc.env {
					env[k] = v
				}
				getenv := func(k string) string { return env[k] }
				out := t.TempDir()
				dest := reg + "/fn/" + kind + ":" + strings.ReplaceAll(tc.name, " ", "-")
				args := append([]string{"--context", tc.context, "--destination", dest, "--destination", dest + "-again",
					"--digest-file", filepath.Join(out, "digest"), "--image-name-with-digest-file", filepath.Join(out, "names"),
					"--image-name-tag-with-digest-file", filepath.Join(out, "tags")}, src.args...)
				f, err := Parse(args, getenv)
				if err != nil {
					t.Fatal(err)
				}
				res, err := Run(ctx, f, Env{Getenv: getenv, Stdin: bytes.NewReader(tc.stdin), Environ: os.Environ()},
					project.WithGetenv(getenv), project.WithToolEnv(os.Environ()))
				if err != nil {
					t.Fatalf("Run(%q) = %v", args, err)
				}
				for _, d := range []string{dest, dest + "-again"} {
					pushed, err := remote.Image(mustRef(t, d))
					if err != nil {
						t.Fatalf("remote.Image(%s) = %v", d, err)
					}
					if got, _ := pushed.Digest(); got != res.Digest {
						t.Errorf("%s has %s, Run() = %s", d, got, res.Digest)
					}
					if err := validate.Image(pushed, validate.Fast); err != nil {
						t.Errorf("validate.Image(%s) = %v", d, err)
					}
				}
				repoName := mustRef(t, dest).Context().Name()
				wantFiles := map[string]string{
					"digest": res.Digest.String(),
					"names":  repoName + "@" + res.Digest.String() + "\n" + repoName + "@" + res.Digest.String() + "\n",
					"tags":   dest + "@" + res.Digest.String() + "\n" + dest + "-again@" + res.Digest.String() + "\n",
				}
				for file, want := range wantFiles {
					if got, _ := os.ReadFile(filepath.Join(out, file)); string(got) != want {
						t.Errorf("%s = %q, want %q", file, got, want)
					}
				}
			})
		}
	}
}

// TestRunNoPushTarPath builds with --no-push --tar-path: the tarball
// holds the image under the destination, the registry gets nothing.
func TestRunNoPushTarPath(t *testing.T) {
	ctx := context.Background()
	reg := startRegistry(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a"})
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	layout := filepath.Join(t.TempDir(), "layout")
	dest := reg + "/fn/tar-only:v1"
	getenv := func(k string) string { return map[string]string{"KILN_CACHE_DIR": t.TempDir()}[k] }
	f, err := Parse([]string{"-c", dir, "-d", dest, "--no-push", "--tar-path", tarPath, "--oci-layout-path", layout, "--label", "team=a"}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, f, Env{Getenv: getenv}, project.WithGetenv(getenv))
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	img, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatalf("tarball.ImageFromPath() = %v", err)
	}
	// A docker tarball keeps the config, not the manifest: compare those.
	built, err := layoutImage(layout, res.Digest)
	if err != nil {
		t.Fatalf("--oci-layout-path: %v", err)
	}
	wantConfig, _ := built.ConfigName()
	if got, _ := img.ConfigName(); got != wantConfig {
		t.Errorf("tarball image config %s, built %s", got, wantConfig)
	}
	cf, err := img.ConfigFile()
	if err != nil || cf.Config.Labels["team"] != "a" {
		t.Errorf("tarball image labels = %v, %v; want team=a", cf.Config.Labels, err)
	}
	if _, err := remote.Head(mustRef(t, dest)); err == nil {
		t.Errorf("%s was pushed with --no-push", dest)
	}
}

func layoutImage(dir string, d v1.Hash) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	return p.Image(d)
}

// TestRunDockerfileURL builds with -f an http URL, as kaniko allows: the
// Dockerfile is read from there, and is not part of the context.
func TestRunDockerfileURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "FROM scratch\nCOPY . /ctx/\n")
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.txt": "a"})
	layout := filepath.Join(t.TempDir(), "layout")
	getenv := func(k string) string { return map[string]string{"KILN_CACHE_DIR": t.TempDir()}[k] }
	f, err := Parse([]string{"-c", dir, "-f", srv.URL + "/Dockerfile", "--no-push", "--oci-layout-path", layout}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), f, Env{Getenv: getenv}, project.WithGetenv(getenv))
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	img, err := layoutImage(layout, res.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Typeflag == tar.TypeReg {
			files = append(files, h.Name)
		}
	}
	if len(files) != 1 || files[0] != "ctx/a.txt" {
		t.Errorf("image files = %v, want [ctx/a.txt]", files)
	}
}
