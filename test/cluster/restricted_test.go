//go:build cluster

package cluster

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kiln-build/kiln/test/cluster/kube"
)

// TestRestrictedDryRun: a pod spec set up the way the restricted Pod
// Security Standard asks is admitted, in a server-side dry run, in a
// namespace that enforces it; specs that break it are refused, naming what
// they break.
func TestRestrictedDryRun(t *testing.T) {
	yes := true
	tests := []struct {
		name    string
		edit    func(*corev1.PodSpec)
		refused string // in the refusal; "" for admitted
	}{
		{name: "restricted", edit: func(*corev1.PodSpec) {}},
		{name: "privileged", edit: func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Privileged = &yes
			s.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
		}, refused: "privileged"},
		{name: "privilege escalation", edit: func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.AllowPrivilegeEscalation = &yes
		}, refused: "allowPrivilegeEscalation != false"},
		{name: "capabilities kept", edit: func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Capabilities = nil
		}, refused: "unrestricted capabilities"},
		{name: "host network", edit: func(s *corev1.PodSpec) {
			s.HostNetwork = true
		}, refused: "host namespaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := restrictedSpec()
			tc.edit(&spec)
			err := cluster.CheckRestricted(context.Background(), spec)
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("CheckRestricted() = %v, want admitted", err)
			case tc.refused != "" && err == nil:
				t.Errorf("CheckRestricted() admitted the pod, want refused for %s", tc.refused)
			case tc.refused != "" && (!strings.Contains(err.Error(), "violates PodSecurity") || !strings.Contains(err.Error(), tc.refused)):
				t.Errorf("CheckRestricted() = %v, want a PodSecurity refusal naming %q", err, tc.refused)
			}
		})
	}
}

// TestRestrictedPodRuns: the restricted spec is not only admitted, it
// runs on this node (containerd's default seccomp profile, a non-root user,
// a read-only root filesystem) in the namespace that enforces it.
func TestRestrictedPodRuns(t *testing.T) {
	ctx := context.Background()
	if err := cluster.CheckRestricted(ctx, restrictedSpec()); err != nil {
		t.Fatal(err)
	}
	spec := restrictedSpec()
	spec.Containers[0].Command = []string{"sh", "-c", "id -u; if touch /probe 2>/dev/null; then echo writable; else echo read-only; fi"}
	job := runJobIn(t, ctx, kube.RestrictedNamespace, "restricted", spec)
	pod := jobPod(t, ctx, job)
	logs, err := cluster.Client.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading %s's log: %v", pod.Name, err)
	}
	if want := "65532\nread-only\n"; string(logs) != want {
		t.Errorf("log = %q, want %q", logs, want)
	}
}

// restrictedSpec is a pod spec set up as the restricted Pod Security
// Standard asks: non-root, RuntimeDefault seccomp, no capabilities, no
// privilege escalation, and a read-only root filesystem besides.
func restrictedSpec() corev1.PodSpec {
	yes, no := true, false
	var uid int64 = 65532
	return corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   &yes,
			RunAsUser:      &uid,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Containers: []corev1.Container{{
			Name:  "main",
			Image: busybox,
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: &no,
				ReadOnlyRootFilesystem:   &yes,
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
		}},
	}
}
