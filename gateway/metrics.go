package gateway

import (
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names beyond OpenFaaS's, documented in doc.go. The watchdog
// (cmd/watchdog) exports the sizes, in-flight and max_inflight under the
// same names, so that one dashboard reads a kiln gateway and a cluster.
const (
	MetricColdStart     = "kiln_function_cold_start_seconds"
	MetricQueued        = "kiln_function_queued_seconds"
	MetricRequestBytes  = "kiln_function_request_bytes"
	MetricResponseBytes = "kiln_function_response_bytes"
	MetricInflight      = "kiln_function_inflight"
	MetricMaxInflight   = "kiln_function_max_inflight"
	MetricQueuedNow     = "kiln_function_queued_requests"
	MetricMemory        = "kiln_function_memory_bytes"
	MetricCPU           = "kiln_function_cpu_seconds_total"
)

// SizeBuckets are the upper bounds, in bytes, of the request and response
// size histograms: 64 B to 16 MiB by fours. The watchdog uses the same.
var SizeBuckets = prometheus.ExponentialBuckets(64, 4, 10)

// metrics are the gateway's Prometheus series. The series written at
// every call live here; those read from the functions' state (replicas,
// in-flight, memory) are collected at scrape by the gateway itself.
type metrics struct {
	reg           *prometheus.Registry
	invocations   *prometheus.CounterVec
	started       *prometheus.CounterVec
	seconds       *prometheus.HistogramVec
	coldStart     *prometheus.HistogramVec
	queued        *prometheus.HistogramVec
	requestBytes  *prometheus.HistogramVec
	responseBytes *prometheus.HistogramVec
}

func newMetrics(g *Gateway) *metrics {
	fn := []string{"function_name"}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_function_invocation_total", Help: "Function metrics",
		}, []string{"function_name", "code"}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gateway_function_invocation_started", Help: "The total number of function HTTP requests started.",
		}, fn),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gateway_functions_seconds", Help: "Function time taken",
		}, []string{"function_name", "code"}),
		coldStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricColdStart, Help: "Seconds from an instance's start to its first readiness.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, fn),
		queued: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricQueued, Help: "Seconds a request waited for a max_inflight slot or a starting instance.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, fn),
		requestBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricRequestBytes, Help: "Size of request bodies in bytes.", Buckets: SizeBuckets,
		}, fn),
		responseBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: MetricResponseBytes, Help: "Size of response bodies in bytes.", Buckets: SizeBuckets,
		}, fn),
	}
	m.reg.MustRegister(m.invocations, m.started, m.seconds, m.coldStart, m.queued, m.requestBytes, m.responseBytes, stateCollector{g})
	return m
}

// Metrics returns the handler of GET /metrics, the Prometheus text format.
func (g *Gateway) Metrics() http.Handler {
	return promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{})
}

var (
	descReplicas = prometheus.NewDesc("gateway_service_count", "Current count of replicas for function", []string{"function_name"}, nil)
	descInflight = prometheus.NewDesc(MetricInflight, "Requests being served by the function's instances.", []string{"function_name"}, nil)
	descMax      = prometheus.NewDesc(MetricMaxInflight, "The function's max_inflight per instance, 0 for unlimited.", []string{"function_name"}, nil)
	descQueued   = prometheus.NewDesc(MetricQueuedNow, "Requests waiting for a max_inflight slot or a starting instance.", []string{"function_name"}, nil)
	descMemory   = prometheus.NewDesc(MetricMemory, "Resident memory of an instance's process tree in bytes.", []string{"function_name", "replica"}, nil)
	descCPU      = prometheus.NewDesc(MetricCPU, "User and system CPU seconds of an instance's process tree.", []string{"function_name", "replica"}, nil)
)

// stateCollector reads the functions' state at scrape, memory and CPU
// sampled afresh.
type stateCollector struct{ g *Gateway }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReplicas, descInflight, descMax, descQueued, descMemory, descCPU} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.g.sampleProcs()
	c.g.mu.RLock()
	fns := maps.Clone(c.g.functions)
	c.g.mu.RUnlock()
	for _, name := range slices.Sorted(maps.Keys(fns)) {
		fn := fns[name]
		label := fn.label()
		var inflight int64
		for _, in := range fn.replicas {
			inflight += in.inflight.Load()
			if u := in.usage.Load(); u != nil {
				ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(u.rss), label, in.id)
				ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, u.cpu, label, in.id)
			}
		}
		ch <- prometheus.MustNewConstMetric(descReplicas, prometheus.GaugeValue, float64(len(fn.replicas)), label)
		ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(inflight), label)
		ch <- prometheus.MustNewConstMetric(descMax, prometheus.GaugeValue, float64(fn.maxInflight), label)
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(fn.stats.queued.Load()), label)
	}
}

// label is the function_name label OpenFaaS's gateway gives: name.namespace.
func (fn *function) label() string { return fn.dep.Service + "." + fn.dep.Namespace }

// call is what invoke learnt of one request, for the metrics and the
// telemetry.
type call struct {
	code          int
	served        time.Duration // from the proxy's start to the answer's end
	queued        time.Duration
	waited        bool // whether it queued at all
	bytesIn       int64
	bytesOut      int64
	reachedTarget bool // proxied, as opposed to refused by the gateway
}

// record adds one finished call to fn's series.
func (g *Gateway) record(fn *function, c call) {
	label := fn.label()
	code := strconv.Itoa(c.code)
	g.metrics.invocations.WithLabelValues(label, code).Inc()
	g.metrics.seconds.WithLabelValues(label, code).Observe(c.served.Seconds())
	if c.reachedTarget {
		g.metrics.requestBytes.WithLabelValues(label).Observe(float64(c.bytesIn))
		g.metrics.responseBytes.WithLabelValues(label).Observe(float64(c.bytesOut))
	}
	if c.waited {
		g.metrics.queued.WithLabelValues(label).Observe(c.queued.Seconds())
	}
	fn.stats.calls.Add(1)
	if c.code >= http.StatusInternalServerError {
		fn.stats.errors.Add(1)
	}
	fn.stats.window.add(time.Now(), c)
}

// countingBody counts the bytes of a request body the proxy reads.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// countingWriter notes the status and the body's size of an answer. It
// passes flushing and hijacking on through Unwrap, which
// http.ResponseController and the reverse proxy use.
type countingWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *countingWriter) WriteHeader(code int) {
	// 1xx other than 101 are interim; the final status comes later.
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// FlushError is what the reverse proxy calls, through
// http.ResponseController, for streamed answers; Flush serves callers
// that ask for an http.Flusher.
func (w *countingWriter) FlushError() error {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *countingWriter) Flush() { _ = w.FlushError() }

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}
