//go:build cluster

package cluster

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kiln-build/kiln/test/registrytest"
)

// builderNamespace holds the builder's Deployment: unlabelled, for its
// hostNetwork.
const builderNamespace = "kiln-builder"

// TestBuilderDeployment: kiln builder serve, run from the executor image
// as the Deployment of testdata/builder, builds the request faas-cli's
// remote builder sends (a tar of its build folder, signed with
// HMAC-SHA256 of the payload secret) for a golang-middleware function and
// answers NAME@sha256:…, which the registry holds and which kiln executor
// on the host gives for the same handler; a request whose signature was
// tampered with gets 401 and pushes nothing.
func TestBuilderDeployment(t *testing.T) {
	ctx := context.Background()
	image := languageExecutorImage(t)
	port, err := registrytest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	const secret = "a payload secret"
	raw, err := os.ReadFile(filepath.Join("testdata", "builder", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.NewReplacer("kiln-executor:all", image, "8080", strconv.Itoa(port), "hmac-secret", secret).Replace(string(raw))
	if err := cluster.Namespace(ctx, builderNamespace, nil); err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(manifest, "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("deployment.yaml has %d documents, want a Secret and a Deployment", len(docs))
	}
	var s corev1.Secret
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &s); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[1]), &d); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.CoreV1().Secrets(builderNamespace).Create(ctx, &s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client.AppsV1().Deployments(builderNamespace).Create(ctx, &d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Its pod holds a port of the node's network and a share of its CPU.
		background := metav1.DeletePropagationBackground
		if err := cluster.Client.AppsV1().Deployments(builderNamespace).Delete(ctx, d.Name, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil {
			t.Errorf("deleting the builder's Deployment: %v", err)
		}
	})
	start := time.Now()
	waitAvailable(t, ctx, builderNamespace, d.Name)
	t.Logf("the builder's Deployment was available in %s", time.Since(start).Round(time.Millisecond))

	fn := filepath.Join(repoRoot, "testdata", "functions", "go-hello")
	url := fmt.Sprintf("http://127.0.0.1:%d/build", port)

	tampered := reg.Host + "/kiln-test/remote-tampered:1"
	body := faasBuildTar(t, fn, "golang-middleware", tampered)
	sig := []byte(signBody(body, secret))
	sig[len(sig)-1] ^= 1
	if status, reply := postBuild(t, url, body, string(sig)); status != http.StatusUnauthorized {
		t.Errorf("a tampered signature: %d %s, want 401", status, reply)
	}
	if status, _, err := reg.ManifestDigest(ctx, "kiln-test/remote-tampered", "1"); err != nil || status != http.StatusNotFound {
		t.Errorf("after the refused request the registry's %s is %d (%v), want 404", tampered, status, err)
	}

	dest := reg.Host + "/kiln-test/remote-go:1"
	body = faasBuildTar(t, fn, "golang-middleware", dest)
	start = time.Now()
	status, reply := postBuild(t, url, body, signBody(body, secret))
	t.Logf("the remote build took %s", time.Since(start).Round(time.Millisecond))
	var res struct{ Image, Status, Error string }
	if err := json.Unmarshal(reply, &res); status != http.StatusOK || err != nil || res.Status != "success" {
		t.Fatalf("POST /build: %d %s (%v), want 200 and status success\n%s", status, reply, err, deploymentLog(ctx, builderNamespace))
	}
	digest, ok := strings.CutPrefix(res.Image, reg.Host+"/kiln-test/remote-go@")
	if !ok || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("the reply's image is %q, want %s/kiln-test/remote-go@sha256:…", res.Image, reg.Host)
	}
	if status, _, err := reg.ManifestDigest(ctx, "kiln-test/remote-go", digest); err != nil || status != http.StatusOK {
		t.Errorf("the registry answers %d (%v) for %s, want 200", status, err, res.Image)
	}
	local := reg.Host + "/kiln-test/remote-go:local"
	if _, stderr, err := kiln(t, ctx, t.TempDir(), hostCache(), "executor", "--context=dir://"+fn, "--lang=golang-middleware", "--destination="+local); err != nil {
		t.Fatalf("kiln executor on the host: %v\n%s", err, stderr)
	}
	if _, want, err := reg.ManifestDigest(ctx, "kiln-test/remote-go", "local"); err != nil || want != digest {
		t.Errorf("kiln executor on the host gave %s (%v), the builder %s", want, err, digest)
	}
}

// waitAvailable waits for Deployment name to have an available replica.
func waitAvailable(t *testing.T, ctx context.Context, ns, name string) {
	t.Helper()
	deadline := time.Now().Add(jobTimeout)
	for {
		d, err := cluster.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.AvailableReplicas > 0 {
			return
		}
		if time.Now().After(deadline) {
			pods, _ := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			t.Fatalf("Deployment %s not available within %s: %+v\npods: %+v", name, jobTimeout, d.Status, pods.Items)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// faasBuildTar is the body faas-cli's remote builder sends for a function
// of lang with handler folder fn: faas-cli's build folder (template.yml,
// the handler under function/) under context/, then the config naming the
// image.
func faasBuildTar(t *testing.T, fn, lang, image string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"context/", "context/function/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	add("context/template.yml", []byte("language: "+lang+"\nfprocess: ./handler\n"))
	err := filepath.WalkDir(fn, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(fn, p)
		if err != nil {
			return err
		}
		add("context/function/"+filepath.ToSlash(rel), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := json.Marshal(map[string]string{"image": image})
	if err != nil {
		t.Fatal(err)
	}
	add("com.openfaas.docker.config", cfg)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// signBody is faas-cli's X-Build-Signature of body.
func signBody(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// postBuild sends a build request as faas-cli does and returns the status
// and the reply.
func postBuild(t *testing.T, url string, body []byte, signature string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Build-Signature", signature)
	client := http.Client{Timeout: buildTimeout}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, reply
}

// deploymentLog returns the logs of the pods of namespace ns.
func deploymentLog(ctx context.Context, ns string) string {
	pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		log, err := cluster.Client.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		fmt.Fprintf(&b, "pod %s (%v):\n%s", p.Name, err, log)
	}
	return b.String()
}
