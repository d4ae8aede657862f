//go:build cluster

package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kiln-build/kiln/job"
	"github.com/kiln-build/kiln/test/cluster/kube"
	"github.com/kiln-build/kiln/test/registrytest"
)

// jobNamespace is where kiln job's tests run their Jobs: unlabelled, so
// that the pods may use the host's network to reach the test registry.
const jobNamespace = "kiln-job"

var (
	executorOnce  sync.Once
	executorImage string
	executorErr   error
)

// kilnExecutorImage pushes an image holding only the kiln under test at
// /kaniko/executor, as kiln's executor images have it, and returns it by
// digest; it makes the namespace of kiln job's tests too. A Dockerfile
// context needs nothing more.
func kilnExecutorImage(t *testing.T) string {
	t.Helper()
	executorOnce.Do(func() { executorImage, executorErr = makeExecutorImage(context.Background()) })
	if executorErr != nil {
		t.Fatal(executorErr)
	}
	return executorImage
}

func makeExecutorImage(ctx context.Context) (string, error) {
	bin, err := os.ReadFile(kilnBin)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"kaniko/", "kaniko/.docker/", "tmp/", "cache/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}); err != nil {
			return "", err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "kaniko/executor", Mode: 0o755, Size: int64(len(bin))}); err != nil {
		return "", err
	}
	if _, err := tw.Write(bin); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/kaniko/executor"}, User: "65532", Env: []string{"HOME=/tmp", "DOCKER_CONFIG=/kaniko/.docker"}})
	if err != nil {
		return "", err
	}
	ref, err := name.ParseReference(reg.Host + "/kiln-test/executor:job")
	if err != nil {
		return "", err
	}
	if err := remote.Write(ref, img, remote.WithContext(ctx)); err != nil {
		return "", fmt.Errorf("pushing the executor image: %w", err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	if err := cluster.Namespace(ctx, jobNamespace, nil); err != nil {
		return "", err
	}
	return ref.Context().Digest(d.String()).String(), nil
}

// TestKilnJobRestricted: the Job kiln job makes for a language build, with
// every option but the test's host network, is admitted by a server-side
// dry run in a namespace that enforces the restricted Pod Security
// Standard.
func TestKilnJobRestricted(t *testing.T) {
	ctx := context.Background()
	d, err := name.NewDigest(reg.Host + "/kiln-test/hello@sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	s := job.Settings{
		Namespace: "kiln-restricted", ExecutorImage: busybox, TTL: time.Minute, Deadline: time.Minute,
		BackoffLimit: 1, CPU: "100m", Memory: "256Mi", MemoryLimit: "512Mi", CPULimit: "1",
		ImagePullSecret: "pull", DockerConfigSecret: "push",
		DependencySecrets: map[string]string{".npmrc": "npm", "pip.conf": "pip", "settings.xml": "maven"},
	}
	j, err := job.New(job.Build{Function: "hello", Image: reg.Host + "/kiln-test/hello:1", Context: d, Lang: "golang-middleware"}, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.CheckRestricted(ctx, j.Spec.Template.Spec); err != nil {
		t.Errorf("CheckRestricted(kiln job's pod) = %v, want admitted", err)
	}
}

// writeFiles writes files (path: content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dockerfileProject writes a stack of Dockerfile functions (FROM scratch
// and COPY: no RUN, so kiln alone builds them) whose images go to
// registry host, and returns the project's folder.
func dockerfileProject(t *testing.T, host string, fns ...string) string {
	t.Helper()
	dir := t.TempDir()
	stack := "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n"
	files := map[string]string{}
	for _, fn := range fns {
		stack += fmt.Sprintf("  %s:\n    lang: dockerfile\n    handler: ./%s\n    image: %s/kiln-test/%s:1\n", fn, fn, host, fn)
		files[fn+"/Dockerfile"] = "FROM scratch\nCOPY index.html greeting.txt /www/\nLABEL purpose=kiln-job-test\n"
		files[fn+"/index.html"] = "<p>" + fn + ", built in a Job</p>\n"
		files[fn+"/greeting.txt"] = "hello\n"
	}
	files["stack.yml"] = stack
	writeFiles(t, dir, files)
	return dir
}

// kiln runs the kiln under test in dir with a config folder and docker
// config of the test's own, and returns its stdout and stderr.
func kiln(t *testing.T, ctx context.Context, dir string, env []string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, kilnBin, args...)
	home := t.TempDir()
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "DOCKER_CONFIG="+home, "KILN_CACHE_DIR="+filepath.Join(home, "cache"))
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// kilnJob runs kiln job in the test namespace with the test executor.
func kilnJob(t *testing.T, ctx context.Context, dir string, env []string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	args = append([]string{"job", "-f", "stack.yml", "--kubeconfig", cluster.Kubeconfig, "--namespace", jobNamespace,
		"--executor-image", kilnExecutorImage(t), "--host-network", "--deadline", "3m", "--progress", "plain"}, args...)
	return kiln(t, ctx, dir, env, args...)
}

// TestKilnJobDockerfile: kiln job builds a Dockerfile function in a Job,
// the image is in the registry under the digest it printed, the same
// digest a local kiln build of the same source gives, and the pod's log
// came back with the function's name as prefix.
func TestKilnJobDockerfile(t *testing.T) {
	ctx := context.Background()
	// In the order kiln reads stack functions: by name.
	fns := []string{"api", "web"}
	dir := dockerfileProject(t, reg.Host, fns...)
	start := time.Now()
	stdout, stderr, err := kilnJob(t, ctx, dir, nil, "--parallel", "2")
	if err != nil {
		t.Fatalf("kiln job: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	t.Logf("kiln job of %d functions took %s", len(fns), time.Since(start).Round(time.Millisecond))
	got := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(got) != len(fns) {
		t.Fatalf("kiln job printed %q, want a line per function\nstderr:\n%s", got, stderr)
	}
	for i, fn := range fns {
		repo := reg.Host + "/kiln-test/" + fn
		digest, ok := strings.CutPrefix(got[i], repo+"@")
		if !ok {
			t.Errorf("kiln job's line %d is %q, want %s@sha256:…", i+1, got[i], repo)
		}
		if !strings.Contains(stderr, "\n"+fn+" | ") {
			t.Errorf("kiln job's stderr has no log line prefixed with %s:\n%s", fn, stderr)
		}
		if _, tagged, err := reg.ManifestDigest(ctx, "kiln-test/"+fn, "1"); err != nil || tagged != digest {
			t.Errorf("the registry's kiln-test/%s:1 is %s, %v; kiln job printed %s", fn, tagged, err, got[i])
		}
	}
	local, lerr, err := kiln(t, ctx, dir, nil, "build", "-f", "stack.yml", "--progress", "plain")
	if err != nil {
		t.Fatalf("kiln build: %v\n%s", err, lerr)
	}
	if l := strings.Split(strings.TrimSpace(local), "\n"); strings.Join(l, "\n") != strings.Join(got, "\n") {
		t.Errorf("a local kiln build gave\n%s\nthe Jobs\n%s\nwant the same digests", local, stdout)
	}
	jobs, err := cluster.Client.BatchV1().Jobs(jobNamespace).List(ctx, metav1.ListOptions{LabelSelector: job.LabelFunction + "=web"})
	if err != nil || len(jobs.Items) == 0 {
		t.Fatalf("no Job of web left to inspect: %v", err)
	}
	if ttl := jobs.Items[0].Spec.TTLSecondsAfterFinished; ttl == nil || *ttl != 600 {
		t.Errorf("the Job's ttlSecondsAfterFinished = %v, want 600", ttl)
	}
}

// oneLineError checks that a failed kiln job exited 1 with one line on
// stderr that names the function and holds each of want.
func oneLineError(t *testing.T, stdout, stderr string, err error, fn string, want ...string) {
	t.Helper()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("kiln job = %v, want exit code 1\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	var last string
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, "kiln: ") {
			last = line
		}
	}
	if last == "" || !strings.HasPrefix(last, "kiln: "+fn+": job ") || strings.Count(strings.TrimSpace(stderr[strings.Index(stderr, last):]), "\n") != 0 {
		t.Fatalf("kiln job's error is not one last line naming %s:\n%s", fn, stderr)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("kiln job's error %q lacks %q", last, w)
		}
	}
	t.Logf("error line: %s", strings.TrimSpace(last))
}

// TestKilnJobOOMKilled: a build pod killed by its memory limit is one
// line saying OOMKilled and the limit.
func TestKilnJobOOMKilled(t *testing.T) {
	ctx := context.Background()
	dir := dockerfileProject(t, reg.Host, "oom")
	// kiln streams files: what fills its memory is a label of 24 MiB,
	// which the Dockerfile's parse, the image config and its JSON hold.
	writeFiles(t, dir, map[string]string{"oom/Dockerfile": "FROM scratch\nLABEL big=" + strings.Repeat("a", 24<<20) + "\nCOPY index.html /\n"})
	const limit = "16Mi"
	stdout, stderr, err := kilnJob(t, ctx, dir, nil, "--memory-limit", limit, "--backoff-limit", "0")
	oneLineError(t, stdout, stderr, err, "oom", "OOMKilled", "memory limit "+limit)
}

// TestKilnJobBadCredential: the Secret's credential for a registry that
// requires one is wrong (the context was pushed with a good one): the
// build fails in one line that says why, from the pod's log.
func TestKilnJobBadCredential(t *testing.T) {
	ctx := context.Background()
	secure, err := registrytest.Start(ctx, t.TempDir(), registrytest.WithHtpasswd("kiln", "right"))
	if err != nil {
		t.Fatal(err)
	}
	defer secure.Close()
	dir := dockerfileProject(t, secure.Host, "locked")
	config := func(password string) []byte {
		auth := base64.StdEncoding.EncodeToString([]byte("kiln:" + password))
		b, _ := json.Marshal(map[string]any{"auths": map[string]any{secure.Host: map[string]string{"auth": auth}}})
		return b
	}
	docker := t.TempDir()
	if err := os.WriteFile(filepath.Join(docker, "config.json"), config("right"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "wrong-password", Namespace: jobNamespace},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{corev1.DockerConfigJsonKey: config("wrong")},
	}
	kilnExecutorImage(t)
	if _, err := cluster.Client.CoreV1().Secrets(jobNamespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := kilnJob(t, ctx, dir, []string{"DOCKER_CONFIG=" + docker}, "--docker-config-secret", "wrong-password", "--backoff-limit", "0")
	oneLineError(t, stdout, stderr, err, "locked", "BackoffLimitExceeded", "exit code 1", "UNAUTHORIZED")
}

// TestKilnJobMissingContext: a Job whose context is not in the registry
// (deleted, or never pushed) fails in one line that says so.
func TestKilnJobMissingContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	d, err := name.NewDigest(reg.Host + "/kiln-test/gone@sha256:" + strings.Repeat("0d", 32))
	if err != nil {
		t.Fatal(err)
	}
	s := job.Settings{Namespace: jobNamespace, ExecutorImage: kilnExecutorImage(t), TTL: time.Minute, Deadline: 2 * time.Minute, HostNetwork: true}
	j, err := job.New(job.Build{Function: "gone", Image: reg.Host + "/kiln-test/gone:1", Context: d}, s)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	_, err = job.NewRunner(cluster.Client, &logs).Run(ctx, "gone", j)
	var f *job.Failure
	if !errors.As(err, &f) || f.Reason != "BackoffLimitExceeded" || !strings.Contains(err.Error(), "MANIFEST_UNKNOWN") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Run(a missing context) = %v, want one line saying the context is unknown\nlogs:\n%s", err, logs.String())
	}
	t.Logf("error line: %s", err)
}

