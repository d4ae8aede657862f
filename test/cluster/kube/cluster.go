//go:build cluster

package kube

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Bounds of each step of Start.
const (
	etcdTimeout       = 30 * time.Second
	apiserverTimeout  = 60 * time.Second
	containerdTimeout = 30 * time.Second
	nodeTimeout       = 90 * time.Second
	importTimeout     = 60 * time.Second
)

// serviceIP is the first address of the service range: the apiserver's own
// "kubernetes" service, which its certificate names.
const (
	serviceRange = "10.96.0.0/24"
	serviceIP    = "10.96.0.1"
)

// PauseImage is the sandbox image, imported into containerd at start.
const PauseImage = "kiln.test/pause:1"

// BinDirEnv names the directory of kube-apiserver, kube-controller-manager,
// kube-scheduler and kubelet when WithBinDir is not given; make cluster
// sets it.
const BinDirEnv = "KILN_K8S_BIN"

var (
	//go:embed containerd.toml.tmpl
	containerdTmpl string
	//go:embed kubelet.yaml.tmpl
	kubeletTmpl string
	//go:embed cni.sh
	cniPlugin []byte
)

// Option configures Start.
type Option func(*options)

type options struct {
	binDir     string
	registries []string
}

// WithBinDir sets the directory holding the Kubernetes binaries. The
// default is $KILN_K8S_BIN.
func WithBinDir(dir string) Option { return func(o *options) { o.binDir = dir } }

// WithInsecureRegistry lets containerd pull from the registry at host
// (HOST:PORT) over plain HTTP. The default is no registry at all.
func WithInsecureRegistry(host string) Option {
	return func(o *options) { o.registries = append(o.registries, host) }
}

// Cluster is a running single-node Kubernetes.
type Cluster struct {
	// Dir holds every file of the cluster; logs/ has each process's log.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig (system:masters).
	Kubeconfig string
	// Config and Client talk to the apiserver as that admin.
	Config *rest.Config
	Client kubernetes.Interface
	// NodeName is the one node's name.
	NodeName string

	bins   map[string]string
	socket string
	procs  map[string]*proc
	closed bool
}

// Start brings up a cluster whose files live in a new directory under the
// system's temporary directory, and returns once its node is Ready and its
// default service account exists. The caller must Close it, also when
// Start fails after making the directory. Start first clears what an
// earlier test process left behind if it died without closing its cluster.
func Start(ctx context.Context, opts ...Option) (*Cluster, error) {
	o := options{binDir: os.Getenv(BinDirEnv)}
	for _, opt := range opts {
		opt(&o)
	}
	bins, err := findBinaries(o.binDir)
	if err != nil {
		return nil, err
	}
	sweep(os.TempDir())
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, NodeName: "localhost", bins: bins, procs: map[string]*proc{}}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return c, err
	}
	if err := c.start(ctx, o); err != nil {
		return c, fmt.Errorf("starting the test cluster in %s: %w", dir, err)
	}
	return c, nil
}

// Components, in the order Close stops them.
const (
	kubelet    = "kubelet"
	scheduler  = "kube-scheduler"
	kcm        = "kube-controller-manager"
	apiserver  = "kube-apiserver"
	containerd = "containerd"
	etcd       = "etcd"
)

var stopOrder = []string{kubelet, scheduler, kcm, apiserver, containerd, etcd}

// findBinaries checks that every program the cluster runs is there.
func findBinaries(binDir string) (map[string]string, error) {
	if binDir == "" {
		return nil, fmt.Errorf("no Kubernetes binaries: set %s (make cluster does, after make kubernetes)", BinDirEnv)
	}
	bins := map[string]string{}
	for _, b := range []string{apiserver, kcm, scheduler, kubelet} {
		p := filepath.Join(binDir, b)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s: %w (make kubernetes builds it)", p, err)
		}
		bins[b] = p
	}
	for b, pkg := range map[string]string{
		etcd: "etcd-server", containerd: "containerd", "ctr": "containerd", "runc": "runc",
		"nsenter": "util-linux", "ip": "iproute2",
	} {
		p, err := exec.LookPath(b)
		if err != nil {
			return nil, fmt.Errorf("finding %s (Debian package %s): %w", b, pkg, err)
		}
		bins[b] = p
	}
	const loopback = "/usr/lib/cni/loopback"
	if _, err := os.Stat(loopback); err != nil {
		return nil, fmt.Errorf("%s: %w (Debian package containernetworking-plugins)", loopback, err)
	}
	bins["loopback"] = loopback
	if _, err := os.Stat(busyboxPath); err != nil {
		return nil, fmt.Errorf("%s: %w (Debian package busybox-static)", busyboxPath, err)
	}
	return bins, nil
}

// ports are the cluster's listening ports, all on 127.0.0.1.
type ports struct {
	etcdClient, etcdPeer, apiserver, kcm, scheduler, kubelet, kubeletHealthz int
}

func freePorts() (ports, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var p ports
	for _, port := range []*int{&p.etcdClient, &p.etcdPeer, &p.apiserver, &p.kcm, &p.scheduler, &p.kubelet, &p.kubeletHealthz} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return p, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		*port = l.Addr().(*net.TCPAddr).Port
	}
	return p, nil
}

