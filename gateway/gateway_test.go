package gateway

import (
	"bytes"
	"context"
	"encoding/json"
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

// fakeRunner runs an in-process "function" on the instance's port: it
// answers /_/health after a short start-up, echoes what it got, and drains
// for a while after ctx is done, as the watchdog does on SIGTERM.
type fakeRunner struct {
	running atomic.Int32
}

func envOf(in Instance, key string) string {
	for _, e := range in.Env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

func (f *fakeRunner) run(ctx context.Context, in Instance) error {
	if envOf(in, "FAIL") != "" {
		return errors.New("exit status 1")
	}
	f.running.Add(1)
	defer f.running.Add(-1)
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", func(w http.ResponseWriter, r *http.Request) {
		if time.Since(started) < 100*time.Millisecond {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "v=%s path=%s query=%s call=%s start=%s", envOf(in, "VERSION"), r.URL.Path, r.URL.RawQuery, r.Header.Get("X-Call-Id"), r.Header.Get("X-Start-Time"))
	})
	srv := &http.Server{Addr: "127.0.0.1:" + envOf(in, "port"), Handler: mux}
	fmt.Fprintf(in.Stdout, "listening on %s\n", srv.Addr)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	time.Sleep(200 * time.Millisecond)
	return srv.Shutdown(context.Background())
}

func do(t *testing.T, method, url string, body any) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestGateway(t *testing.T) {
	var logs syncBuffer
	fr := &fakeRunner{}
	g := New(fr.run, WithOutput(&logs, &logs), WithHealthTimeout(5*time.Second))
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	u := srv.URL

	if code, body, _ := do(t, "GET", u+"/healthz", nil); code != 200 || body != "OK" {
		t.Errorf("GET /healthz = %d %q", code, body)
	}
	v1 := deploy.Deployment{Service: "echo", Image: "echo:1", EnvVars: map[string]string{"VERSION": "1"}}
	if code, body, _ := do(t, "PUT", u+"/system/functions", v1); code != 404 {
		t.Errorf("PUT unknown function = %d %q, want 404", code, body)
	}
	if code, body, _ := do(t, "POST", u+"/system/functions", v1); code != 202 {
		t.Fatalf("POST /system/functions = %d %q, want 202", code, body)
	}
	code, body, h := do(t, "POST", u+"/function/echo/a/b?x=1&y=2", nil)
	if code != 200 || !strings.HasPrefix(body, "v=1 path=/a/b query=x=1&y=2 call=") || h.Get("X-Call-Id") == "" || h.Get("X-Start-Time") == "" {
		t.Errorf("POST /function/echo/a/b?x=1&y=2 = %d %q, headers %v", code, body, h)
	}
	if !strings.Contains(body, "call="+h.Get("X-Call-Id")) {
		t.Errorf("the function saw another X-Call-Id than the caller got: %q vs %q", body, h.Get("X-Call-Id"))
	}
	if code, body, _ := do(t, "GET", u+"/function/echo", nil); code != 200 || !strings.Contains(body, "path=/ ") {
		t.Errorf("GET /function/echo = %d %q, want path /", code, body)
	}
	if code, _, _ := do(t, "GET", u+"/function/nope", nil); code != 404 {
		t.Errorf("GET /function/nope = %d, want 404", code)
	}

	// An update swaps with no failed request in between.
	ctx, stop := context.WithCancel(context.Background())
	var failures, calls atomic.Int64
	var sawV2 atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			resp, err := http.Get(u + "/function/echo")
			calls.Add(1)
			if err != nil {
				failures.Add(1)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failures.Add(1)
			}
			if strings.HasPrefix(string(b), "v=2") {
				sawV2.Store(true)
			}
		}
	})
	time.Sleep(50 * time.Millisecond)
	v2 := v1
	v2.EnvVars = map[string]string{"VERSION": "2"}
	if code, body, _ := do(t, "PUT", u+"/system/functions", v2); code != 202 {
		t.Errorf("PUT (update) = %d %q, want 202", code, body)
	}
	bad := v1
	bad.EnvVars = map[string]string{"FAIL": "1"}
	if code, _, _ := do(t, "PUT", u+"/system/functions", bad); code != 400 {
		t.Errorf("PUT (failing instance) = %d, want 400", code)
	}
	time.Sleep(400 * time.Millisecond)
	stop()
	wg.Wait()
	if failures.Load() > 0 || !sawV2.Load() {
		t.Errorf("client loop across an update: %d of %d calls failed, saw v2: %v", failures.Load(), calls.Load(), sawV2.Load())
	}

	code, body, _ = do(t, "GET", u+"/system/functions", nil)
	var list []map[string]any
	json.Unmarshal([]byte(body), &list)
	if code != 200 || len(list) != 1 || list[0]["name"] != "echo" || list[0]["image"] != "echo:1" || list[0]["service"] != nil || list[0]["invocationCount"].(float64) < 3 {
		t.Errorf("GET /system/functions = %d %s", code, body)
	}
	if code, body, _ := do(t, "GET", u+"/system/function/echo", nil); code != 200 || !strings.Contains(body, `"VERSION":"2"`) {
		t.Errorf("GET /system/function/echo = %d %s", code, body)
	}
	if code, _, _ := do(t, "GET", u+"/system/function/nope", nil); code != 404 {
		t.Errorf("GET /system/function/nope = %d, want 404", code)
	}
	if code, _, _ := do(t, "DELETE", u+"/system/functions", map[string]string{"functionName": "echo"}); code != 202 {
		t.Errorf("DELETE echo = %d, want 202", code)
	}
	if code, _, _ := do(t, "GET", u+"/function/echo", nil); code != 404 {
		t.Errorf("GET /function/echo after delete = %d, want 404", code)
	}
	if code, _, _ := do(t, "DELETE", u+"/system/functions", map[string]string{"functionName": "echo"}); code != 404 {
		t.Errorf("DELETE unknown = %d, want 404", code)
	}
	if !strings.Contains(logs.String(), "echo | listening on 127.0.0.1:") {
		t.Errorf("logs = %q, want lines prefixed by the function name", logs.String())
	}

	// Close stops every function and returns once they are gone.
	if code, _, _ := do(t, "POST", u+"/system/functions", deploy.Deployment{Service: "other", Image: "x"}); code != 202 {
		t.Fatalf("POST other = %d", code)
	}
	g.Close()
	if n := fr.running.Load(); n != 0 {
		t.Errorf("after Close, %d functions still run", n)
	}
}

func TestDeployValidation(t *testing.T) {
	g := New((&fakeRunner{}).run)
	defer g.Close()
	for _, d := range []deploy.Deployment{{Service: "Bad_Name", Image: "x"}, {Service: "ok"}} {
		if err := g.Deploy(context.Background(), d, false); err == nil {
			t.Errorf("Deploy(%+v) = nil error", d)
		}
	}
}

// TestDeployClient runs the deploy package's client against the gateway.
func TestDeployClient(t *testing.T) {
	g := New((&fakeRunner{}).run)
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	c, err := deploy.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	d := &deploy.Deployment{Service: "fn", Image: "fn@sha256:00", EnvVars: map[string]string{"VERSION": "7"}}
	for range 2 {
		if code, err := c.Deploy(context.Background(), d); err != nil || code != 202 {
			t.Fatalf("Deploy() = %d, %v", code, err)
		}
	}
	list, err := c.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Name != "fn" || list[0].Image != "fn@sha256:00" {
		t.Errorf("List() = %+v, %v", list, err)
	}
	if err := c.Delete(context.Background(), "fn", ""); err != nil {
		t.Errorf("Delete() = %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
