package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The behaviour tests run the real watchdog binary against a real function
// server (testdata/upstream), both built once in TestMain.
var (
	watchdogBin string
	upstreamBin string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kiln-watchdog-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	watchdogBin = filepath.Join(dir, "watchdog")
	upstreamBin = filepath.Join(dir, "upstream")

	builds := []struct{ out, pkg string }{{watchdogBin, "."}, {upstreamBin, "./testdata/upstream"}}
	errs := make(chan error, len(builds))
	for _, b := range builds {
		go func() {
			cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
			// The image ships a static binary; test that one.
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				errs <- fmt.Errorf("building %s: %w\n%s", b.pkg, err, out)
				return
			}
			errs <- nil
		}()
	}
	for range builds {
		if err := <-errs; err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// freePort returns a port that was free a moment ago and that no other test
// of this run has been given.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		portsMu.Lock()
		taken := ports[port]
		ports[port] = true
		portsMu.Unlock()
		if !taken {
			return port
		}
	}
	t.Fatal("no free port after 20 tries")
	return 0
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a running watchdog.
type proc struct {
	t        *testing.T
	cmd      *exec.Cmd
	base     string // http://127.0.0.1:<port>
	metrics  string // http://127.0.0.1:<metrics_port>/metrics
	tmpDir   string // its TMPDIR, where the lock file goes
	out      *syncBuffer
	done     chan struct{}
	exitCode int
}

// startWatchdog runs the watchdog with env on top of a minimal
// environment: PATH, its own TMPDIR, free ports and healthcheck_interval=0.
// An empty value removes a variable.
func startWatchdog(t *testing.T, env map[string]string) *proc {
	t.Helper()
	port, metricsPort := freePort(t), freePort(t)
	p := &proc{
		t:       t,
		base:    fmt.Sprintf("http://127.0.0.1:%d", port),
		metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		tmpDir:  t.TempDir(),
		out:     &syncBuffer{},
		done:    make(chan struct{}),
	}
	full := map[string]string{
		"PATH":                 os.Getenv("PATH"),
		"TMPDIR":               p.tmpDir,
		"port":                 strconv.Itoa(port),
		"metrics_port":         strconv.Itoa(metricsPort),
		"healthcheck_interval": "0",
	}
	for k, v := range env {
		full[k] = v
	}
	p.cmd = exec.Command(watchdogBin)
	for k, v := range full {
		if v != "" {
			p.cmd.Env = append(p.cmd.Env, k+"="+v)
		}
	}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting watchdog: %v", err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.exitCode = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("watchdog output:\n%s", p.out)
		}
	})
	return p
}

// httpEnv is the environment for http mode with the test upstream, plus
// extra. It also returns the upstream's port.
func httpEnv(t *testing.T, extra map[string]string) (map[string]string, int) {
	t.Helper()
	up := freePort(t)
	env := map[string]string{
		"mode":          "http",
		"fprocess":      upstreamBin,
		"upstream_url":  fmt.Sprintf("http://127.0.0.1:%d", up),
		"UPSTREAM_PORT": strconv.Itoa(up),
	}
	for k, v := range extra {
		env[k] = v
	}
	return env, up
}

// stop ends the watchdog: SIGTERM, then SIGKILL if it has not exited in 10s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// wait returns the exit code, failing the test if the watchdog is still
// running after d.
func (p *proc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.exitCode
	case <-time.After(d):
		p.t.Fatalf("watchdog still running after %v", d)
		return -1
	}
}

