package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// shimHandler exercises the event and context API; it is sync and returns
// promises where a case needs async.
const shimHandler = `'use strict';
module.exports = (event, context, callback) => {
  switch (event.path) {
    case '/echo':
      return { body: event.body, method: event.method, query: event.query, path: event.path, type: event.headers['content-type'] };
    case '/custom':
      context.status(201).headers({ 'X-Custom': 'yes', 'Content-Type': 'application/json' }).succeed({ ok: true });
      return;
    case '/async':
      return new Promise((resolve) => setTimeout(() => resolve('later'), 5));
    case '/callback':
      callback(undefined, 'via callback');
      return;
    case '/fail':
      context.fail(new Error('boom'));
      return;
    case '/fail418':
      context.status(418).fail('teapot');
      return;
    case '/throw':
      throw new Error('thrown');
    case '/reject':
      return Promise.reject(new Error('rejected'));
    case '/status':
      return String(context.status()) + ' ' + JSON.stringify(context.headers());
    case '/buffer':
      return Buffer.from('bytes');
    case '/nothing':
      return undefined;
    case '/array':
      return [1, 2];
    case '/number':
      return 202;
    case '/bool':
      return true;
    case '/nocontent':
      context.status(204).succeed('dropped');
      return;
    case '/raw':
      return 'raw ' + Buffer.isBuffer(event.body) + ' ' + (Buffer.isBuffer(event.body) ? event.body.toString('hex') : '');
  }
  return 'hello';
};
`

type shimCase struct {
	name        string
	method      string
	path        string
	contentType string // "-" sends none
	body        string
	wantStatus  int
	wantBody    string
	wantHeaders map[string]string
}

func TestShim(t *testing.T) {
	base := startShim(t, nil)
	tests := []shimCase{
		{name: "json body", method: "POST", path: "/echo?a=1&b[c]=2&a=3", contentType: "application/json", body: `{"x":[1,2]}`,
			wantStatus: 200, wantBody: `{"body":{"x":[1,2]},"method":"POST","query":{"a":["1","3"],"b":{"c":"2"}},"path":"/echo","type":"application/json"}`,
			wantHeaders: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "text body", method: "PUT", path: "/echo", contentType: "text/plain; charset=utf-8", body: "héllo",
			wantStatus: 200, wantBody: `{"body":"héllo","method":"PUT","query":{},"path":"/echo","type":"text/plain; charset=utf-8"}`},
		{name: "missing content type is text", method: "POST", path: "/echo", contentType: "-", body: "plain",
			wantStatus: 200, wantBody: `{"body":"plain","method":"POST","query":{},"path":"/echo","type":"text/plain"}`},
		{name: "urlencoded", method: "POST", path: "/echo", contentType: "application/x-www-form-urlencoded", body: "a=1&n[m]=x+y",
			wantStatus: 200, wantBody: `{"body":{"a":"1","n":{"m":"x y"}},"method":"POST","query":{},"path":"/echo","type":"application/x-www-form-urlencoded"}`},
		{name: "get without body", method: "GET", path: "/echo", contentType: "-",
			wantStatus: 200, wantBody: `{"body":{},"method":"GET","query":{},"path":"/echo","type":"text/plain"}`},
		{name: "other type not parsed", method: "POST", path: "/echo", contentType: "application/octet-stream", body: "xx",
			wantStatus: 200, wantBody: `{"body":{},"method":"POST","query":{},"path":"/echo","type":"application/octet-stream"}`},
		{name: "bad json", method: "POST", path: "/echo", contentType: "application/json", body: `{"x":`, wantStatus: 400},
		{name: "json scalar refused", method: "POST", path: "/echo", contentType: "application/json", body: `42`, wantStatus: 400},
		{name: "status and headers", method: "GET", path: "/custom", wantStatus: 201, wantBody: `{"ok":true}`,
			wantHeaders: map[string]string{"X-Custom": "yes", "Content-Type": "application/json; charset=utf-8"}},
		{name: "async", method: "GET", path: "/async", wantStatus: 200, wantBody: "later"},
		{name: "callback", method: "GET", path: "/callback", wantStatus: 200, wantBody: "via callback"},
		{name: "fail", method: "GET", path: "/fail", wantStatus: 500, wantBody: "Error: boom"},
		{name: "fail keeps status", method: "GET", path: "/fail418", wantStatus: 418, wantBody: "teapot"},
		{name: "throw", method: "GET", path: "/throw", wantStatus: 500, wantBody: "Error: thrown"},
		{name: "reject", method: "GET", path: "/reject", wantStatus: 500, wantBody: "Error: rejected"},
		{name: "defaults", method: "GET", path: "/status", wantStatus: 200, wantBody: "200 {}"},
		{name: "buffer", method: "GET", path: "/buffer", wantStatus: 200, wantBody: "bytes",
			wantHeaders: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "undefined", method: "GET", path: "/nothing", wantStatus: 200, wantBody: ""},
		{name: "array", method: "GET", path: "/array", wantStatus: 200, wantBody: "[1,2]"},
		{name: "number sets the status (Express 4)", method: "GET", path: "/number", wantStatus: 202, wantBody: "Accepted"},
		{name: "boolean as JSON", method: "GET", path: "/bool", wantStatus: 200, wantBody: "true",
			wantHeaders: map[string]string{"Content-Type": "application/json; charset=utf-8"}},
		{name: "204 has no body", method: "GET", path: "/nocontent", wantStatus: 204, wantBody: ""},
		{name: "options routed", method: "OPTIONS", path: "/", wantStatus: 200, wantBody: "hello"},
		{name: "head answered", method: "HEAD", path: "/", wantStatus: 200, wantBody: ""},
		{name: "other methods not routed (Express 4)", method: "PROPFIND", path: "/x", wantStatus: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, base) })
	}
}

