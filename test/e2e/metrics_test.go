//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestStackUpLocalMaxInflight: with max_inflight 1, a second concurrent
// call waits in the local gateway for the slot instead of getting the
// watchdog's 429, and /metrics says how long it waited.
func TestStackUpLocalMaxInflight(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "slow"), 0o755)
	os.WriteFile(filepath.Join(dir, "slow", "go.mod"), []byte("module handler/function\n\ngo 1.24.0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "slow", "handler.go"), []byte(`package function

import (
	"net/http"
	"time"
)

func Handle(w http.ResponseWriter, r *http.Request) {
	time.Sleep(500 * time.Millisecond)
	w.Write([]byte("done"))
}
`), 0o644)
	os.WriteFile(filepath.Join(dir, "stack.yml"), []byte(`provider:
  name: openfaas
functions:
  slow:
    lang: golang-middleware
    handler: ./slow
    image: `+unusedRegistry(t)+`/slow
    build_args:
      TEST_ENABLED: "false"
    environment:
      max_inflight: "1"
`), 0o644)
	port := freePort(t)
	up := startProcess(t, kilnCommand(t.Context(), kilnOpts{cache: warmCache, dir: dir}, "up", "--local", "--no-auth", "--port", strconv.Itoa(port)))
	waitFunction(t, up, port, "slow")

	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range codes {
		wg.Go(func() {
			a, err := call(http.MethodGet, port, "/function/slow", "")
			if err != nil {
				t.Errorf("GET /function/slow: %v", err)
			}
			codes[i] = a.status
		})
	}
	wg.Wait()
	if codes[0] != 200 || codes[1] != 200 {
		t.Errorf("two concurrent calls at max_inflight 1 = %v, want both 200: the second waits", codes)
	}

	a, err := call(http.MethodGet, port, "/metrics", "")
	if err != nil || a.status != 200 {
		t.Fatalf("GET /metrics = %+v, %v", a, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(a.body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	one := func(name string) *dto.Metric {
		t.Helper()
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("%s = %v, want one series, slow's", name, f)
		}
		return f.GetMetric()[0]
	}
	if q := one("kiln_function_queued_seconds").GetHistogram(); q.GetSampleCount() != 1 || q.GetSampleSum() < 0.2 {
		t.Errorf("kiln_function_queued_seconds: count %d, sum %v; want the one call that waited, for most of 500 ms", q.GetSampleCount(), q.GetSampleSum())
	}
	if v := one("kiln_function_max_inflight").GetGauge().GetValue(); v != 1 {
		t.Errorf("kiln_function_max_inflight = %v, want 1", v)
	}
	if c := one("kiln_function_cold_start_seconds").GetHistogram(); c.GetSampleCount() != 1 || c.GetSampleSum() <= 0 {
		t.Errorf("kiln_function_cold_start_seconds: count %d, sum %v; want the one instance's start", c.GetSampleCount(), c.GetSampleSum())
	}
}
