package stack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peakHeap returns the most heap that f held at once, sampled every
// millisecond, with the collector run often so that garbage counts little.
func peakHeap(f func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	if peak.Load() < base {
		return 0
	}
	return peak.Load() - base
}

// TestReadTooLarge: a stack file over 16 MiB, a file or a URL whose answer
// never ends, is refused with ErrTooLarge after reading 16 MiB at most.
func TestReadTooLarge(t *testing.T) {
	big := filepath.Join(t.TempDir(), "stack.yml")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("# endless\n", 6554))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	announced := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(int64(4<<30)))
		w.Write([]byte("provider:\n"))
	}))
	defer announced.Close()
	for _, path := range []string{big, endless.URL + "/stack.yml", announced.URL + "/stack.yml"} {
		t.Run(path, func(t *testing.T) {
			start := time.Now()
			var err error
			n := peakHeap(func() { _, err = Read(context.Background(), path) })
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), path) {
				t.Errorf("Read(%s) = %v, want ErrTooLarge naming the file", path, err)
			}
			if n > 100<<20 {
				t.Errorf("Read(%s) held %d MB, want under 100", path, n>>20)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("Read(%s) took %s", path, d)
			}
		})
	}
}

// TestParseMemory parses the worst files of each shape that the limits
// let through, and some they stop: each must parse, or fail, within 100 MB.
func TestParseMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates up to 100 MB")
	}
	head := "provider:\n  name: openfaas\nfunctions:\n"
	fn := func(i int) string {
		return fmt.Sprintf("  fn%d:\n    lang: go\n    handler: ./fn%d\n    image: fn%d\n", i, i, i)
	}
	var many strings.Builder
	many.WriteString(head)
	for i, items := 0, countItems([]byte(head)); items < maxItems-10; i++ {
		items += countItems([]byte(fn(i)))
		many.WriteString(fn(i))
	}
	tests := []struct {
		name    string
		data    string
		wantErr error
	}{
		{"long value", head + fn(0) + "    environment:\n      big: " + strings.Repeat("a", MaxSize-200) + "\n", nil},
		{"many functions", many.String(), nil},
		{"flow items", head + fn(0) + "x-big: [" + strings.Repeat("a,", maxItems-20) + "a]\n", nil},
		{"flow mappings", head + fn(0) + "x-big: [" + strings.Repeat("{a},", maxItems/2-20) + "a]\n", nil},
		{"block items", head + fn(0) + "x-big:\n" + strings.Repeat("- a\n", maxItems-20), nil},
		{"decoded items", head + fn(0) + "    secrets: [" + strings.Repeat("a,", maxItems-20) + "a]\n", nil},
		{"substitutions", head + fn(0) + "    environment:\n      big: " + strings.Repeat("${A}", maxItems/2-20) + "\n", nil},
		{"long value and items", head + fn(0) + "    secrets: [" + strings.Repeat("a,", maxItems-20) + "a]\n    environment:\n      big: " + strings.Repeat("a", MaxSize-3*maxItems) + "\n", nil},
		{"too many items", head + fn(0) + "    secrets: [" + strings.Repeat("a,", maxItems) + "a]\n", ErrTooComplex},
		{"aliases of a large mapping", head + "    x: &big {" + strings.Repeat("k: v,", maxItems/4) + "}\n" + strings.Repeat("  a: {environment: *big}\n", maxItems/8), ErrTooComplex},
		{"nested aliases", "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" + head + "  a:\n    image: a\n    secrets: *f\n", ErrTooComplex},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.data)
			if len(data) > MaxSize {
				t.Fatalf("test file of %d bytes is over MaxSize", len(data))
			}
			var err error
			n := peakHeap(func() { _, err = Parse("stack.yml", data) })
			if tc.wantErr == nil && err != nil || !errors.Is(err, tc.wantErr) {
				t.Errorf("Parse() = %v, want %v", err, tc.wantErr)
			}
			if n > 100<<20 {
				t.Errorf("Parse() held %d MB, want under 100", n>>20)
			}
			t.Logf("%d KB in, %d MB held", len(data)>>10, n>>20)
		})
	}
}