// TestKilnJobYAML: the Jobs kiln job --output yaml prints, for two
// functions, run as they are once applied: the contexts they name were
// pushed, and nothing was created in the cluster by printing them.
func TestKilnJobYAML(t *testing.T) {
	ctx := context.Background()
	dir := dockerfileProject(t, reg.Host, "first", "second")
	stdout, stderr, err := kilnJob(t, ctx, dir, nil, "--output", "yaml")
	if err != nil {
		t.Fatalf("kiln job --output yaml: %v\n%s", err, stderr)
	}
	if jobs, err := cluster.Client.BatchV1().Jobs(jobNamespace).List(ctx, metav1.ListOptions{LabelSelector: job.LabelFunction + " in (first,second)"}); err != nil || len(jobs.Items) != 0 {
		t.Fatalf("kiln job --output yaml left %v Jobs in the cluster (%v), want none", len(jobs.Items), err)
	}
	docs := strings.Split(stdout, "---\n")
	if len(docs) != 2 {
		t.Fatalf("kiln job --output yaml printed %d documents, want 2:\n%s", len(docs), stdout)
	}
	var logs bytes.Buffer
	for i, fn := range []string{"first", "second"} {
		var j batchv1.Job
		if err := yaml.UnmarshalStrict([]byte(docs[i]), &j); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, buildTimeout)
		h, err := job.NewRunner(cluster.Client, &logs).Run(rctx, fn, &j)
		cancel()
		if err != nil {
			t.Fatalf("running the printed Job of %s: %v\n%s", fn, err, logs.String())
		}
		if _, tagged, err := reg.ManifestDigest(ctx, "kiln-test/"+fn, "1"); err != nil || tagged != h.String() {
			t.Errorf("%s: the registry has %s (%v), the Job reported %s", fn, tagged, err, h)
		}
	}
}

