package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kiln-build/kiln/deploy"
	"github.com/kiln-build/kiln/openapi"
)

// apiRunner runs an in-process JSON API on the instance's port.
func apiRunner(ctx context.Context, in Instance) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /items/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id": %q, "name": "thing", "tags": ["a"], "price": 1.5}`, r.PathValue("id"))
	})
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(b)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 3*MaxObservedBody)))
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(&runListener{TCPListener: in.Listener})
	<-ctx.Done()
	return srv.Close()
}

func TestObserveAndOpenAPI(t *testing.T) {
	inf := openapi.NewInferrer()
	var mu sync.Mutex
	var seen []Exchange
	observe := func(ex Exchange) {
		mu.Lock()
		seen = append(seen, ex)
		mu.Unlock()
		inf.Observe(ex.Exchange)
	}
	doc := func(ctx context.Context, fn string) ([]byte, error) {
		if fn != "" {
			d, ok := inf.Document(fn)
			if !ok {
				return nil, fmt.Errorf("no calls of %s seen: %w", fn, ErrNotFound)
			}
			return json.Marshal(d)
		}
		var fns []openapi.Function
		for _, n := range inf.Functions() {
			d, _ := inf.Document(n)
			fns = append(fns, openapi.Function{Name: n, Doc: d})
		}
		d, err := openapi.Merge(ctx, openapi.Info{Title: "local"}, fns)
		if err != nil {
			return nil, err
		}
		return json.Marshal(d)
	}
	g := New(apiRunner, WithHealthTimeout(5*time.Second), WithObserver(observe), WithOpenAPI(doc), WithBasicAuth("admin", "pw"))
	defer g.Close()
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	if err := g.Deploy(context.Background(), deploy.Deployment{Service: "api", Image: "api:1"}, Create); err != nil {
		t.Fatal(err)
	}
	u := srv.URL
	for _, id := range []string{"1", "22", "333"} {
		if code, body, _ := do(t, "GET", u+"/function/api/items/"+id+"?verbose=1", nil); code != 200 || !strings.Contains(body, `"id": "`+id+`"`) {
			t.Fatalf("GET items/%s = %d %s", id, code, body)
		}
	}
	resp, err := http.Post(u+"/function/api/items", "application/json", strings.NewReader(`{"name": "new", "count": 3}`))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 201 || !strings.Contains(string(b), `"count": 3`) {
		t.Fatalf("POST items = %d %s", resp.StatusCode, b)
	}
	resp.Body.Close()
	// The answer is whole beyond what is observed.
	if code, body, _ := do(t, "GET", u+"/function/api/big", nil); code != 200 || len(body) != 3*MaxObservedBody {
		t.Fatalf("GET big = %d, %d bytes, want %d", code, len(body), 3*MaxObservedBody)
	}
	// A stream reaches the client while the function still writes.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", u+"/function/api/stream", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Errorf("first line of the stream = %q, %v", line, err)
	}
	cancel()
	resp.Body.Close()

	mu.Lock()
	var post, big *Exchange
	for i := range seen {
		switch seen[i].Path {
		case "/items":
			post = &seen[i]
		case "/big":
			big = &seen[i]
		}
	}
	mu.Unlock()
	if post == nil || post.Status != 201 || post.RequestContentType != "application/json" || !strings.Contains(string(post.RequestBody), `"count": 3`) || post.ResponseContentType != "application/json" {
		t.Errorf("POST exchange = %+v", post)
	}
	if big == nil || len(big.ResponseBody) != MaxObservedBody || !big.ResponseTruncated {
		t.Errorf("GET big exchange: %d bytes kept, truncated %v; want %d and true", len(big.ResponseBody), big.ResponseTruncated, MaxObservedBody)
	}

	if code, _, _ := do(t, "GET", u+"/system/openapi.json", nil); code != http.StatusUnauthorized {
		t.Errorf("GET /system/openapi.json without the login = %d, want 401", code)
	}
	code, body := getAuth(t, u+"/system/openapi.json")
	if code != 200 {
		t.Fatalf("GET /system/openapi.json = %d %s", code, body)
	}
	merged, err := openapi3.NewLoader().LoadFromData([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := merged.Validate(context.Background()); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	paths := merged.Paths.Keys()
	for _, want := range []string{"/function/api/items/{id}", "/function/api/items", "/function/api/big"} {
		if !slices.Contains(paths, want) {
			t.Errorf("paths = %v, want %s", paths, want)
		}
	}
	get := merged.Paths.Value("/function/api/items/{id}").Get
	schema := get.Responses.Value("200").Value.Content["application/json"].Schema.Value
	if !slices.Equal(schema.Required, []string{"id", "name", "price", "tags"}) || get.Extensions[openapi.InferredExtension] != true {
		t.Errorf("GET items/{id} = %+v, want an inferred operation answering id, name, price, tags", get)
	}
	if code, body := getAuth(t, u+"/system/openapi.json?inferred=api"); code != 200 || !strings.Contains(body, `"/items/{id}"`) {
		t.Errorf("GET /system/openapi.json?inferred=api = %d %s", code, body)
	}
	if code, _ := getAuth(t, u+"/system/openapi.json?inferred=nope"); code != 404 {
		t.Errorf("GET /system/openapi.json?inferred=nope = %d, want 404", code)
	}
}

func getAuth(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
