//go:build cluster

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kiln-build/kiln/test/registrytest"
)

// langFunc is a function of the languages' stack.
type langFunc struct {
	name, lang string
	// src is its folder under the repository.
	src string
	// hostMatches says that a kiln build on the host uses the builder
	// image's toolchain versions: Go 1.26.8 and the node pack's Node
	// (downloaded by kiln, npm only installs). The host's Python and JDK
	// are other releases.
	hostMatches bool
	// answer is in what the function replies to a GET.
	answer string
	// file, old and new are the one-line edit; edited is in the reply
	// after it.
	file, old, new, edited string
}

var langFuncs = []langFunc{
	{name: "go-fn", lang: "golang-middleware", src: "testdata/functions/go-hello", hostMatches: true, answer: "Hello from kiln",
		file: "handler.go", old: `"Hello from kiln")`, new: `"Hi from kiln")`, edited: "Hi from kiln"},
	{name: "java-fn", lang: "java11", src: "testdata/functions/java-hello", answer: "Hello, Java",
		file: "src/main/java/com/openfaas/function/Handler.java", old: `"Hello, Java"`, new: `"Hi, Java"`, edited: "Hi, Java"},
	{name: "node-fn", lang: "node22", src: "testdata/functions/node-hello", hostMatches: true, answer: "Hello from kiln on Node 22",
		file: "handler.js", old: "Hello from kiln", new: "Hi from kiln", edited: "Hi from kiln on Node 22"},
	{name: "python-fn", lang: "python3-http", src: "test/cluster/testdata/langs/python-fn", answer: "Hello from Python, built in a Job",
		file: "handler.py", old: "Hello from Python", new: "Hi from Python", edited: "Hi from Python"},
}

// languagesProject copies the functions into a stack whose images go to
// the test registry and returns its folder, readable by the executor's
// user (65532) for the reference builds in pods.
func languagesProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	stack := "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n"
	for _, f := range langFuncs {
		stack += fmt.Sprintf("  %s:\n    lang: %s\n    handler: ./%s\n    image: %s/kiln-test/%s:1\n", f.name, f.lang, f.name, reg.Host, f.name)
		if err := os.CopyFS(filepath.Join(dir, f.name), os.DirFS(filepath.Join(repoRoot, f.src))); err != nil {
			t.Fatal(err)
		}
	}
	writeFiles(t, dir, map[string]string{"stack.yml": stack})
	return dir
}

// languageJob runs kiln job on the languages' stack with the builder
// image and the cache repository, and returns each function's
// NAME@DIGEST.
func languageJob(t *testing.T, ctx context.Context, dir, executor, cacheRepo string) (map[string]string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 12*time.Minute)
	defer cancel()
	start := time.Now()
	// --cpu 250m: the four pods fit the test node's two cores at once.
	stdout, stderr, err := kiln(t, ctx, dir, nil, "job", "-f", "stack.yml", "--kubeconfig", cluster.Kubeconfig, "--namespace", jobNamespace,
		"--executor-image", executor, "--host-network", "--deadline", "10m", "--progress", "plain", "--parallel", "4", "--cpu", "250m",
		"--cache-repo", cacheRepo)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("kiln job: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	got := map[string]string{}
	for line := range strings.Lines(stdout) {
		line = strings.TrimSpace(line)
		for _, f := range langFuncs {
			if strings.HasPrefix(line, reg.Host+"/kiln-test/"+f.name+"@sha256:") {
				got[f.name] = line
			}
		}
	}
	if len(got) != len(langFuncs) {
		t.Fatalf("kiln job printed %d images, want %d:\n%s\nstderr:\n%s", len(got), len(langFuncs), stdout, stderr)
	}
	t.Logf("kiln job stderr:\n%s", jobTimes(stderr))
	return got, took
}

