//go:build cluster

package cluster

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kiln-build/kiln/executor"
)

// kanikoNamespace holds the kaniko manifest's objects: unlabelled, for
// its hostNetwork.
const kanikoNamespace = "kiln-kaniko"

// kanikoWorkspace is the Dockerfile context the kaniko Jobs build: FROM
// scratch and COPY, what a pod without privileges builds.
var kanikoWorkspace = map[string]string{
	"Dockerfile":   "FROM scratch\nCOPY index.html greeting.txt /www/\nLABEL built-by=kaniko-manifest\n",
	"index.html":   "<p>built by a kaniko Job manifest</p>\n",
	"greeting.txt": "hello\n",
}

// TestKanikoManifest: kaniko's own Job manifests (testdata/kaniko), a dir://
// and a tar:// context with the docker config Secret at /kaniko/.docker,
// applied unchanged but for the image, the registry and the workspace's
// folder, run kiln's executor image to completion and push the digest a
// kiln executor run on the host gives for the same context.
func TestKanikoManifest(t *testing.T) {
	ctx := context.Background()
	image := languageExecutorImage(t)
	workspace := t.TempDir()
	writeFiles(t, workspace, kanikoWorkspace)
	writeContextTar(t, filepath.Join(workspace, "context.tar.gz"), kanikoWorkspace)
	shareWithExecutor(t, workspace)

	raw, err := os.ReadFile(filepath.Join("testdata", "kaniko", "jobs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.NewReplacer("gcr.io/kaniko-project/executor:latest", image, "registry.example.com", reg.Host,
		"/srv/kaniko-workspace", workspace).Replace(string(raw))
	if err := cluster.Namespace(ctx, kanikoNamespace, nil); err != nil {
		t.Fatal(err)
	}
	var jobs []*batchv1.Job
	for _, doc := range strings.Split(manifest, "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatal(err)
		}
		switch meta.Kind {
		case "Secret":
			var s corev1.Secret
			if err := yaml.UnmarshalStrict([]byte(doc), &s); err != nil {
				t.Fatal(err)
			}
			if _, err := cluster.Client.CoreV1().Secrets(kanikoNamespace).Create(ctx, &s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case "Job":
			var j batchv1.Job
			if err := yaml.UnmarshalStrict([]byte(doc), &j); err != nil {
				t.Fatal(err)
			}
			created, err := cluster.Client.BatchV1().Jobs(kanikoNamespace).Create(ctx, &j, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, created)
		default:
			t.Fatalf("jobs.yaml: unexpected kind %q", meta.Kind)
		}
	}
	for _, j := range jobs {
		start := time.Now()
		waitJob(t, ctx, j, buildTimeout)
		t.Logf("%s: complete in %s", j.Name, time.Since(start).Round(time.Millisecond))
	}

	// The same contexts built by kiln's executor on the host.
	for _, tc := range []struct{ job, context string }{
		{"kaniko-dir", "dir://" + workspace},
		{"kaniko-tar", "tar://" + filepath.Join(workspace, "context.tar.gz")},
	} {
		local := reg.Host + "/kiln-test/" + tc.job + ":local"
		if _, stderr, err := kiln(t, ctx, t.TempDir(), hostCache(), "executor", "--dockerfile=Dockerfile", "--context="+tc.context, "--destination="+local); err != nil {
			t.Fatalf("kiln executor on the host: %v\n%s", err, stderr)
		}
		_, want, err := reg.ManifestDigest(ctx, "kiln-test/"+tc.job, "local")
		if err != nil || want == "" {
			t.Fatalf("the host's build of %s: %q, %v", tc.job, want, err)
		}
		if _, got, err := reg.ManifestDigest(ctx, "kiln-test/"+tc.job, "1"); err != nil || got != want {
			t.Errorf("%s pushed %s (%v), the host's kiln executor %s", tc.job, got, err, want)
		}
	}
}

// writeContextTar writes files as a gzipped tar, as kaniko users make a
// tar:// context.
func writeContextTar(t *testing.T, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, name := range []string{"Dockerfile", "index.html", "greeting.txt"} {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKanikoManifestRun: a kaniko Job whose Dockerfile RUNs, in a pod that
// allows no user namespace of its own (this node's containerd has no
// hostUsers: false), fails in seconds with one line that says what a pod
// needs for RUN, as kaniko's root user and as the executor image's, and
// pushes nothing.
func TestKanikoManifestRun(t *testing.T) {
	ctx := context.Background()
	image := languageExecutorImage(t)
	workspace := t.TempDir()
	writeFiles(t, workspace, map[string]string{"Dockerfile": "FROM " + busybox + "\nRUN echo built > /built.txt\n"})
	shareWithExecutor(t, workspace)
	if err := cluster.Namespace(ctx, kanikoNamespace, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		uid  *int64
	}{{"kaniko-run-as-root", ptr(int64(0))}, {"kaniko-run-as-image-user", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			var backoff int32
			job, err := cluster.Client.BatchV1().Jobs(kanikoNamespace).Create(ctx, &batchv1.Job{
				ObjectMeta: metav1.ObjectMeta{Name: tc.name},
				Spec: batchv1.JobSpec{BackoffLimit: &backoff, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					HostNetwork:   true,
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "kaniko", Image: image,
						Args:            []string{"--dockerfile=Dockerfile", "--context=dir:///workspace", "--destination=" + reg.Host + "/kiln-test/" + tc.name + ":1"},
						SecurityContext: &corev1.SecurityContext{RunAsUser: tc.uid},
						VolumeMounts:    []corev1.VolumeMount{{Name: "workspace", MountPath: "/workspace"}},
					}},
					Volumes: []corev1.Volume{{Name: "workspace", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: workspace}}}},
				}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(buildTimeout)
			for job.Status.Failed == 0 {
				if job.Status.Succeeded > 0 || time.Now().After(deadline) {
					t.Fatalf("the Job did not fail within %s: %+v\n%s", buildTimeout, job.Status, podState(ctx, job))
				}
				time.Sleep(250 * time.Millisecond)
				if job, err = cluster.Client.BatchV1().Jobs(kanikoNamespace).Get(ctx, job.Name, metav1.GetOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			pods, err := cluster.Client.CoreV1().Pods(kanikoNamespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/controller-uid=" + string(job.UID)})
			if err != nil || len(pods.Items) != 1 {
				t.Fatalf("the Job's pods: %v, %d, want 1", err, len(pods.Items))
			}
			log, err := cluster.Client.CoreV1().Pods(kanikoNamespace).GetLogs(pods.Items[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(log)), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "kiln: ") || !strings.Contains(last, "RUN echo built") || !strings.HasSuffix(last, "("+executor.RunNeeds+")") {
				t.Errorf("the pod's last log line is %q, want kiln's error naming the step and ending (%s)", last, executor.RunNeeds)
			}
			t.Logf("%s", last)
			if status, _, err := reg.ManifestDigest(ctx, "kiln-test/"+tc.name, "1"); err != nil || status != http.StatusNotFound {
				t.Errorf("the registry answers %d (%v) for the failed build's image, want 404", status, err)
			}
		})
	}
}
