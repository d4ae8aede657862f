package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/gateway"
)

// serve is a function for the gateway's runner: a real HTTP server on the
// instance's listener that is healthy at once and logs each call.
func serve(ctx context.Context, in gateway.Instance) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "failing", http.StatusInternalServerError) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(in.Stdout, "called %s\n", r.URL.Path)
		fmt.Fprintf(w, "hello from %s", in.Name)
	})
	srv := &http.Server{Handler: mux}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(in.Listener) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		srv.Close()
		return nil
	}
}

const password = "secret"

// newGateway starts a gateway with the console, one function "hello"
// built by kiln and one "other" deployed as is.
func newGateway(t *testing.T, opts ...gateway.Option) *httptest.Server {
	t.Helper()
	opts = append(opts, gateway.WithBasicAuth(gateway.DefaultUser, password), gateway.WithUI(func(g *gateway.Gateway) http.Handler { return New(g) }))
	g := gateway.New(serve, opts...)
	t.Cleanup(g.Close)
	for _, name := range []string{"hello", "other"} {
		if err := g.Deploy(t.Context(), deploy.Deployment{Service: name, Image: "example.com/" + name + ":latest"}, gateway.Create); err != nil {
			t.Fatal(err)
		}
	}
	g.RecordBuild(gateway.BuildEvent{Function: "hello", Kind: gateway.BuildStarted})
	g.RecordBuild(gateway.BuildEvent{Function: "hello", Kind: gateway.BuildDone, Build: &gateway.BuildInfo{
		Image: "example.com/hello:latest", Digest: "sha256:abc", At: time.Unix(100, 0).UTC(), Took: time.Second,
		Layers: []gateway.BuildLayer{{Digest: "sha256:base", Size: 1000}, {Name: "handler", Digest: "sha256:h", Size: 24, Rebuilt: true, Took: time.Millisecond}},
	}})
	g.RecordBuild(gateway.BuildEvent{Function: "other", Kind: gateway.BuildFailed, Err: "main.go:3: syntax error"})
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, login bool) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if login {
		req.SetBasicAuth(gateway.DefaultUser, password)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutes(t *testing.T) {
	srv := newGateway(t)
	for _, tc := range []struct {
		name, path string
		login      bool
		code       int
		want       string // in the body, or the Location of a redirect
	}{
		{"root redirects to the UI", "/", false, http.StatusMovedPermanently, "/ui/"},
		{"the UI asks for the login", "/ui/", false, http.StatusUnauthorized, "invalid credentials"},
		{"the API asks for the login", "/ui/api/overview", false, http.StatusUnauthorized, "invalid credentials"},
		{"assets ask for the login", "/ui/assets/app.js", false, http.StatusUnauthorized, "invalid credentials"},
		{"overview page", "/ui/", true, http.StatusOK, "<title>kiln console</title>"},
		{"function page", "/ui/function/hello", true, http.StatusOK, "<title>kiln console</title>"},
		{"docs page without a document", "/ui/docs", true, http.StatusOK, "<title>kiln console</title>"},
		{"script", "/ui/assets/app.js", true, http.StatusOK, "function overview"},
		{"vendored charts", "/ui/assets/vendor/uPlot.iife.min.js", true, http.StatusOK, "uPlot"},
		{"unknown function", "/ui/api/functions/nope", true, http.StatusNotFound, "function nope not found"},
		{"unknown page", "/ui/nope", true, http.StatusNotFound, "404 page not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.path, tc.login)
			if resp.StatusCode != tc.code {
				t.Fatalf("GET %s = %d, want %d (%s)", tc.path, resp.StatusCode, tc.code, body)
			}
			got := body
			if tc.code == http.StatusMovedPermanently {
				got = resp.Header.Get("Location")
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("GET %s = %q, want %q in it", tc.path, got, tc.want)
			}
		})
	}
}

// TestDocs renders the gateway's OpenAPI document at /ui/docs, with a
// try-it form per operation.
func TestDocs(t *testing.T) {
	doc := `{"openapi": "3.0.3", "info": {"title": "stack", "version": "1"}, "paths": {
		"/function/hello/items": {"get": {"tags": ["hello"], "responses": {"200": {"description": "the items"}}}},
		"/function/other": {"post": {"tags": ["other"], "responses": {"201": {"description": "made"}}}}}}`
	srv := newGateway(t, gateway.WithOpenAPI(func(ctx context.Context, function string) ([]byte, error) { return []byte(doc), nil }))
	resp, body := get(t, srv.URL+"/ui/docs", true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/docs = %d %s", resp.StatusCode, body)
	}
	for _, want := range []string{`data-method="GET" data-path="/function/hello/items"`, `data-method="POST" data-path="/function/other"`, `href="/ui/"`} {
		if !strings.Contains(body, want) {
			t.Errorf("GET /ui/docs has no %s:\n%s", want, body)
		}
	}
}