// eventually polls cond every 20ms until it holds, failing the test after d.
func (p *proc) eventually(d time.Duration, what string, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: not true after %v", what, d)
		}
		select {
		case <-p.done:
			p.t.Fatalf("%s: watchdog exited with status %d", what, p.exitCode)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// status is the status of GET path, or 0 if the watchdog did not answer.
func (p *proc) status(path string) int {
	resp, err := client.Get(p.base + path)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (p *proc) waitHealthy() {
	p.t.Helper()
	p.eventually(10*time.Second, "GET /_/health = 200", func() bool { return p.status("/_/health") == http.StatusOK })
}

func (p *proc) lockExists() bool {
	_, err := os.Stat(filepath.Join(p.tmpDir, ".lock"))
	return err == nil
}

// do sends req and returns the response with its body read.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp, string(body)
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// client talks to the watchdogs; it follows no redirect, so that a test
// sees the function's own answer.
var client = &http.Client{
	Transport:     &http.Transport{Proxy: nil, DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       20 * time.Second,
}

func checkDuration(t *testing.T, resp *http.Response) {
	t.Helper()
	v := resp.Header.Get("X-Duration-Seconds")
	if d, err := strconv.ParseFloat(v, 64); err != nil || d < 0 {
		t.Errorf("X-Duration-Seconds = %q, want a non-negative number of seconds", v)
	}
}

func TestHTTPModeProxies(t *testing.T) {
	t.Parallel()
	env, _ := httpEnv(t, nil)
	p := startWatchdog(t, env)
	p.waitHealthy()
	large := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB

	tests := []struct {
		name       string
		req        func() *http.Request
		wantCode   int
		wantBody   string
		wantHeader map[string]string
	}{
		{
			name: "method, path, query, body, headers and Host",
			req: func() *http.Request {
				r := newRequest(t, http.MethodPost, p.base+"/echo?a=1&b=two%20words", strings.NewReader("hello"))
				r.Host = "fn.example.com"
				r.Header.Set("X-Echo", "round trip")
				r.Header.Set("User-Agent", "kiln-test/1")
				return r
			},
			wantCode: http.StatusOK,
			wantBody: "hello",
			wantHeader: map[string]string{
				"X-Method": "POST", "X-Path": "/echo", "X-Query": "a=1&b=two%20words",
				"X-Host": "fn.example.com", "X-Echo": "round trip", "X-Content-Length": "5",
				"X-User-Agent": "kiln-test/1",
			},
		},
		{
			name: "chunked body streamed",
			req: func() *http.Request {
				return newRequest(t, http.MethodPut, p.base+"/echo", io.MultiReader(strings.NewReader("chun"), strings.NewReader("ked")))
			},
			wantCode:   http.StatusOK,
			wantBody:   "chunked",
			wantHeader: map[string]string{"X-Method": "PUT", "X-Transfer-Encoding": "chunked", "X-Content-Length": "-1"},
		},
		{
			name: "no User-Agent added",
			req: func() *http.Request {
				r := newRequest(t, http.MethodGet, p.base+"/echo", nil)
				r.Header.Set("User-Agent", "")
				return r
			},
			wantCode:   http.StatusOK,
			wantHeader: map[string]string{"X-User-Agent": ""},
		},
		{
			name: "large body streamed both ways",
			req: func() *http.Request {
				return newRequest(t, http.MethodPost, p.base+"/echo", strings.NewReader(large))
			},
			wantCode:   http.StatusOK,
			wantBody:   large,
			wantHeader: map[string]string{"X-Content-Length": strconv.Itoa(len(large))},
		},
		{
			name:     "function status passed through",
			req:      func() *http.Request { return newRequest(t, http.MethodGet, p.base+"/status?code=418", nil) },
			wantCode: http.StatusTeapot,
			wantBody: "status 418",
		},
		{
			name:     "function error passed through unmarked",
			req:      func() *http.Request { return newRequest(t, http.MethodGet, p.base+"/status?code=500", nil) },
			wantCode: http.StatusInternalServerError,
			wantBody: "status 500",
		},
		{
			name:       "redirect returned, not followed",
			req:        func() *http.Request { return newRequest(t, http.MethodGet, p.base+"/redirect", nil) },
			wantCode:   http.StatusFound,
			wantBody:   "<a href=\"/echo\">Found</a>.\n\n",
			wantHeader: map[string]string{"Location": "/echo"},
		},
		{
			name:       "HEAD",
			req:        func() *http.Request { return newRequest(t, http.MethodHead, p.base+"/echo", nil) },
			wantCode:   http.StatusOK,
			wantHeader: map[string]string{"X-Method": "HEAD"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.req())
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantCode)
			}
			if body != tc.wantBody {
				t.Errorf("body = %.80q (%d bytes), want %.80q (%d bytes)", body, len(body), tc.wantBody, len(tc.wantBody))
			}
			for k, want := range tc.wantHeader {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if got := resp.Header.Get("X-OpenFaaS-Internal"); got != "" {
				t.Errorf("X-OpenFaaS-Internal = %q on the function's own answer, want none", got)
			}
			checkDuration(t, resp)
		})
	}

	t.Run("multi-value headers kept", func(t *testing.T) {
		resp, _ := do(t, newRequest(t, http.MethodGet, p.base+"/echo", nil))
		if got := resp.Header.Values("Set-Cookie"); len(got) != 2 {
			t.Errorf("Set-Cookie = %q, want two values", got)
		}
	})

	t.Run("logs", func(t *testing.T) {
		probe := newRequest(t, http.MethodGet, p.base+"/echo?from=probe", nil)
		probe.Header.Set("User-Agent", "kube-probe/1.30")
		do(t, probe)
		do(t, newRequest(t, http.MethodGet, p.base+"/echo?from=user", nil))
		p.eventually(5*time.Second, "access log line", func() bool { return strings.Contains(p.out.String(), "GET /echo?from=user - 200 OK") })
		out := p.out.String()
		if strings.Contains(out, "from=probe") {
			t.Errorf("access log has the kube-probe request; want it skipped")
		}
		for _, want := range []string{"stdout: upstream: listening on", "stderr: upstream: a line on stderr", "ready: upstream answered in"} {
			if !strings.Contains(out, want) {
				t.Errorf("logs lack %q", want)
			}
		}
		if strings.Contains(out, "upstream: root called") {
			t.Errorf("the watchdog called the function's / path")
		}
	})
}

// fullDuplex sends a body in two parts and the second only once the answer
// has begun, so it passes only if the watchdog keeps reading the body after
// it has started the response.
func fullDuplex(t *testing.T, url string) {
	t.Helper()
	pr, pw := io.Pipe()
	defer pw.Close()
	// The client's transport waits for its body writer before it returns
	// an error; a pipe nobody closes would hang the test past any timeout.
	guard := time.AfterFunc(10*time.Second, func() { _ = pw.CloseWithError(errors.New("test took too long")) })
	defer guard.Stop()
	// The first part must flow before the answer can begin.
	go func() { _, _ = pw.Write([]byte("first ")) }()
	resp, err := client.Do(newRequest(t, http.MethodPost, url, pr))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make([]byte, len("first "))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != "first " {
		t.Fatalf("first part = %q, %v, want %q", got, err, "first ")
	}
	if _, err := pw.Write([]byte("second")); err != nil {
		t.Fatalf("writing the second part: %v", err)
	}
	_ = pw.Close()
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "second" {
		t.Errorf("second part = %q, %v, want %q", rest, err, "second")
	}
}

func TestHTTPModeFullDuplex(t *testing.T) {
	t.Parallel()
	env, _ := httpEnv(t, nil)
	p := startWatchdog(t, env)
	p.waitHealthy()
	fullDuplex(t, p.base+"/echo?duplex=1")
}

func TestStreamingModeFullDuplex(t *testing.T) {
	t.Parallel()
	p := startWatchdog(t, map[string]string{"mode": "streaming", "fprocess": "cat"})
	p.waitHealthy()
	fullDuplex(t, p.base+"/")
}

func TestHTTPModeRequestBodyBuffering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		env    map[string]string
		wantTE string
		wantCL string
	}{
		{"streamed by default", nil, "chunked", "-1"},
		{"buffer_http", map[string]string{"buffer_http": "true"}, "", "11"},
		{"http_buffer_req_body", map[string]string{"http_buffer_req_body": "1"}, "", "11"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := httpEnv(t, tc.env)
			p := startWatchdog(t, env)
			p.waitHealthy()
			body := io.MultiReader(strings.NewReader("hello "), strings.NewReader("world"))
			resp, got := do(t, newRequest(t, http.MethodPost, p.base+"/echo", body))
			if got != "hello world" {
				t.Errorf("body = %q, want %q", got, "hello world")
			}
			if te := resp.Header.Get("X-Transfer-Encoding"); te != tc.wantTE {
				t.Errorf("upstream saw Transfer-Encoding %q, want %q", te, tc.wantTE)
			}
			if cl := resp.Header.Get("X-Content-Length"); cl != tc.wantCL {
				t.Errorf("upstream saw Content-Length %q, want %q", cl, tc.wantCL)
			}
		})
	}
}

