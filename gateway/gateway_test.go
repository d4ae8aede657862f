package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-build/kiln/deploy"
)

// fakeRunner runs an in-process "function" on the instance's port: it
// answers /_/health after a short start-up, echoes what it got, and drains
// for a while after ctx is done, as the watchdog does on SIGTERM.
type fakeRunner struct {
	running atomic.Int32
}

func envOf(in Instance, key string) string {
	for _, e := range in.Env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

func (f *fakeRunner) run(ctx context.Context, in Instance) error {
	if envOf(in, "FAIL") != "" {
		return errors.New("exit status 1")
	}
	f.running.Add(1)
	defer f.running.Add(-1)
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(started) < 100*time.Millisecond {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
	})
	crashed := make(chan struct{})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) { close(crashed) })
	mux.HandleFunc("/port", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, in.Listener.Addr().String()) })
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(in.Stdout, "logged %s\n", r.URL.RawQuery) })
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ns=%s port=%s xff=%s xfh=%s", envOf(in, "OPENFAAS_NAMESPACE"), envOf(in, "port"), r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "v=%s path=%s query=%s call=%s start=%s", envOf(in, "VERSION"), r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Call-Id"), r.Header.Get("X-Start-Time"))
	})
	srv := &http.Server{Handler: mux}
	fmt.Fprintf(in.Stdout, "listening on %s\n", in.Listener.Addr())
	errc := make(chan error, 1)
	l := &runListener{TCPListener: in.Listener}
	// As a run's init: the next run of the instance accepts again.
	_ = in.Listener.SetDeadline(time.Time{})
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-crashed:
		srv.Close()
		return errors.New("exit status 2")
	case <-ctx.Done():
	}
	time.Sleep(200 * time.Millisecond)
	return srv.Shutdown(context.Background())
}

// runListener is one run's view of an instance's listener, which the
// gateway keeps open between runs: Close stops this run's accepting
// without closing it.
type runListener struct {
	*net.TCPListener
	closed atomic.Bool
}

func (l *runListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.Accept()
	if l.closed.Load() {
		if c != nil {
			c.Close()
		}
		return nil, net.ErrClosed
	}
	return c, err
}

func (l *runListener) Close() error {
	l.closed.Store(true)
	return l.TCPListener.SetDeadline(time.Now())
}

