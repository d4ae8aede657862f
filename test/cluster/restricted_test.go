//go:build cluster

package cluster

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestRestrictedDryRun: a pod spec set up the way the restricted Pod
// Security Standard asks is admitted, in a server-side dry run, in a
// namespace that enforces it; specs that break it are refused, naming what
// they break.
func TestRestrictedDryRun(t *testing.T) {
	yes, no := true, false
	var uid int64 = 65532
	restricted := func() corev1.PodSpec {
		return corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
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
			spec := restricted()
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
