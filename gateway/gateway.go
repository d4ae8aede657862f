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
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-build/kiln/deploy"
)

// Instance is one running copy of a function, as a Runner starts it.
type Instance struct {
	// Name is the function's name.
	Name string
	// Image is the image reference the deployment names.
	Image string
	// Env is the function's environment: the deployment's envVars and
	// fprocess, the watchdog's port, metrics_port, http_port and
	// upstream_url, and OPENFAAS_NAME.
	Env []string
	// Stdout and Stderr take the function's output, prefixed by its name.
	Stdout, Stderr io.Writer
}

// Runner runs an instance until ctx is done or it exits. It must return
// only once nothing of the instance is left running.
type Runner func(ctx context.Context, in Instance) error

// Gateway serves the local gateway API and owns the running functions.
type Gateway struct {
	run           Runner
	stdout        io.Writer
	stderr        io.Writer
	healthTimeout time.Duration

	ctx    context.Context
	cancel context.CancelFunc

	// deployMu orders deploys of the same gateway; mu guards functions.
	deployMu  sync.Mutex
	mu        sync.RWMutex
	functions map[string]*instance
	all       sync.WaitGroup
}

type instance struct {
	dep         deploy.Deployment
	port        int
	proxy       *httputil.ReverseProxy
	cancel      context.CancelFunc
	done        chan struct{}
	err         error
	created     time.Time
	invocations atomic.Int64
}

// Option configures a Gateway.
type Option func(*Gateway)

// WithOutput sets where functions' logs go, each line prefixed by the
// function's name. Default: discarded.
func WithOutput(stdout, stderr io.Writer) Option {
	return func(g *Gateway) { g.stdout, g.stderr = stdout, stderr }
}

// WithHealthTimeout sets how long a new instance may take to answer
// /_/health with 200. Default: 60s.
func WithHealthTimeout(d time.Duration) Option { return func(g *Gateway) { g.healthTimeout = d } }

// New returns a gateway that starts functions with run.
func New(run Runner, opts ...Option) *Gateway {
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{run: run, stdout: io.Discard, stderr: io.Discard, healthTimeout: 60 * time.Second, ctx: ctx, cancel: cancel, functions: map[string]*instance{}}
	for _, o := range opts {
		o(g)
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

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Deploy starts d and, once it is healthy, routes its name to it, then
// stops the instance it replaces. With mustExist (PUT) an unknown function
// is ErrNotFound. The previous instance keeps serving if the new one fails.
func (g *Gateway) Deploy(ctx context.Context, d deploy.Deployment, mustExist bool) error {
	if d.Service == "" || !dns1123.MatchString(d.Service) || len(d.Service) > 63 {
		return fmt.Errorf("service %q: want a DNS-1123 label", d.Service)
	}
	if d.Image == "" {
		return errors.New("image is required")
	}
	g.deployMu.Lock()
	defer g.deployMu.Unlock()
	g.mu.RLock()
	old := g.functions[d.Service]
	g.mu.RUnlock()
	if mustExist && old == nil {
		return ErrNotFound
	}
	in, err := g.start(ctx, d)
	if err != nil {
		return err
	}
	if old != nil {
		in.invocations.Store(old.invocations.Load())
		in.created = old.created
	}
	g.mu.Lock()
	g.functions[d.Service] = in
	g.mu.Unlock()
	if old != nil {
		old.cancel()
	}
	return nil
}

// Remove stops and forgets a function.
func (g *Gateway) Remove(name string) error {
	g.deployMu.Lock()
	defer g.deployMu.Unlock()
	g.mu.Lock()
	in := g.functions[name]
	delete(g.functions, name)
	g.mu.Unlock()
	if in == nil {
		return ErrNotFound
	}
	in.cancel()
	<-in.done
	return nil
}

// freePorts reserves n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (g *Gateway) start(ctx context.Context, d deploy.Deployment) (*instance, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	port, metrics, upstream := ports[0], ports[1], ports[2]
	env := map[string]string{"healthcheck_interval": "1s"}
	maps.Copy(env, d.EnvVars)
	if d.EnvProcess != "" {
		env["fprocess"] = d.EnvProcess
	}
	env["port"] = strconv.Itoa(port)
	env["metrics_port"] = strconv.Itoa(metrics)
	env["http_port"] = strconv.Itoa(upstream)
	env["upstream_url"] = "http://127.0.0.1:" + strconv.Itoa(upstream)
	env["OPENFAAS_NAME"] = d.Service
	var envList []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		envList = append(envList, k+"="+env[k])
	}
	target := &url.URL{Scheme: "http", Host: "127.0.0.1:" + strconv.Itoa(port)}
	runCtx, cancel := context.WithCancel(g.ctx)
	in := &instance{dep: d, port: port, cancel: cancel, done: make(chan struct{}), created: time.Now().UTC()}
	in.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
			r.Out.Host = r.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			slog.WarnContext(r.Context(), "function unreachable", "function", d.Service, "error", err)
			http.Error(w, "function "+d.Service+" unreachable: "+err.Error(), http.StatusBadGateway)
		},
	}
	prefix := d.Service + " | "
	stdout, stderr := newPrefixWriter(g.stdout, prefix), newPrefixWriter(g.stderr, prefix)
	g.all.Add(1)
	go func() {
		defer g.all.Done()
		defer close(in.done)
		in.err = g.run(runCtx, Instance{Name: d.Service, Image: d.Image, Env: envList, Stdout: stdout, Stderr: stderr})
		stdout.Flush()
		stderr.Flush()
		cancel()
	}()
	if err := waitHealthy(ctx, in, g.healthTimeout); err != nil {
		cancel()
		<-in.done
		return nil, fmt.Errorf("starting %s: %w", d.Service, err)
	}
	return in, nil
}

