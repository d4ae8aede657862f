//go:build cluster

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kiln-build/kiln/job"
)

// The benchmarks in this file run only under make bench's cluster suite
// (test/bench), which sets KILN_CLUSTER_BENCH to the file they append
// their Markdown tables to, and KILN_CLUSTER_BENCH_RUNS.

// benchNamespace is unlabelled: the build pods use the host's network to
// reach the test registry.
const benchNamespace = "kiln-bench"

var (
	benchNamespaceOnce sync.Once
	benchNamespaceErr  error
)

// benchStackSize is the number of functions of the stack benchmark.
const benchStackSize = 10

// benchOut returns the file the benchmark's tables go to and the runs per
// case, or skips the test outside make bench.
func benchOut(t *testing.T) (string, int) {
	t.Helper()
	out := os.Getenv("KILN_CLUSTER_BENCH")
	if out == "" {
		t.Skip("a benchmark: make bench BENCH=cluster runs it")
	}
	runs, err := strconv.Atoi(os.Getenv("KILN_CLUSTER_BENCH_RUNS"))
	if err != nil || runs < 1 {
		runs = 3
	}
	// A cold 10-function run takes minutes on 2 cores: three runs give a
	// median.
	return out, min(runs, 3)
}

// appendTable appends text to the benchmark's output file.
func appendTable(t *testing.T, out, text string) {
	t.Helper()
	f, err := os.OpenFile(out, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// executorImages builds the executor images names with the kiln under
// test, pushes them to the test registry and returns NAME → REF by digest.
// The toolchains come from the machine's kiln cache (downloaded once).
func executorImages(t *testing.T, ctx context.Context, names ...string) map[string]string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"executor", "image", "build", "--push", reg.Host + "/kiln-bench/executor"}
	for _, n := range names {
		args = append(args, "--only", n)
	}
	start := time.Now()
	stdout, stderr, err := kiln(t, ctx, t.TempDir(), []string{"KILN_CACHE_DIR=" + filepath.Join(cache, "kiln")}, args...)
	if err != nil {
		t.Fatalf("kiln %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	refs := map[string]string{}
	for line := range strings.Lines(stdout) {
		if f := strings.Fields(line); len(f) == 4 {
			refs[f[0]] = f[1]
		}
	}
	for _, n := range names {
		if refs[n] == "" {
			t.Fatalf("kiln executor image build printed no %s image:\n%s", n, stdout)
		}
	}
	t.Logf("executor images %v built and pushed in %s", names, time.Since(start).Round(time.Second))
	benchNamespaceOnce.Do(func() { benchNamespaceErr = cluster.Namespace(ctx, benchNamespace, nil) })
	if benchNamespaceErr != nil {
		t.Fatal(benchNamespaceErr)
	}
	return refs
}

// goStack writes a stack of n golang-middleware functions, fn-01 to fn-NN,
// whose images go to the test registry under prefix, and returns its
// folder.
func goStack(t *testing.T, prefix string, n int) string {
	t.Helper()
	dir := t.TempDir()
	stack := "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n"
	files := map[string]string{}
	for i := 1; i <= n; i++ {
		fn := fmt.Sprintf("fn-%02d", i)
		stack += fmt.Sprintf("  %s:\n    lang: golang-middleware\n    handler: ./%s\n    image: %s/%s/%s:1\n", fn, fn, reg.Host, prefix, fn)
		files[fn+"/go.mod"] = "module handler/function\n\ngo 1.22\n"
		files[fn+"/handler.go"] = goHandler(fn, "Hello")
	}
	files["stack.yml"] = stack
	writeFiles(t, dir, files)
	return dir
}

// goHandler is a function's handler.go; the one-line edit changes greeting.
func goHandler(fn, greeting string) string {
	return `package function

import (
	"fmt"
	"io"
	"net/http"
)

// Handle greets and echoes the request body.
func Handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "` + greeting + ` from ` + fn + `: %s", body)
}
`
}

// stackRun is one kiln job of the whole stack.
type stackRun struct {
	wall time.Duration
	// pod is each function's pod time: the pod's start to its
	// container's end (whole seconds, as the kubelet reports them).
	pod map[string]time.Duration
	// blobs and bytes are what was uploaded to the registry: the
	// contexts kiln job pushed from the host, and the layers and configs
	// the pods pushed. contextBytes is the contexts' share.
	blobs, bytes, contextBytes int64
}

// TestBenchStack: a 10-function Go stack built by kiln job in the
// cluster, cold (new image repositories, an empty cache repository, new
// pods) and after a one-line edit in one function (new pods, the cache
// repository warm): kiln job's wall time, each pod's time and what was
// uploaded.
func TestBenchStack(t *testing.T) {
	out, runs := benchOut(t)
	ctx := context.Background()
	exe := executorImages(t, ctx, "go")["go"]
	var cold, edit []stackRun
	for i := range runs {
		prefix := fmt.Sprintf("kiln-bench/stack-%d", i)
		dir := goStack(t, prefix, benchStackSize)
		cacheRepo := reg.Host + "/" + prefix + "/cache"
		r := benchJob(t, ctx, dir, exe, cacheRepo, prefix)
		t.Logf("run %d cold: %s", i+1, r)
		cold = append(cold, r)
		writeFiles(t, dir, map[string]string{"fn-04/handler.go": goHandler("fn-04", fmt.Sprintf("Hi (edit %d)", i))})
		r = benchJob(t, ctx, dir, exe, cacheRepo, prefix)
		t.Logf("run %d edit: %s", i+1, r)
		edit = append(edit, r)
		if r.blobs > 4 {
			t.Errorf("the one-line edit uploaded %d blobs, want 4: the handler's layer and the config, the edited context's layer and config", r.blobs)
		}
	}
	appendTable(t, out, stackTable(runs, exe, cold, edit))
}

func (r stackRun) String() string {
	return fmt.Sprintf("kiln job %s, %d blobs, %s uploaded (contexts %s), pods %v", r.wall.Round(100*time.Millisecond), r.blobs, mib(r.bytes), mib(r.contextBytes), r.pod)
}

// benchJob runs kiln job on the stack in dir with the executor image exe
// and the cache repository cacheRepo and measures it.
func benchJob(t *testing.T, ctx context.Context, dir, exe, cacheRepo, prefix string) stackRun {
	t.Helper()
	// Pods of earlier runs go, so that the run's pods are the listed ones.
	if err := cluster.Client.BatchV1().Jobs(benchNamespace).DeleteCollection(ctx, metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationForeground)}, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNoPods(t, ctx)
	mark := reg.Mark()
	start := time.Now()
	jctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	stdout, stderr, err := kiln(t, jctx, dir, nil, "job", "-f", "stack.yml", "--kubeconfig", cluster.Kubeconfig,
		"--namespace", benchNamespace, "--executor-image", exe, "--host-network", "--cache-repo", cacheRepo,
		"--deadline", "15m", "--progress", "plain")
	r := stackRun{wall: time.Since(start), pod: map[string]time.Duration{}}
	if err != nil {
		t.Fatalf("kiln job: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	pods, err := cluster.Client.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{LabelSelector: job.LabelFunction})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodSucceeded || p.Status.StartTime == nil || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
			continue
		}
		end := p.Status.ContainerStatuses[0].State.Terminated.FinishedAt
		r.pod[p.Labels[job.LabelFunction]] = end.Sub(p.Status.StartTime.Time)
	}
	if len(r.pod) != benchStackSize {
		t.Fatalf("%d succeeded pods of the run, want %d", len(r.pod), benchStackSize)
	}
	reqs, err := reg.Since(ctx, mark)
	if err != nil {
		t.Fatal(err)
	}
	contexts := contextBlobs(t, ctx, prefix)
	for _, q := range reqs {
		repo, digest, ok := q.BlobUpload()
		if !ok {
			continue
		}
		size := blobSize(t, ctx, repo, digest)
		r.blobs++
		r.bytes += size
		if contexts[digest] {
			r.contextBytes += size
		}
	}
	return r
}

// waitNoPods waits until the bench namespace has no pod left.
func waitNoPods(t *testing.T, ctx context.Context) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
		pods, err := cluster.Client.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pods of the last run are still in %s", len(pods.Items), benchNamespace)
		}
	}
}

