package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// lockFilePath is where exec probes (`cat /tmp/.lock`) and -run-healthcheck
// look; TMPDIR moves it, as it does for of-watchdog.
func lockFilePath() string {
	return filepath.Join(os.TempDir(), ".lock")
}

// health is the watchdog's readiness: a flag for this process plus the lock
// file that exec probes see.
type health struct {
	lockPath     string
	suppressLock bool
	ready        atomic.Bool

	mu      sync.Mutex // orders markReady against shutdown
	stopped bool
}

// markReady writes the lock file, then raises the flag, so that an exec
// probe never sees ready before an HTTP probe does.
func (h *health) markReady() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		// A readiness probe that answered just as the drain began must
		// not put the replica back in service.
		return nil
	}
	if !h.suppressLock {
		if err := os.WriteFile(h.lockPath, nil, 0o660); err != nil {
			return fmt.Errorf("writing lock file %s (set suppress_lock=true if %s is not writable): %w",
				h.lockPath, filepath.Dir(h.lockPath), err)
		}
		// WriteFile's mode is filtered by the umask; probes running as
		// another user of the group must still read the file.
		if err := os.Chmod(h.lockPath, 0o660); err != nil {
			return fmt.Errorf("setting mode of lock file %s: %w", h.lockPath, err)
		}
	}
	h.ready.Store(true)
	return nil
}

// markNotReady lowers the flag and removes the lock file. It is also called
// at start-up, so that a lock left by a previous run in a kept /tmp does not
// report a function that is not up yet.
func (h *health) markNotReady() error {
	h.ready.Store(false)
	if h.suppressLock {
		return nil
	}
	if err := os.Remove(h.lockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing lock file %s: %w", h.lockPath, err)
	}
	return nil
}

// shutdown takes the replica out of service for good.
func (h *health) shutdown() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	return h.markNotReady()
}

// healthy reports the flag and, unless the lock is suppressed, whether the
// lock file still exists: deleting it by hand takes the replica out of
// service, as with of-watchdog. With suppress_lock kiln relies on the flag
// alone, where of-watchdog would stay unhealthy for want of a file.
func (h *health) healthy() bool {
	if !h.ready.Load() {
		return false
	}
	if h.suppressLock {
		return true
	}
	_, err := os.Stat(h.lockPath)
	return err == nil
}

func (h *health) healthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Empty answers but for 200's "OK", as of-watchdog's.
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if !h.healthy() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "OK")
	})
}

// readyHandler answers /_/ready: unhealthy gives 503, a full max_inflight
// gives 429, and with ready_path set the function itself answers, through fn,
// which is not subject to max_inflight.
func (h *health) readyHandler(limit *limiter, readyPath string, fn http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if !h.healthy() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if limit.full() {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if readyPath == "" {
			return
		}
		u, err := url.ParseRequestURI(readyPath)
		if err != nil {
			http.Error(w, fmt.Sprintf("parsing ready_path: %v", err), http.StatusInternalServerError)
			return
		}
		fr := r.Clone(r.Context())
		fr.URL = u
		fr.RequestURI = readyPath
		fn.ServeHTTP(w, fr)
	})
}

// Polling stays fast while most functions come up (a few hundred
// milliseconds: a probe that waited longer would add its wait to every
// start, and a refused loopback connection costs microseconds), then
// backs off, so that a function still starting after seconds is not
// flooded.
const (
	probeFirstInterval = 20 * time.Millisecond
	probeFastFor       = 3 * time.Second
	probeMaxInterval   = 500 * time.Millisecond
	probeTimeout       = 2 * time.Second
)

// waitForUpstream returns once the function's server accepts a TCP
// connection on the upstream's host and port: the process is up, which is
// what /_/health says. It never sends a request: ready_path is /_/ready's,
// as with of-watchdog, and a function's root path may have side effects.
func waitForUpstream(ctx context.Context, upstream *url.URL) error {
	probe := func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", hostPort(upstream))
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	}

	interval := probeFirstInterval
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for upstream %s: %w", upstream.Redacted(), ctx.Err())
		case <-timer.C:
		}
		if probe(ctx) {
			return nil
		}
		timer.Reset(interval)
		if time.Since(start) > probeFastFor {
			interval = min(interval*3/2, probeMaxInterval)
		}
	}
}

// hostPort is the address to dial for u, with the scheme's default port
// when the URL has none.
func hostPort(u *url.URL) string {
	if port := u.Port(); port != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}