// waitHealthy polls the instance's /_/health until it answers 200.
func waitHealthy(ctx context.Context, in *instance, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: time.Second}
	url := "http://127.0.0.1:" + strconv.Itoa(in.port) + "/_/health"
	for time.Now().Before(deadline) {
		select {
		case <-in.done:
			if in.err != nil {
				return fmt.Errorf("it exited: %w", in.err)
			}
			return errors.New("it exited before it was healthy")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("/_/health did not answer 200 within %s", timeout)
}

// Handler returns the gateway's HTTP API.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })
	mux.HandleFunc("GET /system/functions", g.list)
	mux.HandleFunc("POST /system/functions", func(w http.ResponseWriter, r *http.Request) { g.deployHTTP(w, r, false) })
	mux.HandleFunc("PUT /system/functions", func(w http.ResponseWriter, r *http.Request) { g.deployHTTP(w, r, true) })
	mux.HandleFunc("DELETE /system/functions", g.delete)
	mux.HandleFunc("GET /system/function/{name}", g.get)
	mux.HandleFunc("/function/{name}", g.invoke)
	mux.HandleFunc("/function/{name}/{path...}", g.invoke)
	return mux
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

func (in *instance) status() Status {
	return Status{Deployment: in.dep, Name: in.dep.Service, InvocationCount: in.invocations.Load(), Replicas: 1, AvailableReplicas: 1, CreatedAt: in.created}
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

func (g *Gateway) list(w http.ResponseWriter, r *http.Request) {
	fns := g.Functions()
	if fns == nil {
		fns = []Status{}
	}
	writeJSON(w, http.StatusOK, fns)
}

func (g *Gateway) get(w http.ResponseWriter, r *http.Request) {
	g.mu.RLock()
	in := g.functions[r.PathValue("name")]
	g.mu.RUnlock()
	if in == nil {
		http.Error(w, "function not found", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, in.status())
}

func (g *Gateway) deployHTTP(w http.ResponseWriter, r *http.Request, update bool) {
	var d deploy.Deployment
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&d); err != nil {
		http.Error(w, "reading the deployment: "+err.Error(), http.StatusBadRequest)
		return
	}
	err := g.Deploy(r.Context(), d, update)
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, "function "+d.Service+" not found", http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		w.WriteHeader(http.StatusAccepted)
	}
}

func (g *Gateway) delete(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FunctionName string `json:"functionName"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.FunctionName == "" {
		http.Error(w, "want {\"functionName\": ...}", http.StatusBadRequest)
		return
	}
	if err := g.Remove(req.FunctionName); err != nil {
		http.Error(w, "function "+req.FunctionName+" not found", http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// invoke proxies /function/<name>[.<namespace>][/path] to the function,
// with the path after the name and the query kept.
func (g *Gateway) invoke(w http.ResponseWriter, r *http.Request) {
	name, _, _ := strings.Cut(r.PathValue("name"), ".")
	g.mu.RLock()
	in := g.functions[name]
	g.mu.RUnlock()
	if in == nil {
		http.Error(w, "function "+name+" not found", http.StatusNotFound)
		return
	}
	in.invocations.Add(1)
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
	in.proxy.ServeHTTP(w, r)
}

// newCallID returns a random UUID (version 4).
func newCallID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
