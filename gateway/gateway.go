package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/envlist"
	"github.com/kiln-build/kiln/stack"
)

// Instance is one running copy of a function, as a Runner starts it.
type Instance struct {
	// Name is the function's name.
	Name string
	// Image is the image reference the deployment names.
	Image string
	// Env is the function's environment: the deployment's envVars and
	// fprocess, the watchdog's port (contract.WatchdogPort), OPENFAAS_NAME
	// and OPENFAAS_NAMESPACE.
	Env []string
	// Listener is where the gateway reaches the instance: the runner
	// serves the watchdog's port on it, as a pod's IP serves it. It stays
	// the gateway's, open from one run of the instance to the next.
	Listener *net.TCPListener
	// Stdout and Stderr take the function's output, prefixed by its name.
	Stdout, Stderr io.Writer
	// Secrets maps each secret the deployment names to the file that
	// holds it, for /var/openfaas/secrets/<name>.
	Secrets map[string]string
	// ReadOnlyRoot is the deployment's readOnlyRootFilesystem.
	ReadOnlyRoot bool
	// Started, which a runner may call once the instance's first process
	// runs, takes that process's pid: the gateway samples the memory and
	// CPU of its process tree for /metrics and Telemetry.
	Started func(pid int)
}

// Runner runs an instance until ctx is done or it exits. It must return
// only once nothing of the instance is left running.
type Runner func(ctx context.Context, in Instance) error

// DefaultNamespace is the namespace of functions deployed with none, as
// on faas-netes and faasd.
const DefaultNamespace = "openfaas-fn"

// Mode says what Deploy may do with a function of the same name.
type Mode int

const (
	// Create fails when the function exists (POST /system/functions).
	Create Mode = iota
	// Update fails when it does not (PUT /system/functions).
	Update
	// Upsert creates or updates it, as kiln up and kiln dev do.
	Upsert
)

// ErrExists is Deploy's error for Create of a function that exists.
var ErrExists = errors.New("function already exists")

// restartDelay and maxRestartDelay bound the wait before a function that
// exited is started again, doubling in between, as a Kubernetes
// Deployment's back-off does.
var restartDelay, maxRestartDelay = time.Second, 30 * time.Second

// Gateway serves the local gateway API and owns the running functions.
type Gateway struct {
	run           Runner
	imageEnv      func(ctx context.Context, image string) ([]string, error)
	stdout        io.Writer
	stderr        io.Writer
	healthTimeout time.Duration
	version       string
	secrets       secrets
	logs          logBook
	builds        buildBook
	ui            http.Handler
	uiFor         func(*Gateway) http.Handler
	// observer and openapi are observe.go's.
	observer func(Exchange)
	openapi  func(ctx context.Context, function string) ([]byte, error)

	// auth and hosts guard the API (auth.go).
	auth  *basicAuth
	hosts []string

	ctx    context.Context
	cancel context.CancelFunc

	// deployMu orders deploys and scalings of the same gateway; mu guards
	// functions.
	deployMu  sync.Mutex
	mu        sync.RWMutex
	functions map[string]*function
	all       sync.WaitGroup

	metrics  *metrics
	sampleMu sync.Mutex // one /proc sampling at a time (proc.go)
}

// MaxReplicas is the most replicas a function gets: a scale request for
// more gets this many, as faas-netes caps them. Each replica is a process
// tree on this machine.
const MaxReplicas = 5

// ScaleMinLabel sets a function's replicas when it is first deployed, as
// on faas-netes; absent or 0 means 1.
const ScaleMinLabel = "com.openfaas.scale.min"

// function is a deployed function and its replicas. A function is
// replaced in the map, never changed, when its deployment or its replicas
// change; its counters are shared with the function it replaces.
type function struct {
	dep         deploy.Deployment
	secrets     map[string]string
	readyPath   string // readinessPath's answer for dep
	created     time.Time
	invocations *atomic.Int64
	replicas    []*instance
	next        *atomic.Uint64 // round-robin over the replicas
	// maxInflight is each instance's max_inflight, 0 for none: the
	// gateway sends no more than this many requests at once to one.
	maxInflight int
	stats       *fnStats
}

