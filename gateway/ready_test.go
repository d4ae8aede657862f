package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-build/kiln/deploy"
)

// readyRunner runs in-process functions that answer as kiln's watchdog
// with ready_path set: /_/health 200 at once, the readiness path 503 for
// its first warmUp asks (a function warming up) and while unready is set,
// then 200. Each instance is known by its VERSION; a request that reaches
// an instance before its readiness path said 200 is counted as early. It
// drains as the watchdog does on SIGTERM.
type readyRunner struct {
	warmUp  int
	unready atomic.Bool
	early   atomic.Int64

	mu    sync.Mutex
	asked map[string]int // "VERSION path" -> asks
}

func (f *readyRunner) count(version, path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked[version+" "+path]
}

func (f *readyRunner) run(ctx context.Context, in Instance) error {
	version := envOf(in, "VERSION")
	var asks atomic.Int64
	var ready atomic.Bool
	record := func(path string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.asked == nil {
			f.asked = map[string]int{}
		}
		f.asked[version+" "+path]++
	}
	readiness := func(w http.ResponseWriter, r *http.Request) {
		record(r.URL.Path)
		if asks.Add(1) <= int64(f.warmUp) || f.unready.Load() {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		ready.Store(true)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", func(w http.ResponseWriter, r *http.Request) { record(r.URL.Path) })
	mux.HandleFunc("/_/ready", readiness)
	mux.HandleFunc("/custom-ready", readiness)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			f.early.Add(1)
		}
		fmt.Fprintf(w, "v=%s", version)
	})
	srv := &http.Server{Handler: mux}
	errc := make(chan error, 1)
	_ = in.Listener.SetDeadline(time.Time{})
	go func() { errc <- srv.Serve(&runListener{TCPListener: in.Listener}) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// As the watchdog, which drains for healthcheck_interval.
	time.Sleep(200 * time.Millisecond)
	return srv.Shutdown(context.Background())
}

// fastReadiness shortens the readiness probe's period for a test.
func fastReadiness(t *testing.T) {
	period := readyPeriod
	readyPeriod = 20 * time.Millisecond
	t.Cleanup(func() { readyPeriod = period })
}

// imageEnv answers WithImageEnv as an image whose config sets env.
func imageEnv(env ...string) Option {
	return WithImageEnv(func(context.Context, string) ([]string, error) { return env, nil })
}

// TestReadiness: an instance gets requests only once its readiness path
// answers 200, first at deploy, then while the probe keeps asking; the
// path is /_/ready, but /_/health for a classic image and the annotation's
// when set.
func TestReadiness(t *testing.T) {
	fastReadiness(t)
	const warmUp = 5
	custom := map[string]string{deploy.ReadyPathAnnotation: "/custom-ready"}
	tests := []struct {
		name     string
		opts     []Option
		env      map[string]string
		ann      *map[string]string
		wantPath string // asked until ready
		notAsked string
	}{
		{"of-watchdog mode", []Option{imageEnv("mode=http")}, nil, nil, "/_/ready", ""},
		{"mode set by the deployment", []Option{imageEnv()}, map[string]string{"mode": "streaming"}, nil, "/_/ready", ""},
		{"classic image", []Option{imageEnv("fprocess=cat")}, nil, nil, "/_/health", "/_/ready"},
		{"no image env", nil, nil, nil, "/_/health", "/_/ready"},
		{"annotation", []Option{imageEnv("mode=http")}, nil, &custom, "/custom-ready", "/_/ready"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &readyRunner{warmUp: warmUp}
			g := New(f.run, append([]Option{WithHealthTimeout(5 * time.Second)}, tc.opts...)...)
			defer g.Close()
			env := map[string]string{"VERSION": "1"}
			for k, v := range tc.env {
				env[k] = v
			}
			if err := g.Deploy(context.Background(), deploy.Deployment{Service: "fn", Image: "fn:1", EnvVars: env, Annotations: tc.ann}, Upsert); err != nil {
				t.Fatalf("Deploy() = %v", err)
			}
			if tc.wantPath != "/_/health" {
				if n := f.count("1", tc.wantPath); n <= warmUp {
					t.Errorf("Deploy() returned after %d asks of %s, want it to wait past the %d answered 503", n, tc.wantPath, warmUp)
				}
			} else if n := f.count("1", tc.wantPath); n == 0 {
				t.Errorf("%s never asked", tc.wantPath)
			}
			if tc.notAsked != "" {
				if n := f.count("1", tc.notAsked); n != 0 {
					t.Errorf("%s asked %d times, want never", tc.notAsked, n)
				}
			}
		})
	}

	t.Run("bad annotation", func(t *testing.T) {
		g := New((&readyRunner{}).run)
		defer g.Close()
		bad := map[string]string{deploy.ReadyPathAnnotation: "ready"}
		var ve *ValidationError
		if err := g.Deploy(context.Background(), deploy.Deployment{Service: "fn", Image: "fn:1", Annotations: &bad}, Upsert); !errors.As(err, &ve) || !strings.Contains(err.Error(), deploy.ReadyPathAnnotation) {
			t.Errorf("Deploy() with %s=ready = %v, want a ValidationError naming it", deploy.ReadyPathAnnotation, err)
		}
	})

	t.Run("image env fails", func(t *testing.T) {
		g := New((&readyRunner{}).run, WithImageEnv(func(context.Context, string) ([]string, error) { return nil, errors.New("no such image") }))
		defer g.Close()
		if err := g.Deploy(context.Background(), deploy.Deployment{Service: "fn", Image: "fn:1"}, Upsert); err == nil || !strings.Contains(err.Error(), "no such image") {
			t.Errorf("Deploy() = %v, want the image's error", err)
		}
	})
}

