package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kiln-build/kiln/deploy"
)

// metricsRunner runs in-process functions that answer over real HTTP on
// the instance's listener: /echo sends the body back, /fail answers 500,
// /sleep?ms=N answers 202 after N ms, /hold answers once release gets a
// value, /crash exits. /_/health answers 200 after WARMUP_MS (default
// 100), and with BUSY set 429 while a /hold is in flight, as the
// watchdog's /_/ready at max_inflight.
type metricsRunner struct {
	release chan struct{}
	holding atomic.Int64
}

func (f *metricsRunner) run(ctx context.Context, in Instance) error {
	warmUp := 100 * time.Millisecond
	if ms, err := strconv.Atoi(envOf(in, "WARMUP_MS")); err == nil {
		warmUp = time.Duration(ms) * time.Millisecond
	}
	started := time.Now()
	crashed := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case time.Since(started) < warmUp:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		case envOf(in, "BUSY") != "" && f.holding.Load() > 0:
			http.Error(w, "Concurrent request limit exceeded.", http.StatusTooManyRequests)
		}
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) { io.Copy(w, r.Body) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	mux.HandleFunc("/sleep", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("/hold", func(w http.ResponseWriter, r *http.Request) {
		f.holding.Add(1)
		defer f.holding.Add(-1)
		<-f.release
	})
	mux.HandleFunc("/crash", func(w http.ResponseWriter, r *http.Request) { close(crashed) })
	srv := &http.Server{Handler: mux}
	_ = in.Listener.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(&runListener{TCPListener: in.Listener}) }()
	select {
	case err := <-errc:
		return err
	case <-crashed:
		srv.Close()
		return errors.New("exit status 2")
	case <-ctx.Done():
	}
	return srv.Shutdown(context.Background())
}

// free lets n held requests answer, failing the test if fewer are held
// within 5 s.
func (f *metricsRunner) free(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case f.release <- struct{}{}:
		case <-time.After(5 * time.Second):
			t.Fatalf("fewer than %d requests held", n)
		}
	}
}

// scrape GETs url and parses it as Prometheus' text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// sample returns the metric of family name whose labels include the pairs
// given, nil if none.
func sample(fams map[string]*dto.MetricFamily, name string, pairs ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(pairs); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, -1 when absent.
func value(fams map[string]*dto.MetricFamily, name string, pairs ...string) float64 {
	m := sample(fams, name, pairs...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	default:
		return m.Gauge.GetValue()
	}
}

// buckets returns a histogram's cumulative counts by upper bound, +Inf
// as "+Inf", and its sum; nil when absent.
func buckets(fams map[string]*dto.MetricFamily, name string, pairs ...string) (map[string]uint64, float64) {
	m := sample(fams, name, pairs...)
	if m == nil || m.Histogram == nil {
		return nil, 0
	}
	out := map[string]uint64{"+Inf": m.Histogram.GetSampleCount()}
	for _, b := range m.Histogram.GetBucket() {
		out[strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64)] = b.GetCumulativeCount()
	}
	return out, m.Histogram.GetSampleSum()
}