// contextBlobs returns the layer digests of the build contexts kiln job
// pushed beside the images under prefix (tags context-*).
func contextBlobs(t *testing.T, ctx context.Context, prefix string) map[string]bool {
	t.Helper()
	blobs := map[string]bool{}
	for i := 1; i <= benchStackSize; i++ {
		repo := fmt.Sprintf("%s/fn-%02d", prefix, i)
		var list struct{ Tags []string }
		getJSON(t, ctx, reg.URL("/v2/"+repo+"/tags/list"), &list)
		for _, tag := range list.Tags {
			if !strings.HasPrefix(tag, "context-") {
				continue
			}
			m, err := reg.Manifest(ctx, repo, tag)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range m.Layers {
				blobs[l.Digest] = true
			}
		}
	}
	return blobs
}

func getJSON(t *testing.T, ctx context.Context, url string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// blobSize asks the registry for a blob's size.
func blobSize(t *testing.T, ctx context.Context, repo, digest string) int64 {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, reg.URL("/v2/"+repo+"/blobs/"+digest), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s@%s: %s", repo, digest, resp.Status)
	}
	return resp.ContentLength
}

func mib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}

func medianDuration(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

func medianInt(v []int64) int64 {
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// stackTable renders the stack benchmark: a summary per case, then each
// function's pod time.
func stackTable(runs int, exe string, cold, edit []stackRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Cluster: %d-function Go stack built by kiln job (golang-middleware), %d runs, medians\n\n", benchStackSize, runs)
	fmt.Fprintf(&b, "One node (kubelet, containerd, runc) on this machine; kiln job --parallel 4, pods of 500m CPU on the host network; executor image %s. Cold: new image repositories, an empty --cache-repo, new pods. Edit: one line of fn-04's handler.go changed, new pods, the same cache repository.\n\n", exe[strings.LastIndexByte(exe, '/')+1:])
	fmt.Fprintln(&b, "| case | kiln job wall time | pod time, median of functions | slowest pod | blobs uploaded | bytes uploaded | of which build contexts |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|")
	for _, c := range []struct {
		name string
		runs []stackRun
	}{{"cold", cold}, {"one-line edit", edit}} {
		var wall, podMed, podMax []time.Duration
		var blobs, bytes, ctxBytes []int64
		for _, r := range c.runs {
			wall = append(wall, r.wall)
			pods := slices.Collect(func(yield func(time.Duration) bool) {
				for _, d := range r.pod {
					if !yield(d) {
						return
					}
				}
			})
			podMed = append(podMed, medianDuration(pods))
			podMax = append(podMax, slices.Max(pods))
			blobs, bytes, ctxBytes = append(blobs, r.blobs), append(bytes, r.bytes), append(ctxBytes, r.contextBytes)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s | %s |\n", c.name, secs(medianDuration(wall)), secs(medianDuration(podMed)),
			secs(medianDuration(podMax)), medianInt(blobs), mib(medianInt(bytes)), mib(medianInt(ctxBytes)))
	}
	fmt.Fprint(&b, "\nPod time per function (the pod's start to its container's end, whole seconds), median of runs:\n\n")
	fmt.Fprintln(&b, "| function | cold | one-line edit |")
	fmt.Fprintln(&b, "|---|---|---|")
	for i := 1; i <= benchStackSize; i++ {
		fn := fmt.Sprintf("fn-%02d", i)
		var c, e []time.Duration
		for j := range cold {
			c, e = append(c, cold[j].pod[fn]), append(e, edit[j].pod[fn])
		}
		note := ""
		if fn == "fn-04" {
			note = " (edited)"
		}
		fmt.Fprintf(&b, "| %s%s | %s | %s |\n", fn, note, secs(medianDuration(c)), secs(medianDuration(e)))
	}
	return b.String()
}

// benchMemoryLimit is the build pod's memory limit in the Node benchmark.
const benchMemoryLimit = "512Mi"

// hostCABundle is the machine's CA bundle. The pod reaches the npm registry
// through the machine's network, whose egress may be a TLS proxy with a CA
// of its own that the executor image's Debian bundle lacks.
const hostCABundle = "/etc/ssl/certs/ca-certificates.crt"

// TestBenchNodeMemoryPod: the Node function of the memory benchmark
// (test/bench/testdata/node-heavy, ~490 MB of npm dependencies) built by
// the Job kiln job makes, in a pod limited to 512Mi: kiln and npm together
// fit, the pod is not OOM-killed. The container's cgroup peak is sampled
// from the host.
func TestBenchNodeMemoryPod(t *testing.T) {
	out, _ := benchOut(t)
	ctx := context.Background()
	exe := executorImages(t, ctx, "node")["node"]
	dir := t.TempDir()
	files := map[string]string{"stack.yml": fmt.Sprintf("version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  node-heavy:\n    lang: node22\n    handler: ./node-heavy\n    image: %s/kiln-bench/node-heavy:1\n", reg.Host)}
	for _, f := range []string{"package.json", "package-lock.json", "handler.js"} {
		b, err := os.ReadFile(filepath.Join("..", "bench", "testdata", "node-heavy", f))
		if err != nil {
			t.Fatal(err)
		}
		files["node-heavy/"+f] = string(b)
	}
	writeFiles(t, dir, files)
	stdout, stderr, err := kiln(t, ctx, dir, nil, "job", "-f", "stack.yml", "--kubeconfig", cluster.Kubeconfig,
		"--namespace", benchNamespace, "--executor-image", exe, "--host-network", "--memory-limit", benchMemoryLimit,
		"--backoff-limit", "0", "--deadline", "15m", "--output", "yaml")
	if err != nil {
		t.Fatalf("kiln job --output yaml: %v\n%s", err, stderr)
	}
	var j batchv1.Job
	if err := yaml.UnmarshalStrict([]byte(stdout), &j); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(hostCABundle); err == nil {
		spec := &j.Spec.Template.Spec
		spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "host-ca", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostCABundle}}})
		c := &spec.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "host-ca", MountPath: "/etc/kiln-bench/ca.crt", ReadOnly: true})
		c.Env = append(c.Env, corev1.EnvVar{Name: "SSL_CERT_FILE", Value: "/etc/kiln-bench/ca.crt"}, corev1.EnvVar{Name: "NODE_EXTRA_CA_CERTS", Value: "/etc/kiln-bench/ca.crt"},
			corev1.EnvVar{Name: "npm_config_cafile", Value: "/etc/kiln-bench/ca.crt"})
	}
	sample := sampleCgroupPeak(ctx)
	start := time.Now()
	jctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	var logs strings.Builder
	_, err = job.NewRunner(cluster.Client, &logs).Run(jctx, "node-heavy", &j)
	wall := time.Since(start)
	usage, rss := sample()
	result := "built, not OOM-killed"
	if err != nil {
		result = "**failed**: " + err.Error()
		t.Errorf("the Job of node-heavy with a %s memory limit: %v\nlogs:\n%s", benchMemoryLimit, err, logs.String())
	}
	t.Logf("node-heavy in a pod: %s in %s, container cgroup max usage %s, RSS %s", result, wall.Round(time.Second), mib(usage), mib(rss))
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Cluster: node-heavy (~490 MB of npm dependencies) built in a pod with a %s memory limit\n\n", benchMemoryLimit)
	fmt.Fprint(&b, "The Job kiln job makes (--output yaml), with the machine's CA bundle added for its TLS egress proxy. Read from the build container's memory cgroup: max_usage_in_bytes counts page cache (reclaimed at the limit, not an OOM), total_rss is kiln, npm and node's anonymous memory together, sampled every 0.5 s.\n\n")
	fmt.Fprintln(&b, "| executor image | memory limit | result | Job wall time | cgroup max usage (with page cache) | cgroup RSS peak (sampled) |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|")
	fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", exe[strings.LastIndexByte(exe, '/')+1:], benchMemoryLimit, result, secs(wall), mib(usage), mib(rss))
	appendTable(t, out, b.String())
}