func do(t *testing.T, method, url string, body any) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestGateway(t *testing.T) {
	var logs syncBuffer
	fr := &fakeRunner{}
	g := New(fr.run, WithOutput(&logs, &logs), WithHealthTimeout(5*time.Second))
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	u := srv.URL

	if code, body, _ := do(t, "GET", u+"/healthz", nil); code != 200 || body != "OK" {
		t.Errorf("GET /healthz = %d %q", code, body)
	}
	if code, body, _ := do(t, "HEAD", u+"/healthz", nil); code != 200 || body != "" {
		t.Errorf("HEAD /healthz = %d %q, want 200 and no body", code, body)
	}
	v1 := deploy.Deployment{Service: "echo", Image: "echo:1", EnvVars: map[string]string{"VERSION": "1"}}
	if code, body, _ := do(t, "PUT", u+"/system/functions", v1); code != 404 {
		t.Errorf("PUT unknown function = %d %q, want 404", code, body)
	}
	if code, body, _ := do(t, "POST", u+"/system/functions", v1); code != 202 {
		t.Fatalf("POST /system/functions = %d %q, want 202", code, body)
	}
	code, body, h := do(t, "POST", u+"/function/echo/a/b?x=1&y=2", nil)
	if code != 200 || !strings.HasPrefix(body, "v=1 path=/a/b query=x=1&y=2 call=") || h.Get("X-Call-Id") == "" || h.Get("X-Start-Time") == "" {
		t.Errorf("POST /function/echo/a/b?x=1&y=2 = %d %q, headers %v", code, body, h)
	}
	if !strings.Contains(body, "call="+h.Get("X-Call-Id")) {
		t.Errorf("the function saw another X-Call-Id than the caller got: %q vs %q", body, h.Get("X-Call-Id"))
	}
	if code, body, _ := do(t, "GET", u+"/function/echo", nil); code != 200 || !strings.Contains(body, "path=/ ") {
		t.Errorf("GET /function/echo = %d %q, want path /", code, body)
	}
	if code, _, _ := do(t, "GET", u+"/function/nope", nil); code != 404 {
		t.Errorf("GET /function/nope = %d, want 404", code)
	}

	// An update swaps with no failed request in between.
	ctx, stop := context.WithCancel(context.Background())
	var failures, calls atomic.Int64
	var sawV2 atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			resp, err := http.Get(u + "/function/echo")
			calls.Add(1)
			if err != nil {
				failures.Add(1)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failures.Add(1)
			}
			if strings.HasPrefix(string(b), "v=2") {
				sawV2.Store(true)
			}
		}
	})
	time.Sleep(50 * time.Millisecond)
	v2 := v1
	v2.EnvVars = map[string]string{"VERSION": "2"}
	if code, body, _ := do(t, "PUT", u+"/system/functions", v2); code != 202 {
		t.Errorf("PUT (update) = %d %q, want 202", code, body)
	}
	bad := v1
	bad.EnvVars = map[string]string{"FAIL": "1"}
	if code, _, _ := do(t, "PUT", u+"/system/functions", bad); code != 500 {
		t.Errorf("PUT (failing instance) = %d, want 500, a failed start", code)
	}
	time.Sleep(400 * time.Millisecond)
	stop()
	wg.Wait()
	if failures.Load() > 0 || !sawV2.Load() {
		t.Errorf("client loop across an update: %d of %d calls failed, saw v2: %v", failures.Load(), calls.Load(), sawV2.Load())
	}

	code, body, _ = do(t, "GET", u+"/system/functions", nil)
	var list []map[string]any
	json.Unmarshal([]byte(body), &list)
	if code != 200 || len(list) != 1 || list[0]["name"] != "echo" || list[0]["image"] != "echo:1" || list[0]["service"] != nil || list[0]["invocationCount"].(float64) < 3 {
		t.Errorf("GET /system/functions = %d %s", code, body)
	}
	if code, body, _ := do(t, "GET", u+"/system/function/echo", nil); code != 200 || !strings.Contains(body, `"VERSION":"2"`) {
		t.Errorf("GET /system/function/echo = %d %s", code, body)
	}
	if code, _, _ := do(t, "GET", u+"/system/function/nope", nil); code != 404 {
		t.Errorf("GET /system/function/nope = %d, want 404", code)
	}
	if code, _, _ := do(t, "DELETE", u+"/system/functions", map[string]string{"functionName": "echo"}); code != 202 {
		t.Errorf("DELETE echo = %d, want 202", code)
	}
	if code, _, _ := do(t, "GET", u+"/function/echo", nil); code != 404 {
		t.Errorf("GET /function/echo after delete = %d, want 404", code)
	}
	if code, _, _ := do(t, "DELETE", u+"/system/functions", map[string]string{"functionName": "echo"}); code != 404 {
		t.Errorf("DELETE unknown = %d, want 404", code)
	}
	if !strings.Contains(logs.String(), "echo | listening on 127.0.0.1:") {
		t.Errorf("logs = %q, want lines prefixed by the function name", logs.String())
	}

	// Close stops every function and returns once they are gone.
	if code, _, _ := do(t, "POST", u+"/system/functions", deploy.Deployment{Service: "other", Image: "x"}); code != 202 {
		t.Fatalf("POST other = %d", code)
	}
	g.Close()
	if n := fr.running.Load(); n != 0 {
		t.Errorf("after Close, %d functions still run", n)
	}
}

func TestDeployValidation(t *testing.T) {
	g := New((&fakeRunner{}).run)
	defer g.Close()
	for _, d := range []deploy.Deployment{{Service: "Bad_Name", Image: "x"}, {Service: "ok"}} {
		if err := g.Deploy(context.Background(), d, Create); err == nil {
			t.Errorf("Deploy(%+v) = nil error", d)
		}
	}
}