// withReplicas returns a copy of fn with these replicas.
func (fn *function) withReplicas(replicas []*instance) *function {
	c := *fn
	c.replicas = replicas
	return &c
}

// notReady says why no replica answers, for the 503.
func (fn *function) notReady() string {
	for _, in := range fn.replicas {
		if p := in.lastExit.Load(); p != nil {
			return "it exited (" + *p + ") and is starting again"
		}
	}
	for _, in := range fn.replicas {
		select {
		case <-in.firstReady:
			return in.readyPath + " does not answer 200"
		default:
		}
	}
	return "it is starting"
}

// stop stops the replicas; wait waits until they are gone.
func stop(replicas []*instance, wait bool) {
	for _, in := range replicas {
		in.cancel()
	}
	if wait {
		for _, in := range replicas {
			<-in.done
		}
	}
}

// instance is one replica of a function: one process tree of the runner.
type instance struct {
	id   string // as a pod's name: the function's, then a suffix
	addr string // host:port of its Listener
	// readyPath is where its readiness is asked (readinessPath).
	readyPath string
	proxy     *httputil.ReverseProxy
	cancel    context.CancelFunc
	done      chan struct{} // closed once the instance is gone for good
	err       error         // why it stopped, once done is closed
	// ready is whether the instance takes requests: its readiness path
	// answers 200, and it has not exited since. lastExit is why it last
	// exited, for the 503 until it is ready again.
	ready    atomic.Bool
	lastExit atomic.Pointer[string]
	// firstReady is closed the first time the instance is ready.
	firstReady     chan struct{}
	firstReadyOnce sync.Once

	// inflight counts the requests it serves now (queue.go); starting is
	// whether it runs again after an exit and is not yet ready, which is
	// worth waiting for. runStart is when its current run began.
	inflight atomic.Int64
	starting atomic.Bool
	runStart atomic.Pointer[time.Time]
	stats    *fnStats
	// coldStart is told each run's time from its start to its first
	// readiness.
	coldStart func(time.Duration)
	// pid is its first process's, once the runner reports it, and usage
	// that process tree's last sampling (proc.go).
	pid   atomic.Int64
	usage atomic.Pointer[usage]
}

// Option configures a Gateway.
type Option func(*Gateway)

// WithOutput sets where functions' logs go, each line prefixed by the
// function's name. Default: discarded.
func WithOutput(stdout, stderr io.Writer) Option {
	return func(g *Gateway) { g.stdout, g.stderr = stdout, stderr }
}

// WithSecretsDir sets the folder that holds the functions' secrets, one
// file per name, which /system/secrets manages. Default: none, and a
// deployment that names a secret is refused.
func WithSecretsDir(dir string) Option { return func(g *Gateway) { g.secrets.dir = dir } }

// WithVersion sets the version /system/info reports. Default: "dev".
func WithVersion(v string) Option { return func(g *Gateway) { g.version = v } }

// WithHealthTimeout sets how long a new instance may take to be ready
// (readinessPath answering 200). Default: 60s.
func WithHealthTimeout(d time.Duration) Option { return func(g *Gateway) { g.healthTimeout = d } }

// WithImageEnv sets how the gateway reads an image's own environment, under
// the deployment's: its watchdog mode tells whether the image has a
// /_/ready of its own (readinessPath). Default: none, and an image whose
// deployment sets no mode is taken for one on the classic watchdog's
// contract, probed on /_/health.
func WithImageEnv(f func(ctx context.Context, image string) ([]string, error)) Option {
	return func(g *Gateway) { g.imageEnv = f }
}