// TestKilnJobImagePull: an executor image that cannot be pulled fails the
// build at once, in one line, instead of at the Job's deadline.
func TestKilnJobImagePull(t *testing.T) {
	ctx := context.Background()
	kilnExecutorImage(t)
	dir := dockerfileProject(t, reg.Host, "nopull")
	start := time.Now()
	missing := reg.Host + "/kiln-test/no-such-executor@sha256:" + strings.Repeat("e", 64)
	stdout, stderr, err := kilnJob(t, ctx, dir, nil, "--executor-image", missing)
	oneLineError(t, stdout, stderr, err, "nopull", "not found")
	if !strings.Contains(stderr, "ErrImagePull") && !strings.Contains(stderr, "ImagePullBackOff") {
		t.Errorf("kiln job's error does not say the image could not be pulled:\n%s", stderr)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("kiln job took %s to give up, want well under its 3m deadline", d)
	}
	if jobs, err := cluster.Client.BatchV1().Jobs(jobNamespace).List(ctx, metav1.ListOptions{LabelSelector: job.LabelFunction + "=nopull"}); err != nil || len(jobs.Items) != 0 {
		t.Errorf("the stuck Job is left in the cluster (%v)", err)
	}
}

// TestKilnJobSecretsMounted: in a namespace enforcing the restricted Pod
// Security Standard, the pod of kiln job's spec (its image swapped for
// busybox, which prints what the executor would read) runs as uid 65532
// on a read-only root and reads the docker config and each dependency
// credential where the package managers' variables point.
func TestKilnJobSecretsMounted(t *testing.T) {
	ctx := context.Background()
	d, err := name.NewDigest(reg.Host + "/kiln-test/hello@sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	s := job.Settings{
		Namespace: kube.RestrictedNamespace, ExecutorImage: busybox, TTL: time.Minute, Deadline: time.Minute, DockerConfigSecret: "push",
		DependencySecrets: map[string]string{".npmrc": "npm", "pip.conf": "pip", "settings.xml": "maven"},
	}
	j, err := job.New(job.Build{Function: "hello", Image: reg.Host + "/kiln-test/hello:1", Context: d, Lang: "node20"}, s)
	if err != nil {
		t.Fatal(err)
	}
	// CheckRestricted makes the namespace.
	if err := cluster.CheckRestricted(ctx, j.Spec.Template.Spec); err != nil {
		t.Fatal(err)
	}
	for secret, kv := range map[string][2]string{
		"push": {corev1.DockerConfigJsonKey, `{"auths":{}}`}, "npm": {".npmrc", "//npm.example/:_authToken=n"},
		"pip": {"pip.conf", "[global]\nindex-url = https://pip.example/simple"}, "maven": {"settings.xml", "<settings/>"},
	} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret, Namespace: s.Namespace}, Data: map[string][]byte{kv[0]: []byte(kv[1])}}
		if secret == "push" {
			sec.Type = corev1.SecretTypeDockerConfigJson
		}
		if _, err := cluster.Client.CoreV1().Secrets(s.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	script := `id -u; cat /kaniko/.docker/config.json; echo; cat "$NPM_CONFIG_USERCONFIG"; echo; cat "$PIP_CONFIG_FILE"; echo; ` +
		`home=${MAVEN_OPTS#-Duser.home=}; cat "${home%% *}/.m2/settings.xml"; echo; touch /ro 2>/dev/null || echo read-only`
	spec := j.Spec.Template.Spec
	spec.Containers[0].Image, spec.Containers[0].Command, spec.Containers[0].Args = busybox, []string{"sh", "-c", script}, nil
	done := runJobIn(t, ctx, s.Namespace, "secrets", spec)
	pod := jobPod(t, ctx, done)
	logs, err := cluster.Client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := "65532\n{\"auths\":{}}\n//npm.example/:_authToken=n\n[global]\nindex-url = https://pip.example/simple\n<settings/>\nread-only\n"
	if string(logs) != want {
		t.Errorf("the pod read:\n%s\nwant:\n%s", logs, want)
	}
}