// sampleCgroupPeak reads, every half second until the returned function
// is called, the memory of the bench namespace's containers from their
// cgroups (v1 memory controller, the kubelet's cgroupfs driver), and
// returns the largest max_usage_in_bytes and the largest RSS sampled.
func sampleCgroupPeak(ctx context.Context) func() (usage, rss int64) {
	done := make(chan struct{})
	res := make(chan [2]int64)
	go func() {
		var hi [2]int64
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			if pods, err := cluster.Client.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{}); err == nil {
				for _, p := range pods.Items {
					for _, c := range p.Status.ContainerStatuses {
						usage, rss := cgroupMemory(c.ContainerID)
						hi = [2]int64{max(hi[0], usage), max(hi[1], rss)}
					}
				}
			}
			select {
			case <-done:
				res <- hi
				return
			case <-tick.C:
			}
		}
	}()
	return func() (int64, int64) {
		close(done)
		hi := <-res
		return hi[0], hi[1]
	}
}

// cgroupMemory reads a container's memory cgroup (containerd://ID): its
// max_usage_in_bytes, page cache included, and its total_rss now; zeros if
// there is none. Without per-QoS cgroups the test kubelet gives pods no
// cgroup of their own: containerd puts each container in k8s.io/ID.
func cgroupMemory(containerID string) (usage, rss int64) {
	_, id, ok := strings.Cut(containerID, "://")
	if !ok {
		return 0, 0
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/memory/k8s.io/" + id)
	if len(dirs) == 0 {
		return 0, 0
	}
	if b, err := os.ReadFile(filepath.Join(dirs[0], "memory.max_usage_in_bytes")); err == nil {
		usage, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if b, err := os.ReadFile(filepath.Join(dirs[0], "memory.stat")); err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_rss "); ok {
				rss, _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return usage, rss
}