// New returns a gateway that starts functions with run.
func New(run Runner, opts ...Option) *Gateway {
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{run: run, stdout: io.Discard, stderr: io.Discard, healthTimeout: 60 * time.Second, version: "dev", ctx: ctx, cancel: cancel, functions: map[string]*function{}}
	for _, o := range opts {
		o(g)
	}
	g.metrics = newMetrics(g)
	g.all.Add(1)
	go g.sampleLoop()
	if g.uiFor != nil {
		g.ui = g.uiFor(g)
	}
	return g
}

// Close stops every function and waits until all have exited.
func (g *Gateway) Close() {
	g.cancel()
	g.all.Wait()
}

// ErrNotFound is returned for a function the gateway does not run.
var ErrNotFound = errors.New("function not found")

// ValidationError is a deployment the gateway refuses to start.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

// Deploy starts d and, once it is healthy, routes its name to it, then
// stops the instances it replaces. An Update of an unknown function is
// ErrNotFound, a Create of a known one ErrExists; a deployment that cannot
// be is a *ValidationError. The previous instances keep serving if the
// new ones fail. Function names are unique across namespaces here. A new
// function gets the replicas its com.openfaas.scale.min label asks (up to
// MaxReplicas), else 1; an update keeps the replicas it had.
func (g *Gateway) Deploy(ctx context.Context, d deploy.Deployment, mode Mode) error {
	if d.Service == "" || !stack.DNSLabel.MatchString(d.Service) || len(d.Service) > 63 {
		return &ValidationError{fmt.Sprintf("service %q: want a DNS-1123 label", d.Service)}
	}
	if d.Image == "" {
		return &ValidationError{"image is required"}
	}
	if d.Namespace == "" {
		d.Namespace = DefaultNamespace
	}
	replicas := 1
	var labels map[string]string
	if d.Labels != nil {
		labels = *d.Labels
	}
	if v, ok := labels[ScaleMinLabel]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return &ValidationError{fmt.Sprintf("label %s=%q: want a number of replicas", ScaleMinLabel, v)}
		}
		replicas = min(max(n, 1), MaxReplicas)
	}
	secretFiles, err := g.secrets.lookup(d.Secrets)
	if err != nil {
		return err
	}
	readyPath, maxInflight, err := g.readinessPath(ctx, d)
	if err != nil {
		return err
	}
	g.deployMu.Lock()
	defer g.deployMu.Unlock()
	g.mu.RLock()
	old := g.functions[d.Service]
	g.mu.RUnlock()
	switch {
	case mode == Update && old == nil:
		return ErrNotFound
	case mode == Create && old != nil:
		return ErrExists
	}
	fn := &function{dep: d, secrets: secretFiles, readyPath: readyPath, maxInflight: maxInflight, created: time.Now().UTC(), invocations: new(atomic.Int64), next: new(atomic.Uint64), stats: new(fnStats)}
	if old != nil {
		replicas = len(old.replicas)
		fn.created, fn.invocations, fn.next, fn.stats = old.created, old.invocations, old.next, old.stats
	}
	if fn.replicas, err = g.startReplicas(ctx, fn, replicas); err != nil {
		return err
	}
	g.mu.Lock()
	g.functions[d.Service] = fn
	g.mu.Unlock()
	fn.stats.changed()
	if old != nil {
		stop(old.replicas, false)
	}
	return nil
}

// Scale sets the replicas of function name in namespace ns ("" is any):
// new ones are started and routed to once healthy, removed ones drain.
// More than MaxReplicas is MaxReplicas; fewer than 1 is a
// *ValidationError, as on OpenFaaS CE, which does not scale to zero.
func (g *Gateway) Scale(ctx context.Context, name, ns string, replicas uint64) error {
	if replicas < 1 {
		return &ValidationError{"replicas cannot be set to 0: kiln's local gateway does not scale to zero"}
	}
	n := int(min(replicas, MaxReplicas))
	g.deployMu.Lock()
	defer g.deployMu.Unlock()
	fn := g.lookup(name, ns)
	if fn == nil {
		return ErrNotFound
	}
	cur := len(fn.replicas)
	switch {
	case n > cur:
		added, err := g.startReplicas(ctx, fn, n-cur)
		if err != nil {
			return err
		}
		g.mu.Lock()
		g.functions[name] = fn.withReplicas(append(slices.Clip(fn.replicas), added...))
		g.mu.Unlock()
		fn.stats.changed()
	case n < cur:
		g.mu.Lock()
		g.functions[name] = fn.withReplicas(slices.Clip(fn.replicas[:n]))
		g.mu.Unlock()
		fn.stats.changed()
		stop(fn.replicas[n:], false)
	}
	return nil
}