// TestDeployClient runs the deploy package's client against the gateway.
func TestDeployClient(t *testing.T) {
	g := New((&fakeRunner{}).run)
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	c, err := deploy.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	d := &deploy.Deployment{Service: "fn", Image: "fn@sha256:00", EnvVars: map[string]string{"VERSION": "7"}}
	for range 2 {
		if code, err := c.Deploy(context.Background(), d); err != nil || code != 202 {
			t.Fatalf("Deploy() = %d, %v", code, err)
		}
	}
	list, err := c.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Name != "fn" || list[0].Image != "fn@sha256:00" {
		t.Errorf("List() = %+v, %v", list, err)
	}
	if err := c.Delete(context.Background(), "fn", ""); err != nil {
		t.Errorf("Delete() = %v", err)
	}
}

// TestGatewayContract: what OpenFaaS tools rely on beyond deploy and
// invoke (§4.2, §4.4).
func TestGatewayContract(t *testing.T) {
	defer func(d time.Duration) { restartDelay = d }(restartDelay)
	restartDelay = 50 * time.Millisecond
	var logs syncBuffer
	g := New((&fakeRunner{}).run, WithOutput(&logs, &logs), WithHealthTimeout(5*time.Second), WithVersion("v9"))
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	u := srv.URL
	d := deploy.Deployment{Service: "echo", Image: "echo:1"}
	if code, body, _ := do(t, "POST", u+"/system/functions", d); code != 202 {
		t.Fatalf("POST = %d %q", code, body)
	}

	tests := []struct {
		name, method, path string
		body               any
		header             http.Header
		wantCode           int
		want               string // a substring of the answer
	}{
		{"create what exists", "POST", "/system/functions", d, nil, 500, "already exists"},
		{"trailing garbage", "POST", "/system/functions", json.RawMessage(`{"service":"x","image":"y"} trailing`), nil, 400, "after the JSON value"},
		{"default namespace", "GET", "/system/function/echo", nil, nil, 200, `"namespace":"openfaas-fn"`},
		{"namespace and the watchdog's port in the environment", "GET", "/function/echo/env", nil, nil, 200, "ns=openfaas-fn port=8080"},
		{"X-Forwarded-For added", "GET", "/function/echo/env", nil, nil, 200, "xff=127.0.0.1"},
		{"X-Forwarded-* kept", "GET", "/function/echo/env", nil, http.Header{"X-Forwarded-For": {"10.1.1.1"}, "X-Forwarded-Host": {"example.com"}}, 200, "xff=10.1.1.1 xfh=example.com"},
		{"name.namespace", "GET", "/function/echo.openfaas-fn/x", nil, nil, 200, "path=/x"},
		{"another namespace", "GET", "/function/echo.other/x", nil, nil, 404, "function echo.other not found"},
		{"list by namespace", "GET", "/system/functions?namespace=other", nil, nil, 200, "[]"},
		{"get by namespace", "GET", "/system/function/echo?namespace=other", nil, nil, 404, "not found"},
		{"info", "GET", "/system/info", nil, nil, 200, `"release":"v9"`},
		{"namespaces", "GET", "/system/namespaces", nil, nil, 200, `["openfaas-fn"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rd io.Reader
			if raw, ok := tt.body.(json.RawMessage); ok {
				rd = bytes.NewReader(raw)
			} else if tt.body != nil {
				b, _ := json.Marshal(tt.body)
				rd = bytes.NewReader(b)
			}
			req, _ := http.NewRequest(tt.method, u+tt.path, rd)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(b), tt.want) {
				t.Errorf("%s %s = %d %q, want %d and %q", tt.method, tt.path, resp.StatusCode, b, tt.wantCode, tt.want)
			}
		})
	}

	// An async call is 202 at once; the answer goes to X-Callback-Url.
	got := make(chan *http.Request, 1)
	bodies := make(chan string, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		got <- r
	}))
	defer cb.Close()
	req, _ := http.NewRequest("POST", u+"/async-function/echo/a?x=1", strings.NewReader("hi"))
	req.Header.Set("X-Callback-Url", cb.URL+"/done")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 || resp.Header.Get("X-Call-Id") == "" {
		t.Fatalf("POST /async-function/echo/a = %v, %v, want 202 with X-Call-Id", resp, err)
	}
	resp.Body.Close()
	select {
	case r := <-got:
		body := <-bodies
		if r.URL.Path != "/done" || r.Header.Get("X-Call-Id") != resp.Header.Get("X-Call-Id") || r.Header.Get("X-Function-Status") != "200" || r.Header.Get("X-Function-Name") != "echo" || r.Header.Get("X-Duration-Seconds") == "" || !strings.HasPrefix(body, "v= path=/a query=x=1 call="+resp.Header.Get("X-Call-Id")) {
			t.Errorf("callback: %s %v %q", r.URL.Path, r.Header, body)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no callback within 5 s")
	}
	for _, tt := range []struct {
		path, callback string
		want           int
	}{{"/async-function/nope", "", 404}, {"/async-function/echo", "ftp://x", 400}, {"/async-function/echo", "", 202}} {
		req, _ := http.NewRequest("POST", u+tt.path, nil)
		if tt.callback != "" {
			req.Header.Set("X-Callback-Url", tt.callback)
		}
		if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != tt.want {
			t.Errorf("POST %s (callback %q) = %v, %v, want %d", tt.path, tt.callback, resp, err, tt.want)
		} else {
			resp.Body.Close()
		}
	}

	// /system/logs: what the function wrote, newline-delimited JSON, and
	// with follow=true what it writes next.
	code, body, h := do(t, "GET", u+"/system/logs?name=echo", nil)
	var first logLine
	json.Unmarshal([]byte(strings.SplitN(body, "\n", 2)[0]), &first)
	if code != 200 || h.Get("Content-Type") != "application/x-ndjson" || first.Name != "echo" || first.Namespace != "openfaas-fn" || !strings.HasPrefix(first.Instance, "echo-") || !strings.HasPrefix(first.Text, "listening on 127.0.0.1:") || first.Timestamp.IsZero() {
		t.Errorf("GET /system/logs?name=echo = %d %v %q", code, h, body)
	}
	for _, tt := range []struct {
		query    string
		wantCode int
		want     string
	}{{"name=echo&tail=0", 200, ""}, {"", 400, "name is required\n"}, {"name=nope", 404, "function nope not found\n"}, {"name=echo&tail=x", 400, "tail \"x\": want a number\n"}} {
		if code, body, _ := do(t, "GET", u+"/system/logs?"+tt.query, nil); code != tt.wantCode || body != tt.want {
			t.Errorf("GET /system/logs?%s = %d %q, want %d %q", tt.query, code, body, tt.wantCode, tt.want)
		}
	}
	followCtx, stopFollow := context.WithTimeout(context.Background(), 5*time.Second)
	defer stopFollow()
	freq, _ := http.NewRequestWithContext(followCtx, "GET", u+"/system/logs?name=echo&tail=0&follow=true", nil)
	fresp, err := http.DefaultClient.Do(freq)
	if err != nil {
		t.Fatal(err)
	}
	do(t, "GET", u+"/function/echo/log?n=1", nil)
	line, err := bufio.NewReader(fresp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"text":"logged n=1"`) {
		t.Errorf("following /system/logs: %q, %v, want the new line", line, err)
	}
	stopFollow()
	fresp.Body.Close()

	// A function that exits is shown unavailable, answers 503 meanwhile,
	// and is started again.
	do(t, "GET", u+"/function/echo/crash", nil)
	deadline := time.Now().Add(5 * time.Second)
	_, status, _ := do(t, "GET", u+"/system/function/echo", nil)
	for !strings.Contains(status, `"availableReplicas":0`) && time.Now().Before(deadline) {
		_, status, _ = do(t, "GET", u+"/system/function/echo", nil)
	}
	code, body, _ = do(t, "GET", u+"/function/echo", nil)
	if code != 503 || !strings.Contains(body, "exit status 2") || !strings.Contains(status, `"availableReplicas":0`) {
		t.Errorf("after a crash: GET /function/echo = %d %q, status %s; want 503 naming the exit, 0 available", code, body, status)
	}
	for code != 200 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		code, body, _ = do(t, "GET", u+"/function/echo", nil)
	}
	if _, status, _ = do(t, "GET", u+"/system/function/echo", nil); code != 200 || !strings.Contains(status, `"availableReplicas":1`) {
		t.Errorf("after the restart: GET /function/echo = %d %q, status %s", code, body, status)
	}
	if !strings.Contains(logs.String(), "echo | kiln: exit status 2; starting it again in 50ms") {
		t.Errorf("logs = %q, want the restart reported", logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSecrets: /system/secrets as faas-cli secret create uses it, and
// deployments that name a secret get its file, or a 400 when it is missing.
func TestSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secrets")
	var got atomic.Pointer[Instance]
	fr := &fakeRunner{}
	g := New(func(ctx context.Context, in Instance) error { got.Store(&in); return fr.run(ctx, in) }, WithSecretsDir(dir), WithHealthTimeout(5*time.Second))
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	u := srv.URL + "/system/secrets"
	steps := []struct {
		method   string
		body     any
		wantCode int
	}{
		{"GET", nil, 200},
		// 202 as faas-netes answers: faas-cli secret remove takes 200 or 202 only.
		{"POST", map[string]string{"name": "api-key", "value": "s3cret"}, 202},
		{"POST", map[string]string{"name": "api-key", "value": "again"}, 409},
		{"PUT", map[string]any{"name": "api-key", "rawValue": []byte("raw\x00value")}, 202},
		{"PUT", map[string]string{"name": "nope", "value": "x"}, 404},
		{"POST", map[string]string{"name": "../escape", "value": "x"}, 400},
		{"POST", map[string]string{"name": "tmp", "value": "x"}, 202},
		{"DELETE", map[string]string{"name": "tmp"}, 202},
		{"DELETE", map[string]string{"name": "tmp"}, 404},
	}
	for _, st := range steps {
		if code, body, _ := do(t, st.method, u, st.body); code != st.wantCode {
			t.Errorf("%s /system/secrets %v = %d %q, want %d", st.method, st.body, code, body, st.wantCode)
		}
	}
	if code, body, _ := do(t, "GET", u, nil); code != 200 || body != `[{"name":"api-key","namespace":"openfaas-fn"}]`+"\n" {
		t.Errorf("GET /system/secrets = %d %q", code, body)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "api-key")); err != nil || string(b) != "raw\x00value" {
		t.Errorf("secret file = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "api-key")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("secret file mode = %v, %v, want 0644: the function's user must read it", fi.Mode(), err)
	}

	missing := deploy.Deployment{Service: "fn", Image: "fn:1", Secrets: []string{"api-key", "db-password"}}
	if code, body, _ := do(t, "POST", srv.URL+"/system/functions", missing); code != 400 || !strings.Contains(body, "secret db-password not found") {
		t.Errorf("deploy with a missing secret = %d %q, want 400 naming it", code, body)
	}
	ok := deploy.Deployment{Service: "fn", Image: "fn:1", Secrets: []string{"api-key"}, ReadOnlyRootFilesystem: true}
	if code, body, _ := do(t, "POST", srv.URL+"/system/functions", ok); code != 202 {
		t.Fatalf("deploy with a secret = %d %q", code, body)
	}
	if in := got.Load(); in == nil || in.Secrets["api-key"] != filepath.Join(dir, "api-key") || !in.ReadOnlyRoot {
		t.Errorf("instance = %+v, want the api-key file and a read-only root", in)
	}
}

// exitError is a function's exit, which carries its code as kiln run's
// errors do.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("entrypoint exited with status %d", e.code) }
func (e exitError) ExitCode() int { return e.code }

// TestDeployFailureIsNotTheFunctionsExit: a function that exits before it
// is healthy fails its deploy with a message, and its exit code does not
// become kiln's (which would exit silently with it).
func TestDeployFailureIsNotTheFunctionsExit(t *testing.T) {
	g := New(func(ctx context.Context, in Instance) error { return exitError{3} }, WithHealthTimeout(5*time.Second))
	defer g.Close()
	err := g.Deploy(context.Background(), deploy.Deployment{Service: "fn", Image: "fn:latest"}, Upsert)
	if err == nil || !strings.Contains(err.Error(), "starting fn: it exited: entrypoint exited with status 3") {
		t.Fatalf("Deploy() = %v, want it to say the function exited", err)
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		t.Errorf("Deploy() = %v carries the function's exit code %d, want a plain error", err, ec.ExitCode())
	}
}

// TestScale: /system/scale-function as faas-cli scale sends it; requests
// spread over the replicas; GET /system/function reports them.
func TestScale(t *testing.T) {
	fr := &fakeRunner{}
	g := New(fr.run, WithHealthTimeout(5*time.Second))
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	u := srv.URL
	if code, body, _ := do(t, "POST", u+"/system/functions", deploy.Deployment{Service: "echo", Image: "echo:1"}); code != 202 {
		t.Fatalf("POST /system/functions = %d %q", code, body)
	}
	// status GETs /system/function/echo and returns replicas, available.
	status := func() (float64, float64) {
		t.Helper()
		_, body, _ := do(t, "GET", u+"/system/function/echo", nil)
		var s map[string]any
		json.Unmarshal([]byte(body), &s)
		r, _ := s["replicas"].(float64)
		a, _ := s["availableReplicas"].(float64)
		return r, a
	}
	// ports calls the function n times and counts the replicas that answered.
	ports := func(n int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for range n {
			code, body, _ := do(t, "GET", u+"/function/echo/port", nil)
			if code != 200 {
				t.Fatalf("GET /function/echo/port = %d %q", code, body)
			}
			seen[body]++
		}
		return seen
	}
	steps := []struct {
		name         string
		path         string
		body         any
		wantCode     int
		wantReplicas int // and as many available, and answering
	}{
		{"up to 3, as faas-cli scale sends it", "/system/scale-function/echo", map[string]any{"serviceName": "echo", "replicas": 3, "namespace": "openfaas-fn"}, 202, 3},
		{"the namespace from the query", "/system/scale-function/echo?namespace=openfaas-fn", map[string]any{"serviceName": "echo", "replicas": 2}, 202, 2},
		{"another namespace", "/system/scale-function/echo?namespace=other", map[string]any{"replicas": 4}, 404, 2},
		{"unknown function", "/system/scale-function/nope", map[string]any{"replicas": 2}, 404, 2},
		{"zero", "/system/scale-function/echo", map[string]any{"replicas": 0}, 400, 2},
		{"not JSON", "/system/scale-function/echo", json.RawMessage("replicas=2"), 400, 2},
		{"above the cap", "/system/scale-function/echo", map[string]any{"replicas": 100}, 202, MaxReplicas},
		{"down to 1", "/system/scale-function/echo", map[string]any{"replicas": 1}, 202, 1},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var rd io.Reader
			if raw, ok := st.body.(json.RawMessage); ok {
				rd = bytes.NewReader(raw)
			} else {
				b, _ := json.Marshal(st.body)
				rd = bytes.NewReader(b)
			}
			resp, err := http.Post(u+st.path, "application/json", rd)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != st.wantCode {
				t.Errorf("POST %s = %d %q, want %d", st.path, resp.StatusCode, b, st.wantCode)
			}
			if r, a := status(); r != float64(st.wantReplicas) || a != float64(st.wantReplicas) {
				t.Errorf("after POST %s: replicas %v, available %v, want %d", st.path, r, a, st.wantReplicas)
			}
			if seen := ports(4 * st.wantReplicas); len(seen) != st.wantReplicas {
				t.Errorf("after POST %s: %d calls answered by %v, want %d replicas in turn", st.path, 4*st.wantReplicas, seen, st.wantReplicas)
			}
		})
	}
	// Scaled down replicas drain and exit.
	deadline := time.Now().Add(5 * time.Second)
	for fr.running.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := fr.running.Load(); n != 1 {
		t.Errorf("after scaling to 1, %d instances run", n)
	}

	// An update keeps the replicas; a new function starts with
	// com.openfaas.scale.min of them.
	do(t, "POST", u+"/system/scale-function/echo", map[string]any{"replicas": 2})
	if code, body, _ := do(t, "PUT", u+"/system/functions", deploy.Deployment{Service: "echo", Image: "echo:2"}); code != 202 {
		t.Fatalf("PUT echo = %d %q", code, body)
	}
	if r, a := status(); r != 2 || a != 2 {
		t.Errorf("after an update: replicas %v, available %v, want 2", r, a)
	}
	labels := map[string]string{ScaleMinLabel: "3"}
	if code, body, _ := do(t, "POST", u+"/system/functions", deploy.Deployment{Service: "min", Image: "min:1", Labels: &labels}); code != 202 {
		t.Fatalf("POST min = %d %q", code, body)
	}
	if code, body, _ := do(t, "GET", u+"/system/function/min", nil); code != 200 || !strings.Contains(body, `"replicas":3`) || !strings.Contains(body, `"availableReplicas":3`) {
		t.Errorf("GET /system/function/min = %d %s, want 3 replicas, 3 available", code, body)
	}
	// Remove stops every replica.
	do(t, "DELETE", u+"/system/functions", map[string]string{"functionName": "min"})
	do(t, "DELETE", u+"/system/functions", map[string]string{"functionName": "echo"})
	if n := fr.running.Load(); n != 0 {
		t.Errorf("after deleting both, %d instances run", n)
	}
}

