package main

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
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