// Remove stops and forgets a function.
func (g *Gateway) Remove(name string) error {
	g.deployMu.Lock()
	defer g.deployMu.Unlock()
	g.mu.Lock()
	fn := g.functions[name]
	delete(g.functions, name)
	g.mu.Unlock()
	if fn == nil {
		return ErrNotFound
	}
	fn.stats.changed()
	stop(fn.replicas, true)
	return nil
}

// startReplicas starts n instances of fn at once and waits until each is
// ready; if one fails, it stops the others and returns its error.
func (g *Gateway) startReplicas(ctx context.Context, fn *function, n int) ([]*instance, error) {
	out := make([]*instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i], errs[i] = g.start(ctx, fn) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			stop(slices.DeleteFunc(out, func(in *instance) bool { return in == nil }), true)
			return nil, err
		}
	}
	return out, nil
}

// start starts one instance of fn and waits until it is ready.
func (g *Gateway) start(ctx context.Context, fn *function) (*instance, error) {
	d, secretFiles := fn.dep, fn.secrets
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", d.Service, err)
	}
	env := map[string]string{"healthcheck_interval": "1s"}
	maps.Copy(env, d.EnvVars)
	if d.EnvProcess != "" {
		env[contract.EnvFProcess] = d.EnvProcess
	}
	// As on OpenFaaS, where probes and the gateway expect it there.
	env[contract.EnvPort] = strconv.Itoa(contract.WatchdogPort)
	env["OPENFAAS_NAME"] = d.Service
	env["OPENFAAS_NAMESPACE"] = d.Namespace
	var envList []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		envList = append(envList, k+"="+env[k])
	}
	target := &url.URL{Scheme: "http", Host: l.Addr().String()}
	runCtx, cancel := context.WithCancel(g.ctx)
	// Each instance is named as a pod would be: the function, then a suffix.
	id := d.Service + "-" + newCallID()[:8]
	in := &instance{id: id, addr: l.Addr().String(), readyPath: fn.readyPath, cancel: cancel, done: make(chan struct{}), firstReady: make(chan struct{}), stats: fn.stats}
	in.coldStart = func(took time.Duration) {
		g.metrics.coldStart.WithLabelValues(fn.label()).Observe(took.Seconds())
		fn.stats.coldStart(time.Now(), took)
	}
	in.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			// As OpenFaaS's gateway: X-Forwarded-* are added only where
			// the client (or a proxy in front) sent none.
			forwarded := r.In.Header.Get("X-Forwarded-For") != "" || r.In.Header.Get("X-Forwarded-Host") != "" || r.In.Header.Get("X-Forwarded-Proto") != ""
			r.SetXForwarded()
			if forwarded {
				for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
					if v := r.In.Header.Values(h); len(v) > 0 {
						r.Out.Header[h] = v
					}
				}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			slog.WarnContext(r.Context(), "function unreachable", "function", d.Service, "error", err)
			http.Error(w, "function "+d.Service+" unreachable: "+err.Error(), http.StatusBadGateway)
		},
	}
	prefix := d.Service + " | "
	stdout, stderr := newPrefixWriter(g.stdout, prefix), newPrefixWriter(g.stderr, prefix)
	tap := g.logTap(d.Service, d.Namespace, id)
	stdout.tap, stderr.tap = tap, tap
	g.all.Add(1)
	go func() {
		defer g.all.Done()
		defer close(in.done)
		defer l.Close()
		defer cancel()
		spec := Instance{Name: d.Service, Image: d.Image, Env: envList, Listener: l, Stdout: stdout, Stderr: stderr, Secrets: secretFiles, ReadOnlyRoot: d.ReadOnlyRootFilesystem,
			Started: func(pid int) { in.pid.Store(int64(pid)) }}
		in.err = g.supervise(runCtx, in, spec, stdout, stderr)
	}()
	if err := waitReady(ctx, in, g.healthTimeout); err != nil {
		cancel()
		<-in.done
		return nil, fmt.Errorf("starting %s: %w", d.Service, err)
	}
	return in, nil
}

