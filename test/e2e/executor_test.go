//go:build e2e

package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-build/kiln/buildcontext"
	"github.com/kiln-build/kiln/test/registrytest"
)

// kanikoExecutor returns a symbolic link named executor to the kiln
// binary, as an image ships it at /kaniko/executor.
func kanikoExecutor(t *testing.T) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "executor")
	if err := os.Symlink(kilnBin, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// authDockerConfig writes a kaniko-style /kaniko/.docker folder holding
// the registry's credentials and returns it.
func authDockerConfig(t *testing.T, host, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	writeDockerConfig(t, dir, host, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	return dir
}

// TestExecutorKanikoStyle runs kiln as /kaniko/executor with a kaniko Job
// manifest's arguments, flags only, against a registry that wants the
// credentials of DOCKER_CONFIG: a Dockerfile context and a function with
// a stack.yml, each pushed, the digest file matching the registry.
func TestExecutorKanikoStyle(t *testing.T) {
	const user, password = "builder", "s3cret"
	reg := startRegistry(t, registrytest.WithHtpasswd(user, password))
	dockerCfg := authDockerConfig(t, reg.Host, user, password)
	exe := kanikoExecutor(t)
	cache := t.TempDir()

	df := t.TempDir()
	os.WriteFile(filepath.Join(df, "Dockerfile"), []byte("FROM scratch\nCOPY hello.txt /hello.txt\n"), 0o644)
	os.WriteFile(filepath.Join(df, "hello.txt"), []byte("hello\n"), 0o644)

	fn := t.TempDir()
	if err := os.CopyFS(filepath.Join(fn, "hello"), os.DirFS(sample(goHello))); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fn, "stack.yml"), []byte("version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  hello:\n    lang: golang-middleware\n    handler: ./hello\n    image: ignored/hello:latest\n"), 0o644)

	// kiln job's way: the context pushed as an artifact, fetched with
	// the same credentials.
	packed, err := buildcontext.Pack(context.Background(), fn)
	if err != nil {
		t.Fatal(err)
	}
	ctxRef, err := name.ParseReference(reg.Host + "/e2e/contexts:fn")
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := buildcontext.Push(context.Background(), ctxRef, packed, buildcontext.WithKeychain(staticKeychain{user, password}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, context, repo string }{
		{"dockerfile", "dir://" + df, "e2e/kaniko-df"},
		{"stack", "dir://" + fn, "e2e/kaniko-fn"},
		{"stack from an oci context", "oci://" + pushed.String(), "e2e/kaniko-oci"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			digestFile := filepath.Join(t.TempDir(), "termination-log")
			ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "--context="+tc.context, "--destination="+reg.Host+"/"+tc.repo+":v1",
				"--digest-file="+digestFile, "--cache=true", "--snapshot-mode=redo", "--reproducible", "--verbosity=info")
			cmd.Env = append(baseEnv(), "DOCKER_CONFIG="+dockerCfg, "KILN_CACHE_DIR="+cache)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("executor: %v\n%s", err, out)
			}
			digest, _ := os.ReadFile(digestFile)
			if err := reg.VerifyTag(context.Background(), tc.repo, "v1"); err != nil {
				t.Fatalf("registry: %v\n%s", err, out)
			}
			status, got, err := reg.ManifestDigest(context.Background(), tc.repo, "v1")
			if err != nil || status != http.StatusOK || got != string(digest) {
				t.Errorf("registry has %s:v1 = %d %s (%v), digest file %q", tc.repo, status, got, err, digest)
			}
			if !strings.Contains(string(out), reg.Host+"/"+tc.repo+"@"+string(digest)) {
				t.Errorf("executor printed no NAME@DIGEST line:\n%s", out)
			}
		})
	}
}

