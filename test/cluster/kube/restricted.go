//go:build cluster

package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RestrictedNamespace is the namespace CheckRestricted creates: it
// enforces the restricted Pod Security Standard at the latest version.
const RestrictedNamespace = "kiln-restricted"

// CheckRestricted asks the apiserver whether a pod with spec would be
// admitted in a namespace labelled pod-security.kubernetes.io/enforce=
// restricted, with a server-side dry run: Pod Security admission runs,
// nothing is stored or scheduled. It returns the apiserver's refusal, which
// lists every violation. Admission checks pods, not Jobs (for a Job it only
// warns), so pass a Job's spec.template.spec.
func (c *Cluster) CheckRestricted(ctx context.Context, spec corev1.PodSpec) error {
	if err := c.restrictedNamespace(ctx); err != nil {
		return err
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "restricted-check-", Namespace: RestrictedNamespace},
		Spec:       spec,
	}
	_, err := c.Client.CoreV1().Pods(RestrictedNamespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}

func (c *Cluster) restrictedNamespace(ctx context.Context) error {
	_, err := c.Client.CoreV1().Namespaces().Get(ctx, RestrictedNamespace, metav1.GetOptions{})
	switch {
	case err == nil:
		return c.waitServiceAccount(ctx, RestrictedNamespace)
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("looking up namespace %s: %w", RestrictedNamespace, err)
	}
	return c.Namespace(ctx, RestrictedNamespace, map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
	})
}
