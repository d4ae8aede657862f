package job

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeCluster is client-go's fake clientset with what the API server
// does on create (a name from generateName, a uid) and a stand-in for the
// Job controller that gives each created Job one pod in the state the
// test asks for.
func fakeCluster(t *testing.T, pod func(*corev1.Pod), job func(*fake.Clientset, *batchv1.Job) (update bool)) *fake.Clientset {
	t.Helper()
	c := fake.NewClientset()
	c.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		j := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job)
		if j.Name == "" {
			j.Name = j.GenerateName + "x7k2p"
		}
		j.UID = types.UID("uid-" + j.Name)
		return false, nil, nil
	})
	w, err := c.BatchV1().Jobs("builds").Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { w.Stop(); wg.Wait() })
	wg.Go(func() {
		for ev := range w.ResultChan() {
			j, ok := ev.Object.(*batchv1.Job)
			if ev.Type != "ADDED" || !ok {
				continue
			}
			ctx := context.Background()
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-abcde", Namespace: j.Namespace,
				Labels: map[string]string{"batch.kubernetes.io/controller-uid": string(j.UID)}}}
			pod(p)
			if _, err := c.CoreV1().Pods(j.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Error(err)
			}
			if job != nil && job(c, j) {
				if _, err := c.BatchV1().Jobs(j.Namespace).UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil {
					t.Error(err)
				}
			}
		}
	})
	return c
}

func testJob(t *testing.T) *batchv1.Job {
	j, err := New(sampleBuild(t, "go"), sampleSettings())
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func TestRunnerDigest(t *testing.T) {
	digest := "sha256:" + strings.Repeat("5e", 32)
	c := fakeCluster(t, func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
			Name: container, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", Message: digest + "\n"}},
		}}}
	}, func(_ *fake.Clientset, j *batchv1.Job) bool {
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
		return true
	})
	var logs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	h, err := NewRunner(c, &logs).Run(ctx, "hello", testJob(t))
	if err != nil || h.String() != digest {
		t.Fatalf("Run() = %v, %v, want %s", h, err, digest)
	}
	// client-go's fake answers every log request with "fake logs".
	if got := logs.String(); got != "hello | fake logs\n" {
		t.Errorf("logs = %q, want the pod's log prefixed with the function", got)
	}
}

func TestRunnerStuckPull(t *testing.T) {
	c := fakeCluster(t, func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: container, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "x"`}},
		}}}
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := NewRunner(c, &bytes.Buffer{}).Run(ctx, "hello", testJob(t))
	var f *Failure
	if !errors.As(err, &f) || f.Reason != "ImagePullBackOff" || f.Job != "builds/kiln-hello-4f5d0c1b2a-x7k2p" {
		t.Fatalf("Run() = %v, want an ImagePullBackOff Failure", err)
	}
	// A Job bound to wait until its deadline is not left behind.
	if jobs, _ := c.BatchV1().Jobs("builds").List(ctx, metav1.ListOptions{}); len(jobs.Items) != 0 {
		t.Errorf("jobs left: %d, want 0", len(jobs.Items))
	}
}

func TestRunnerBadDigest(t *testing.T) {
	c := fakeCluster(t, func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
			Name: container, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}},
		}}}
	}, func(_ *fake.Clientset, j *batchv1.Job) bool {
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := NewRunner(c, &bytes.Buffer{}).Run(ctx, "hello", testJob(t))
	if err == nil || !strings.Contains(err.Error(), "no image digest") {
		t.Fatalf("Run() = %v, want an error saying the termination message holds no digest", err)
	}
}

func TestRunnerJobDeleted(t *testing.T) {
	c := fakeCluster(t, func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: container, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		}}}
	}, func(c *fake.Clientset, j *batchv1.Job) bool {
		// Someone else deletes the Job while it runs.
		if err := c.BatchV1().Jobs(j.Namespace).Delete(context.Background(), j.Name, metav1.DeleteOptions{}); err != nil {
			t.Error(err)
		}
		return false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := NewRunner(c, &bytes.Buffer{}).Run(ctx, "hello", testJob(t))
	if err == nil || !strings.Contains(err.Error(), "was deleted before it ended") {
		t.Fatalf("Run() = %v, want an error saying the Job was deleted", err)
	}
}

// TestRunnerInterrupted: a Job whose build is interrupted (Ctrl-C) is
// deleted, not left running.
func TestRunnerInterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	started := make(chan struct{})
	c := fakeCluster(t, func(p *corev1.Pod) {
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
			Name: container, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
		}}}
		close(started)
	}, nil)
	runCtx, interrupt := context.WithCancel(ctx)
	go func() { <-started; time.Sleep(100 * time.Millisecond); interrupt() }()
	_, err := NewRunner(c, &bytes.Buffer{}).Run(runCtx, "hello", testJob(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run() = %v, want context.Canceled", err)
	}
	if jobs, _ := c.BatchV1().Jobs("builds").List(ctx, metav1.ListOptions{}); len(jobs.Items) != 0 {
		t.Errorf("jobs left: %d, want 0", len(jobs.Items))
	}
}

func TestCheckSecrets(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "push", Namespace: "builds"}, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte("{}")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "generic", Namespace: "builds"}, Data: map[string][]byte{"config.json": []byte("{}")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "npm", Namespace: "builds"}, Data: map[string][]byte{".npmrc": []byte("x")}},
	)
	for _, tc := range []struct {
		name string
		s    Settings
		want string
	}{
		{"present", Settings{DockerConfigSecret: "push", DependencySecrets: map[string]string{".npmrc": "npm"}}, ""},
		{"missing", Settings{DockerConfigSecret: "nope"}, "--docker-config-secret: no Secret nope in namespace builds"},
		{"generic docker config", Settings{DockerConfigSecret: "generic"}, "--docker-config-secret: Secret builds/generic has no key .dockerconfigjson"},
		{"wrong key", Settings{DependencySecrets: map[string]string{"pip.conf": "npm"}}, "--dependency-secret pip.conf: Secret builds/npm has no key pip.conf"},
		{"pull secret", Settings{ImagePullSecret: "nope"}, "--image-pull-secret: no Secret nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.Namespace = "builds"
			err := checkSecrets(ctx, c, tc.s)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkSecrets() = %v, want %q", err, tc.want)
			}
		})
	}
}
