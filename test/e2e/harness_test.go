//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/test/registrytest"
)

// Bounds of the waits in this suite.
const (
	commandTimeout = 5 * time.Minute  // one kiln build
	readyTimeout   = 60 * time.Second // a function answering /_/health
	exitTimeout    = 30 * time.Second // a function exiting after SIGTERM
	pollEvery      = 50 * time.Millisecond
)

// The sample functions in testdata/functions.
const (
	goHello   = "go-hello"   // golang-middleware, static/ folder
	goDeps    = "go-deps"    // golang-middleware, github.com/google/uuid, /slow
	goMain    = "go-main"    // lang go, a plain main package
	goClassic = "go-classic" // lang go, the classic template's package function, no go.mod
	goHTTP    = "go-http"    // golang-http, templates-sdk's Request and Response
)

// sample returns the path of a sample function. Tests that edit one copy
// it first (copySample).
func sample(name string) string {
	return filepath.Join(repoRoot, "testdata", "functions", name)
}

// copySample copies a sample function to a new temporary folder and
// returns the copy's path.
func copySample(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	src := sample(name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
	return dst
}

// editFile replaces the one occurrence of old in dir/name with new.
func editFile(t *testing.T, dir, name, old, new string) {
	t.Helper()
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte(old)); n != 1 {
		t.Fatalf("%s holds %q %d times, want once", path, old, n)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// kilnOpts are how one kiln command runs.
type kilnOpts struct {
	// cache is the --cache-dir; required.
	cache string
	// dir is the working directory; default the test's.
	dir string
	// env is added to the environment (KEY=VALUE).
	env []string
}

// result is what a finished kiln command did.
type result struct {
	args           []string
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("kiln %s\nexit %d after %s\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// lines returns stdout's non-empty lines.
func (r result) lines() []string {
	var out []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// kilnCommand returns the command for kiln args with o applied.
func kilnCommand(ctx context.Context, o kilnOpts, args ...string) *exec.Cmd {
	if o.cache == "" {
		panic("kilnOpts.cache is required")
	}
	args = append(append([]string(nil), args...), "--cache-dir="+o.cache)
	cmd := exec.CommandContext(ctx, kilnBin, args...)
	cmd.Dir = o.dir
	cmd.Env = append(baseEnv(), o.env...)
	return cmd
}

// baseEnv is the test's environment without what would change kiln's
// behaviour behind the test's back.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "KILN_"), k == "SOURCE_DATE_EPOCH", k == "DOCKER_CONFIG", k == "XDG_CACHE_HOME", k == "REGISTRY_AUTH_FILE", k == "XDG_CONFIG_HOME", k == "OPENFAAS_CONFIG":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "DOCKER_CONFIG="+dockerConfig, "XDG_CONFIG_HOME="+configHome, "OPENFAAS_CONFIG="+openfaasConfig)
}

// kiln runs a kiln command to its end.
func kiln(t *testing.T, o kilnOpts, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := kilnCommand(ctx, o, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{args: cmd.Args[1:], stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("kiln %s: %v (ctx: %v)\n%s", strings.Join(cmd.Args[1:], " "), err, ctx.Err(), r)
	}
	return r
}

// mustKiln runs a kiln command that must succeed.
func mustKiln(t *testing.T, o kilnOpts, args ...string) result {
	t.Helper()
	r := kiln(t, o, args...)
	if r.code != 0 {
		t.Fatalf("kiln exit code = %d, want 0\n%s", r.code, r)
	}
	return r
}

// buildReport is one element of `kiln build --json`.
type buildReport struct {
	Name   string        `json:"name"`
	Image  string        `json:"image"`
	Digest string        `json:"digest"`
	Output string        `json:"output"`
	Layers []layerReport `json:"layers"`
}

type layerReport struct {
	Name     string `json:"name"`
	Digest   string `json:"digest"`
	Size     int64  `json:"size"`
	Cached   bool   `json:"cached"`
	Duration int64  `json:"duration"`
}

// buildJSON runs `kiln build ... --json`, which must succeed and build one
// image.
func buildJSON(t *testing.T, o kilnOpts, args ...string) buildReport {
	t.Helper()
	r := mustKiln(t, o, append(append([]string{"build"}, args...), "--json")...)
	var reports []buildReport
	if err := json.Unmarshal([]byte(r.stdout), &reports); err != nil {
		t.Fatalf("kiln build --json printed no JSON array: %v\n%s", err, r)
	}
	if len(reports) != 1 {
		t.Fatalf("kiln build --json = %d images, want 1\n%s", len(reports), r)
	}
	rep := reports[0]
	if !strings.HasPrefix(rep.Digest, "sha256:") || !strings.HasSuffix(rep.Image, "@"+rep.Digest) {
		t.Fatalf("kiln build --json = image %q digest %q, want NAME@sha256:...", rep.Image, rep.Digest)
	}
	return rep
}

// layer returns the report of the layer named name.
func (b buildReport) layer(t *testing.T, name string) layerReport {
	t.Helper()
	for _, l := range b.Layers {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("kiln build --json has no layer %q: %+v", name, b.Layers)
	return layerReport{}
}

// startRegistry starts a distribution registry for the test.
func startRegistry(t *testing.T, opts ...registrytest.Option) *registrytest.Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := registrytest.Start(ctx, t.TempDir(), opts...)
	if err != nil {
		t.Fatalf("starting the registry: %v", err)
	}
	t.Cleanup(func() {
		if err := reg.Close(); err != nil {
			t.Errorf("stopping the registry: %v", err)
		}
	})
	return reg
}

// requestsSince returns the registry's requests since mark.
func requestsSince(t *testing.T, reg *registrytest.Registry, mark int) []registrytest.Request {
	t.Helper()
	reqs, err := reg.Since(context.Background(), mark)
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

// assertNothingPushed checks that repo:tag does not exist and that no blob
// was uploaded nor manifest put since mark.
func assertNothingPushed(t *testing.T, reg *registrytest.Registry, mark int, repo, tag string) {
	t.Helper()
	reqs := requestsSince(t, reg, mark)
	if got := registrytest.BlobUploads(reqs); len(got) != 0 {
		t.Errorf("blob uploads = %v, want none\n%s", got, registrytest.Summary(reqs))
	}
	if got := registrytest.ManifestPuts(reqs); len(got) != 0 {
		t.Errorf("manifest puts = %v, want none", got)
	}
	status, _, err := reg.ManifestDigest(context.Background(), repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusNotFound {
		t.Errorf("HEAD /v2/%s/manifests/%s = %d, want 404", repo, tag, status)
	}
}

// freePort returns a free port on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := registrytest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a bytes.Buffer safe for a process to write while the test
// reads it.
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

// process is a long-running command (kiln run, runc run).
type process struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	code           int // valid once done is closed; -1 if killed by a signal
}

// startProcess starts cmd; the test's cleanup stops it (SIGTERM, then
// SIGKILL) if it is still running.
func startProcess(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: filepath.Base(cmd.Path), cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", strings.Join(cmd.Args, " "), err)
	}
	go func() {
		err := cmd.Wait()
		p.code = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.code = ee.ExitCode()
		} else if err != nil {
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the process if it still runs.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if _, ok := p.wait(exitTimeout); ok {
		return
	}
	t.Errorf("%s did not exit %s after SIGTERM; killing it", p.name, exitTimeout)
	_ = p.cmd.Process.Kill()
	p.wait(exitTimeout)
}

// running reports whether the process has not exited yet.
func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// wait waits up to d for the process to exit and returns its exit code.
func (p *process) wait(d time.Duration) (int, bool) {
	select {
	case <-p.done:
		return p.code, true
	case <-time.After(d):
		return 0, false
	}
}

func (p *process) String() string {
	return fmt.Sprintf("%s\nstdout:\n%s\nstderr:\n%s", strings.Join(p.cmd.Args, " "), p.stdout, p.stderr)
}

// httpClient talks to functions on 127.0.0.1, never through a proxy.
var httpClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// answer is an HTTP response, read whole.
type answer struct {
	status int
	header http.Header
	body   string
}

// call sends one request to 127.0.0.1:port.
func call(method string, port int, path, body string) (answer, error) {
	req, err := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(port)+path, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b)}, nil
}

// waitHealthy polls /_/health on port until it answers 200, failing the
// test if p exits first or readyTimeout passes.
func waitHealthy(t *testing.T, p *process, port int) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	var last string
	for {
		a, err := call(http.MethodGet, port, "/_/health", "")
		if err == nil && a.status == http.StatusOK {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %s", a.status, a.body)
		}
		if !p.running() {
			t.Fatalf("%s exited (code %d) before /_/health answered 200 (last: %s)\n%s", p.name, p.code, last, p)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/_/health on port %d did not answer 200 within %s (last: %s)\n%s", port, readyTimeout, last, p)
		}
		time.Sleep(pollEvery)
	}
}

// functionPorts are the ports one function instance listens on: the
// watchdog's, its metrics', and the function's own behind it. All are
// free ports rather than the defaults (8080, 8081, 8082), so a function
// another process runs on this machine cannot answer in its place; the
// samples honour http_port.
type functionPorts struct {
	http, metrics, function int
}

func newFunctionPorts(t *testing.T) functionPorts {
	t.Helper()
	return functionPorts{http: freePort(t), metrics: freePort(t), function: freePort(t)}
}

// env is the watchdog and function settings for the ports but the
// watchdog's own (kiln run --port, or port=), with a one-second drain.
func (p functionPorts) env() []string {
	return []string{
		"metrics_port=" + strconv.Itoa(p.metrics),
		"http_port=" + strconv.Itoa(p.function),
		"upstream_url=http://127.0.0.1:" + strconv.Itoa(p.function),
		"healthcheck_interval=1s",
		"write_timeout=10s",
	}
}

// runFunction starts `kiln run image` with free ports and a one-second
// drain, and waits for it to be healthy.
func runFunction(t *testing.T, cache, image string, extraEnv ...string) (*process, functionPorts) {
	t.Helper()
	ports := newFunctionPorts(t)
	// The metrics port inside is published on the same port outside.
	args := []string{"run", image, "--port", strconv.Itoa(ports.http), "-p", fmt.Sprintf("%d:%d", ports.metrics, ports.metrics)}
	for _, kv := range append(ports.env(), extraEnv...) {
		args = append(args, "--env", kv)
	}
	p := startProcess(t, kilnCommand(context.Background(), kilnOpts{cache: cache}, args...))
	waitHealthy(t, p, ports.http)
	return p, ports
}

// waitInFlight polls the watchdog's metrics until n requests are in flight.
func waitInFlight(t *testing.T, metricsPort, n int) {
	t.Helper()
	want := fmt.Sprintf("http_requests_in_flight %d\n", n)
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for {
		a, err := call(http.MethodGet, metricsPort, "/metrics", "")
		if err == nil && strings.Contains(a.body, want) {
			return
		}
		if err == nil {
			last = a.body
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics on port %d did not show %q within 10s; last:\n%s", metricsPort, strings.TrimSpace(want), last)
		}
		time.Sleep(pollEvery)
	}
}

// needBinaries skips the test when one of the tools is not installed.
func needBinaries(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed (Debian package %s); CI installs it", n, n)
		}
	}
}

// progressLine is the plain line of a finished step ("hello: compile in
// 1.2s", "hello: layer watchdog 2.5 MB (cached)"), or of a function's
// build ("hello: built in 1s, published to local in 3ms"), which kiln
// prints on a stderr that is no terminal.
var progressLine = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*: .+( \(cached\)| in ([0-9]+m)?[0-9.]+[µnm]?s)$`)

// checkOneLineError checks a failed command's stderr: the lines of the
// steps that finished before the failure, if any, then one line "kiln: "
// and a cause with every want in it, which is the last unless detail is
// expected.
func checkOneLineError(t *testing.T, r result, wantCode int, want []string, detail bool) (first, rest string) {
	t.Helper()
	if r.code != wantCode {
		t.Errorf("kiln exit code = %d, want %d\n%s", r.code, wantCode, r)
	}
	if r.stdout != "" {
		t.Errorf("kiln stdout = %q, want nothing", r.stdout)
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	i := 0
	for i < len(lines)-1 && !strings.HasPrefix(lines[i], "kiln: ") && progressLine.MatchString(lines[i]) {
		i++
	}
	first, rest = lines[i], strings.Join(lines[i+1:], "\n")
	if !strings.HasPrefix(first, "kiln: ") {
		t.Errorf("kiln stderr error line = %q, want \"kiln: CAUSE\" after the lines of the steps done", first)
	}
	for _, w := range want {
		if !strings.Contains(first, w) {
			t.Errorf("kiln stderr error line = %q, want it to contain %q", first, w)
		}
	}
	if !detail && rest != "" {
		t.Errorf("kiln stderr = %q, want one error line, the last", r.stderr)
	}
	return first, rest
}
