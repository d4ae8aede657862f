package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAsyncBody bounds an async request, which the gateway holds in memory
// until the function takes it.
const maxAsyncBody = 32 << 20

// invokeAsync answers POST /async-function/<name>[/path] with 202 and the
// call's X-Call-Id, then calls the function in the background, as
// OpenFaaS's queue-worker does, and POSTs its answer to X-Callback-Url
// when one is given, with X-Call-Id, X-Function-Name, X-Function-Status
// and X-Duration-Seconds.
func (g *Gateway) invokeAsync(w http.ResponseWriter, r *http.Request) {
	name, ns, _ := strings.Cut(r.PathValue("name"), ".")
	if g.lookup(name, ns) == nil {
		http.Error(w, "function "+r.PathValue("name")+" not found", http.StatusNotFound)
		return
	}
	callback := r.Header.Get("X-Callback-Url")
	if callback != "" {
		if u, err := url.Parse(callback); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			http.Error(w, fmt.Sprintf("X-Callback-Url %q: want an http(s) URL", callback), http.StatusBadRequest)
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAsyncBody))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	callID := r.Header.Get("X-Call-Id")
	if callID == "" {
		callID = newCallID()
	}
	// Detached from the caller, who has its answer, but not from the
	// gateway: Close waits for calls in flight.
	call, err := http.NewRequestWithContext(g.ctx, http.MethodPost, r.URL.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	call.Header = r.Header.Clone()
	call.Header.Set("X-Call-Id", callID)
	call.Header.Del("X-Callback-Url")
	call.Host, call.RemoteAddr = r.Host, r.RemoteAddr
	call.SetPathValue("name", r.PathValue("name"))
	call.SetPathValue("path", r.PathValue("path"))
	g.all.Add(1)
	go func() {
		defer g.all.Done()
		g.runAsync(call, name, callID, callback)
	}()
	w.Header().Set("X-Call-Id", callID)
	w.WriteHeader(http.StatusAccepted)
}

func (g *Gateway) runAsync(call *http.Request, name, callID, callback string) {
	start := time.Now()
	rec := &recorder{header: http.Header{}, code: http.StatusOK}
	g.invoke(rec, call)
	stderr := newPrefixWriter(g.stderr, name+" | ")
	defer stderr.Flush()
	if callback == "" {
		if rec.code >= 400 {
			fmt.Fprintf(stderr, "kiln: async call %s answered %d\n", callID, rec.code)
		}
		return
	}
	ctx, cancel := context.WithTimeout(g.ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, callback, &rec.body)
	if err != nil {
		fmt.Fprintf(stderr, "kiln: async call %s: callback: %v\n", callID, err)
		return
	}
	if ct := rec.header.Get("Content-Type"); ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("X-Call-Id", callID)
	req.Header.Set("X-Function-Name", name)
	req.Header.Set("X-Function-Status", strconv.Itoa(rec.code))
	req.Header.Set("X-Duration-Seconds", strconv.FormatFloat(time.Since(start).Seconds(), 'f', 6, 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "kiln: async call %s: callback to %s: %v\n", callID, callback, err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		fmt.Fprintf(stderr, "kiln: async call %s: callback to %s answered %d\n", callID, callback, resp.StatusCode)
	}
}

// recorder keeps the function's answer to an async call for the callback.
type recorder struct {
	header      http.Header
	code        int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

// WriteHeader keeps the final status: ReverseProxy passes 1xx ones on too.
func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		r.code, r.wroteHeader = code, true
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
