package job

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// Runner runs Jobs and waits for the images they build.
type Runner struct {
	client Client
	// out receives every pod's log lines, prefixed; mu keeps lines whole.
	out io.Writer
	mu  sync.Mutex
	// margin is how long past a Job's deadline the Runner still waits
	// for the Job controller to say it failed.
	margin time.Duration
}

// NewRunner returns a Runner that talks to the cluster through client
// and writes the pods' logs to logs, each line prefixed with the
// function's name.
func NewRunner(client Client, logs io.Writer) *Runner {
	return &Runner{client: client, out: logs, margin: 2 * time.Minute}
}

// logGrace is how long log streams may go on after their Job ended.
const logGrace = 10 * time.Second

// tailLines is how many of a pod's last log lines a Failure reports.
const tailLines = 3

// Run creates job (with a random suffix after its name), streams its
// pods' logs and waits until it completes, then returns the image digest
// the executor wrote as its termination message. A Job that fails, or
// whose pod cannot start, is a *Failure; it is deleted when it is left
// running. A Job left behind by an interrupt is deleted too.
func (r *Runner) Run(ctx context.Context, fn string, job *batchv1.Job) (v1.Hash, error) {
	job = job.DeepCopy()
	job.GenerateName, job.Name = job.Name+"-", ""
	jobs := r.client.BatchV1().Jobs(job.Namespace)
	created, err := jobs.Create(ctx, job, metav1.CreateOptions{})
	if err != nil {
		return v1.Hash{}, fmt.Errorf("%s: creating its job in namespace %s: %w", fn, job.Namespace, err)
	}
	id := created.Namespace + "/" + created.Name
	deadline := time.Duration(*created.Spec.ActiveDeadlineSeconds) * time.Second
	wctx, cancel := context.WithTimeout(ctx, deadline+r.margin)
	defer cancel()
	// The log streams end with their containers; a stream the kubelet
	// leaves open is cut a while after the Job's end.
	lctx, stopLogs := context.WithCancel(wctx)
	w := &waiter{r: r, fn: fn, job: created, pods: map[string]corev1.Pod{}, streamed: map[string]bool{}}
	h, err := w.wait(wctx, lctx)
	ended := make(chan struct{})
	go func() { w.logs.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(logGrace):
	}
	stopLogs()
	<-ended
	if err == nil {
		return h, nil
	}
	var f *Failure
	switch {
	case errors.As(err, &f):
		f.Logs = w.tail()
		if !jobFinished(w.job) {
			r.delete(created)
		}
	case ctx.Err() != nil:
		r.delete(created)
	case wctx.Err() != nil:
		r.delete(created)
		err = &Failure{Function: fn, Job: id, Reason: "Timeout", Detail: fmt.Sprintf("no end after its deadline %s and %s more", deadline, r.margin), Logs: w.tail()}
	}
	return v1.Hash{}, err
}

// delete removes a Job and its pods, even when ctx is done.
func (r *Runner) delete(job *batchv1.Job) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	background := metav1.DeletePropagationBackground
	if err := r.client.BatchV1().Jobs(job.Namespace).Delete(ctx, job.Name, metav1.DeleteOptions{PropagationPolicy: &background}); err != nil && !apierrors.IsNotFound(err) {
		slog.WarnContext(ctx, "deleting a job", "job", job.Name, "err", err)
	}
}

func jobFinished(job *batchv1.Job) bool {
	failed, _, _ := jobFailed(job)
	return failed || jobComplete(job)
}

// waiter follows one Job: its state, its pods' last states (kept after
// the Job controller deletes them), their log streams.
type waiter struct {
	r        *Runner
	fn       string
	job      *batchv1.Job
	pods     map[string]corev1.Pod
	streamed map[string]bool
	logs     sync.WaitGroup

	mu    sync.Mutex
	lines []string
}

// wait watches the Job and its pods until the Job ends or is bound to
// fail; the pods' logs are streamed under logCtx.
func (w *waiter) wait(ctx, logCtx context.Context) (v1.Hash, error) {
	jobs := w.r.client.BatchV1().Jobs(w.job.Namespace)
	pods := w.r.client.CoreV1().Pods(w.job.Namespace)
	selector := "batch.kubernetes.io/controller-uid=" + string(w.job.UID)
	var jw, pw watch.Interface
	defer func() {
		for _, x := range []watch.Interface{jw, pw} {
			if x != nil {
				x.Stop()
			}
		}
	}()
	for {
		// A watch the server closes (they last minutes) is opened again,
		// the Job's from where it stood, the pods' from a fresh list.
		var err error
		if jw == nil {
			if jw, err = jobs.Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + w.job.Name, ResourceVersion: w.job.ResourceVersion}); err != nil {
				return v1.Hash{}, w.watchError(ctx, err)
			}
			// A Job deleted before the watch began sends it nothing.
			if _, err := jobs.Get(ctx, w.job.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return v1.Hash{}, w.deleted()
			}
		}
		if pw == nil {
			if pw, err = pods.Watch(ctx, metav1.ListOptions{LabelSelector: selector}); err != nil {
				return v1.Hash{}, w.watchError(ctx, err)
			}
		}
		select {
		case <-ctx.Done():
			return v1.Hash{}, ctx.Err()
		case ev, open := <-jw.ResultChan():
			if !open {
				jw = nil
				pause(ctx)
				continue
			}
			switch j := ev.Object.(type) {
			case *batchv1.Job:
				if ev.Type == watch.Deleted && !jobFinished(j) {
					return v1.Hash{}, w.deleted()
				}
				w.job = j
			case *metav1.Status:
				// An expired resource version: start from the Job as it is.
				j2, err := jobs.Get(ctx, w.job.Name, metav1.GetOptions{})
				if err != nil {
					return v1.Hash{}, w.watchError(ctx, err)
				}
				w.job = j2
				jw.Stop()
				jw = nil
			}
		case ev, open := <-pw.ResultChan():
			if !open {
				pw = nil
				pause(ctx)
				continue
			}
			if p, ok := ev.Object.(*corev1.Pod); ok {
				w.pods[p.Name] = *p
				w.follow(logCtx, p)
			}
		}
		if jobFinished(w.job) {
			w.catchUp(ctx, logCtx)
		}
		if done, h, err := w.check(); done {
			return h, err
		}
	}
}

