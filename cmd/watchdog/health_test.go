package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestHealthAndReadyHandlers(t *testing.T) {
	fn := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "function saw "+r.URL.RequestURI())
	})
	tests := []struct {
		name         string
		suppressLock bool
		ready        bool
		removeLock   bool
		full         bool
		readyPath    string
		method       string
		path         string
		wantCode     int
		wantBody     string
	}{
		{name: "health before ready", path: "/_/health", method: "GET", wantCode: 503},
		{name: "health when ready", ready: true, path: "/_/health", method: "GET", wantCode: 200, wantBody: "OK"},
		{name: "health with the lock file deleted", ready: true, removeLock: true, path: "/_/health", method: "GET", wantCode: 503},
		{name: "health with suppress_lock", suppressLock: true, ready: true, path: "/_/health", method: "GET", wantCode: 200, wantBody: "OK"},
		{name: "health POST", ready: true, path: "/_/health", method: "POST", wantCode: 405},
		{name: "ready before ready", path: "/_/ready", method: "GET", wantCode: 503},
		{name: "ready when ready", ready: true, path: "/_/ready", method: "GET", wantCode: 200},
		{name: "ready PUT", ready: true, path: "/_/ready", method: "PUT", wantCode: 405},
		{name: "ready at max_inflight", ready: true, full: true, path: "/_/ready", method: "GET", wantCode: 429},
		{name: "ready with ready_path", ready: true, readyPath: "/healthz?deep=1", path: "/_/ready", method: "GET", wantCode: 200, wantBody: "function saw /healthz?deep=1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &health{lockPath: filepath.Join(t.TempDir(), ".lock"), suppressLock: tc.suppressLock}
			if tc.ready {
				if err := h.markReady(); err != nil {
					t.Fatalf("markReady() = %v, want nil", err)
				}
			}
			if tc.removeLock {
				if err := os.Remove(h.lockPath); err != nil {
					t.Fatal(err)
				}
			}
			limit := &limiter{max: 1}
			if tc.full {
				limit.inflight.Add(1)
			}
			handler := h.healthHandler()
			if tc.path == "/_/ready" {
				handler = h.readyHandler(limit, tc.readyPath, fn)
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
			if rec.Code != tc.wantCode {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, rec.Code, tc.wantCode)
			}
			if tc.wantBody != "" && rec.Body.String() != tc.wantBody {
				t.Errorf("%s %s body = %q, want %q", tc.method, tc.path, rec.Body.String(), tc.wantBody)
			}
		})
	}
}

func TestLockFile(t *testing.T) {
	tests := []struct {
		name         string
		suppressLock bool
		wantLock     bool
	}{
		{"written", false, true},
		{"suppressed", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &health{lockPath: filepath.Join(t.TempDir(), ".lock"), suppressLock: tc.suppressLock}
			if err := h.markReady(); err != nil {
				t.Fatalf("markReady() = %v, want nil", err)
			}
			info, err := os.Stat(h.lockPath)
			if got := err == nil; got != tc.wantLock {
				t.Fatalf("lock file exists = %v, want %v", got, tc.wantLock)
			}
			if tc.wantLock && info.Mode().Perm() != 0o660 {
				t.Errorf("lock file mode = %v, want 0660", info.Mode().Perm())
			}
			if err := h.shutdown(); err != nil {
				t.Fatalf("shutdown() = %v, want nil", err)
			}
			if _, err := os.Stat(h.lockPath); err == nil {
				t.Errorf("lock file exists after shutdown, want it removed")
			}
			// A readiness check that completes after the drain began must
			// not bring the replica back.
			if err := h.markReady(); err != nil {
				t.Fatalf("markReady() after shutdown = %v, want nil", err)
			}
			if h.healthy() {
				t.Errorf("healthy() after shutdown = true, want false")
			}
			if _, err := os.Stat(h.lockPath); err == nil {
				t.Errorf("lock file written after shutdown")
			}
		})
	}
}