// TestReadinessRouting: while an update's instance warms up, every request
// goes to the old one; once routed, an instance whose readiness fails
// leaves service (503 with one replica) and comes back when it passes.
func TestReadinessRouting(t *testing.T) {
	fastReadiness(t)
	f := &readyRunner{warmUp: 5}
	g := New(f.run, WithHealthTimeout(5*time.Second), imageEnv("mode=http"))
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	u := srv.URL + "/function/fn"
	if err := g.Deploy(context.Background(), deploy.Deployment{Service: "fn", Image: "fn:1", EnvVars: map[string]string{"VERSION": "1"}}, Upsert); err != nil {
		t.Fatalf("Deploy(v1) = %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var answers sync.Map // body -> count
	var failed atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			code, body := get(u)
			if code != http.StatusOK {
				failed.Add(1)
				continue
			}
			n, _ := answers.LoadOrStore(body, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
	})
	err := g.Deploy(context.Background(), deploy.Deployment{Service: "fn", Image: "fn:2", EnvVars: map[string]string{"VERSION": "2"}}, Upsert)
	time.Sleep(50 * time.Millisecond)
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("Deploy(v2) = %v", err)
	}
	if n := f.early.Load(); n != 0 {
		t.Errorf("%d requests reached an instance before its /_/ready answered 200", n)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed across the update", n)
	}
	if _, ok := answers.Load("v=1"); !ok {
		t.Errorf("no request answered by v1 while v2 warmed up")
	}
	if n := f.count("2", "/_/ready"); n <= f.warmUp {
		t.Errorf("v2 routed after %d asks of /_/ready, want more than %d", n, f.warmUp)
	}

	// Out of service after readyFailures failed asks, back after one
	// success.
	f.unready.Store(true)
	if code, body := waitFor(t, u, http.StatusServiceUnavailable); !strings.Contains(body, "/_/ready does not answer 200") {
		t.Errorf("GET %s while unready = %d %q, want it to name /_/ready", u, code, body)
	}
	if st := g.Functions(); len(st) != 1 || st[0].AvailableReplicas != 0 {
		t.Errorf("Functions() while unready = %+v, want 0 available replicas", st)
	}
	f.unready.Store(false)
	if _, body := waitFor(t, u, http.StatusOK); body != "v=2" {
		t.Errorf("GET %s once ready again = %q, want v=2", u, body)
	}
}

// get GETs url: its status and body, or 0 and the error.
func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor GETs url until it answers code, for up to 5 s.
func waitFor(t *testing.T, url string, code int) (int, string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, body := get(url)
		if got == code {
			return got, body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s = %d %q for 5s, want %d", url, got, body, code)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