func TestShimLimits(t *testing.T) {
	big := `{"s":"` + strings.Repeat("x", 200) + `"}`
	tests := []struct {
		name string
		env  []string
		tc   shimCase
	}{
		{"json over MAX_JSON_SIZE", []string{"MAX_JSON_SIZE=100"},
			shimCase{method: "POST", path: "/echo", contentType: "application/json", body: big, wantStatus: 413}},
		{"json under MAX_JSON_SIZE", []string{"MAX_JSON_SIZE=1kb"},
			shimCase{method: "POST", path: "/nothing", contentType: "application/json", body: big, wantStatus: 200}},
		{"RAW_BODY gives a Buffer", []string{"RAW_BODY=true"},
			shimCase{method: "POST", path: "/raw", contentType: "application/json", body: "{}", wantStatus: 200, wantBody: "raw true 7b7d"}},
		{"RAW_BODY over MAX_RAW_SIZE", []string{"RAW_BODY=true", "MAX_RAW_SIZE=10b"},
			shimCase{method: "POST", path: "/raw", contentType: "text/plain", body: big, wantStatus: 413}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.tc.check(t, startShim(t, tc.env))
		})
	}
}

func (tc shimCase) check(t *testing.T, base string) {
	t.Helper()
	req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
	if err != nil {
		t.Fatal(err)
	}
	if tc.contentType != "-" && tc.contentType != "" {
		req.Header.Set("Content-Type", tc.contentType)
	}
	if tc.body == "" {
		req.Body = nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != tc.wantStatus {
		t.Errorf("%s %s status = %d, want %d (body %q)", tc.method, tc.path, resp.StatusCode, tc.wantStatus, body)
	}
	if tc.wantBody != "" || tc.wantStatus < 400 {
		if string(body) != tc.wantBody {
			t.Errorf("%s %s body = %q, want %q", tc.method, tc.path, body, tc.wantBody)
		}
	}
	for k, v := range tc.wantHeaders {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s %s header %s = %q, want %q", tc.method, tc.path, k, got, v)
		}
	}
}

// startShim runs shim/index.js with the host's node on a free port, with
// shimHandler as the function, and returns its base URL.
func startShim(t *testing.T, env []string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH")
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "index.js"), string(serverJS))
	write(t, filepath.Join(dir, "function", "handler.js"), shimHandler)
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "index.js")
	cmd.Dir = dir
	cmd.Env = append([]string{"http_port=" + port, "PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	addr := "127.0.0.1:" + port
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the shim did not listen on %s within 10s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
