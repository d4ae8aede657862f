package gateway

import (
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// FunctionTelemetry is what the console shows of one function: its
// totals, its last 15 minutes in 5-second buckets, its cold starts, and
// its instances now.
type FunctionTelemetry struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	Replicas  int    `json:"replicas"`
	// Invocations counts every call the gateway answered for the
	// function, Errors those answered with a status of 500 or more,
	// since the gateway started.
	Invocations int64 `json:"invocations"`
	Errors      int64 `json:"errors"`
	// Series holds the last 15 minutes, oldest first, one bucket per 5
	// seconds, empty ones included.
	Series []Bucket `json:"series"`
	// P50, P95 and P99 are the latencies in ms of all the calls in Series.
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	// ColdStarts are the last 20, oldest first.
	ColdStarts  []ColdStart         `json:"coldStarts"`
	InFlight    int64               `json:"inFlight"`
	MaxInflight int                 `json:"maxInflight"` // per instance, 0: unlimited
	Queued      int64               `json:"queued"`      // waiting now
	Instances   []InstanceTelemetry `json:"instances"`
}

// Bucket is the calls that ended within 5 seconds. Latencies are in
// milliseconds: the time the function took (gateway_functions_seconds),
// and apart from it the time queued.
type Bucket struct {
	Start     int64   `json:"start"` // unix milliseconds
	Count     int64   `json:"count"`
	Errors    int64   `json:"errors"`
	P50       float64 `json:"p50"`
	P95       float64 `json:"p95"`
	P99       float64 `json:"p99"`
	QueuedP95 float64 `json:"queuedP95"`
	BytesIn   int64   `json:"bytesIn"`
	BytesOut  int64   `json:"bytesOut"`
}

// ColdStart is one instance's time from start to first readiness.
type ColdStart struct {
	At int64   `json:"at"` // unix milliseconds, when it became ready
	Ms float64 `json:"ms"`
}

// InstanceTelemetry is one replica now. Memory and CPU are its process
// tree's, sampled every few seconds; CPUPercent is over the last sampling
// period (100 is one core). They are 0 until the runner reports the
// instance's process (Instance.Started).
type InstanceTelemetry struct {
	ID         string  `json:"id"`
	Started    int64   `json:"started"` // unix milliseconds, of its current run
	Ready      bool    `json:"ready"`
	RSSBytes   uint64  `json:"rssBytes"`
	CPUSeconds float64 `json:"cpuSeconds"`
	CPUPercent float64 `json:"cpuPercent"`
}

// Telemetry returns every function's telemetry, by name, with the
// instances' memory and CPU read now, as a scrape of /metrics reads them.
func (g *Gateway) Telemetry() []FunctionTelemetry {
	g.sampleProcs()
	g.mu.RLock()
	fns := maps.Clone(g.functions)
	g.mu.RUnlock()
	now := time.Now()
	out := []FunctionTelemetry{}
	for _, name := range slices.Sorted(maps.Keys(fns)) {
		fn := fns[name]
		t := FunctionTelemetry{
			Name: fn.dep.Service, Namespace: fn.dep.Namespace, Replicas: len(fn.replicas),
			Invocations: fn.stats.calls.Load(), Errors: fn.stats.errors.Load(),
			ColdStarts:  fn.stats.coldStarts(),
			MaxInflight: fn.maxInflight, Queued: fn.stats.queued.Load(), Instances: []InstanceTelemetry{},
		}
		t.Series, t.P50, t.P95, t.P99 = fn.stats.window.series(now)
		for _, in := range fn.replicas {
			t.InFlight += in.inflight.Load()
			it := InstanceTelemetry{ID: in.id, Ready: in.ready.Load()}
			if s := in.runStart.Load(); s != nil {
				it.Started = s.UnixMilli()
			}
			if u := in.usage.Load(); u != nil {
				it.RSSBytes, it.CPUSeconds, it.CPUPercent = u.rss, u.cpu, u.cpuPercent
			}
			t.Instances = append(t.Instances, it)
		}
		out = append(out, t)
	}
	return out
}

// fnStats is a function's state that outlives its deployments: an update
// keeps it, as it keeps the invocation count.
type fnStats struct {
	calls, errors atomic.Int64
	queued        atomic.Int64 // requests waiting now
	window        window

	mu    sync.Mutex
	wake  chan struct{} // closed when a slot may have freed; see waitCh
	colds []ColdStart   // the last maxColdStarts
}

const maxColdStarts = 20

// waitCh returns a channel closed at the next change that may let a
// queued request through: a slot freed, an instance ready, the function
// redeployed or scaled. Taken before trying, so that no change is missed.
func (s *fnStats) waitCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake == nil {
		s.wake = make(chan struct{})
	}
	return s.wake
}