// TestMetrics: after a known set of calls through a real gateway to real
// HTTP servers, /metrics holds exactly those counts and buckets.
func TestMetrics(t *testing.T) {
	f := &metricsRunner{release: make(chan struct{})}
	g := New(f.run, WithHealthTimeout(5*time.Second), WithBasicAuth("admin", "pw"))
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	u := srv.URL
	ctx := context.Background()
	for _, d := range []deploy.Deployment{
		{Service: "echo", Image: "echo:1"},
		{Service: "slow", Image: "slow:1", EnvVars: map[string]string{"max_inflight": "1"}},
	} {
		if err := g.Deploy(ctx, d, Upsert); err != nil {
			t.Fatalf("Deploy(%s) = %v", d.Service, err)
		}
	}
	if err := g.Scale(ctx, "echo", "", 2); err != nil {
		t.Fatalf("Scale(echo, 2) = %v", err)
	}
	body := strings.Repeat("x", 98) // 100 bytes as do sends it, in JSON
	for range 3 {
		if code, got, _ := do(t, "POST", u+"/function/echo/echo", body); code != 200 || len(got) != 100 {
			t.Fatalf("POST /function/echo/echo = %d %q", code, got)
		}
	}
	for range 2 {
		if code, _, _ := do(t, "GET", u+"/function/echo.openfaas-fn/fail", nil); code != 500 {
			t.Fatalf("GET /function/echo/fail = %d, want 500", code)
		}
	}
	if code, _, _ := do(t, "GET", u+"/function/echo/sleep?ms=300", nil); code != 202 {
		t.Fatalf("GET /function/echo/sleep = %d, want 202", code)
	}

	// slow serves one request at a time: a second one waits for the slot.
	held := make(chan int, 2)
	go func() { c, _, _ := do(t, "GET", u+"/function/slow/hold", nil); held <- c }()
	waitUntil(t, "slow in flight", func() bool {
		return value(scrape(t, u+"/metrics"), MetricInflight, "function_name", "slow.openfaas-fn") == 1
	})
	go func() { c, _, _ := do(t, "GET", u+"/function/slow/hold", nil); held <- c }()
	waitUntil(t, "a request queued", func() bool {
		return value(scrape(t, u+"/metrics"), MetricQueuedNow, "function_name", "slow.openfaas-fn") == 1
	})
	time.Sleep(200 * time.Millisecond)
	f.free(t, 2)
	for range 2 {
		if c := <-held; c != 200 {
			t.Errorf("GET /function/slow/hold = %d, want 200", c)
		}
	}

	fams := scrape(t, u+"/metrics")
	echo, slow := []string{"function_name", "echo.openfaas-fn"}, []string{"function_name", "slow.openfaas-fn"}
	with := func(pairs []string, more ...string) []string { return append(append([]string{}, pairs...), more...) }
	counts := []struct {
		name  string
		pairs []string
		want  float64
	}{
		{"gateway_function_invocation_total", with(echo, "code", "200"), 3},
		{"gateway_function_invocation_total", with(echo, "code", "500"), 2},
		{"gateway_function_invocation_total", with(echo, "code", "202"), 1},
		{"gateway_function_invocation_total", with(slow, "code", "200"), 2},
		{"gateway_function_invocation_started", echo, 6},
		{"gateway_service_count", echo, 2},
		{"gateway_service_count", slow, 1},
		{MetricMaxInflight, echo, 0},
		{MetricMaxInflight, slow, 1},
		{MetricInflight, slow, 0},
		{MetricQueuedNow, slow, 0},
	}
	for _, c := range counts {
		if got := value(fams, c.name, c.pairs...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.pairs, got, c.want)
		}
	}
	hists := []struct {
		name    string
		pairs   []string
		want    map[string]uint64 // some of the buckets
		wantSum [2]float64        // bounds of the sum
	}{
		// 3 bodies of 100 bytes, 2 and 1 empty ones.
		{MetricRequestBytes, echo, map[string]uint64{"64": 3, "256": 6, "+Inf": 6}, [2]float64{300, 300}},
		// 3 of 100, 2 of 5 ("boom\n"), 1 empty.
		{MetricResponseBytes, echo, map[string]uint64{"64": 3, "256": 6, "+Inf": 6}, [2]float64{310, 310}},
		{"gateway_functions_seconds", with(echo, "code", "202"), map[string]uint64{"0.25": 0, "0.5": 1, "+Inf": 1}, [2]float64{.3, .5}},
		{"gateway_functions_seconds", with(echo, "code", "200"), map[string]uint64{"+Inf": 3}, [2]float64{0, 1}},
		{MetricColdStart, echo, map[string]uint64{"0.05": 0, "+Inf": 2}, [2]float64{.2, 10}},
		// The second request waited at least 200 ms, the first not at all.
		{MetricQueued, slow, map[string]uint64{"0.1": 0, "+Inf": 1}, [2]float64{.2, 5}},
		{MetricQueued, echo, nil, [2]float64{}},
	}
	for _, h := range hists {
		got, sum := buckets(fams, h.name, h.pairs...)
		if h.want == nil {
			if got != nil {
				t.Errorf("%s%v = %v, want none: nothing queued", h.name, h.pairs, got)
			}
			continue
		}
		for le, n := range h.want {
			if got[le] != n {
				t.Errorf("%s_bucket%v{le=%s} = %d, want %d (all: %v)", h.name, h.pairs, le, got[le], n, got)
			}
		}
		if sum < h.wantSum[0] || sum > h.wantSum[1] {
			t.Errorf("%s_sum%v = %v, want within %v", h.name, h.pairs, sum, h.wantSum)
		}
	}

	// The console's view of the same calls.
	tel := map[string]FunctionTelemetry{}
	for _, ft := range g.Telemetry() {
		tel[ft.Name] = ft
	}
	e, s := tel["echo"], tel["slow"]
	var calls, errs, in, out int64
	for _, b := range e.Series {
		calls, errs, in, out = calls+b.Count, errs+b.Errors, in+b.BytesIn, out+b.BytesOut
	}
	if len(e.Series) != windowBuckets || e.Invocations != 6 || e.Errors != 2 || calls != 6 || errs != 2 || in != 300 || out != 310 {
		t.Errorf("Telemetry(echo) = %d buckets, %d calls, %d errors, series %d calls, %d errors, %d bytes in, %d out; want %d, 6, 2, 6, 2, 300, 310",
			len(e.Series), e.Invocations, e.Errors, calls, errs, in, out, windowBuckets)
	}
	if e.Replicas != 2 || len(e.Instances) != 2 || len(e.ColdStarts) != 2 || e.ColdStarts[0].Ms < 100 || !e.Instances[0].Ready || e.Instances[0].ID == "" {
		t.Errorf("Telemetry(echo) = %d replicas, instances %+v, cold starts %+v; want 2 ready, 2 cold starts of 100 ms or more", e.Replicas, e.Instances, e.ColdStarts)
	}
	var queuedP95 float64
	for _, b := range s.Series {
		queuedP95 = max(queuedP95, b.QueuedP95)
	}
	if s.MaxInflight != 1 || s.Invocations != 2 || queuedP95 < 150 || queuedP95 > 5000 {
		t.Errorf("Telemetry(slow) = max_inflight %d, %d calls, queued p95 %v ms; want 1, 2, about 200 ms", s.MaxInflight, s.Invocations, queuedP95)
	}
	start := e.Series[len(e.Series)-1].Start
	if now := time.Now().UnixMilli(); start > now || now-start > 2*bucketSpan.Milliseconds() {
		t.Errorf("last bucket starts at %d, want within 5 s of now (%d)", start, now)
	}
}