func TestHTTPModeExecTimeout(t *testing.T) {
	t.Parallel()
	env, _ := httpEnv(t, map[string]string{"exec_timeout": "700ms"})
	p := startWatchdog(t, env)
	p.waitHealthy()

	tests := []struct {
		name     string
		path     string
		xTimeout string
		wantCode int
		maxTime  time.Duration
	}{
		{"within exec_timeout", "/slow?ms=10", "", http.StatusOK, 5 * time.Second},
		{"beyond exec_timeout", "/slow?ms=5000", "", http.StatusGatewayTimeout, 3 * time.Second},
		// The function takes 500ms, less than exec_timeout: only the
		// header can turn it into a 504.
		{"X-Timeout shortens it", "/slow?ms=500", "100ms", http.StatusGatewayTimeout, 3 * time.Second},
		{"X-Timeout cannot lengthen it", "/slow?ms=5000", "10s", http.StatusGatewayTimeout, 3 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, p.base+tc.path, nil)
			if tc.xTimeout != "" {
				req.Header.Set("X-Timeout", tc.xTimeout)
			}
			start := time.Now()
			resp, body := do(t, req)
			if d := time.Since(start); d > tc.maxTime {
				t.Errorf("answer took %v, want under %v", d, tc.maxTime)
			}
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status = %d (%q), want %d", resp.StatusCode, body, tc.wantCode)
			}
			wantInternal := ""
			if tc.wantCode == http.StatusGatewayTimeout {
				wantInternal = "of-watchdog"
			}
			if got := resp.Header.Get("X-OpenFaaS-Internal"); got != wantInternal {
				t.Errorf("X-OpenFaaS-Internal = %q, want %q", got, wantInternal)
			}
			checkDuration(t, resp)
		})
	}
}