// supervise runs the instance until ctx is done. Once it has been ready,
// an exit starts it again after a back-off; one that exits before that
// has failed to deploy, which supervise returns. stdout and stderr are
// spec's, flushed at every exit.
func (g *Gateway) supervise(ctx context.Context, in *instance, spec Instance, stdout, stderr *prefixWriter) error {
	delay := restartDelay
	for {
		wasReady := make(chan bool, 1)
		exited := make(chan struct{})
		now := time.Now()
		in.runStart.Store(&now)
		go func() { wasReady <- probeReadiness(in, exited) }()
		err := g.run(ctx, spec)
		in.pid.Store(0)
		in.usage.Store(nil)
		why := "it exited"
		if err != nil {
			why = err.Error()
		}
		// Before ready turns false, so that a 503 meanwhile says why.
		in.lastExit.Store(&why)
		close(exited)
		ready := <-wasReady
		in.ready.Store(false)
		in.starting.Store(false)
		stdout.Flush()
		stderr.Flush()
		if ctx.Err() != nil || !ready {
			return err
		}
		fmt.Fprintf(stderr, "kiln: %s; starting it again in %s\n", why, delay)
		stderr.Flush()
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		// Requests wait for it from now on, no longer refused at once.
		in.starting.Store(true)
		in.stats.changed()
		delay = min(2*delay, maxRestartDelay)
	}
}

// readinessPath returns the path the gateway asks whether an instance of d
// takes requests, and d's max_inflight. The path is d's
// deploy.ReadyPathAnnotation when set, else the watchdog's /_/ready, which
// of-watchdog answers from the function's ready_path and max_inflight and
// where /_/health says only that the process is up. An image on the
// classic watchdog's contract (no mode, in the deployment's environment
// over the image's) has no /_/ready of its own: there it reaches the
// function, so /_/health is asked. max_inflight is read as the watchdog
// reads it: from the deployment's environment over the image's, 0 (no
// limit) when absent, not a number or negative.
func (g *Gateway) readinessPath(ctx context.Context, d deploy.Deployment) (string, int, error) {
	path := ""
	if d.Annotations != nil {
		if p, ok := (*d.Annotations)[deploy.ReadyPathAnnotation]; ok {
			if !strings.HasPrefix(p, "/") {
				return "", 0, &ValidationError{fmt.Sprintf("annotation %s=%q: want a path starting with /", deploy.ReadyPathAnnotation, p)}
			}
			path = p
		}
	}
	var env []string
	if g.imageEnv != nil {
		var err error
		if env, err = g.imageEnv(ctx, d.Image); err != nil {
			return "", 0, fmt.Errorf("starting %s: %w", d.Service, err)
		}
	}
	get := func(key string) string {
		if v, ok := d.EnvVars[key]; ok {
			return v
		}
		return envlist.Get(env, key)
	}
	maxInflight, err := strconv.Atoi(get(maxInflightEnv))
	if err != nil || maxInflight < 0 {
		maxInflight = 0
	}
	switch mode := get(contract.EnvMode); {
	case path != "":
	case mode == "" || mode == "classic":
		path = contract.HealthPath
	default:
		path = contract.ReadyPath
	}
	return path, maxInflight, nil
}

