package job

import (
	"fmt"

	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kiln-build/kiln/internal/usage"
)

// Kube names the cluster as kubectl's --kubeconfig and --context do.
type Kube struct {
	// Kubeconfig is a kubeconfig file; "" follows kubectl's rules:
	// $KUBECONFIG, else ~/.kube/config, else the pod's service account
	// when kiln runs in a cluster.
	Kubeconfig string
	// Context is the kubeconfig context; "" for its current one.
	Context string
}

func (k Kube) config() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.Kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context})
}

// Namespace is the namespace the kubeconfig's context names, "default"
// when it names none or there is no kubeconfig.
func (k Kube) Namespace() string {
	ns, _, err := k.config().Namespace()
	if err != nil || ns == "" {
		return "default"
	}
	return ns
}

// Client is the part of the Kubernetes API kiln job calls: Jobs, their
// pods and logs, Secrets. client-go's whole clientset would double kiln's
// binary for API groups it never calls.
type Client interface {
	BatchV1() batchv1client.BatchV1Interface
	CoreV1() corev1client.CoreV1Interface
}

type client struct {
	batch *batchv1client.BatchV1Client
	core  *corev1client.CoreV1Client
}

func (c client) BatchV1() batchv1client.BatchV1Interface { return c.batch }
func (c client) CoreV1() corev1client.CoreV1Interface    { return c.core }

// Client returns a client of the cluster.
func (k Kube) Client() (Client, error) {
	rc, err := k.config().ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, usage.Errorf("no cluster to run the Jobs in: give --kubeconfig, set $KUBECONFIG or write ~/.kube/config (--output yaml needs none)")
	}
	if err != nil {
		return nil, usage.Errorf("--kubeconfig: %w", err)
	}
	batch, err := batchv1client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	core, err := corev1client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return client{batch: batch, core: core}, nil
}
