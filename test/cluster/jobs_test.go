//go:build cluster

package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	jobTimeout   = 2 * time.Minute
	buildTimeout = 5 * time.Minute
)

// TestJobCompletes: a Job running busybox, pulled from the test registry,
// completes and its pod's log is what it printed.
func TestJobCompletes(t *testing.T) {
	ctx := context.Background()
	job := runJob(t, ctx, "busybox", corev1.Container{
		Name:    "main",
		Image:   busybox,
		Command: []string{"sh", "-c", "echo smoke-ok from $(hostname)"},
	})
	pod := jobPod(t, ctx, job)
	logs, err := cluster.Client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading %s's log: %v", pod.Name, err)
	}
	if want := "smoke-ok from " + pod.Name + "\n"; string(logs) != want {
		t.Errorf("log = %q, want %q", logs, want)
	}
}

// TestKilnImageJob: an image kiln built from a Dockerfile context (FROM
// scratch, COPY of a static binary) and pushed to the test registry runs as
// a Job, and the message it wrote to /dev/termination-log comes back in the
// pod's status, which is how kiln job reads a build's digest.
func TestKilnImageJob(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, f := range []string{"Dockerfile", "main.go"} {
		b, err := os.ReadFile(filepath.Join("testdata", "termination", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gobuild := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(dir, "termination"), "./main.go")
	gobuild.Dir, gobuild.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GO111MODULE=off")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	image := kilnBuild(t, ctx, dir, reg.Host+"/kiln-test/termination:1")

	const msg = "built by kiln, run by kubelet"
	job := runJob(t, ctx, "kiln-image", corev1.Container{Name: "main", Image: image, Args: []string{msg}})
	pod := jobPod(t, ctx, job)
	if len(pod.Status.ContainerStatuses) != 1 || pod.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("pod %s: container statuses %+v, want one terminated container", pod.Name, pod.Status.ContainerStatuses)
	}
	st := pod.Status.ContainerStatuses[0]
	if got := st.State.Terminated.Message; got != msg {
		t.Errorf("termination message = %q, want %q", got, msg)
	}
	if _, digest, _ := strings.Cut(image, "@"); !strings.HasSuffix(st.ImageID, digest) {
		t.Errorf("the pod ran image %s, want %s", st.ImageID, image)
	}
}

// kilnBuild builds the Dockerfile context dir with bin/kiln, pushes it as
// ref and returns NAME@DIGEST.
func kilnBuild(t *testing.T, ctx context.Context, dir, ref string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	docker := t.TempDir()
	cmd := exec.CommandContext(ctx, kilnBin, "build", dir, "--lang", "dockerfile", "--image", ref, "--push",
		"--cache-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+docker, "XDG_CONFIG_HOME="+docker)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kiln build: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	for line := range strings.Lines(stdout.String()) {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[len(f)-1], "@sha256:") {
			return f[len(f)-1]
		}
	}
	t.Fatalf("kiln build printed no NAME@DIGEST:\n%s", stdout.String())
	return ""
}

// runJob runs a Job of one container in the default namespace to
// completion; a failed or stuck Job fails the test with its pod's state.
func runJob(t *testing.T, ctx context.Context, name string, c corev1.Container) *batchv1.Job {
	t.Helper()
	return runJobIn(t, ctx, metav1.NamespaceDefault, name, corev1.PodSpec{Containers: []corev1.Container{c}})
}

// runJobIn is runJob with a whole pod spec, in namespace ns.
func runJobIn(t *testing.T, ctx context.Context, ns, name string, spec corev1.PodSpec) *batchv1.Job {
	t.Helper()
	return runJobFor(t, ctx, ns, name, jobTimeout, spec)
}

// runJobFor is runJobIn for a Job that may take up to timeout.
func runJobFor(t *testing.T, ctx context.Context, ns, name string, timeout time.Duration, spec corev1.PodSpec) *batchv1.Job {
	t.Helper()
	var backoff int32
	spec.RestartPolicy = corev1.RestartPolicyNever
	for i := range spec.Containers {
		spec.Containers[i].ImagePullPolicy = corev1.PullIfNotPresent
	}
	job, err := cluster.Client.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-"},
		Spec: batchv1.JobSpec{
			BackoffLimit: &backoff,
			Template:     corev1.PodTemplateSpec{Spec: spec},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating job %s: %v", name, err)
	}
	return waitJob(t, ctx, job, timeout)
}

// waitJob waits up to timeout for job to complete; a failed or stuck Job
// fails the test with its pod's state.
func waitJob(t *testing.T, ctx context.Context, job *batchv1.Job, timeout time.Duration) *batchv1.Job {
	t.Helper()
	var err error
	deadline := time.Now().Add(timeout)
	for {
		job, err = cluster.Client.BatchV1().Jobs(job.Namespace).Get(ctx, job.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cond := range job.Status.Conditions {
			if cond.Status != corev1.ConditionTrue {
				continue
			}
			switch cond.Type {
			case batchv1.JobComplete:
				return job
			case batchv1.JobFailed:
				t.Fatalf("job %s failed: %s: %s\n%s", job.Name, cond.Reason, cond.Message, podState(ctx, job))
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s not complete within %s\n%s", job.Name, timeout, podState(ctx, job))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jobPod returns the one pod of job.
func jobPod(t *testing.T, ctx context.Context, job *batchv1.Job) *corev1.Pod {
	t.Helper()
	pods, err := cluster.Client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job.Name})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 {
		t.Fatalf("job %s has %d pods, want 1", job.Name, len(pods.Items))
	}
	return &pods.Items[0]
}

// podState describes job's pods' phases and container states, for a
// failure message.
func podState(ctx context.Context, job *batchv1.Job) string {
	pods, err := cluster.Client.CoreV1().Pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "job-name=" + job.Name})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "pod %s: %s %s\n", p.Name, p.Status.Phase, p.Status.Message)
		for _, s := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "  %s: waiting=%+v terminated=%+v\n", s.Name, s.State.Waiting, s.State.Terminated)
		}
		tail := int64(40)
		if log, err := cluster.Client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx); err == nil {
			fmt.Fprintf(&b, "  log:\n%s", log)
		}
	}
	events, err := cluster.Client.CoreV1().Events(job.Namespace).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, e := range events.Items {
			fmt.Fprintf(&b, "event %s %s: %s\n", e.InvolvedObject.Name, e.Reason, e.Message)
		}
	}
	return b.String()
}

// TestHostNetworkReachesRegistry: a pod with hostNetwork, in a namespace
// without a Pod Security label, reaches the test registry on the host's
// 127.0.0.1, as a kiln build Job pushing there must; pods without it reach
// nothing outside their own network namespace.
func TestHostNetworkReachesRegistry(t *testing.T) {
	ctx := context.Background()
	const ns = "kiln-host-network"
	if err := cluster.Namespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	job := runJobIn(t, ctx, ns, "wget", corev1.PodSpec{
		HostNetwork: true,
		Containers: []corev1.Container{{
			Name:    "main",
			Image:   busybox,
			Command: []string{"busybox", "wget", "-q", "-O", "-", "http://" + reg.Host + "/v2/"},
		}},
	})
	pod := jobPod(t, ctx, job)
	logs, err := cluster.Client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading %s's log: %v", pod.Name, err)
	}
	if want := "{}"; strings.TrimSpace(string(logs)) != want {
		t.Errorf("GET /v2/ from the pod = %q, want %q", logs, want)
	}
}