// TestExecutorNoPush builds with --no-push --tar-path: a tarball, and no
// request that writes to the registry.
func TestExecutorNoPush(t *testing.T) {
	reg := startRegistry(t)
	df := t.TempDir()
	os.WriteFile(filepath.Join(df, "Dockerfile"), []byte("FROM scratch\nCOPY a.txt /a.txt\n"), 0o644)
	os.WriteFile(filepath.Join(df, "a.txt"), []byte("a\n"), 0o644)
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	mark := reg.Mark()
	cache := t.TempDir()
	mustKiln(t, kilnOpts{cache: cache, env: []string{"KILN_CACHE_DIR=" + cache}}, "executor", "-c", df, "-d", reg.Host+"/e2e/tar-only:v1", "--no-push", "--tar-path", tarPath)
	if info, err := os.Stat(tarPath); err != nil || info.Size() == 0 {
		t.Errorf("--tar-path %s: %v", tarPath, err)
	}
	assertNothingPushed(t, reg, mark, "e2e/tar-only", "v1")
}

// builderRequest is faas-cli's remote-builder body for a golang-middleware
// function: context/ as faas-cli's ./build/<fn> (template files, the
// handler in function/), then com.openfaas.docker.config.
func builderRequest(t *testing.T, image string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o664, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	tw.WriteHeader(&tar.Header{Name: "context", Mode: 0o755, Typeflag: tar.TypeDir})
	add("context/template.yml", []byte("language: golang-middleware\nfprocess: ./handler\n"))
	add("context/Dockerfile", []byte("FROM scratch\n"))
	for _, f := range []string{"go.mod", "handler.go", "static/index.html"} {
		b, err := os.ReadFile(filepath.Join(sample(goHello), f))
		if err != nil {
			t.Fatal(err)
		}
		add("context/function/"+f, b)
	}
	cfg, _ := json.Marshal(map[string]any{"image": image})
	add("com.openfaas.docker.config", cfg)
	tw.Close()
	return buf.Bytes()
}

// TestBuilderServe sends kiln builder serve faas-cli's remote-builder
// request (tar, HMAC signature, NDJSON): a real function is built and
// pushed, and the reply's NAME@DIGEST is in the registry; a tampered
// signature gets 401 and pushes nothing.
func TestBuilderServe(t *testing.T) {
	reg := startRegistry(t)
	secretFile := filepath.Join(t.TempDir(), "payload-secret")
	os.WriteFile(secretFile, []byte("  shared-secret\n"), 0o600)
	port := freePort(t)
	cache := t.TempDir()
	p := startProcess(t, kilnCommand(context.Background(), kilnOpts{cache: cache, env: []string{"KILN_CACHE_DIR=" + cache}},
		"builder", "serve", "--port", strconv.Itoa(port), "--secret-file", secretFile))
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := httpClient.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) || !p.running() {
			t.Fatalf("kiln builder serve never answered: %v\n%s", err, p)
		}
		time.Sleep(pollEvery)
	}
	send := func(body []byte, key string) *http.Response {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write(body)
		req, _ := http.NewRequest(http.MethodPost, url+"/build", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("User-Agent", "openfaas-go-sdk")
		req.Header.Set("Accept", "application/x-ndjson")
		req.Header.Set("X-Build-Signature", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		client := &http.Client{Timeout: commandTimeout, Transport: &http.Transport{Proxy: nil}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	t.Run("tampered signature", func(t *testing.T) {
		mark := reg.Mark()
		resp := send(builderRequest(t, reg.Host+"/e2e/remote-refused:latest"), "wrong-secret")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status = %d, want 401", resp.StatusCode)
		}
		assertNothingPushed(t, reg, mark, "e2e/remote-refused", "latest")
	})
	t.Run("faas-cli publish", func(t *testing.T) {
		resp := send(builderRequest(t, reg.Host+"/e2e/remote-hello:latest"), "shared-secret")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200\n%s", resp.StatusCode, p)
		}
		type result struct {
			Log    []string `json:"log"`
			Image  string   `json:"image"`
			Status string   `json:"status"`
			Error  string   `json:"error"`
		}
		var last result
		var lines int
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var r result
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("NDJSON line %q: %v", sc.Text(), err)
			}
			last, lines = r, lines+1
		}
		if last.Status != "success" || lines < 2 {
			t.Fatalf("last of %d lines = %+v, want success after progress\n%s", lines, last, p)
		}
		name, digest, ok := strings.Cut(last.Image, "@")
		if !ok || name != reg.Host+"/e2e/remote-hello" || !strings.HasPrefix(digest, "sha256:") {
			t.Fatalf("image = %q, want %s/e2e/remote-hello@sha256:...", last.Image, reg.Host)
		}
		status, got, err := reg.ManifestDigest(context.Background(), "e2e/remote-hello", "latest")
		if err != nil || status != http.StatusOK || got != digest {
			t.Errorf("registry has e2e/remote-hello:latest = %d %s (%v), reply %s", status, got, err, digest)
		}
	})
}

