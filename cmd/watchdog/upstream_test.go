package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// newCountingServer serves handler and counts the connections it accepts.
func newCountingServer(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func get(t *testing.T, ctx context.Context, c *upstreamClient, url string, header http.Header) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, _, err := c.roundTrip(ctx, req, func() io.ReadCloser { return http.NoBody })
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

func TestUpstreamClientReusesConnections(t *testing.T) {
	srv, conns := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.URL.Path)
	})
	c := newUpstreamClient(srv.Listener.Addr().String())
	defer c.closeIdle()
	for i := range 3 {
		_, body, err := get(t, context.Background(), c, srv.URL+"/x", nil)
		if err != nil || body != "hello /x" {
			t.Fatalf("request %d = %q, %v, want %q, nil", i, body, err, "hello /x")
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("connections = %d, want 1", got)
	}
}

func TestUpstreamClientDropsConnectionsTheServerClosed(t *testing.T) {
	srv, conns := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	c := newUpstreamClient(srv.Listener.Addr().String())
	defer c.closeIdle()
	tests := []struct {
		name  string
		pause time.Duration // between the close and the next request
	}{
		{"after the watcher noticed", 100 * time.Millisecond},
		{"at once", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := get(t, context.Background(), c, srv.URL, nil); err != nil {
				t.Fatalf("first request: %v", err)
			}
			srv.CloseClientConnections()
			time.Sleep(tc.pause)
			if _, body, err := get(t, context.Background(), c, srv.URL, nil); err != nil || body != "ok" {
				t.Fatalf("request after close = %q, %v, want %q, nil", body, err, "ok")
			}
		})
	}
	if got := conns.Load(); got < 3 {
		t.Errorf("connections = %d, want at least 3", got)
	}
}

func TestUpstreamClientContextInterruptsBody(t *testing.T) {
	srv, _ := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "start")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	c := newUpstreamClient(srv.Listener.Addr().String())
	defer c.closeIdle()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := get(t, ctx, c, srv.URL, nil)
	if err == nil {
		t.Fatalf("get() error = nil, want a timeout")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("get() took %v, want about 200ms", d)
	}
}

func TestUpstreamClientEarlyResponse(t *testing.T) {
	srv, _ := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too big", http.StatusRequestEntityTooLarge)
	})
	c := newUpstreamClient(srv.Listener.Addr().String())
	defer c.closeIdle()
	// A body that never ends: the client must still hand back the answer.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		for {
			if _, err := pw.Write([]byte(strings.Repeat("x", 1024))); err != nil {
				return
			}
		}
	}()
	req, err := http.NewRequest(http.MethodPost, srv.URL, pr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, _, err := c.roundTrip(ctx, req, nil)
	if err != nil {
		t.Fatalf("roundTrip() error = %v, want nil", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want %d", resp.StatusCode, http.StatusRequestEntityTooLarge)
	}
	if _, body, err := get(t, ctx, c, srv.URL, nil); err != nil || !strings.Contains(body, "too big") {
		t.Errorf("next request = %q, %v, want the server's answer", body, err)
	}
}

func TestUpstreamClientSkipsInterimResponses(t *testing.T) {
	srv, _ := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // makes the server send 100 Continue
		_, _ = w.Write(body)
	})
	c := newUpstreamClient(srv.Listener.Addr().String())
	defer c.closeIdle()
	req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Expect", "100-continue")
	resp, _, err := c.roundTrip(context.Background(), req, nil)
	if err != nil {
		t.Fatalf("roundTrip() error = %v, want nil", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(body) != "payload" {
		t.Errorf("response = %d %q, want 200 %q", resp.StatusCode, body, "payload")
	}
}

func TestUpstreamClientConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := newUpstreamClient(addr)
	_, _, err = get(t, context.Background(), c, "http://"+addr+"/", nil)
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("get() error = %v, want a *net.OpError", err)
	}
}