func TestHTTPModeUnreachableUpstream(t *testing.T) {
	t.Parallel()
	env, _ := httpEnv(t, nil)
	// The function listens on UPSTREAM_PORT; the watchdog is sent elsewhere.
	env["upstream_url"] = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	p := startWatchdog(t, env)
	p.eventually(5*time.Second, "listener up", func() bool { return p.status("/_/health") != 0 })

	resp, body := do(t, newRequest(t, http.MethodGet, p.base+"/echo", nil))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status = %d (%q), want 500", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-OpenFaaS-Internal"); got != "of-watchdog" {
		t.Errorf("X-OpenFaaS-Internal = %q, want of-watchdog", got)
	}
	checkDuration(t, resp)
	if got := p.status("/_/health"); got != http.StatusServiceUnavailable {
		t.Errorf("GET /_/health = %d with no upstream, want 503", got)
	}
	if p.lockExists() {
		t.Errorf("lock file written with no upstream")
	}

	// A body the function never read is drained without the server's
	// "invalid concurrent Body.Read call" panic, whatever its framing.
	bodies := []struct {
		name string
		body io.Reader
	}{
		{"small", strings.NewReader("hello")},
		{"large", bytes.NewReader(make([]byte, 1<<20))},
		{"chunked", io.MultiReader(strings.NewReader("a"), strings.NewReader("b"))},
	}
	for _, b := range bodies {
		resp, body := do(t, newRequest(t, http.MethodPost, p.base+"/echo", b.body))
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("POST %s body: status = %d (%q), want 500", b.name, resp.StatusCode, body)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if out := p.out.String(); strings.Contains(out, "panic") {
		t.Errorf("watchdog panicked:\n%s", out)
	}
}