// TestExecutorReadOnlyRoot builds a Go function as the restricted Pod
// Security Standard runs the executor: user nobody, no capabilities, the
// root filesystem read-only, only /tmp writable (a tmpfs), HOME not
// writable, no KILN_CACHE_DIR. The image is pushed and has the digest a
// build as root gives.
func TestExecutorReadOnlyRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to make the mount namespace")
	}
	needBinaries(t, "unshare", "setpriv", "go")
	reg := startRegistry(t)
	src, err := os.MkdirTemp("/var/tmp", "kiln-e2e-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(src) })
	if err := os.CopyFS(filepath.Join(src, "hello"), os.DirFS(sample(goHello))); err != nil {
		t.Fatal(err)
	}
	exec.Command("chmod", "-R", "a+rX", src).Run()
	goBin, _ := exec.LookPath("go")
	dest := reg.Host + "/e2e/ro-hello:v1"
	args := "executor -c dir://" + src + "/hello --lang golang-middleware -d " + dest + " --digest-file /tmp/digest"
	script := `set -e
mount -o remount,bind,ro /
mount -t tmpfs -o mode=1777 tmpfs /tmp
if touch /kiln-probe 2>/dev/null; then echo "the root is writable"; exit 3; fi
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs \
  env -i PATH=` + filepath.Dir(goBin) + `:/usr/bin:/bin HOME=/nonexistent ` + kilnBin + ` ` + args + `
cat /tmp/digest`
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("executor as nobody on a read-only root: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	digest := lines[len(lines)-1]
	status, got, err := reg.ManifestDigest(context.Background(), "e2e/ro-hello", "v1")
	if err != nil || status != http.StatusOK || got != digest {
		t.Fatalf("registry has e2e/ro-hello:v1 = %d %s (%v), executor wrote %q\n%s", status, got, err, digest, out)
	}
	cache := t.TempDir()
	root := mustKiln(t, kilnOpts{cache: cache, env: []string{"KILN_CACHE_DIR=" + cache}}, strings.Fields(strings.Replace(args, " --digest-file /tmp/digest", " --no-push", 1))...)
	if !strings.Contains(root.stdout, "@"+digest) {
		t.Errorf("as root: %s, as nobody on a read-only root: %s", root.stdout, digest)
	}
}

// staticKeychain gives one user and password for every registry.
type staticKeychain struct{ user, password string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.password}), nil
}

// TestExecutorCommandLine runs /kaniko/executor with a flag kaniko does
// not have (exit 2, one line naming it), with none of the required ones,
// and as `executor version`.
func TestExecutorCommandLine(t *testing.T) {
	exe := kanikoExecutor(t)
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"--context=/workspace", "--destination=r.example.com/a", "--squash"}, 2, "kiln: unknown flag: --squash"},
		{[]string{"--context=/workspace"}, 2, "kiln: --destination or --no-push is required"},
		{[]string{"--no-push", "--context=/no/such/folder"}, 1, "kiln: --context /no/such/folder: /no/such/folder is not a folder"},
		{[]string{"version"}, 0, "kiln "},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := exec.Command(exe, tc.args...)
			cmd.Env = append(baseEnv(), "KILN_CACHE_DIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if code != tc.wantCode || len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
				t.Errorf("executor %v: exit %d, output %q; want exit %d and one line %q...", tc.args, code, out, tc.wantCode, tc.want)
			}
		})
	}
}