func (c *Cluster) path(elem ...string) string {
	return filepath.Join(append([]string{c.Dir}, elem...)...)
}

func (c *Cluster) start(ctx context.Context, o options) error {
	if err := os.Mkdir(c.path("etcd"), 0o700); err != nil {
		return err
	}
	for _, d := range []string{"logs", "containerd/certs.d", "cni/bin", "cni/conf", "kubelet/root", "kubelet/volume-plugins"} {
		if err := os.MkdirAll(c.path(d), 0o755); err != nil {
			return err
		}
	}
	p, err := freePorts()
	if err != nil {
		return err
	}
	certs, err := writePKI(c.path("pki"))
	if err != nil {
		return fmt.Errorf("writing certificates: %w", err)
	}
	if err := c.writeKubeconfig(certs, p.apiserver); err != nil {
		return err
	}
	logs := c.path("logs")

	etcdURL := "http://127.0.0.1:" + strconv.Itoa(p.etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(p.etcdPeer)
	c.procs[etcd], err = startProc(logs, etcd, c.bins[etcd], "--name=kiln", "--data-dir="+c.path("etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL, "--initial-cluster=kiln="+peerURL)
	if err != nil {
		return err
	}
	if err := c.startContainerd(o.registries); err != nil {
		return err
	}
	if err := waitFor(ctx, "etcd", etcdTimeout, []*proc{c.procs[etcd]}, func(ctx context.Context) error {
		return httpOK(ctx, etcdURL+"/health")
	}); err != nil {
		return err
	}

	c.procs[apiserver], err = startProc(logs, apiserver, c.bins[apiserver],
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(p.apiserver),
		// The endpoint reconciler refuses 127.0.0.1 and makes the apiserver exit.
		"--endpoint-reconciler-type=none",
		"--kubelet-preferred-address-types=Hostname",
		"--tls-cert-file="+certs.path(serverCert), "--tls-private-key-file="+certs.path(serverKey),
		"--client-ca-file="+certs.path(caCert),
		"--service-account-key-file="+certs.path(saPublicKey), "--service-account-signing-key-file="+certs.path(saKey),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range="+serviceRange,
		"--authorization-mode=AlwaysAllow",
		// Else validation refuses privileged pods before Pod Security
		// admission can: the tests check that admission does.
		"--allow-privileged=true",
		"--cert-dir="+c.path("apiserver-certs"),
		"--kubelet-client-certificate="+certs.path(adminCert), "--kubelet-client-key="+certs.path(adminKey),
		"--kubelet-certificate-authority="+certs.path(caCert),
		"--profiling=false")
	if err != nil {
		return err
	}
	if err := c.waitContainerd(ctx); err != nil {
		return err
	}
	if err := waitFor(ctx, "kube-apiserver /readyz", apiserverTimeout, []*proc{c.procs[apiserver], c.procs[etcd]}, func(ctx context.Context) error {
		return c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	}); err != nil {
		return err
	}

	common := []string{"--kubeconfig=" + c.Kubeconfig, "--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig, "--bind-address=127.0.0.1", "--leader-elect=false", "--profiling=false"}
	c.procs[kcm], err = startProc(logs, kcm, c.bins[kcm], append(common, "--secure-port="+strconv.Itoa(p.kcm),
		"--service-account-private-key-file="+certs.path(saKey), "--root-ca-file="+certs.path(caCert),
		// No pod CIDRs to allocate: the CNI plugin picks addresses itself.
		"--controllers=*,-nodeipam")...)
	if err != nil {
		return err
	}
	c.procs[scheduler], err = startProc(logs, scheduler, c.bins[scheduler], append(common, "--secure-port="+strconv.Itoa(p.scheduler))...)
	if err != nil {
		return err
	}
	if err := c.startKubelet(certs, p); err != nil {
		return err
	}
	return c.waitNode(ctx)
}

func (c *Cluster) writeKubeconfig(certs pki, port int) error {
	c.Kubeconfig = c.path("kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kiln-test"] = &clientcmdapi.Cluster{
		Server:               "https://127.0.0.1:" + strconv.Itoa(port),
		CertificateAuthority: certs.path(caCert),
	}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificate: certs.path(adminCert), ClientKey: certs.path(adminKey)}
	cfg.Contexts["kiln-test"] = &clientcmdapi.Context{Cluster: "kiln-test", AuthInfo: "admin"}
	cfg.CurrentContext = "kiln-test"
	if err := clientcmd.WriteToFile(*cfg, c.Kubeconfig); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.Kubeconfig, err)
	}
	rc.Timeout = 30 * time.Second
	c.Config = rc
	c.Client, err = kubernetes.NewForConfig(rc)
	return err
}

func render(tmpl, path string, data any) error {
	t, err := template.New(filepath.Base(path)).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func (c *Cluster) startContainerd(registries []string) error {
	c.socket = c.path("containerd", "containerd.sock")
	for _, host := range registries {
		d := c.path("containerd", "certs.d", host)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		hosts := fmt.Sprintf("server = %[1]q\n\n[host.%[1]q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+host)
		if err := os.WriteFile(filepath.Join(d, "hosts.toml"), []byte(hosts), 0o644); err != nil {
			return err
		}
	}
	if err := os.WriteFile(c.path("cni", "bin", "kiln-veth"), cniPlugin, 0o755); err != nil {
		return err
	}
	if err := os.Symlink(c.bins["loopback"], c.path("cni", "bin", "loopback")); err != nil {
		return err
	}
	conflist := `{"cniVersion": "0.4.0", "name": "kiln-test", "plugins": [{"type": "kiln-veth"}]}`
	if err := os.WriteFile(c.path("cni", "conf", "10-kiln-test.conflist"), []byte(conflist), 0o644); err != nil {
		return err
	}
	config := c.path("containerd", "config.toml")
	if err := render(containerdTmpl, config, map[string]string{
		"Dir": c.path("containerd"), "Socket": c.socket, "PauseImage": PauseImage,
		"Runc": c.bins["runc"], "CNIDir": c.path("cni"),
	}); err != nil {
		return err
	}
	var err error
	c.procs[containerd], err = startProc(c.path("logs"), containerd, c.bins[containerd], "--config", config)
	return err
}

// waitContainerd waits until containerd answers, then imports the pause
// image, which no registry serves.
func (c *Cluster) waitContainerd(ctx context.Context) error {
	if err := waitFor(ctx, "containerd", containerdTimeout, []*proc{c.procs[containerd]}, func(ctx context.Context) error {
		return exec.CommandContext(ctx, c.bins["ctr"], "--address", c.socket, "version").Run()
	}); err != nil {
		return err
	}
	img, err := pauseImage()
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(PauseImage)
	if err != nil {
		return err
	}
	tar := c.path("pause.tar")
	if err := tarball.WriteToFile(tar, ref, img); err != nil {
		return fmt.Errorf("writing the pause image: %w", err)
	}
	return c.ImportImage(ctx, tar)
}

// ImportImage imports a docker-archive or OCI tarball into the namespace
// the kubelet's images live in, so pods can run it without a registry.
func (c *Cluster) ImportImage(ctx context.Context, tarPath string) error {
	ctx, cancel := context.WithTimeout(ctx, importTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.bins["ctr"], "--address", c.socket, "-n", "k8s.io", "images", "import", tarPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %w: %s", tarPath, err, bytes.TrimSpace(out))
	}
	return nil
}

func (c *Cluster) startKubelet(certs pki, p ports) error {
	config := c.path("kubelet", "config.yaml")
	if err := render(kubeletTmpl, config, map[string]any{
		"Port": p.kubelet, "HealthzPort": p.kubeletHealthz, "PKI": certs.dir,
		"Socket": c.socket, "Dir": c.path("kubelet"),
	}); err != nil {
		return err
	}
	var err error
	c.procs[kubelet], err = startProc(c.path("logs"), kubelet, c.bins[kubelet],
		"--config="+config, "--kubeconfig="+c.Kubeconfig, "--root-dir="+c.path("kubelet", "root"),
		"--cert-dir="+c.path("kubelet", "pki"),
		"--hostname-override="+c.NodeName)
	return err
}

// waitNode waits for the node to be Ready and for the default namespace's
// service account, without which no pod is admitted there.
func (c *Cluster) waitNode(ctx context.Context) error {
	var all []*proc
	for _, p := range c.procs {
		all = append(all, p)
	}
	if err := waitFor(ctx, "node "+c.NodeName+" Ready", nodeTimeout, all, func(ctx context.Context) error {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				if cond.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s: %s: %s", c.NodeName, cond.Reason, cond.Message)
			}
		}
		return fmt.Errorf("node %s has no Ready condition yet", c.NodeName)
	}); err != nil {
		return err
	}
	return c.waitServiceAccount(ctx, metav1.NamespaceDefault)
}

func (c *Cluster) waitServiceAccount(ctx context.Context, ns string) error {
	return waitFor(ctx, "the default service account of namespace "+ns, nodeTimeout, []*proc{c.procs[kcm]}, func(ctx context.Context) error {
		_, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// Namespace creates namespace ns with labels, unless it exists with
// those labels already (tests of one namespace share it), and waits for
// its default service account.
func (c *Cluster) Namespace(ctx context.Context, ns string, labels map[string]string) error {
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels},
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		existing, gerr := c.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if gerr != nil {
			return fmt.Errorf("namespace %s: %w", ns, gerr)
		}
		for k, v := range labels {
			if existing.Labels[k] != v {
				return fmt.Errorf("namespace %s exists with label %s=%q, want %q", ns, k, existing.Labels[k], v)
			}
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	return c.waitServiceAccount(ctx, ns)
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// Logs returns the last lines of each component's log, for a failing
// test's message.
func (c *Cluster) Logs() string {
	var b bytes.Buffer
	for _, n := range stopOrder {
		if p := c.procs[n]; p != nil {
			fmt.Fprintf(&b, "--- %s (%s)\n%s\n", n, p.log, p.tail())
		}
	}
	return b.String()
}