// TestGuard: the login on /system/* and /ui/, the Host check everywhere,
// cross-site pages refused on the API; /function/* and /healthz open.
func TestGuard(t *testing.T) {
	g := New((&fakeRunner{}).run, WithHealthTimeout(5*time.Second), WithBasicAuth("admin", "pw"), WithAllowedHosts("kiln.test", "other.test:9999"))
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	if err := g.Deploy(context.Background(), deploy.Deployment{Service: "echo", Image: "echo:1"}, Create); err != nil {
		t.Fatal(err)
	}
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	own := func(host string) string { return host + ":" + strconv.Itoa(port) }
	login := [2]string{"admin", "pw"}
	tests := []struct {
		name, method, path string
		host               string // default 127.0.0.1:port
		header             map[string]string
		login              [2]string
		wantCode           int
	}{
		{name: "no login", method: "GET", path: "/system/functions", wantCode: 401},
		{name: "wrong password", method: "GET", path: "/system/functions", login: [2]string{"admin", "pW"}, wantCode: 401},
		{name: "wrong user", method: "GET", path: "/system/functions", login: [2]string{"root", "pw"}, wantCode: 401},
		{name: "login", method: "GET", path: "/system/functions", login: login, wantCode: 200},
		{name: "deploy without login", method: "POST", path: "/system/functions", wantCode: 401},
		{name: "scale without login", method: "POST", path: "/system/scale-function/echo", wantCode: 401},
		{name: "secrets without login", method: "DELETE", path: "/system/secrets", wantCode: 401},
		{name: "unknown /system path without login", method: "GET", path: "/system/nope", wantCode: 401},
		{name: "unknown /system path", method: "GET", path: "/system/nope", login: login, wantCode: 404},
		{name: "ui without login", method: "GET", path: "/ui/", wantCode: 401},
		{name: "escaped path without login", method: "GET", path: "/%73ystem/functions", wantCode: 401},
		{name: "function open", method: "GET", path: "/function/echo", wantCode: 200},
		{name: "healthz open", method: "GET", path: "/healthz", wantCode: 200},
		{name: "metrics open", method: "GET", path: "/metrics", wantCode: 200},
		{name: "foreign host, metrics", method: "GET", path: "/metrics", host: own("evil.example"), wantCode: 403},
		{name: "localhost", method: "GET", path: "/system/info", host: own("localhost"), login: login, wantCode: 200},
		{name: "LOCALHOST", method: "GET", path: "/system/info", host: own("LOCALHOST"), login: login, wantCode: 200},
		{name: "[::1]", method: "GET", path: "/system/info", host: own("[::1]"), login: login, wantCode: 200},
		{name: "allowed host on the gateway's port", method: "GET", path: "/system/info", host: own("kiln.test"), login: login, wantCode: 200},
		{name: "allowed host:port", method: "GET", path: "/system/info", host: "other.test:9999", login: login, wantCode: 200},
		{name: "allowed host on another port", method: "GET", path: "/system/info", host: "kiln.test:1", login: login, wantCode: 403},
		{name: "foreign host", method: "GET", path: "/system/functions", host: own("evil.example"), login: login, wantCode: 403},
		{name: "foreign host, function", method: "GET", path: "/function/echo", host: own("evil.example"), wantCode: 403},
		{name: "loopback on another port", method: "GET", path: "/function/echo", host: "127.0.0.1:1", wantCode: 403},
		{name: "no port", method: "GET", path: "/healthz", host: "localhost", wantCode: 403},
		{name: "cross-site origin", method: "POST", path: "/system/functions", header: map[string]string{"Origin": "http://evil.example"}, login: login, wantCode: 403},
		{name: "cross-site text/plain POST", method: "POST", path: "/system/functions", header: map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, wantCode: 403},
		{name: "origin on another port", method: "GET", path: "/system/functions", header: map[string]string{"Origin": "http://127.0.0.1:1"}, login: login, wantCode: 403},
		{name: "null origin", method: "GET", path: "/system/functions", header: map[string]string{"Origin": "null"}, login: login, wantCode: 403},
		{name: "https origin", method: "GET", path: "/system/functions", header: map[string]string{"Origin": "https://" + own("127.0.0.1")}, login: login, wantCode: 403},
		{name: "Sec-Fetch-Site cross-site", method: "GET", path: "/system/functions", header: map[string]string{"Sec-Fetch-Site": "cross-site"}, login: login, wantCode: 403},
		{name: "Sec-Fetch-Site same-site", method: "GET", path: "/system/functions", header: map[string]string{"Sec-Fetch-Site": "same-site"}, login: login, wantCode: 403},
		{name: "same origin", method: "GET", path: "/system/functions", header: map[string]string{"Origin": "http://" + own("localhost"), "Sec-Fetch-Site": "same-origin"}, login: login, wantCode: 200},
		{name: "typed in the address bar", method: "GET", path: "/system/functions", header: map[string]string{"Sec-Fetch-Site": "none"}, login: login, wantCode: 200},
		{name: "cross-site to a function", method: "GET", path: "/function/echo", header: map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, wantCode: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.login != [2]string{} {
				req.SetBasicAuth(tt.login[0], tt.login[1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			wantHeader := ""
			if tt.wantCode == 401 {
				wantHeader = `Basic realm="Restricted"` // as OpenFaaS's gateway asks
			}
			if resp.StatusCode != tt.wantCode || resp.Header.Get("WWW-Authenticate") != wantHeader {
				t.Errorf("%s %s (Host %q, %v) = %d %q, WWW-Authenticate %q; want %d, %q", tt.method, tt.path, req.Host, tt.header, resp.StatusCode, b, resp.Header.Get("WWW-Authenticate"), tt.wantCode, wantHeader)
			}
		})
	}
}