// TestOverview calls hello three times, once failing, through the
// gateway: the overview counts them, and shows kiln's build of hello and
// other's failed one.
func TestOverview(t *testing.T) {
	srv := newGateway(t)
	for _, path := range []string{"/a", "/b", "/fail"} {
		resp, err := http.Get(srv.URL + "/function/hello" + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, body := get(t, srv.URL+"/ui/api/overview", true)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/api/overview = %d %s", resp.StatusCode, body)
	}
	var got Overview
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := Overview{Functions: []Summary{
		{Name: "hello", Namespace: "openfaas-fn", Status: "ready", Replicas: 1, AvailableReplicas: 1, Image: "example.com/hello:latest",
			Invocations: 3, Errors: 1, ErrorRate: 1.0 / 3,
			Build: &BuildSummary{Digest: "sha256:abc", Size: 1024, Layers: 2, Rebuilt: 1, At: time.Unix(100, 0).UTC(), Took: time.Second}},
		{Name: "other", Namespace: "openfaas-fn", Status: "ready", Replicas: 1, AvailableReplicas: 1, Image: "example.com/other:latest", BuildError: "main.go:3: syntax error"},
	}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Summary{}, "CreatedAt", "P50", "P95", "P99")); diff != "" {
		t.Errorf("overview (-want +got):\n%s", diff)
	}
	if h := got.Functions[0]; h.P50 <= 0 || h.P50 > h.P95 || h.P95 > h.P99 {
		t.Errorf("hello's latencies = %v, %v, %v ms, want 0 < p50 <= p95 <= p99", h.P50, h.P95, h.P99)
	}
}

func TestFunctionDetail(t *testing.T) {
	srv := newGateway(t)
	for _, tc := range []struct {
		name, function string
		layers         int
	}{
		{"built by kiln", "hello", 2},
		{"deployed as is", "other", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+"/ui/api/functions/"+tc.function, true)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET = %d %s", resp.StatusCode, body)
			}
			var d struct {
				Function  map[string]any     `json:"function"`
				Build     *gateway.BuildInfo `json:"build"`
				Telemetry map[string]any     `json:"telemetry"`
			}
			if err := json.Unmarshal([]byte(body), &d); err != nil {
				t.Fatal(err)
			}
			if d.Function["name"] != tc.function || d.Function["image"] != "example.com/"+tc.function+":latest" {
				t.Errorf("function = %v, want %s's status", d.Function, tc.function)
			}
			if got := 0; d.Build != nil {
				got = len(d.Build.Layers)
				if got != tc.layers {
					t.Errorf("build layers = %d, want %d", got, tc.layers)
				}
			} else if tc.layers != 0 {
				t.Errorf("build = nil, want %d layers", tc.layers)
			}
			if cold, _ := d.Telemetry["coldStarts"].([]any); len(cold) != 1 {
				t.Errorf("telemetry's coldStarts = %v, want the instance's start", d.Telemetry["coldStarts"])
			}
			if series, _ := d.Telemetry["series"].([]any); len(series) != 180 {
				t.Errorf("telemetry's series has %d buckets, want 15 minutes of 5 s", len(series))
			}
		})
	}
}

// TestBuildStream follows /ui/api/builds: the recorded events first, then
// one recorded while following.
func TestBuildStream(t *testing.T) {
	g := gateway.New(serve, gateway.WithBasicAuth(gateway.DefaultUser, password),
		gateway.WithUI(func(g *gateway.Gateway) http.Handler { return New(g) }))
	t.Cleanup(g.Close)
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	g.RecordBuild(gateway.BuildEvent{Function: "hello", Kind: gateway.BuildStarted})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/ui/api/builds", nil)
	req.SetBasicAuth(gateway.DefaultUser, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
		t.Fatalf("GET /ui/api/builds = %d %s, want 200 text/event-stream", resp.StatusCode, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var kinds []string
	for sc.Scan() && len(kinds) < 3 {
		line := sc.Text()
		if line == "event: following" {
			g.RecordBuild(gateway.BuildEvent{Function: "hello", Kind: gateway.BuildFailed, Err: "syntax error"})
			g.RecordBuild(gateway.BuildEvent{Function: "hello", Kind: gateway.BuildLive})
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "{}" {
			continue
		}
		var e gateway.BuildEvent
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, e.Kind+":"+e.Err)
	}
	if want := []string{"started:", "failed:syntax error", "live:"}; !cmp.Equal(kinds, want) {
		t.Errorf("events = %q, want %q", kinds, want)
	}
}