func TestHTTPModeMaxInflight(t *testing.T) {
	t.Parallel()
	env, _ := httpEnv(t, map[string]string{"max_inflight": "1"})
	p := startWatchdog(t, env)
	p.waitHealthy()

	slow := make(chan int, 1)
	go func() {
		resp, err := client.Get(p.base + "/slow?ms=1500")
		if err != nil {
			slow <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		slow <- resp.StatusCode
	}()
	p.eventually(5*time.Second, "GET /_/ready = 429 while the slot is taken", func() bool {
		return p.status("/_/ready") == http.StatusTooManyRequests
	})
	if got := p.status("/echo"); got != http.StatusTooManyRequests {
		t.Errorf("second request = %d, want 429", got)
	}
	if got := p.status("/_/health"); got != http.StatusOK {
		t.Errorf("GET /_/health at the limit = %d, want 200", got)
	}
	if got := <-slow; got != http.StatusOK {
		t.Errorf("first request = %d, want 200", got)
	}
	if got := p.status("/echo"); got != http.StatusOK {
		t.Errorf("request after the first finished = %d, want 200", got)
	}
	if got := p.status("/_/ready"); got != http.StatusOK {
		t.Errorf("GET /_/ready after = %d, want 200", got)
	}
}

// TestHTTPModeReadyWhenUpstreamAnswers proves kiln's improvement over
// of-watchdog: no lock and 503s until the function's server is up.
func TestHTTPModeReadyWhenUpstreamAnswers(t *testing.T) {
	t.Parallel()
	env, _ := httpEnv(t, map[string]string{"UPSTREAM_DELAY_MS": "2000"})
	p := startWatchdog(t, env)
	start := time.Now()

	p.eventually(5*time.Second, "listener up", func() bool { return p.status("/_/health") != 0 })
	if time.Since(start) > 1500*time.Millisecond {
		t.Skip("watchdog took too long to start to observe the not-ready window")
	}
	for _, path := range []string{"/_/health", "/_/ready"} {
		if got := p.status(path); got != http.StatusServiceUnavailable {
			t.Errorf("GET %s before the upstream is up = %d, want 503", path, got)
		}
	}
	if p.lockExists() {
		t.Errorf("lock file written before the upstream is up")
	}
	if code := runHealthcheck(t, p.tmpDir); code != 1 {
		t.Errorf("-run-healthcheck before ready = %d, want 1", code)
	}

	p.waitHealthy()
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Errorf("healthy after %v, want no sooner than the upstream's 2s delay", d)
	}
	if got := p.status("/_/ready"); got != http.StatusOK {
		t.Errorf("GET /_/ready when up = %d, want 200", got)
	}
	info, err := os.Stat(filepath.Join(p.tmpDir, ".lock"))
	if err != nil {
		t.Fatalf("lock file: %v", err)
	}
	if info.Mode().Perm() != 0o660 {
		t.Errorf("lock file mode = %v, want 0660", info.Mode().Perm())
	}
	if code := runHealthcheck(t, p.tmpDir); code != 0 {
		t.Errorf("-run-healthcheck when ready = %d, want 0", code)
	}
	if out := p.out.String(); !strings.Contains(out, "ready: upstream answered in") {
		t.Errorf("logs lack the ready line")
	}
}

