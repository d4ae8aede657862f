// Command upstream is the function server the watchdog's tests proxy to.
// It is built by TestMain; files under testdata are not part of the module's
// packages.
//
// Environment: UPSTREAM_PORT (required), UPSTREAM_DELAY_MS (wait before
// listening, to prove the watchdog waits for it), UPSTREAM_EXIT_AFTER_MS
// (exit with status 3 after that long, to play a crashing function).
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	port := os.Getenv("UPSTREAM_PORT")
	if port == "" {
		fmt.Fprintln(os.Stderr, "upstream: UPSTREAM_PORT is not set")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go exitWithParent()
	if ms := envInt("UPSTREAM_EXIT_AFTER_MS"); ms > 0 {
		time.AfterFunc(time.Duration(ms)*time.Millisecond, func() {
			fmt.Println("upstream: exiting on purpose")
			os.Exit(3)
		})
	}
	if ms := envInt("UPSTREAM_DELAY_MS"); ms > 0 {
		time.Sleep(time.Duration(ms) * time.Millisecond)
	}

	srv := &http.Server{Handler: routes(), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintf(os.Stderr, "upstream: listening: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("upstream: listening on %s\n", ln.Addr())
	fmt.Fprintln(os.Stderr, "upstream: a line on stderr")
	go func() { _ = srv.Serve(ln) }()

	<-ctx.Done()
	fmt.Println("upstream: SIGTERM, finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(os.Stderr, "upstream: shutdown: %v\n", err)
		os.Exit(1)
	}
	fmt.Println("upstream: stopped")
}

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Method", r.Method)
		h.Set("X-Path", r.URL.Path)
		h.Set("X-Query", r.URL.RawQuery)
		h.Set("X-Host", r.Host)
		h.Set("X-Echo", r.Header.Get("X-Echo"))
		h.Set("X-Content-Length", strconv.FormatInt(r.ContentLength, 10))
		h.Set("X-User-Agent", r.Header.Get("User-Agent"))
		if len(r.TransferEncoding) > 0 {
			h.Set("X-Transfer-Encoding", r.TransferEncoding[0])
		}
		h.Add("Set-Cookie", "a=1")
		h.Add("Set-Cookie", "b=2")
		if r.URL.Query().Has("duplex") {
			// Answer before reading the body, then echo it as it comes.
			rc := http.NewResponseController(w)
			_ = rc.EnableFullDuplex()
			w.WriteHeader(http.StatusOK)
			_ = rc.Flush()
			buf := make([]byte, 1024)
			for {
				n, err := r.Body.Read(buf)
				if n > 0 {
					_, _ = w.Write(buf[:n])
					_ = rc.Flush()
				}
				if err != nil {
					return
				}
			}
		}
		_, _ = io.Copy(w, r.Body)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			fmt.Fprintf(w, "slept %d", ms)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
		fmt.Fprintf(w, "status %d", code)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/echo", http.StatusFound)
	})
	// The watchdog must never call "/" to decide readiness: a function's
	// root may have side effects. A call here shows in the logs.
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("upstream: root called")
		fmt.Fprint(w, "root")
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "healthy")
	})
	// /sse sends one event at once and the next only when the caller
	// leaves or after 10s, so a caller that sees the first event quickly
	// knows the watchdog did not buffer the stream.
	mux.HandleFunc("/sse", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			fmt.Fprint(w, "data: last\n\n")
		}
	})
	// /upgrade switches to a raw echo protocol, as a WebSocket server
	// would switch to frames.
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want Upgrade: websocket", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprint(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := brw.Read(buf)
			if n > 0 {
				if _, err := conn.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	return mux
}

// exitWithParent ends this process when the watchdog that started it is
// gone, so that a test that had to kill the watchdog leaves nothing behind.
func exitWithParent() {
	ppid := os.Getppid()
	for range time.Tick(200 * time.Millisecond) {
		if os.Getppid() != ppid {
			os.Exit(0)
		}
	}
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}
