package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/kiln-build/kiln/openapi"
)

// Exchange is one call of a function through the gateway, as an observer
// (WithObserver) gets it once the answer is sent: what openapi infers a
// function's API from, bodies cut at MaxObservedBody, and its timing.
type Exchange struct {
	openapi.Exchange
	// Start is when the gateway got the request; Duration, until the
	// answer was sent.
	Start    time.Time
	Duration time.Duration
}

// MaxObservedBody is the most of each body an Exchange holds.
const MaxObservedBody = 64 << 10

// WithObserver calls observe with every exchange of a function, after
// its answer is sent, on the request's goroutine: observe must be quick
// and safe for concurrent use. Bodies are captured, up to
// MaxObservedBody each, only when an observer is set; answers stream as
// without one. Default: none.
func WithObserver(observe func(Exchange)) Option {
	return func(g *Gateway) { g.observer = observe }
}

// observe starts capturing an exchange of function name: w is to be
// written instead of the gateway's writer and finish called once the
// answer is sent. r is the gateway's own clone of the request, its path
// the function's: its Body is replaced by one that records what the
// function reads. Without an observer, w is returned as is.
func (g *Gateway) observe(w http.ResponseWriter, r *http.Request, name string) (http.ResponseWriter, func()) {
	if g.observer == nil {
		return w, func() {}
	}
	ex := Exchange{Exchange: openapi.Exchange{Function: name, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), RequestContentType: r.Header.Get("Content-Type")}, Start: time.Now()}
	req := &capture{}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &captureReader{ReadCloser: r.Body, c: req}
	}
	rec := &tapWriter{ResponseWriter: w}
	return rec, func() {
		ex.Duration = time.Since(ex.Start)
		ex.RequestBody, ex.RequestTruncated = req.buf.Bytes(), req.truncated
		ex.Status = rec.status
		if ex.Status == 0 {
			ex.Status = http.StatusOK
		}
		ex.ResponseContentType = w.Header().Get("Content-Type")
		ex.ResponseBody, ex.ResponseTruncated = rec.body.buf.Bytes(), rec.body.truncated
		g.observer(ex)
	}
}

// capture keeps the first MaxObservedBody bytes written to it.
type capture struct {
	buf       bytes.Buffer
	truncated bool
}

func (c *capture) keep(p []byte) {
	room := MaxObservedBody - c.buf.Len()
	if len(p) > room {
		p, c.truncated = p[:room], true
	}
	c.buf.Write(p)
}

type captureReader struct {
	io.ReadCloser
	c *capture
}

func (r *captureReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.c.keep(p[:n])
	return n, err
}

// tapWriter passes an answer through, keeping its status and the start of
// its body. Unwrap lets http.ResponseController reach the writer's
// Flush, which the proxy calls to stream.
type tapWriter struct {
	http.ResponseWriter
	status int
	body   capture
}

func (w *tapWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *tapWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.body.keep(p)
	return w.ResponseWriter.Write(p)
}

func (w *tapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WithOpenAPI sets where GET /system/openapi.json gets its answer:
// doc(ctx, "") is the OpenAPI document of every function; doc(ctx, name),
// for ?inferred=name, the fragment inferred from function name's calls,
// or an error wrapping ErrNotFound when there is none. Default: none,
// and the route answers 404.
func WithOpenAPI(doc func(ctx context.Context, function string) ([]byte, error)) Option {
	return func(g *Gateway) { g.openapi = doc }
}

// openapiHTTP answers GET /system/openapi.json.
func (g *Gateway) openapiHTTP(w http.ResponseWriter, r *http.Request) {
	if g.openapi == nil {
		http.Error(w, "this gateway serves no OpenAPI document", http.StatusNotFound)
		return
	}
	b, err := g.openapi(r.Context(), r.URL.Query().Get("inferred"))
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}
}