// changed wakes the requests waiting on waitCh.
func (s *fnStats) changed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake != nil {
		close(s.wake)
		s.wake = nil
	}
}

func (s *fnStats) coldStart(at time.Time, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.colds) == maxColdStarts {
		s.colds = slices.Delete(s.colds, 0, 1)
	}
	s.colds = append(s.colds, ColdStart{At: at.UnixMilli(), Ms: float64(d.Microseconds()) / 1000})
}

func (s *fnStats) coldStarts() []ColdStart {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ColdStart{}, s.colds...)
}

// The window: windowBuckets buckets of bucketSpan, a ring indexed by the
// bucket's start.
const (
	bucketSpan    = 5 * time.Second
	windowBuckets = 180 // 15 minutes
)

// Percentiles come from a histogram per bucket rather than from a sample
// of the calls: its memory is bounded whatever the rate (no call is
// dropped, so p99 of a busy bucket is as true as a quiet one's), adding a
// call is a few instructions, and its error is bounded too: bounds grow by
// latencyRatio, so a percentile interpolated within its bucket is within
// 25% of the truth, less than what the charts show. latencyBins bins span
// 0.1 ms to about 10 minutes; slower calls land in the last one.
const (
	latencyFirst = 0.1 // ms, upper bound of the first bin
	latencyRatio = 1.25
	latencyBins  = 72
)

// latencyBounds[i] is bin i's upper bound in milliseconds.
var latencyBounds = func() [latencyBins]float64 {
	var b [latencyBins]float64
	v := latencyFirst
	for i := range b {
		b[i] = v
		v *= latencyRatio
	}
	b[latencyBins-1] = math.Inf(1)
	return b
}()

type histogram [latencyBins]uint32

func (h *histogram) add(ms float64) {
	i, _ := slices.BinarySearch(latencyBounds[:], ms)
	h[min(i, latencyBins-1)]++
}

// quantile interpolates linearly within the bin that holds the q-th call.
func (h *histogram) quantile(q float64, count int64) float64 {
	if count == 0 {
		return 0
	}
	rank := q * float64(count)
	var seen float64
	for i, n := range h {
		if n == 0 {
			continue
		}
		if seen+float64(n) >= rank {
			lo := 0.0
			if i > 0 {
				lo = latencyBounds[i-1]
			}
			hi := latencyBounds[i]
			if math.IsInf(hi, 1) {
				return lo
			}
			return lo + (hi-lo)*(rank-seen)/float64(n)
		}
		seen += float64(n)
	}
	return 0
}

type slot struct {
	start             int64 // unix seconds of the bucket's start; 0: unused
	count, errors     int64
	bytesIn, bytesOut int64
	latency, queued   histogram
}

// window holds a function's calls of the last 15 minutes. Slots are
// allocated when first used, so that an idle function costs nothing.
type window struct {
	mu    sync.Mutex
	slots [windowBuckets]*slot
}

func bucketStart(t time.Time) int64 {
	s := int64(bucketSpan / time.Second)
	return t.Unix() / s * s
}

func (w *window) add(now time.Time, c call) {
	start := bucketStart(now)
	i := (start / int64(bucketSpan/time.Second)) % windowBuckets
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.slots[i]
	if s == nil {
		s = new(slot)
		w.slots[i] = s
	}
	if s.start != start {
		*s = slot{start: start}
	}
	s.count++
	if c.code >= 500 {
		s.errors++
	}
	s.bytesIn += c.bytesIn
	s.bytesOut += c.bytesOut
	s.latency.add(float64(c.served.Microseconds()) / 1000)
	s.queued.add(float64(c.queued.Microseconds()) / 1000)
}

// series returns the windowBuckets buckets that end with now's, oldest
// first, and the latency percentiles of all their calls.
func (w *window) series(now time.Time) (out []Bucket, p50, p95, p99 float64) {
	span := int64(bucketSpan / time.Second)
	last := bucketStart(now)
	out = make([]Bucket, windowBuckets)
	var all histogram
	var calls int64
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range out {
		start := last - int64(windowBuckets-1-k)*span
		b := Bucket{Start: start * 1000}
		if s := w.slots[(start/span)%windowBuckets]; s != nil && s.start == start {
			b.Count, b.Errors, b.BytesIn, b.BytesOut = s.count, s.errors, s.bytesIn, s.bytesOut
			b.P50 = s.latency.quantile(.50, s.count)
			b.P95 = s.latency.quantile(.95, s.count)
			b.P99 = s.latency.quantile(.99, s.count)
			b.QueuedP95 = s.queued.quantile(.95, s.count)
			for i, n := range s.latency {
				all[i] += n
			}
			calls += s.count
		}
		out[k] = b
	}
	return out, all.quantile(.50, calls), all.quantile(.95, calls), all.quantile(.99, calls)
}