// TestHTTPModeReadyPath: as with of-watchdog, ready_path is /_/ready's
// alone; /_/health answers 200 once the function's server accepts
// connections, whatever ready_path says, so that a liveness probe does not
// kill a function still warming up.
func TestHTTPModeReadyPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		readyPath string
		wantReady int
		wantBody  string
	}{
		{"function answers 200", "/healthz", http.StatusOK, "healthy"},
		{"function answers 404", "/status?code=404", http.StatusNotFound, "status 404"},
		{"function answers 503", "/status?code=503", http.StatusServiceUnavailable, "status 503"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := httpEnv(t, map[string]string{"ready_path": tc.readyPath})
			p := startWatchdog(t, env)
			p.waitHealthy()
			if !p.lockExists() {
				t.Errorf("no lock file once healthy")
			}
			resp, body := do(t, newRequest(t, http.MethodGet, p.base+"/_/ready", nil))
			if resp.StatusCode != tc.wantReady || body != tc.wantBody {
				t.Errorf("GET /_/ready = %d %q, want the function's %d %q", resp.StatusCode, body, tc.wantReady, tc.wantBody)
			}
		})
	}
}

func runHealthcheck(t *testing.T, tmpDir string) int {
	t.Helper()
	cmd := exec.Command(watchdogBin, "-run-healthcheck")
	cmd.Env = []string{"TMPDIR=" + tmpDir}
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("running -run-healthcheck: %v", err)
	}
	return 0
}

func TestHTTPModeSIGTERMDrains(t *testing.T) {
	t.Parallel()
	env, upPort := httpEnv(t, map[string]string{"healthcheck_interval": "500ms", "prefix_logs": "false"})
	p := startWatchdog(t, env)
	p.waitHealthy()
	if !p.lockExists() {
		t.Fatalf("no lock file when healthy")
	}

	type result struct {
		code int
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := client.Get(p.base + "/slow?ms=2000")
		if err != nil {
			slow <- result{err: err}
			return
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		slow <- result{resp.StatusCode, string(body), err}
	}()
	time.Sleep(300 * time.Millisecond) // let the request reach the function
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	p.eventually(2*time.Second, "lock file removed after SIGTERM", func() bool { return !p.lockExists() })
	if got := p.status("/_/health"); got != http.StatusServiceUnavailable {
		t.Errorf("GET /_/health while draining = %d, want 503", got)
	}
	r := <-slow
	if r.err != nil || r.code != http.StatusOK || r.body != "slept 2000" {
		t.Errorf("in-flight request = %d %q, %v; want 200 %q", r.code, r.body, r.err, "slept 2000")
	}
	if code := p.wait(10 * time.Second); code != 0 {
		t.Errorf("exit status = %d, want 0", code)
	}
	if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", upPort), time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("the function still listens after the watchdog exited")
	}
	// prefix_logs=false: the function's lines come through as they are.
	if out := p.out.String(); !strings.Contains(out, "\nupstream: stopped\n") {
		t.Errorf("logs lack the function's unprefixed last line")
	}
}

func TestHTTPModeChildExit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"function crashes after start", map[string]string{"UPSTREAM_EXIT_AFTER_MS": "500"}},
		{"function exits at once with 0", map[string]string{"fprocess": "true"}},
		{"function cannot start", map[string]string{"fprocess": "/nonexistent/function"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env, _ := httpEnv(t, tc.env)
			p := startWatchdog(t, env)
			if code := p.wait(10 * time.Second); code != 1 {
				t.Errorf("exit status = %d, want 1", code)
			}
			if p.lockExists() {
				t.Errorf("lock file left behind")
			}
		})
	}
}

