package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	runtimemetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// metrics holds the three series of-watchdog exposes, under the names its
// dashboards and the OpenFaaS autoscaler already query, and writes them
// with the go_* and process_* series of Prometheus' Go client, which
// of-watchdog's registry carries too. The text format is written by hand to
// keep the binary free of dependencies.
type metrics struct {
	buckets  []float64
	inflight atomic.Int64

	// kiln's per-function series, under the names kiln's gateway gives
	// them (gateway/doc.go), so that one dashboard reads both: body sizes,
	// in-flight against max_inflight, requests refused at max_inflight,
	// and the cold start. function is their function_name label,
	// name.namespace, "" when the watchdog does not know its name.
	function  string
	limit     *limiter     // its max and its refusals; nil: no limit
	coldStart atomic.Int64 // nanoseconds from process start to ready; 0 until then
	sizesMu   sync.Mutex
	reqSizes  series
	respSizes series

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

// sizeBuckets are the upper bounds of the size histograms, in bytes: 64 B
// to 16 MiB by fours, as kiln's gateway has them (gateway.SizeBuckets).
var sizeBuckets = []float64{64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216}

// processStart stands for the process's start: package variables are set
// before main runs.
var processStart = time.Now()

func newMetrics() *metrics {
	return &metrics{
		// Prometheus' default buckets, which of-watchdog uses.
		buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		series:    make(map[seriesKey]*series),
		reqSizes:  series{buckets: make([]uint64, len(sizeBuckets))},
		respSizes: series{buckets: make([]uint64, len(sizeBuckets))},
	}
}

// ready notes the cold start: the time from the process's start to its
// first readiness.
func (m *metrics) ready() {
	m.coldStart.CompareAndSwap(0, int64(max(time.Since(processStart), 1)))
}

// add counts v in s, whose buckets have the upper bounds given.
func (s *series) add(bounds []float64, v float64) {
	for i, le := range bounds {
		if v <= le {
			s.buckets[i]++
		}
	}
	s.sum += v
	s.count++
}

func (m *metrics) observeSizes(in, out int64) {
	m.sizesMu.Lock()
	defer m.sizesMu.Unlock()
	m.reqSizes.add(sizeBuckets, float64(in))
	m.respSizes.add(sizeBuckets, float64(out))
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
	s.add(m.buckets, secs)
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
		body := &countingBody{ReadCloser: r.Body}
		r.Body = body
		next.ServeHTTP(rec, r)
		m.observe(r.Method, rec.statusCode(), time.Since(start))
		m.observeSizes(body.n, rec.written)
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
	m.writeKiln(w)
	writeGoMetrics(w)
	writeProcessMetrics(w)
}

// writeKiln writes kiln's per-function series.
func (m *metrics) writeKiln(w *bufio.Writer) {
	var labels []string
	if m.function != "" {
		labels = []string{"function_name", m.function}
	}
	m.sizesMu.Lock()
	req, resp := m.reqSizes.clone(), m.respSizes.clone()
	m.sizesMu.Unlock()
	writeHistogram(w, "kiln_function_request_bytes", "Size of request bodies in bytes.", labels, sizeBuckets, req)
	writeHistogram(w, "kiln_function_response_bytes", "Size of response bodies in bytes.", labels, sizeBuckets, resp)
	writeSample(w, "kiln_function_inflight", "gauge", "Requests being served by the function's instances.", float64(m.inflight.Load()), labels...)
	var max, rejected int64
	if m.limit != nil {
		max, rejected = m.limit.max, m.limit.rejected.Load()
	}
	writeSample(w, "kiln_function_max_inflight", "gauge", "The function's max_inflight per instance, 0 for unlimited.", float64(max), labels...)
	writeSample(w, "kiln_function_rejected_total", "counter", "Requests refused with 429 at max_inflight.", float64(rejected), labels...)
	if d := m.coldStart.Load(); d > 0 {
		writeSample(w, "kiln_watchdog_cold_start_seconds", "gauge", "Seconds from the watchdog's start to the function's first readiness.", time.Duration(d).Seconds(), labels...)
	}
}

func (s *series) clone() series {
	return series{buckets: append([]uint64(nil), s.buckets...), sum: s.sum, count: s.count}
}

// writeHistogram writes one histogram with its HELP and TYPE; labels are
// pairs.
func writeHistogram(w *bufio.Writer, name, help string, labels []string, bounds []float64, s series) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var pre string
	for i := 0; i+1 < len(labels); i += 2 {
		pre += fmt.Sprintf("%s=%q,", labels[i], labels[i+1])
	}
	for i, le := range bounds {
		fmt.Fprintf(w, "%s_bucket{%sle=%q} %d\n", name, pre, formatFloat(le), s.buckets[i])
	}
	fmt.Fprintf(w, "%s_bucket{%sle=\"+Inf\"} %d\n", name, pre, s.count)
	braces := ""
	if pre != "" {
		braces = "{" + strings.TrimSuffix(pre, ",") + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %s\n%s_count%s %d\n", name, braces, formatFloat(s.sum), name, braces, s.count)
}

// countingBody counts the bytes of a request body the function reads.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// goSamples are the runtime/metrics behind the go_* series, by the names
// Prometheus' Go collector gives them.
var goSamples = []struct {
	name, kind, help, metric string
}{
	{"go_goroutines", "gauge", "Number of goroutines that currently exist.", "/sched/goroutines:goroutines"},
	{"go_threads", "gauge", "Number of OS threads created.", "/sched/threads/total:threads"},
	{"go_memstats_alloc_bytes", "gauge", "Number of heap bytes allocated and currently in use.", "/memory/classes/heap/objects:bytes"},
	{"go_memstats_alloc_bytes_total", "counter", "Total number of heap bytes allocated, even if freed.", "/gc/heap/allocs:bytes"},
	{"go_memstats_heap_objects", "gauge", "Number of currently allocated objects.", "/gc/heap/objects:objects"},
	{"go_memstats_next_gc_bytes", "gauge", "Number of heap bytes when next garbage collection will take place.", "/gc/heap/goal:bytes"},
	{"go_memstats_sys_bytes", "gauge", "Number of bytes obtained from system.", "/memory/classes/total:bytes"},
	{"go_memstats_heap_alloc_bytes", "gauge", "Number of heap bytes allocated and currently in use.", "/memory/classes/heap/objects:bytes"},
	{"go_sched_gomaxprocs_threads", "gauge", "The current runtime.GOMAXPROCS setting.", "/sched/gomaxprocs:threads"},
	{"go_gc_gogc_percent", "gauge", "Heap size target percentage configured by the user, otherwise 100.", "/gc/gogc:percent"},
}

func writeGoMetrics(w *bufio.Writer) {
	samples := make([]runtimemetrics.Sample, len(goSamples))
	for i, g := range goSamples {
		samples[i].Name = g.metric
	}
	runtimemetrics.Read(samples)
	for i, g := range goSamples {
		var v float64
		switch samples[i].Value.Kind() {
		case runtimemetrics.KindUint64:
			v = float64(samples[i].Value.Uint64())
		case runtimemetrics.KindFloat64:
			v = samples[i].Value.Float64()
		default:
			continue // not in this Go release
		}
		writeSample(w, g.name, g.kind, g.help, v)
	}
	writeSample(w, "go_info", "gauge", "Information about the Go environment.", 1, "version", runtime.Version())
}

// writeProcessMetrics writes process_* from /proc/self, as Prometheus'
// process collector does on Linux; elsewhere there are none.
func writeProcessMetrics(w *bufio.Writer) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return
	}
	// The fields after the command, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15, starttime 22, vsize
	// 23, rss 24 (man 5 proc).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return
	}
	f := strings.Fields(string(stat[i+1:]))
	field := func(n int) float64 {
		if n-3 >= len(f) {
			return 0
		}
		v, _ := strconv.ParseFloat(f[n-3], 64)
		return v
	}
	// USER_HZ is 100 on every Linux the images run on, as procfs assumes.
	const userHZ = 100
	writeSample(w, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", (field(14)+field(15))/userHZ)
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		writeSample(w, "process_open_fds", "gauge", "Number of open file descriptors.", float64(len(fds)))
	}
	if max := maxOpenFiles(); max > 0 {
		writeSample(w, "process_max_fds", "gauge", "Maximum number of open file descriptors.", max)
	}
	writeSample(w, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", field(24)*float64(os.Getpagesize()))
	if boot := bootTime(); boot > 0 {
		writeSample(w, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", boot+field(22)/userHZ)
	}
	writeSample(w, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(23))
}

// maxOpenFiles is the soft limit of /proc/self/limits' "Max open files".
func maxOpenFiles() float64 {
	data, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				return v
			}
		}
	}
	return 0
}

// bootTime is /proc/stat's btime, the boot time in seconds since the epoch.
func bootTime() float64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			v, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v
		}
	}
	return 0
}

// writeSample writes one unlabelled sample, or one with the label pairs
// given, with its HELP and TYPE.
func writeSample(w *bufio.Writer, name, kind, help string, v float64, labels ...string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s", name, help, name, kind, name)
	if len(labels) > 0 {
		w.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.WriteByte(',')
			}
			fmt.Fprintf(w, "%s=%q", labels[i], labels[i+1])
		}
		w.WriteByte('}')
	}
	fmt.Fprintf(w, " %s\n", formatFloat(v))
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