// maxInflightEnv is the watchdog's setting of how many requests one
// instance serves at once.
const maxInflightEnv = "max_inflight"

// The readiness probe's timing after an instance's first readiness, as
// the OpenFaaS chart sets faas-netes' probes: every readyPeriod, with a
// timeout of readyTimeout; readyFailures failures in a row take the
// instance out of service, one success brings it back. Until the first
// readiness the probe asks every readyFirstPeriod, so that a new
// instance serves as soon as it can.
var (
	readyFirstPeriod = 20 * time.Millisecond
	readyPeriod      = 2 * time.Second
	readyTimeout     = time.Second
	readyFailures    = 3
)

// probeReadiness asks the instance's readiness path, as a Kubernetes
// readiness probe does, until exited is closed, and sets in.ready: only a
// ready instance gets requests. It reports whether the instance was ever
// ready.
func probeReadiness(in *instance, exited <-chan struct{}) bool {
	client := &http.Client{Timeout: readyTimeout}
	url := "http://" + in.addr + in.readyPath
	// ask returns the readiness path's status, 0 when it does not answer.
	ask := func() int {
		resp, err := client.Get(url)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		return resp.StatusCode
	}
	wasReady, failures := false, 0
	period := readyFirstPeriod
	for {
		select {
		case <-exited:
			return wasReady
		default:
		}
		switch code := ask(); {
		case code == http.StatusOK:
			failures = 0
			in.lastExit.Store(nil)
			in.starting.Store(false)
			if !in.ready.Swap(true) {
				in.stats.changed()
			}
			if !wasReady {
				wasReady, period = true, readyPeriod
				if s := in.runStart.Load(); s != nil {
					in.coldStart(time.Since(*s))
				}
				in.firstReadyOnce.Do(func() { close(in.firstReady) })
			}
		case code == http.StatusTooManyRequests && wasReady:
			// The watchdog's /_/ready at max_inflight: busy, not
			// failing. The gateway's slots (queue.go) hold requests
			// back meanwhile, and send the next one when a slot frees.
			failures = 0
		case wasReady:
			if failures++; failures >= readyFailures {
				in.ready.Store(false)
			}
		}
		select {
		case <-exited:
			return wasReady
		case <-time.After(period):
		}
	}
}

// waitReady waits for a new instance's first readiness, or its exit.
func waitReady(ctx context.Context, in *instance, timeout time.Duration) error {
	select {
	case <-in.firstReady:
		return nil
	case <-in.done:
		if in.err != nil {
			// %v: the function's exit code is not kiln's.
			return fmt.Errorf("it exited: %v", in.err)
		}
		return errors.New("it exited before it was ready")
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("%s did not answer 200 within %s", in.readyPath, timeout)
	}
}

// Handler returns the gateway's HTTP API. Every request must name the
// gateway in its Host (WithAllowedHosts); /system/* and /ui/ refuse other
// sites' pages and ask for the login (WithBasicAuth).
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	// GET patterns match HEAD too.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })
	// Open, as on OpenFaaS: Prometheus scrapes it without a login.
	mux.Handle("GET /metrics", g.Metrics())
	system := func(pattern string, h http.HandlerFunc) { mux.HandleFunc(pattern, g.protect(h)) }
	system("GET /system/info", g.info)
	system("GET /system/namespaces", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, g.namespaces())
	})
	for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
		system(m+" /system/secrets", g.secretsHTTP)
	}
	system("GET /system/logs", g.logsHTTP)
	system("GET /system/openapi.json", g.openapiHTTP)
	system("GET /system/functions", g.list)
	system("POST /system/functions", func(w http.ResponseWriter, r *http.Request) { g.deployHTTP(w, r, Create) })
	system("PUT /system/functions", func(w http.ResponseWriter, r *http.Request) { g.deployHTTP(w, r, Update) })
	system("DELETE /system/functions", g.delete)
	system("GET /system/function/{name}", g.get)
	system("POST /system/scale-function/{name}", g.scaleHTTP)
	// The rest of /system/ and the UI: the login first, then 404.
	system("/system/", http.NotFound)
	if g.ui != nil {
		system("/ui/", g.ui.ServeHTTP)
		// As OpenFaaS's gateway: the site's root is the UI.
		mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	} else {
		system("/ui/", http.NotFound)
	}
	mux.HandleFunc("/function/{name}", g.invoke)
	mux.HandleFunc("/function/{name}/{path...}", g.invoke)
	mux.HandleFunc("POST /async-function/{name}", g.invokeAsync)
	mux.HandleFunc("POST /async-function/{name}/{path...}", g.invokeAsync)
	return g.guardHosts(mux)
}

