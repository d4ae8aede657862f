package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/kiln-build/kiln/gateway"
	"github.com/kiln-build/kiln/openapi"
)

//go:embed assets
var assets embed.FS

// Console serves the UI and its API under /ui/.
type Console struct {
	gw  *gateway.Gateway
	mux *http.ServeMux
}

// New returns the console of gw.
func New(gw *gateway.Gateway) *Console {
	c := &Console{gw: gw, mux: http.NewServeMux()}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded folder is there by construction
	}
	c.mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", noCache(http.FileServerFS(static))))
	c.mux.HandleFunc("GET /ui/api/overview", c.overview)
	c.mux.HandleFunc("GET /ui/api/functions/{name}", c.function)
	c.mux.HandleFunc("GET /ui/api/builds", c.builds)
	// The pages are one document that routes on its path.
	for _, p := range []string{"/ui/{$}", "/ui/function/{name}"} {
		c.mux.HandleFunc("GET "+p, c.page)
	}
	c.mux.HandleFunc("GET /ui/docs", c.docs)
	return c
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// noCache has the browser revalidate the assets, which change with the
// kiln binary, not with their path.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}

func (c *Console) page(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	// The page calls only its own gateway and loads only its own assets.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
	w.Write(b)
}

// docs renders the gateway's OpenAPI document, with a try-it form per
// operation that calls the function through the gateway; without one,
// the console's page says so.
func (c *Console) docs(w http.ResponseWriter, r *http.Request) {
	b, err := c.gw.OpenAPI(r.Context())
	if errors.Is(err, gateway.ErrNotFound) {
		c.page(w, r)
		return
	}
	var doc *openapi3.T
	if err == nil {
		doc, err = openapi3.NewLoader().LoadFromData(b)
	}
	if err != nil {
		http.Error(w, "the OpenAPI document: "+err.Error(), http.StatusInternalServerError)
		return
	}
	var page bytes.Buffer
	if err := openapi.HTML(&page, doc, openapi.WithBackLink("/ui/", "console")); err != nil {
		http.Error(w, "rendering the OpenAPI document: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(page.Bytes())
}

// Summary is a function's line in the overview.
type Summary struct {
	Name              string    `json:"name"`
	Namespace         string    `json:"namespace"`
	Status            string    `json:"status"`
	Replicas          uint64    `json:"replicas"`
	AvailableReplicas uint64    `json:"availableReplicas"`
	Image             string    `json:"image"`
	CreatedAt         time.Time `json:"createdAt"`
	Invocations       int64     `json:"invocations"`
	// Errors are the calls answered 5xx; ErrorRate is Errors/Invocations.
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"errorRate"`
	// P50, P95 and P99 are latencies in ms over the telemetry's window.
	P50         float64 `json:"p50"`
	P95         float64 `json:"p95"`
	P99         float64 `json:"p99"`
	InFlight    int64   `json:"inFlight"`
	MaxInflight int     `json:"maxInflight"`
	Queued      int64   `json:"queued"`
	// Build is the last good build, nil for an image kiln did not build.
	Build *BuildSummary `json:"build,omitempty"`
	// BuildError is why the last build failed, when it did after the
	// last good one.
	BuildError string `json:"buildError,omitempty"`
}

// BuildSummary is a build in brief: digest, size, layers rebuilt.
type BuildSummary struct {
	Digest  string        `json:"digest"`
	Size    int64         `json:"size"`
	Layers  int           `json:"layers"`
	Rebuilt int           `json:"rebuilt"`
	At      time.Time     `json:"at"`
	Took    time.Duration `json:"took"`
}

// Overview is the answer of /ui/api/overview.
type Overview struct {
	Functions []Summary `json:"functions"`
}

// telemetry returns the gateway's telemetry of each function, by name.
func (c *Console) telemetry() map[string]gateway.FunctionTelemetry {
	out := map[string]gateway.FunctionTelemetry{}
	for _, t := range c.gw.Telemetry() {
		out[t.Name] = t
	}
	return out
}

// lastFailures returns, per function, the error of a failed build that no
// good build followed.
func (c *Console) lastFailures() map[string]string {
	recent, _, stop := c.gw.FollowBuilds()
	stop()
	out := map[string]string{}
	for _, e := range recent {
		switch e.Kind {
		case gateway.BuildFailed:
			out[e.Function] = e.Err
		case gateway.BuildDone, gateway.BuildLive:
			delete(out, e.Function)
		}
	}
	return out
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	tel, builds, failures := c.telemetry(), c.gw.LastBuilds(), c.lastFailures()
	out := Overview{Functions: []Summary{}}
	for _, st := range c.gw.Functions() {
		s := Summary{
			Name: st.Name, Namespace: st.Namespace, Status: status(st), Replicas: st.Replicas, AvailableReplicas: st.AvailableReplicas,
			Image: st.Image, CreatedAt: st.CreatedAt, Invocations: st.InvocationCount, BuildError: failures[st.Name],
		}
		if t, ok := tel[st.Name]; ok {
			s.Invocations, s.Errors = t.Invocations, t.Errors
			s.InFlight, s.MaxInflight, s.Queued = t.InFlight, t.MaxInflight, t.Queued
			s.P50, s.P95, s.P99 = t.P50, t.P95, t.P99
		}
		if s.Invocations > 0 {
			s.ErrorRate = float64(s.Errors) / float64(s.Invocations)
		}
		if b, ok := builds[st.Name]; ok && b.Image == st.Image {
			bs := &BuildSummary{Digest: b.Digest, Layers: len(b.Layers), At: b.At, Took: b.Took}
			for _, l := range b.Layers {
				bs.Size += l.Size
				if l.Rebuilt {
					bs.Rebuilt++
				}
			}
			s.Build = bs
		}
		out.Functions = append(out.Functions, s)
	}
	writeJSON(w, out)
}

// status says whether a function takes requests.
func status(st gateway.Status) string {
	switch {
	case st.AvailableReplicas == 0:
		return "not ready"
	case st.AvailableReplicas < st.Replicas:
		return "degraded"
	}
	return "ready"
}

// Detail is the answer of /ui/api/functions/<name>.
type Detail struct {
	Function  gateway.Status             `json:"function"`
	Build     *gateway.BuildInfo         `json:"build"`
	Telemetry *gateway.FunctionTelemetry `json:"telemetry"`
}

func (c *Console) function(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var d *Detail
	for _, st := range c.gw.Functions() {
		if st.Name == name {
			d = &Detail{Function: st}
		}
	}
	if d == nil {
		http.Error(w, "function "+name+" not found", http.StatusNotFound)
		return
	}
	if b, ok := c.gw.LastBuilds()[name]; ok && b.Image == d.Function.Image {
		d.Build = &b
	}
	if t, ok := c.telemetry()[name]; ok {
		d.Telemetry = &t
	}
	writeJSON(w, d)
}

// builds streams the build events as server-sent events: the recent ones,
// a "following" event, then each new one, one JSON BuildEvent per event.
func (c *Console) builds(w http.ResponseWriter, r *http.Request) {
	recent, next, stop := c.gw.FollowBuilds()
	defer stop()
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported here", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(e gateway.BuildEvent) {
		b, _ := json.Marshal(e)
		fmt.Fprintf(w, "data: %s\n\n", b)
	}
	for _, e := range recent {
		send(e)
	}
	// The page knows the past from the present by this event.
	fmt.Fprint(w, "event: following\ndata: {}\n\n")
	flusher.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case e := <-next:
			send(e)
		case <-keepAlive.C:
			fmt.Fprint(w, ": keep-alive\n\n")
		case <-r.Context().Done():
			return
		}
		flusher.Flush()
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	// An error here is too late for a status: the client sees a cut answer.
	json.NewEncoder(w).Encode(v)
}
