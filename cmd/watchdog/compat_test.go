package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAgainstOpenFaaSWatchdogs is the watchdog section of issue 11 and the
// classic contract, as data: each case's answer is what of-watchdog 0.11.6
// (openfaas/of-watchdog 9bdadb1e) or, for the classic cases, the classic
// watchdog (openfaas/classic-watchdog 23db9142) gave when run beside kiln's
// with the same fprocess and environment. Where kiln answers otherwise on
// purpose, upstream says what they answer, and README.md says why. The
// JWT check's cases are TestJWTAuth's.
func TestAgainstOpenFaaSWatchdogs(t *testing.T) {
	t.Parallel()
	const (
		textPlain = "text/plain; charset=utf-8"
		form      = "application/x-www-form-urlencoded"
	)
	sh := func(script string) string { return "sh -c " + strings.ReplaceAll(script, " ", "${IFS}") }
	tests := []struct {
		name       string
		env        map[string]string
		http       bool // add http mode with the test upstream
		method     string
		path       string
		body       string
		header     map[string]string
		wantExit   int               // > 0: the watchdog stops with this status
		wantCode   int               // else the answer
		wantHeader map[string]string // "" : absent
		wantBody   string
		bodyHas    []string // instead of wantBody
		upstream   string   // of-watchdog's answer, where kiln's differs on purpose
	}{
		// The classic watchdog: no mode.
		{
			name: "classic: output, the caller's Content-Type", env: map[string]string{"fprocess": "cat"},
			body: "hi", header: map[string]string{"Content-Type": form},
			wantCode: 200, wantHeader: map[string]string{"Content-Type": form, "X-Duration-Seconds": "*"}, wantBody: "hi",
		},
		{
			name: "classic: content_type wins", env: map[string]string{"fprocess": sh("echo out; echo err >&2"), "content_type": "text/x"},
			header:   map[string]string{"Content-Type": form},
			wantCode: 200, wantHeader: map[string]string{"Content-Type": "text/x"}, wantBody: "out\nerr\n",
		},
		{
			name: "classic: combine_output=false logs stderr", env: map[string]string{"fprocess": sh("echo out; echo err >&2"), "combine_output": "false"},
			wantCode: 200, wantBody: "out\n",
		},
		{
			name: "classic: non-zero exit", env: map[string]string{"fprocess": sh("echo out; echo err >&2; exit 3")},
			wantCode: 500, wantHeader: map[string]string{"Content-Type": textPlain, "X-Duration-Seconds": ""}, wantBody: "exit status 3\nout\nerr\n",
		},
		{
			name: "classic: exec_timeout", env: map[string]string{"fprocess": "sleep 10", "exec_timeout": "1"},
			wantCode: 408, wantHeader: map[string]string{"Content-Type": textPlain}, wantBody: "Killed process.\n",
		},
		{
			name: "classic: fprocess missing", env: map[string]string{"fprocess": "/nonexistent"},
			wantCode: 500, wantBody: "fork/exec /nonexistent: no such file or directory\n",
		},
		{
			name: "classic: Http_ variables", env: map[string]string{"fprocess": "env"}, path: "/p/q?a=1", body: "hi",
			header:   map[string]string{"X-Foo": "a"},
			wantCode: 200,
			bodyHas: []string{"\nHttp_X_Foo=a\n", "\nHttp_Method=POST\n", "\nHttp_ContentLength=2\n", "\nHttp_Content_Length=2\n",
				"\nHttp_Query=a=1\n", "\nHttp_Path=/p/q\n", "\nHttp_Host=127.0.0.1:"},
		},
		{
			name: "classic: marshal_request", env: map[string]string{"fprocess": "cat", "marshal_request": "true"}, body: "hi",
			header: map[string]string{"X-Foo": "a"}, wantCode: 200,
			bodyHas: []string{`{"header":{`, `"X-Foo":["a"]`, `"body":{"raw":"aGk="}}`},
		},
		{
			name: "classic: HEAD", env: map[string]string{"fprocess": "cat"}, method: http.MethodHead,
			wantCode: 405, wantBody: "",
		},
		{
			name: "classic: OPTIONS", env: map[string]string{"fprocess": "cat"}, method: http.MethodOptions,
			wantCode: 405, wantBody: "",
		},
		{
			name: "classic: /_/ready is the function's", env: map[string]string{"fprocess": "cat"}, method: http.MethodGet, path: "/_/ready",
			wantCode: 200, wantHeader: map[string]string{"X-Duration-Seconds": "*"}, wantBody: "",
		},

		// of-watchdog's modes.
		{
			name: "serializing: non-zero exit", env: map[string]string{"mode": "serializing", "fprocess": sh("exit 3")},
			wantCode: 500, wantHeader: map[string]string{"Content-Type": "application/octet-stream", "X-Duration-Seconds": "*"}, wantBody: "exit status 3",
		},
		{
			name: "serializing: exec_timeout", env: map[string]string{"mode": "serializing", "fprocess": "sleep 10", "exec_timeout": "1s"},
			wantCode: 504, wantHeader: map[string]string{"X-OpenFaaS-Internal": "of-watchdog", "X-Duration-Seconds": "*"},
			wantBody: "function did not finish within exec_timeout of 1s\n",
			upstream: `500 "signal: killed", as for a crash, without X-OpenFaaS-Internal`,
		},
		{
			name: "suppress_lock: /_/health", env: map[string]string{"mode": "serializing", "fprocess": "cat", "suppress_lock": "true"},
			method: http.MethodGet, path: "/_/health",
			wantCode: 200, wantBody: "OK",
			upstream: "503 for ever: it still looks for the lock file it was told not to write",
		},
		{
			name: "ready_path: /_/health does not ask it", http: true, env: map[string]string{"ready_path": "/status?code=503"},
			method: http.MethodGet, path: "/_/health",
			wantCode: 200, wantBody: "OK",
		},
		{
			name: "ready_path: /_/ready answers with the function's answer", http: true, env: map[string]string{"ready_path": "/status?code=503"},
			method: http.MethodGet, path: "/_/ready",
			wantCode: 503, wantHeader: map[string]string{"X-Duration-Seconds": "*"}, wantBody: "status 503",
		},
		{
			name: "health: not GET", env: map[string]string{"mode": "serializing", "fprocess": "cat"}, path: "/_/health",
			wantCode: 405, wantBody: "",
		},
		{
			name: "static: static_path missing", env: map[string]string{"mode": "static", "static_path": "/nonexistent"},
			wantExit: 1,
			upstream: `starts, healthy, and answers every path 404 "404 page not found"`,
		},
		{
			name: "configuration error: no fprocess", env: map[string]string{"mode": "serializing"},
			wantExit: 1,
		},
		{
			name: "configuration error: write_timeout 0", env: map[string]string{"mode": "serializing", "fprocess": "cat", "write_timeout": "0"},
			wantExit: 1,
		},
		{
			name: "configuration error: unknown mode", env: map[string]string{"mode": "bogus", "fprocess": "cat"},
			wantExit: 1,
			upstream: "panics (exit 2, a goroutine dump)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := tc.env
			if tc.http {
				env, _ = httpEnv(t, tc.env)
			}
			if tc.upstream != "" {
				t.Logf("of-watchdog: %s", tc.upstream)
			}
			p := startWatchdog(t, env)
			if tc.wantExit > 0 {
				if code := p.wait(10 * time.Second); code != tc.wantExit {
					t.Errorf("exit status = %d, want %d", code, tc.wantExit)
				}
				if out := strings.TrimSpace(p.out.String()); strings.Contains(out, "\n") {
					t.Errorf("output = %q, want one line", out)
				}
				return
			}
			p.waitHealthy()
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			path := tc.path
			if path == "" {
				path = "/"
			}
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := newRequest(t, method, p.base+path, nil)
			if body != nil {
				req = newRequest(t, method, p.base+path, body)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, got := do(t, req)
			if resp.StatusCode != tc.wantCode {
				t.Errorf("status = %d (%q), want %d", resp.StatusCode, got, tc.wantCode)
			}
			for k, v := range tc.wantHeader {
				switch have, ok := resp.Header[http.CanonicalHeaderKey(k)]; {
				case v == "" && ok:
					t.Errorf("%s = %q, want none", k, have)
				case v == "*" && !ok:
					t.Errorf("%s missing", k)
				case v != "" && v != "*" && resp.Header.Get(k) != v:
					t.Errorf("%s = %q, want %q", k, resp.Header.Get(k), v)
				}
			}
			if tc.bodyHas == nil && got != tc.wantBody {
				t.Errorf("body = %q, want %q", got, tc.wantBody)
			}
			for _, s := range tc.bodyHas {
				if !strings.Contains(got, s) {
					t.Errorf("body = %q, want it to contain %q", got, s)
				}
			}
		})
	}
}
