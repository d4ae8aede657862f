package job

import (
	"fmt"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Failure is a function whose Job did not produce an image.
type Failure struct {
	Function string
	// Job is namespace/name.
	Job string
	// Reason is Kubernetes' word for what went wrong: OOMKilled,
	// ImagePullBackOff, ErrImagePull, BackoffLimitExceeded,
	// DeadlineExceeded, Error, ...
	Reason string
	// Detail says more: the exit code, the memory limit, the pull error.
	Detail string
	// Logs are the pod's last log lines.
	Logs []string
}

// A log line longer than maxLogLine is cut in its middle: errors are
// wrapped, so their start says what was done and their end the cause.
const (
	maxLogLine = 400
	logHead    = 100
)

// Error is one line: the function, the reason and its detail, and the
// last log lines joined by " | ".
func (f *Failure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: job %s failed: %s", f.Function, f.Job, f.Reason)
	if f.Detail != "" {
		b.WriteString(" (" + oneLine(f.Detail) + ")")
	}
	var logs []string
	for _, l := range f.Logs {
		if l = oneLine(l); l != "" {
			if len(l) > maxLogLine {
				l = l[:logHead] + " … " + l[len(l)-(maxLogLine-logHead):]
			}
			logs = append(logs, l)
		}
	}
	if len(logs) > 0 {
		b.WriteString("; last log: " + strings.Join(logs, " | "))
	}
	return b.String()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// stuck are the waiting reasons a container does not leave by itself:
// the pod would wait until the Job's deadline.
var stuck = []string{"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "ErrImageNeverPull"}

// classify says why job failed, or is bound to, from it and its pods; ok
// is false while it may still succeed. The most telling cause wins: a
// container's own (OOMKilled, an image that cannot be pulled) over the
// Job's (BackoffLimitExceeded, DeadlineExceeded), which only says that
// the Job gave up.
func classify(job *batchv1.Job, pods []corev1.Pod) (reason, detail string, ok bool) {
	pods = slices.Clone(pods)
	// The newest pod tells the last attempt.
	slices.SortStableFunc(pods, func(a, b corev1.Pod) int {
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	limit := ""
	if len(job.Spec.Template.Spec.Containers) > 0 {
		if q, has := job.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]; has {
			limit = q.String()
		}
	}
	failed, jobReason, jobMessage := jobFailed(job)
	waiting := ""
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil {
				if slices.Contains(stuck, w.Reason) {
					return w.Reason, w.Message, true
				}
				if waiting == "" {
					waiting = strings.TrimSuffix("the pod was waiting: "+w.Reason+": "+w.Message, ": ")
				}
			}
			t := cs.State.Terminated
			if t == nil {
				t = cs.LastTerminationState.Terminated
			}
			switch {
			case t == nil:
			case t.Reason == "OOMKilled":
				d := fmt.Sprintf("exit code %d", t.ExitCode)
				if limit != "" {
					d = "memory limit " + limit
				}
				return "OOMKilled", d, true
			case failed && t.ExitCode != 0:
				d := fmt.Sprintf("exit code %d", t.ExitCode)
				if jobReason != "" && t.Reason != "" && t.Reason != "Error" {
					d += ", " + t.Reason
				}
				return orDefault(jobReason, "Error"), d, true
			}
		}
		if failed && p.Status.Reason != "" {
			return orDefault(jobReason, p.Status.Reason), p.Status.Reason + ": " + p.Status.Message, true
		}
	}
	if failed {
		return orDefault(jobReason, "Failed"), strings.Trim(jobMessage+"; "+waiting, "; "), true
	}
	return "", "", false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// jobFailed reads the Job's Failed condition.
func jobFailed(job *batchv1.Job) (failed bool, reason, message string) {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return true, c.Reason, c.Message
		}
	}
	return false, "", ""
}

// jobComplete says whether the Job has its Complete condition.
func jobComplete(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