// jobTimes keeps the lines of kiln job's log that say what each
// function's build did and how long it took.
func jobTimes(stderr string) string {
	var b strings.Builder
	for line := range strings.Lines(stderr) {
		if strings.Contains(line, " built ") || strings.Contains(line, "pushed") || strings.HasPrefix(line, "kiln:") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// TestKilnJobLanguages: kiln job builds a Go, a Java, a Node and a Python
// function of one stack in the executor image `kiln executor image build
// --push` made; each image is in the registry, has the digest of a kiln
// build of the same source with the same toolchains (kiln build in a pod
// of the same image for every language, and on the host for Go and Node,
// whose toolchains are the image's), and answers when run. Then a one-line
// edit of each handler, built in new pods whose only cache is the cache
// repository, uploads per function its handler layer and its config.
func TestKilnJobLanguages(t *testing.T) {
	ctx := context.Background()
	executor := languageExecutorImage(t)
	dir := languagesProject(t)
	cacheRepo := reg.Host + "/kiln-test/lang-cache"

	cold, took := languageJob(t, ctx, dir, executor, cacheRepo)
	t.Logf("kiln job of %d functions, cold: %s", len(langFuncs), took.Round(time.Millisecond))

	refs := referenceBuilds(t, ctx, dir, executor)
	for _, f := range langFuncs {
		digest := cold[f.name][strings.IndexByte(cold[f.name], '@')+1:]
		if _, tagged, err := reg.ManifestDigest(ctx, "kiln-test/"+f.name, "1"); err != nil || tagged != digest {
			t.Errorf("%s: the registry's tag is %s (%v), kiln job printed %s", f.name, tagged, err, cold[f.name])
		}
		if refs[f.name] != digest {
			t.Errorf("%s: kiln build in the executor image gave %s, kiln job %s", f.name, refs[f.name], digest)
		}
		if f.hostMatches {
			if host := hostBuild(t, ctx, dir, f.name); host != digest {
				t.Errorf("%s: kiln build on the host gave %s, kiln job %s", f.name, host, digest)
			}
		}
	}
	for _, f := range langFuncs {
		if body := runFunction(t, ctx, cold[f.name]); !strings.Contains(body, f.answer) {
			t.Errorf("%s answered %q, want %q in it", f.name, body, f.answer)
		}
	}

	before := map[string]*registrytest.Manifest{}
	for _, f := range langFuncs {
		m, err := reg.Manifest(ctx, "kiln-test/"+f.name, "1")
		if err != nil {
			t.Fatal(err)
		}
		before[f.name] = m
		editFile(t, filepath.Join(dir, f.name, f.file), f.old, f.new)
	}
	mark := reg.Mark()
	edited, took := languageJob(t, ctx, dir, executor, cacheRepo)
	t.Logf("kiln job of %d functions after a one-line edit each, in new pods: %s", len(langFuncs), took.Round(time.Millisecond))
	reqs, err := reg.Since(ctx, mark)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range langFuncs {
		checkEditUploads(t, ctx, f, before[f.name], reqs, cacheRepo)
		if body := runFunction(t, ctx, edited[f.name]); !strings.Contains(body, f.edited) {
			t.Errorf("%s answered %q after the edit, want %q in it", f.name, body, f.edited)
		}
	}
}

// checkEditUploads checks what the registry received for f after the
// edit: in f's repository its new build context (kiln job's source
// artifact), the image's config and, unless mounted from the cache
// repository, its one new layer; in the cache repository that layer at
// most once; and it logs the bytes.
func checkEditUploads(t *testing.T, ctx context.Context, f langFunc, before *registrytest.Manifest, reqs []registrytest.Request, cacheRepo string) {
	t.Helper()
	repo := "kiln-test/" + f.name
	after, err := reg.Manifest(ctx, repo, "1")
	if err != nil {
		t.Fatal(err)
	}
	var changed []registrytest.Descriptor
	for _, l := range after.Layers {
		if !slices.ContainsFunc(before.Layers, func(b registrytest.Descriptor) bool { return b.Digest == l.Digest }) {
			changed = append(changed, l)
		}
	}
	if len(changed) != 1 {
		t.Errorf("%s: the edit changed %d layers (%v), want 1", f.name, len(changed), changed)
		return
	}
	layer := changed[0]
	// The build context kiln job pushed: the tag context-… it put.
	source := map[string]int64{}
	for _, q := range reqs {
		if to, ref, ok := q.ManifestPut(); ok && to == repo && strings.HasPrefix(ref, "context-") {
			m, err := reg.Manifest(ctx, repo, ref)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range append([]registrytest.Descriptor{m.Config}, m.Layers...) {
				source[d.Digest] = d.Size
			}
		}
	}
	cache := strings.TrimPrefix(cacheRepo, reg.Host+"/")
	var image, sources, other []string
	var imageBytes, contextBytes int64
	layerUploads := 0
	for _, q := range reqs {
		to, d, ok := q.BlobUpload()
		switch {
		case !ok || (to != repo && to != cache):
		case d == layer.Digest:
			layerUploads++
			imageBytes += layer.Size
		case to == repo && d == after.Config.Digest:
			image = append(image, d)
			imageBytes += after.Config.Size
		case to == repo && source[d] > 0:
			sources = append(sources, d)
			contextBytes += source[d]
		case to == repo:
			other = append(other, d)
		}
	}
	if layerUploads != 1 || len(image) != 1 || len(other) > 0 {
		t.Errorf("%s: the edit uploaded its new layer %d times and its config %d times (want once each), and %v besides its build context\n%s",
			f.name, layerUploads, len(image), other, registrytest.Summary(reqs))
	}
	t.Logf("%s: the edit uploaded %d bytes of image: its new layer (%d bytes) and config (%d bytes); and %d bytes of build context in %d blobs",
		f.name, imageBytes, layer.Size, after.Config.Size, contextBytes, len(sources))
}

// editFile replaces old by new, once, in the file at path.
func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// referenceBuilds runs kiln build (not the executor) on each function of
// the project in dir, in one pod of the executor image, with empty caches
// and no cache repository, and returns each function's image digest.
func referenceBuilds(t *testing.T, ctx context.Context, dir, executor string) map[string]string {
	t.Helper()
	src, out := t.TempDir(), t.TempDir()
	if err := os.CopyFS(src, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	shareWithExecutor(t, src)
	shareWithExecutor(t, out)
	var script []string
	for _, f := range langFuncs {
		script = append(script, "kiln build -f stack.yml --filter "+f.name+" --output oci:/out/"+f.name+" --cache-dir /cache --progress plain")
	}
	uid, no := int64(65532), false
	hostPath := func(name, path string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}}
	}
	emptyDir := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	start := time.Now()
	runJobFor(t, ctx, jobNamespace, "reference", 12*time.Minute, corev1.PodSpec{
		HostNetwork: true,
		Containers: []corev1.Container{{
			Name: "build", Image: executor, WorkingDir: "/src",
			Command: []string{"sh", "-c", "set -e; " + strings.Join(script, "; ")},
			Env:     []corev1.EnvVar{{Name: "HOME", Value: "/tmp"}},
			SecurityContext: &corev1.SecurityContext{
				RunAsUser: &uid, RunAsGroup: &uid, AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: ptr(true),
				Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
			VolumeMounts: []corev1.VolumeMount{{Name: "src", MountPath: "/src"}, {Name: "out", MountPath: "/out"}, {Name: "tmp", MountPath: "/tmp"}, {Name: "cache", MountPath: "/cache"}},
		}},
		Volumes: []corev1.Volume{hostPath("src", src), hostPath("out", out), emptyDir("tmp"), emptyDir("cache")},
	})
	t.Logf("kiln build of the %d functions in one pod of the executor image: %s", len(langFuncs), time.Since(start).Round(time.Millisecond))
	digests := map[string]string{}
	for _, f := range langFuncs {
		digests[f.name] = layoutDigest(t, filepath.Join(out, f.name))
	}
	return digests
}

func ptr[T any](v T) *T { return &v }

// hostCache is the environment of the reference builds on the host: a
// cache kept between runs under .cache/, so that a second run downloads
// nothing. The builds under test start from empty caches.
func hostCache() []string {
	return []string{"KILN_CACHE_DIR=" + filepath.Join(repoRoot, ".cache", "cluster-host")}
}

// hostBuild builds function fn of the project in dir with the kiln under
// test on the host and returns its digest.
func hostBuild(t *testing.T, ctx context.Context, dir, fn string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "layout")
	if _, stderr, err := kiln(t, ctx, dir, hostCache(), "build", "-f", "stack.yml", "--filter", fn, "--output", "oci:"+out, "--progress", "plain"); err != nil {
		t.Fatalf("kiln build of %s on the host: %v\n%s", fn, err, stderr)
	}
	return layoutDigest(t, out)
}

// layoutDigest is the digest of the one image of an OCI layout.
func layoutDigest(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(b, &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("%s/index.json: %v, %d manifests, want 1", dir, err, len(index.Manifests))
	}
	return index.Manifests[0].Digest
}

// shareWithExecutor gives dir, a t.TempDir, to the executor's user
// (65532), for a pod that mounts it from the node.
func shareWithExecutor(t *testing.T, dir string) {
	t.Helper()
	chownTree(t, dir, 65532)
	// t.TempDir's parent is root's alone.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
}

// chownTree gives every file under dir to uid and the group of that
// number, as a volume the executor's user writes to.
func chownTree(t *testing.T, dir string, uid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// runFunction runs image with kiln run, on a free port of 127.0.0.1,
// and returns what it answers to a GET of /.
func runFunction(t *testing.T, ctx context.Context, image string) string {
	t.Helper()
	port, err := registrytest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kilnBin, "run", image, "--port", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "DOCKER_CONFIG="+home, "KILN_CACHE_DIR="+filepath.Join(home, "cache"))
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b)
			}
		}
		select {
		case <-ctx.Done():
			t.Errorf("%s did not answer on %s: %v\n%s", image, url, err, log.String())
			return ""
		case <-time.After(250 * time.Millisecond):
		}
	}
}
