package job

import (
	"k8s.io/client-go/kubernetes"
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

// Client returns a client of the cluster.
func (k Kube) Client() (kubernetes.Interface, error) {
	rc, err := k.config().ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		return nil, usage.Errorf("no cluster to run the Jobs in: give --kubeconfig, set $KUBECONFIG or write ~/.kube/config (--output yaml needs none)")
	}
	if err != nil {
		return nil, usage.Errorf("--kubeconfig: %w", err)
	}
	return kubernetes.NewForConfig(rc)
}