// scaleHTTP answers POST /system/scale-function/<name> with faas-provider's
// ScaleServiceRequest, as faas-netes does: 202 once scaled. The namespace
// comes from the query, as faas-netes reads it, else the body, where
// faas-cli puts it.
func (g *Gateway) scaleHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ServiceName string `json:"serviceName"`
		Replicas    uint64 `json:"replicas"`
		Namespace   string `json:"namespace"`
	}
	if err := decodeBody(r, &req); err != nil {
		http.Error(w, "Cannot parse request. Please pass valid JSON.", http.StatusBadRequest)
		return
	}
	name := r.PathValue("name")
	ns := r.URL.Query().Get("namespace")
	if ns == "" {
		ns = req.Namespace
	}
	err := g.Scale(r.Context(), name, ns, req.Replicas)
	var ve *ValidationError
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, "function "+name+" not found", http.StatusNotFound)
	case errors.As(err, &ve):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case err != nil:
		http.Error(w, "scaling "+name+": "+err.Error(), http.StatusInternalServerError)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

// Status is the gateway's FunctionStatus for a running function.
type Status struct {
	deploy.Deployment
	Name              string    `json:"name"`
	InvocationCount   int64     `json:"invocationCount"`
	Replicas          uint64    `json:"replicas"`
	AvailableReplicas uint64    `json:"availableReplicas"`
	CreatedAt         time.Time `json:"createdAt"`
}

// MarshalJSON writes name instead of service, as FunctionStatus does.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	b, err := json.Marshal(plain(s))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "service")
	return json.Marshal(m)
}

func (fn *function) status() Status {
	var available uint64
	for _, in := range fn.replicas {
		if in.ready.Load() {
			available++
		}
	}
	return Status{Deployment: fn.dep, Name: fn.dep.Service, InvocationCount: fn.invocations.Load(), Replicas: uint64(len(fn.replicas)), AvailableReplicas: available, CreatedAt: fn.created}
}