func TestHTTPModeStreams(t *testing.T) {
	t.Parallel()
	env, _ := httpEnv(t, map[string]string{"exec_timeout": "1s"})
	p := startWatchdog(t, env)
	p.waitHealthy()

	t.Run("server-sent events are not buffered", func(t *testing.T) {
		req := newRequest(t, http.MethodGet, p.base+"/sse", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got := make(chan string, 1)
		go func() {
			line, _ := bufio.NewReader(resp.Body).ReadString('\n')
			got <- line
		}()
		select {
		case line := <-got:
			if line != "data: first\n" {
				t.Errorf("first line = %q, want %q", line, "data: first\n")
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event within 5s: the stream is buffered")
		}
		checkDuration(t, resp)
	})

	t.Run("websocket upgrade is tunnelled", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(p.base, "http://"), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprint(conn, "GET /upgrade HTTP/1.1\r\nHost: fn\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the upgrade response: %v", err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("status = %d, want 101", resp.StatusCode)
		}
		// Longer than exec_timeout: a session is not cut by it.
		for _, msg := range []string{"ping", "pong"} {
			time.Sleep(600 * time.Millisecond)
			fmt.Fprint(conn, msg)
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
				t.Fatalf("echo = %q, %v, want %q", buf, err, msg)
			}
		}
	})
}

func TestForkingModes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		env          map[string]string
		path         string
		body         string
		header       map[string]string
		wantCode     int
		wantBody     string   // exact, unless wantContains is set
		wantContains []string // substrings of the body
		wantType     string
		wantDuration bool
		maxTime      time.Duration
	}{
		{
			name:         "serializing cat",
			env:          map[string]string{"mode": "serializing", "fprocess": "cat"},
			body:         "hello",
			wantCode:     http.StatusOK,
			wantBody:     "hello",
			wantType:     "application/octet-stream",
			wantDuration: true,
		},
		{
			name:         "serializing content_type",
			env:          map[string]string{"mode": "serializing", "fprocess": "cat", "content_type": "application/json"},
			body:         `{"a":1}`,
			wantCode:     http.StatusOK,
			wantBody:     `{"a":1}`,
			wantType:     "application/json",
			wantDuration: true,
		},
		{
			name:     "serializing CGI environment",
			env:      map[string]string{"mode": "serializing", "fprocess": "env"},
			path:     "/fn/path?q=1",
			header:   map[string]string{"X-Custom-Header": "yes"},
			wantCode: http.StatusOK,
			wantContains: []string{
				"Http_Method=POST\n", "Http_Path=/fn/path\n", "Http_Query=q=1\n", "Http_X_Custom_Header=yes\n",
			},
		},
		{
			name:         "serializing non-zero exit",
			env:          map[string]string{"mode": "serializing", "fprocess": "false"},
			wantCode:     http.StatusInternalServerError,
			wantContains: []string{"exit status 1"},
			wantDuration: true,
		},
		{
			name:         "serializing exec_timeout",
			env:          map[string]string{"mode": "serializing", "fprocess": "sleep 10", "exec_timeout": "300ms"},
			wantCode:     http.StatusGatewayTimeout,
			wantContains: []string{"exec_timeout"},
			wantDuration: true,
			maxTime:      3 * time.Second,
		},
		{
			name:     "streaming cat",
			env:      map[string]string{"mode": "streaming", "fprocess": "cat"},
			body:     "stream me",
			wantCode: http.StatusOK,
			wantBody: "stream me",
			wantType: "application/octet-stream",
		},
		{
			name:     "streaming sh -c",
			env:      map[string]string{"mode": "streaming", "fprocess": "sh -c echo${IFS}method=$Http_Method"},
			wantCode: http.StatusOK,
			wantBody: "method=POST\n",
		},
		{
			name:     "streaming exec_timeout kills the process group",
			env:      map[string]string{"mode": "streaming", "fprocess": "sh -c sleep${IFS}10", "exec_timeout": "300ms"},
			wantCode: http.StatusOK,
			maxTime:  3 * time.Second,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startWatchdog(t, tc.env)
			p.waitHealthy()
			req := newRequest(t, http.MethodPost, p.base+tc.path, strings.NewReader(tc.body))
			if tc.path == "" {
				req.URL.Path = "/"
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			start := time.Now()
			resp, body := do(t, req)
			if tc.maxTime > 0 {
				if d := time.Since(start); d > tc.maxTime {
					t.Errorf("answer took %v, want under %v", d, tc.maxTime)
				}
			}
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status = %d (%q), want %d", resp.StatusCode, body, tc.wantCode)
			}
			if tc.wantContains == nil && body != tc.wantBody {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			for _, s := range tc.wantContains {
				if !strings.Contains(body, s) {
					t.Errorf("body = %q, want it to contain %q", body, s)
				}
			}
			if tc.wantType != "" {
				if got := resp.Header.Get("Content-Type"); got != tc.wantType {
					t.Errorf("Content-Type = %q, want %q", got, tc.wantType)
				}
			}
			if tc.wantDuration {
				checkDuration(t, resp)
			}
		})
	}
}

func TestStaticMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	files := map[string]string{"index.html": "<h1>hi</h1>", "css/site.css": "body{}"}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := startWatchdog(t, map[string]string{"mode": "static", "static_path": dir})
	p.waitHealthy()

	tests := []struct {
		path     string
		wantCode int
		wantBody string
		wantType string
	}{
		{"/", http.StatusOK, "<h1>hi</h1>", "text/html; charset=utf-8"},
		{"/css/site.css", http.StatusOK, "body{}", "text/css; charset=utf-8"},
		{"/missing.txt", http.StatusNotFound, "404 page not found\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := do(t, newRequest(t, http.MethodGet, p.base+tc.path, nil))
			if resp.StatusCode != tc.wantCode || body != tc.wantBody {
				t.Errorf("GET %s = %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
			if tc.wantType != "" && resp.Header.Get("Content-Type") != tc.wantType {
				t.Errorf("GET %s Content-Type = %q, want %q", tc.path, resp.Header.Get("Content-Type"), tc.wantType)
			}
		})
	}

	t.Run("metrics", func(t *testing.T) {
		resp, body := do(t, newRequest(t, http.MethodGet, p.metrics, nil))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /metrics = %d, want 200", resp.StatusCode)
		}
		for _, want := range []string{
			`http_requests_total{code="200",method="get"} 2`,
			`http_requests_total{code="404",method="get"} 1`,
			`http_request_duration_seconds_count{code="200",method="get"} 2`,
			`http_request_duration_seconds_bucket{code="404",method="get",le="+Inf"} 1`,
			"http_requests_in_flight 0",
		} {
			if !strings.Contains(body, want+"\n") {
				t.Errorf("metrics lack %q; got:\n%s", want, body)
			}
		}
	})
}

func TestSuppressLock(t *testing.T) {
	t.Parallel()
	p := startWatchdog(t, map[string]string{"mode": "serializing", "fprocess": "cat", "suppress_lock": "true"})
	p.waitHealthy()
	if p.lockExists() {
		t.Errorf("lock file written with suppress_lock=true")
	}
}

func TestCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      []string
		wantCode int
		wantOut  string
	}{
		{"version", []string{"-version"}, nil, 0, "kiln watchdog "},
		{"unknown flag", []string{"-bogus"}, nil, 2, `unknown argument "-bogus"`},
		// A configuration error exits 1, as of-watchdog's do.
		{"unknown mode", nil, []string{"mode=bogus", "fprocess=cat"}, 1, `mode="bogus": unknown mode`},
		{"http mode without upstream_url", nil, []string{"mode=http", "fprocess=cat"}, 1, "upstream_url: required in http mode"},
		{"jwt_auth without the function's name", nil, []string{"fprocess=cat", "jwt_auth=true", "OPENFAAS_NAMESPACE=fn"}, 1, "OPENFAAS_NAME: required by jwt_auth=true"},
		{"healthcheck without a lock file", []string{"-run-healthcheck"}, nil, 1, "not healthy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(watchdogBin, tc.args...)
			cmd.Env = append([]string{"TMPDIR=" + t.TempDir()}, tc.env...)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Errorf("exit status = %d, want %d; output:\n%s", code, tc.wantCode, out)
			}
			if !strings.Contains(string(out), tc.wantOut) {
				t.Errorf("output = %q, want it to contain %q", out, tc.wantOut)
			}
		})
	}
}