// TestQueueing: what waits and what is refused at once.
func TestQueueing(t *testing.T) {
	defer func(d time.Duration) { restartDelay = d }(restartDelay)
	restartDelay = 300 * time.Millisecond
	f := &metricsRunner{release: make(chan struct{})}
	g := New(f.run, WithHealthTimeout(5*time.Second))
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	u := srv.URL
	d := deploy.Deployment{Service: "fn", Image: "fn:1", EnvVars: map[string]string{"WARMUP_MS": "500"}}
	if err := g.Deploy(context.Background(), d, Upsert); err != nil {
		t.Fatal(err)
	}
	queued := func() float64 {
		n, _ := buckets(scrape(t, u+"/metrics"), MetricQueued, "function_name", "fn.openfaas-fn")
		return float64(n["+Inf"])
	}

	// In its back-off, a crashed instance is refused at once with why.
	do(t, "GET", u+"/function/fn/crash", nil)
	waitUntil(t, "the crash seen", func() bool { return g.Functions()[0].AvailableReplicas == 0 })
	began := time.Now()
	code, body, _ := do(t, "GET", u+"/function/fn/echo", nil)
	if code != 503 || !strings.Contains(body, "exit status 2") || time.Since(began) > 200*time.Millisecond {
		t.Errorf("GET in the back-off = %d %q after %v, want 503 naming the exit, at once", code, body, time.Since(began))
	}
	// Once it starts again, a request waits for it.
	waitUntil(t, "the restart", func() bool { return g.lookup("fn", "").replicas[0].starting.Load() })
	if code, body, _ := do(t, "GET", u+"/function/fn/echo", nil); code != 200 {
		t.Errorf("GET while it starts again = %d %q, want 200 once ready", code, body)
	}
	if n := queued(); n != 1 {
		t.Errorf("%s count = %v, want 1: the request that waited for the restart", MetricQueued, n)
	}

	// A readiness path that answers 429 at max_inflight, as the
	// watchdog's, leaves the instance in service: the queued request is
	// served once the slot frees, not refused.
	fastReadiness(t)
	busy := deploy.Deployment{Service: "busy", Image: "busy:1", EnvVars: map[string]string{"max_inflight": "1", "BUSY": "1"}}
	if err := g.Deploy(context.Background(), busy, Upsert); err != nil {
		t.Fatal(err)
	}
	held := make(chan int, 2)
	go func() { c, _, _ := do(t, "GET", u+"/function/busy/hold", nil); held <- c }()
	waitUntil(t, "busy in flight", func() bool { return f.holding.Load() == 1 })
	go func() { c, _, _ := do(t, "GET", u+"/function/busy/hold", nil); held <- c }()
	time.Sleep(time.Duration(readyFailures+2) * readyPeriod)
	if st := g.Functions(); st[0].Name != "busy" || st[0].AvailableReplicas != 1 {
		t.Errorf("Functions() while busy = %+v, want busy available", st)
	}
	f.free(t, 2)
	for range 2 {
		if c := <-held; c != 200 {
			t.Errorf("GET /function/busy/hold = %d, want 200", c)
		}
	}

	// The caller's deadline bounds the wait.
	g2 := New(f.run, WithHealthTimeout(300*time.Millisecond))
	defer g2.Close()
	srv2 := httptest.NewServer(g2.Handler())
	defer srv2.Close()
	if err := g2.Deploy(context.Background(), deploy.Deployment{Service: "one", Image: "one:1", EnvVars: map[string]string{"max_inflight": "1"}}, Upsert); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { c, _, _ := do(t, "GET", srv2.URL+"/function/one/hold", nil); done <- c }()
	waitUntil(t, "one in flight", func() bool { return g2.Telemetry()[0].InFlight == 1 })
	code, body, _ = do(t, "GET", srv2.URL+"/function/one/echo", nil)
	if code != 503 || !strings.Contains(body, "no instance was free within 300ms") {
		t.Errorf("GET past the health timeout = %d %q, want 503", code, body)
	}
	f.free(t, 1)
	if c := <-done; c != 200 {
		t.Errorf("held request = %d", c)
	}
}

