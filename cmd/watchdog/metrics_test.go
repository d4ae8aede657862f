package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMetricsExposition(t *testing.T) {
	m := newMetrics()
	m.observe(http.MethodGet, 200, 3*time.Millisecond)
	m.observe(http.MethodGet, 200, 300*time.Millisecond)
	m.observe(http.MethodPost, 500, 20*time.Second)
	m.observe("BREW", 418, time.Millisecond)

	rec := httptest.NewRecorder()
	m.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if got, want := rec.Header().Get("Content-Type"), "text/plain; version=0.0.4; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	body := rec.Body.String()

	tests := []struct {
		name string
		line string
	}{
		{"histogram type", "# TYPE http_request_duration_seconds histogram"},
		{"counter type", "# TYPE http_requests_total counter"},
		{"gauge type", "# TYPE http_requests_in_flight gauge"},
		{"smallest bucket", `http_request_duration_seconds_bucket{code="200",method="get",le="0.005"} 1`},
		{"middle bucket", `http_request_duration_seconds_bucket{code="200",method="get",le="0.5"} 2`},
		{"bucket below the slow request", `http_request_duration_seconds_bucket{code="500",method="post",le="10"} 0`},
		{"+Inf bucket", `http_request_duration_seconds_bucket{code="500",method="post",le="+Inf"} 1`},
		{"count", `http_request_duration_seconds_count{code="200",method="get"} 2`},
		{"sum", `http_request_duration_seconds_sum{code="200",method="get"} 0.303`},
		{"total", `http_requests_total{code="200",method="get"} 2`},
		{"non-standard method folded", `http_requests_total{code="418",method="unknown"} 1`},
		{"in flight", "http_requests_in_flight 0"},
		{"goroutines type", "# TYPE go_goroutines gauge"},
		{"allocations type", "# TYPE go_memstats_alloc_bytes_total counter"},
		{"Go version", `go_info{version="` + runtime.Version() + `"} 1`},
		{"CPU type", "# TYPE process_cpu_seconds_total counter"},
		{"start time type", "# TYPE process_start_time_seconds gauge"},
	}
	// The runtime's and the process's series have values that change;
	// each must be a number above zero.
	for _, name := range []string{
		"go_goroutines", "go_threads", "go_memstats_alloc_bytes", "go_memstats_sys_bytes",
		"process_open_fds", "process_max_fds", "process_resident_memory_bytes",
		"process_virtual_memory_bytes", "process_start_time_seconds",
	} {
		v, ok := sampleValue(body, name)
		if !ok || v <= 0 {
			t.Errorf("%s = %v (found %v), want a number above 0; got:\n%s", name, v, ok, body)
		}
	}
	if start, _ := sampleValue(body, "process_start_time_seconds"); time.Since(time.Unix(int64(start), 0)) > time.Hour {
		t.Errorf("process_start_time_seconds = %v, want the test's start", start)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(body, tc.line+"\n") {
				t.Errorf("metrics output lacks %q; got:\n%s", tc.line, body)
			}
		})
	}
}

func TestInstrumentCountsStatusAndInflight(t *testing.T) {
	m := newMetrics()
	var inflight int64
	h := m.instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight = m.inflight.Load()
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	for _, path := range []string{"/", "/missing", "/"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	if inflight != 1 {
		t.Errorf("in flight during a request = %d, want 1", inflight)
	}
	if got := m.inflight.Load(); got != 0 {
		t.Errorf("in flight after the requests = %d, want 0", got)
	}
	tests := []struct {
		code string
		want uint64
	}{{"200", 2}, {"404", 1}}
	for _, tc := range tests {
		t.Run(tc.code, func(t *testing.T) {
			s := m.series[seriesKey{code: tc.code, method: "get"}]
			if s == nil || s.count != tc.want {
				t.Errorf("series{code=%s,method=get} = %+v, want count %d", tc.code, s, tc.want)
			}
		})
	}
}

// sampleValue finds an unlabelled sample's value in an exposition.
func sampleValue(body, name string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestKilnMetrics: a real watchdog's kiln_* series, parsed as Prometheus
// parses them, after a known set of requests.
func TestKilnMetrics(t *testing.T) {
	t.Parallel()
	env, _ := httpEnv(t, map[string]string{"max_inflight": "1", "OPENFAAS_NAME": "fn", "OPENFAAS_NAMESPACE": "dev"})
	p := startWatchdog(t, env)
	p.waitHealthy()
	body := strings.Repeat("x", 100)
	for range 3 {
		resp, err := client.Post(p.base+"/echo", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != body {
			t.Fatalf("POST /echo = %d %q", resp.StatusCode, b)
		}
	}
	slow := make(chan int, 1)
	go func() { slow <- p.status("/slow?ms=1000") }()
	p.eventually(5*time.Second, "the slow request in flight", func() bool {
		return kilnValue(t, scrapeText(t, p.metrics), "kiln_function_inflight") == 1
	})
	if got := p.status("/echo"); got != http.StatusTooManyRequests {
		t.Errorf("GET /echo at max_inflight = %d, want 429", got)
	}
	if got := <-slow; got != 200 {
		t.Errorf("GET /slow = %d", got)
	}

	fams := scrapeText(t, p.metrics)
	for name, want := range map[string]float64{"kiln_function_inflight": 0, "kiln_function_max_inflight": 1, "kiln_function_rejected_total": 1} {
		if got := kilnValue(t, fams, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if cold := kilnValue(t, fams, "kiln_watchdog_cold_start_seconds"); cold <= 0 || cold > 10 {
		t.Errorf("kiln_watchdog_cold_start_seconds = %v, want the seconds to readiness", cold)
	}
	// 3 bodies of 100 bytes, then the slow and the refused request's empty
	// ones; answers: 3 of 100, "slept 1000" and the 62 bytes of the 429.
	for _, name := range []string{"kiln_function_request_bytes", "kiln_function_response_bytes"} {
		m := kilnMetric(t, fams, name)
		got := map[float64]uint64{}
		for _, b := range m.GetHistogram().GetBucket() {
			got[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		if got[64] != 2 || got[256] != 5 || got[16777216] != 5 || m.GetHistogram().GetSampleCount() != 5 {
			t.Errorf("%s buckets = %v, count %d; want 2 up to 64 B, 5 up to 256 B", name, got, m.GetHistogram().GetSampleCount())
		}
	}
	if sum := kilnMetric(t, fams, "kiln_function_response_bytes").GetHistogram().GetSampleSum(); sum != 300+10+62 {
		t.Errorf("kiln_function_response_bytes_sum = %v, want 372", sum)
	}
}

// scrapeText GETs url and parses Prometheus' text format.
func scrapeText(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return fams
}

// kilnMetric returns the one sample of name, which must carry the
// function's name.
func kilnMetric(t *testing.T, fams map[string]*dto.MetricFamily, name string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil || len(f.GetMetric()) != 1 {
		t.Fatalf("%s: %v, want one sample", name, f)
	}
	m := f.GetMetric()[0]
	if l := m.GetLabel(); len(l) != 1 || l[0].GetName() != "function_name" || l[0].GetValue() != "fn.dev" {
		t.Errorf("%s labels = %v, want function_name=fn.dev", name, l)
	}
	return m
}

func kilnValue(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	m := kilnMetric(t, fams, name)
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.GetGauge().GetValue()
}
