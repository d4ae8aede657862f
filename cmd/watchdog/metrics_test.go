package main

import (
	"net/http"
	"net/http/httptest"
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