// TestMaxInflight: max_inflight from the deployment's envVars over the
// image's environment, as the watchdog reads it.
func TestMaxInflight(t *testing.T) {
	tests := []struct {
		name     string
		image    []string
		envVars  map[string]string
		want     int
		wantPath string
	}{
		{"none", nil, nil, 0, "/_/health"},
		{"the image's", []string{"mode=http", "max_inflight=3"}, nil, 3, "/_/ready"},
		{"the deployment's over the image's", []string{"max_inflight=3"}, map[string]string{"max_inflight": "2"}, 2, "/_/health"},
		{"the deployment's 0 over the image's", []string{"max_inflight=3"}, map[string]string{"max_inflight": "0"}, 0, "/_/health"},
		{"not a number", []string{"max_inflight=many"}, nil, 0, "/_/health"},
		{"negative", nil, map[string]string{"max_inflight": "-1"}, 0, "/_/health"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := New((&metricsRunner{}).run, imageEnv(tc.image...))
			defer g.Close()
			path, got, err := g.readinessPath(context.Background(), deploy.Deployment{Service: "fn", Image: "fn:1", EnvVars: tc.envVars})
			if err != nil || got != tc.want || path != tc.wantPath {
				t.Errorf("readinessPath() = %q, %d, %v; want %q, %d", path, got, err, tc.wantPath, tc.want)
			}
		})
	}
}

// waitUntil polls cond for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