// Functions returns the status of every running function, by name.
func (g *Gateway) Functions() []Status {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []Status
	for _, n := range slices.Sorted(maps.Keys(g.functions)) {
		out = append(out, g.functions[n].status())
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (g *Gateway) info(w http.ResponseWriter, r *http.Request) {
	type version struct {
		SHA     string `json:"sha"`
		Release string `json:"release"`
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"provider": map[string]any{"provider": "kiln", "orchestration": "kiln-local", "version": version{Release: g.version}},
		"version":  version{Release: g.version},
		"arch":     runtime.GOARCH,
	})
}

// namespaces lists the namespaces of the running functions, the default
// one always.
func (g *Gateway) namespaces() []string {
	set := map[string]bool{DefaultNamespace: true}
	for _, s := range g.Functions() {
		set[s.Namespace] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// lookup returns the running function name in namespace ns ("" is any),
// else nil.
func (g *Gateway) lookup(name, ns string) *function {
	g.mu.RLock()
	fn := g.functions[name]
	g.mu.RUnlock()
	if fn == nil || (ns != "" && fn.dep.Namespace != ns) {
		return nil
	}
	return fn
}

func (g *Gateway) list(w http.ResponseWriter, r *http.Request) {
	ns := r.URL.Query().Get("namespace")
	fns := []Status{}
	for _, s := range g.Functions() {
		if ns == "" || s.Namespace == ns {
			fns = append(fns, s)
		}
	}
	writeJSON(w, http.StatusOK, fns)
}

func (g *Gateway) get(w http.ResponseWriter, r *http.Request) {
	fn := g.lookup(r.PathValue("name"), r.URL.Query().Get("namespace"))
	if fn == nil {
		http.Error(w, "function not found", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, fn.status())
}

// decodeBody reads a JSON request body: one value and nothing after it,
// as json.Unmarshal of the whole body would have it.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid character after the JSON value")
	}
	return nil
}

func (g *Gateway) deployHTTP(w http.ResponseWriter, r *http.Request, mode Mode) {
	var d deploy.Deployment
	if err := decodeBody(r, &d); err != nil {
		http.Error(w, "reading the deployment: "+err.Error(), http.StatusBadRequest)
		return
	}
	err := g.Deploy(r.Context(), d, mode)
	var ve *ValidationError
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, "function "+d.Service+" not found", http.StatusNotFound)
	case errors.As(err, &ve):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.Is(err, ErrExists):
		// As faas-netes: creating what exists is a failed create.
		http.Error(w, "function "+d.Service+" already exists; update it with PUT", http.StatusInternalServerError)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

func (g *Gateway) delete(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FunctionName string `json:"functionName"`
		Namespace    string `json:"namespace"`
	}
	if err := decodeBody(r, &req); err != nil || req.FunctionName == "" {
		http.Error(w, "want {\"functionName\": ...}", http.StatusBadRequest)
		return
	}
	if g.lookup(req.FunctionName, req.Namespace) == nil || g.Remove(req.FunctionName) != nil {
		http.Error(w, "function "+req.FunctionName+" not found", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// invoke proxies /function/<name>[.<namespace>][/path] to the function,
// with the path after the name and the query kept. It waits for a free
// instance as acquire says.
func (g *Gateway) invoke(w http.ResponseWriter, r *http.Request) {
	name, ns, _ := strings.Cut(r.PathValue("name"), ".")
	began := time.Now()
	fn, in, waited, why := g.acquire(r.Context(), name, ns)
	if fn == nil {
		http.Error(w, "function "+r.PathValue("name")+" not found", http.StatusNotFound)
		return
	}
	c := call{queued: time.Since(began), waited: waited}
	if in == nil {
		if r.Context().Err() != nil {
			return // the caller left while it waited: no one to answer
		}
		http.Error(w, "function "+name+" is not ready: "+why, http.StatusServiceUnavailable)
		c.code = http.StatusServiceUnavailable
		g.record(fn, c)
		return
	}
	defer in.release()
	fn.invocations.Add(1)
	g.metrics.started.WithLabelValues(fn.label()).Inc()
	callID := r.Header.Get("X-Call-Id")
	if callID == "" {
		callID = newCallID()
	}
	start := strconv.FormatInt(time.Now().UnixNano(), 10)
	r = r.Clone(r.Context())
	r.URL.Path = "/" + r.PathValue("path")
	r.URL.RawPath = ""
	r.Header.Set("X-Call-Id", callID)
	r.Header.Set("X-Start-Time", start)
	w.Header().Set("X-Call-Id", callID)
	w.Header().Set("X-Start-Time", start)
	w, finish := g.observe(w, r, name)
	defer finish()
	body := &countingBody{ReadCloser: r.Body}
	r.Body = body
	cw := &countingWriter{ResponseWriter: w}
	proxied := time.Now()
	in.proxy.ServeHTTP(cw, r)
	c.code, c.served, c.bytesIn, c.bytesOut, c.reachedTarget = cw.status(), time.Since(proxied), body.n, cw.n, true
	g.record(fn, c)
}

// newCallID returns a random UUID (version 4).
func newCallID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
