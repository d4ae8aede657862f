package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// metrics holds the three series of-watchdog exposes, under the names its
// dashboards and the OpenFaaS autoscaler already query. The text format is
// written by hand to keep the binary free of dependencies.
type metrics struct {
	buckets  []float64
	inflight atomic.Int64

	mu     sync.Mutex
	series map[seriesKey]*series
	order  []seriesKey // first seen first, so that scrapes are stable
}

type seriesKey struct {
	code   string
	method string
}

// series is one label set's counter and histogram; the counter is the
// histogram's count, as with Prometheus' own HTTP instrumentation.
type series struct {
	buckets []uint64 // cumulative per upper bound, +Inf excluded
	sum     float64
	count   uint64
}

func newMetrics() *metrics {
	return &metrics{
		// Prometheus' default buckets, which of-watchdog uses.
		buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		series:  make(map[seriesKey]*series),
	}
}

func (m *metrics) observe(method string, code int, d time.Duration) {
	key := seriesKey{code: strconv.Itoa(code), method: methodLabel(method)}
	secs := d.Seconds()
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.series[key]
	if s == nil {
		s = &series{buckets: make([]uint64, len(m.buckets))}
		m.series[key] = s
		m.order = append(m.order, key)
	}
	for i, le := range m.buckets {
		if secs <= le {
			s.buckets[i]++
		}
	}
	s.sum += secs
	s.count++
}

// methodLabel lower-cases the standard methods, as Prometheus' Go client
// does, and folds anything else into one value so that a client cannot grow
// the series without bound.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return strings.ToLower(method)
	}
	return "unknown"
}

// instrument counts requests to next and times them.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inflight.Add(1)
		defer m.inflight.Add(-1)
		rec := &responseRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		m.observe(r.Method, rec.statusCode(), time.Since(start))
	})
}

// handler serves the Prometheus text exposition format, version 0.0.4.
func (m *metrics) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		bw := bufio.NewWriter(w)
		m.write(bw)
		_ = bw.Flush()
	})
}

func (m *metrics) write(w *bufio.Writer) {
	type row struct {
		key seriesKey
		s   series
	}
	m.mu.Lock()
	rows := make([]row, 0, len(m.order))
	for _, k := range m.order {
		s := m.series[k]
		rows = append(rows, row{k, series{buckets: append([]uint64(nil), s.buckets...), sum: s.sum, count: s.count}})
	}
	m.mu.Unlock()

	fmt.Fprintln(w, "# HELP http_request_duration_seconds Seconds spent serving HTTP requests.")
	fmt.Fprintln(w, "# TYPE http_request_duration_seconds histogram")
	for _, r := range rows {
		labels := fmt.Sprintf(`code=%q,method=%q`, r.key.code, r.key.method)
		for i, le := range m.buckets {
			fmt.Fprintf(w, "http_request_duration_seconds_bucket{%s,le=%q} %d\n", labels, formatFloat(le), r.s.buckets[i])
		}
		fmt.Fprintf(w, "http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %d\n", labels, r.s.count)
		fmt.Fprintf(w, "http_request_duration_seconds_sum{%s} %s\n", labels, formatFloat(r.s.sum))
		fmt.Fprintf(w, "http_request_duration_seconds_count{%s} %d\n", labels, r.s.count)
	}
	fmt.Fprintln(w, "# HELP http_requests_in_flight The number of HTTP requests currently being served.")
	fmt.Fprintln(w, "# TYPE http_requests_in_flight gauge")
	fmt.Fprintf(w, "http_requests_in_flight %d\n", m.inflight.Load())
	fmt.Fprintln(w, "# HELP http_requests_total The total number of HTTP requests.")
	fmt.Fprintln(w, "# TYPE http_requests_total counter")
	for _, r := range rows {
		fmt.Fprintf(w, "http_requests_total{code=%q,method=%q} %d\n", r.key.code, r.key.method, r.s.count)
	}
}

func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// responseRecorder notes the status and size of a response. It passes
// flushing and hijacking through, which streamed and WebSocket responses
// need.
type responseRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

func (r *responseRecorder) WriteHeader(code int) {
	// 1xx other than 101 are interim; the final status comes later.
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *responseRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(p)
	r.written += int64(n)
	return n, err
}

func (r *responseRecorder) Flush() {
	_ = r.FlushError()
}

// FlushError is what http.ResponseController calls, so that a failed flush
// to a caller that went away is seen by the writer.
func (r *responseRecorder) FlushError() error {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return conn, brw, err
}

// Unwrap lets http.ResponseController reach the server's writer for
// deadlines and full-duplex.
func (r *responseRecorder) Unwrap() http.ResponseWriter {
	return r.ResponseWriter
}

// statusCode is the status sent, 200 if the handler wrote nothing, as the
// server itself would send.
func (r *responseRecorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}