func (w *waiter) deleted() error {
	return fmt.Errorf("%s: job %s/%s was deleted before it ended", w.fn, w.job.Namespace, w.job.Name)
}

// catchUp reads the Job's pods once it has ended: its status can come
// before their last updates, and a pod that ran too fast to be seen
// running has its log streamed now.
func (w *waiter) catchUp(ctx, logCtx context.Context) {
	list, err := w.r.client.CoreV1().Pods(w.job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/controller-uid=" + string(w.job.UID)})
	if err != nil {
		slog.DebugContext(ctx, "listing a job's pods", "job", w.job.Name, "err", err)
		return
	}
	for _, p := range list.Items {
		w.pods[p.Name] = p
		w.follow(logCtx, &p)
	}
}

// pause waits a little before a closed watch is opened again: a server
// that refuses watches (an error event, then the end) is not hammered.
func pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(200 * time.Millisecond):
	}
}

func (w *waiter) watchError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%s: watching job %s/%s: %w", w.fn, w.job.Namespace, w.job.Name, err)
}

// check says whether the Job has ended, or is bound to fail.
func (w *waiter) check() (bool, v1.Hash, error) {
	if jobComplete(w.job) {
		h, err := w.digest()
		return true, h, err
	}
	pods := podList(w.pods)
	if reason, detail, ok := classify(w.job, pods); ok {
		return true, v1.Hash{}, &Failure{Function: w.fn, Job: w.job.Namespace + "/" + w.job.Name, Reason: reason, Detail: detail}
	}
	return false, v1.Hash{}, nil
}

// digest reads the executor's termination message of the pod that
// succeeded: the image's digest.
func (w *waiter) digest() (v1.Hash, error) {
	id := w.job.Namespace + "/" + w.job.Name
	for _, p := range podList(w.pods) {
		if !succeeded(p) {
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name != container || cs.State.Terminated == nil {
				continue
			}
			msg := strings.TrimSpace(cs.State.Terminated.Message)
			h, err := v1.NewHash(msg)
			if err != nil {
				return v1.Hash{}, fmt.Errorf("%s: job %s succeeded but its termination message %q is no image digest (the executor writes one with --digest-file=%s)", w.fn, id, msg, terminationLog)
			}
			return h, nil
		}
	}
	return v1.Hash{}, fmt.Errorf("%s: job %s succeeded but none of its pods is left to tell the image's digest", w.fn, id)
}

func succeeded(p corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded }

// podList returns the pods of m in the order of their names.
func podList(m map[string]corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k])
	}
	return out
}

// follow streams the log of p's executor once it has started.
func (w *waiter) follow(ctx context.Context, p *corev1.Pod) {
	if w.streamed[p.Name] {
		return
	}
	started := false
	for _, cs := range p.Status.ContainerStatuses {
		started = started || cs.Name == container && (cs.State.Running != nil || cs.State.Terminated != nil)
	}
	if !started {
		return
	}
	w.streamed[p.Name] = true
	w.logs.Go(func() {
		rc, err := w.r.client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, Follow: true}).Stream(ctx)
		if err != nil {
			slog.DebugContext(ctx, "streaming a pod's log", "pod", p.Name, "err", err)
			return
		}
		defer rc.Close()
		sc := bufio.NewScanner(rc)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			w.line(sc.Text())
		}
	})
}

// line writes one log line with the function's prefix and keeps it for a
// Failure.
func (w *waiter) line(s string) {
	w.r.mu.Lock()
	fmt.Fprintf(w.r.out, "%s | %s\n", w.fn, s)
	w.r.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.TrimSpace(s) == "" {
		return
	}
	w.lines = append(w.lines, s)
	if len(w.lines) > tailLines {
		w.lines = w.lines[len(w.lines)-tailLines:]
	}
}

// tail returns the last log lines: those streamed, else the termination
// message of the last pod, which the kubelet fills with the log's end
// when the executor wrote none (FallbackToLogsOnError).
func (w *waiter) tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.lines) > 0 {
		return slices.Clone(w.lines)
	}
	for _, p := range w.pods {
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && strings.TrimSpace(t.Message) != "" {
				lines := strings.Split(strings.TrimSpace(t.Message), "\n")
				return lines[max(0, len(lines)-tailLines):]
			}
		}
	}
	return nil
}
