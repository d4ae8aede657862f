package gateway

import (
	"math"
	"testing"
	"time"
)

// TestWindowPercentiles: the window's percentiles are those of all its
// calls together, not an average of each bucket's, which a bucket of
// few slow calls would skew.
func TestWindowPercentiles(t *testing.T) {
	var w window
	now := time.Unix(1_700_000_000, 0)
	// 99 fast calls in one bucket, one slow call in the bucket before.
	w.add(now.Add(-bucketSpan), call{code: 200, served: 900 * time.Millisecond})
	for range 99 {
		w.add(now, call{code: 200, served: 2 * time.Millisecond})
	}
	series, p50, p95, p99 := w.series(now)
	if len(series) != windowBuckets {
		t.Fatalf("series has %d buckets, want %d", len(series), windowBuckets)
	}
	last, before := series[len(series)-1], series[len(series)-2]
	if last.Count != 99 || before.Count != 1 {
		t.Fatalf("bucket counts = %d, %d, want 1, 99", before.Count, last.Count)
	}
	// Within the histogram's 25 % bins of the true values.
	near := func(got, want float64) bool { return math.Abs(got-want) <= want/4 }
	if !near(p50, 2) || !near(p95, 2) || !near(p99, 2) {
		t.Errorf("p50, p95, p99 = %v, %v, %v, want about 2 ms each: 99 of 100 calls took 2 ms", p50, p95, p99)
	}
	if !near(before.P99, 900) {
		t.Errorf("the slow bucket's p99 = %v, want about 900", before.P99)
	}
	if _, p50, _, _ := (&window{}).series(now); p50 != 0 {
		t.Errorf("an empty window's p50 = %v, want 0", p50)
	}
}
