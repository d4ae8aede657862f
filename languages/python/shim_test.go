package python

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// needPython skips a test when the host has no python3.
func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer lays out /home/app as the image has it, with handler as
// function/handler.py, runs index.py with the host's python3 in mode, and
// returns its base URL and its stderr.
func startServer(t *testing.T, mode, handler string, env ...string) (string, *lockedBuffer) {
	t.Helper()
	needPython(t)
	app := t.TempDir()
	write(t, filepath.Join(app, "index.py"), string(serverScript))
	write(t, filepath.Join(app, "function", "__init__.py"), "")
	write(t, filepath.Join(app, "function", "handler.py"), handler)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{"-B", filepath.Join(app, "index.py")}
	if mode != "" {
		args = append(args, mode)
	}
	cmd := exec.Command("python3", args...)
	cmd.Dir = app
	cmd.Env = append(os.Environ(), append([]string{"http_port=" + strconv.Itoa(port), "HOSTNAME=fn-test"}, env...)...)
	stderr := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return url, stderr
		}
		select {
		case <-exited:
			t.Fatalf("index.py %s exited before listening:\n%s", mode, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("index.py %s did not listen on %d within 10s:\n%s", mode, port, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type reply struct {
	status int
	header http.Header
	body   string
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

func do(t *testing.T, method, url, body string, header map[string]string) reply {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

const httpHandler = `import dataclasses, datetime, decimal, json, uuid


@dataclasses.dataclass
class Point:
    x: int
    y: str


class Markup:
    def __html__(self):
        return "<b>x</b>"


def handle(event, context):
    p = event.path
    if p == "/echo":
        return {"statusCode": 200, "body": {
            "method": event.method,
            "body": event.body.decode(),
            "bytes": isinstance(event.body, bytes),
            "ctype": event.headers.get("content-type"),
            "custom": event.headers["X-CUSTOM"],
            "has": "x-custom" in event.headers,
            "a": event.query.get("a"),
            "all": event.query.getlist("a"),
            "missing": event.query.get("zzz", "dflt"),
            "host": context.hostname,
        }}
    if p == "/status":
        return {"statusCode": 201, "body": "made", "headers": {"X-Custom": "yes"}}
    if p == "/pairs":
        return {"body": 7, "headers": [("X-A", "1"), ("X-B", "2")]}
    if p == "/none":
        return None
    if p == "/bytes":
        return {"body": b"abc", "headers": {"Content-Type": "application/octet-stream"}}
    if p == "/body-none":
        return {"body": None}
    if p == "/no-body":
        return {"statusCode": 202}
    if p == "/method":
        return {"body": "seen", "headers": {"X-Method": event.method}}
    if p == "/nocontent":
        return {"statusCode": 204, "body": "ignored"}
    if p == "/notmodified":
        return {"statusCode": 304, "body": "ignored"}
    if p == "/types":
        return {"body": {
            "aware": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
            "naive": datetime.datetime(2024, 1, 2, 3, 4, 5),
            "date": datetime.date(2024, 1, 2),
            "decimal": decimal.Decimal("1.10"),
            "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
            "point": Point(1, "a"),
            "html": Markup(),
        }}
    if p == "/headers":
        q = event.query.get("q", "")
        h = event.headers
        return {"body": {"items": list(h.items()), "get": h.get(q), "list": h.getlist(q), "has": q.upper() in h, "len": len(h)}}
    if p == "/str":
        return "plain"
    if p == "/inject":
        return {"body": "x", "headers": {"X-Bad": "a\r\nX-Injected: 1"}}
    if p == "/inject-name":
        return {"body": "x", "headers": [("X-Bad\nX-Injected", "1")]}
    if p == "/snow":
        return {"body": "x", "headers": {"X-Snow": "\u2603"}}
    if p == "/status-none":
        return {"statusCode": None, "body": "default"}
    if p == "/list-value":
        return {"body": "x", "headers": {"Set-Cookie": ["a=1", "b=2"]}}
    if p == "/query":
        q = event.query
        try:
            q["z"] = "1"
            frozen = False
        except TypeError:
            frozen = True
        return {"body": {
            "q": q, "dict": isinstance(q, dict), "keys": list(q), "len": len(q), "frozen": frozen,
            "get": q.get("a", type=int), "bad": q.get("b", "dflt", type=int), "missing": q.get("zz", type=int),
            "list": q.getlist("a", type=int), "all": q.getlist("a"),
            "flat": q.to_dict(), "lists": q.to_dict(flat=False),
        }}
    if p == "/boom":
        raise RuntimeError("secret detail")
    return {"body": "path " + p}
`

func TestHTTPServer(t *testing.T) {
	url, logs := startServer(t, "http", httpHandler)
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		wantStatus               int
		wantBody                 string
		wantHeader               map[string]string
	}{
		{name: "json body, headers, multi-value query", method: "POST", path: "/echo?a=1&a=2", body: `{"x":1}`,
			header: map[string]string{"Content-Type": "application/json", "X-Custom": "c"}, wantStatus: 200,
			wantBody:   `{"a":"1","all":["1","2"],"body":"{\"x\":1}","bytes":true,"ctype":"application/json","custom":"c","has":true,"host":"fn-test","method":"POST","missing":"dflt"}` + "\n",
			wantHeader: map[string]string{"Content-Type": "application/json"}},
		{name: "status and header", method: "GET", path: "/status", wantStatus: 201, wantBody: "made",
			wantHeader: map[string]string{"X-Custom": "yes", "Content-Type": "text/html; charset=utf-8"}},
		{name: "headers as pairs, body str()'d", method: "PUT", path: "/pairs", body: "x", wantStatus: 200, wantBody: "7",
			wantHeader: map[string]string{"X-A": "1", "X-B": "2"}},
		{name: "None is an empty 200", method: "DELETE", path: "/none", wantStatus: 200, wantBody: ""},
		{name: "bytes are str()'d, as upstream", method: "PATCH", path: "/bytes", wantStatus: 200, wantBody: "b'abc'",
			wantHeader: map[string]string{"Content-Type": "application/octet-stream"}},
		{name: "body None is str()'d", method: "GET", path: "/body-none", wantStatus: 200, wantBody: "None"},
		{name: "no body key is empty", method: "GET", path: "/no-body", wantStatus: 202, wantBody: ""},
		{name: "dates, decimals, UUIDs, dataclasses as Flask's jsonify", method: "GET", path: "/types", wantStatus: 200,
			wantBody: `{"aware":"Tue, 02 Jan 2024 01:04:05 GMT","date":"Tue, 02 Jan 2024 00:00:00 GMT","decimal":"1.10","html":"<b>x</b>",` +
				`"naive":"Tue, 02 Jan 2024 03:04:05 GMT","point":{"x":1,"y":"a"},"uuid":"12345678-1234-5678-1234-567812345678"}` + "\n",
			wantHeader: map[string]string{"Content-Type": "application/json"}},
		{name: "other values as Flask takes them", method: "GET", path: "/str", wantStatus: 200, wantBody: "plain"},
		{name: "percent-decoded path", method: "GET", path: "/a%20b/c", wantStatus: 200, wantBody: "path /a b/c"},
		{name: "exception is a 500 without details", method: "GET", path: "/boom", wantStatus: 500, wantBody: "Internal Server Error\n"},
		{name: "method not routed", method: "TRACE", path: "/", wantStatus: 405},
		{name: "HEAD without a body", method: "HEAD", path: "/status", wantStatus: 201, wantBody: ""},
		{name: "HEAD reaches the handler as HEAD, with GET's length", method: "HEAD", path: "/method", wantStatus: 200, wantBody: "",
			wantHeader: map[string]string{"X-Method": "HEAD", "Content-Length": "4"}},
		{name: "204 has no length", method: "GET", path: "/nocontent", wantStatus: 204, wantBody: "",
			wantHeader: map[string]string{"Content-Length": ""}},
		{name: "CR LF in a header value is a 500, the header unsent", method: "GET", path: "/inject", wantStatus: 500,
			wantBody: "Internal Server Error\n", wantHeader: map[string]string{"X-Bad": "", "X-Injected": ""}},
		{name: "LF in a header name is a 500, the header unsent", method: "GET", path: "/inject-name", wantStatus: 500,
			wantBody: "Internal Server Error\n", wantHeader: map[string]string{"X-Bad": "", "X-Injected": ""}},
		{name: "header value not Latin-1 is a 500, as under waitress", method: "GET", path: "/snow", wantStatus: 500,
			wantBody: "Internal Server Error\n", wantHeader: map[string]string{"X-Snow": ""}},
		{name: "statusCode None is 200", method: "GET", path: "/status-none", wantStatus: 200, wantBody: "default"},
		{name: "list header value str()'d, as upstream's format_headers", method: "GET", path: "/list-value", wantStatus: 200,
			wantBody: "x", wantHeader: map[string]string{"Set-Cookie": "['a=1', 'b=2']"}},
		{name: "query is a MultiDict: a dict of first values", method: "GET", path: "/query?a=1&a=x&a=3&b=", wantStatus: 200,
			wantBody: `{"all":["1","x","3"],"bad":"dflt","dict":true,"flat":{"a":"1","b":""},"frozen":true,"get":1,"keys":["a","b"],` +
				`"len":2,"list":[1,3],"lists":{"a":["1","x","3"],"b":[""]},"missing":null,"q":{"a":"1","b":""}}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, url+tc.path, tc.body, tc.header)
			if r.status != tc.wantStatus {
				t.Fatalf("%s %s = %d %q, want %d", tc.method, tc.path, r.status, r.body, tc.wantStatus)
			}
			if tc.wantStatus != 405 && r.body != tc.wantBody {
				t.Errorf("%s %s body = %q, want %q", tc.method, tc.path, r.body, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s %s header %s = %q, want %q", tc.method, tc.path, k, got, v)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "RuntimeError: secret detail") || !strings.Contains(logs.String(), "Traceback") {
		t.Errorf("server logs = %q, want the handler's traceback", logs)
	}
}

// TestChunkedBody: the watchdog forwards a body of unknown length chunked.
func TestChunkedBody(t *testing.T) {
	url, _ := startServer(t, "http", "def handle(event, context):\n    return {'body': event.body.decode()}\n")
	req, err := http.NewRequest("POST", url+"/", io.MultiReader(strings.NewReader("one "), strings.NewReader("two")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "one two" {
		t.Errorf("chunked POST body echoed = %q, want %q", b, "one two")
	}
}

// rawConn is one keep-alive connection to the server, for requests
// written byte for byte.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t, c, bufio.NewReader(c)}
}

// do sends method and path with the header lines given and reads the
// response and its body.
func (r *rawConn) do(method, path string, lines ...string) (*http.Response, string) {
	r.t.Helper()
	r.send(method, path, lines...)
	return r.read(method, path)
}

// send writes a request without reading its response, so that requests
// can be pipelined.
func (r *rawConn) send(method, path string, lines ...string) {
	r.t.Helper()
	req := method + " " + path + " HTTP/1.1\r\nHost: kiln\r\n" + strings.Join(append(lines, ""), "\r\n") + "\r\n"
	if _, err := io.WriteString(r.c, req); err != nil {
		r.t.Fatalf("writing %s %s: %v", method, path, err)
	}
}

// read reads the response to the next request sent, and its body.
func (r *rawConn) read(method, path string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("reading the response to %s %s: %v", method, path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		r.t.Fatalf("reading the body of %s %s: %v", method, path, err)
	}
	return resp, string(b)
}

// TestServerBodilessKeepAlive: responses that carry no body (HEAD, 204,
// 304) leave nothing on a keep-alive connection for the next request to
// trip on; 204 and 304 have no Content-Length, HEAD has GET's.
func TestServerBodilessKeepAlive(t *testing.T) {
	url, _ := startServer(t, "http", httpHandler)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantLength         []string
	}{
		{"204", "GET", "/nocontent", 204, nil},
		{"304", "GET", "/notmodified", 304, nil},
		{"HEAD", "HEAD", "/status", 201, []string{"4"}},
		{"HEAD of a 204", "HEAD", "/nocontent", 204, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, url)
			resp, body := c.do(tc.method, tc.path)
			if resp.StatusCode != tc.wantStatus || body != "" {
				t.Errorf("%s %s = %d %q, want %d and no body", tc.method, tc.path, resp.StatusCode, body, tc.wantStatus)
			}
			if diff := cmp.Diff(tc.wantLength, resp.Header["Content-Length"]); diff != "" {
				t.Errorf("%s %s Content-Length (-want +got):\n%s", tc.method, tc.path, diff)
			}
			resp, body = c.do("GET", "/after")
			if resp.StatusCode != 200 || body != "path /after" {
				t.Errorf("GET /after on the same connection = %d %q, want 200 %q", resp.StatusCode, body, "path /after")
			}
		})
	}
}

// TestServerBadHeadersKeepAlive: a response whose headers cannot be sent
// is a whole 500, written before anything else, so the connection and the
// requests pipelined behind it go on.
func TestServerBadHeadersKeepAlive(t *testing.T) {
	url, logs := startServer(t, "http", httpHandler)
	tests := []struct {
		name, path, wantLog string
		absent              []string
	}{
		{"CR LF in a value", "/inject", "ValueError: header 'X-Bad':", []string{"X-Bad", "X-Injected"}},
		{"LF in a name", "/inject-name", `ValueError: header 'X-Bad\nX-Injected':`, []string{"X-Bad", "X-Injected"}},
		{"value not Latin-1", "/snow", "UnicodeEncodeError: 'latin-1' codec", []string{"X-Snow"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, url)
			c.send("GET", tc.path)
			c.send("GET", "/after")
			resp, body := c.read("GET", tc.path)
			if resp.StatusCode != 500 || body != "Internal Server Error\n" {
				t.Errorf("GET %s = %d %q, want 500 %q", tc.path, resp.StatusCode, body, "Internal Server Error\n")
			}
			for _, k := range tc.absent {
				if v, ok := resp.Header[k]; ok {
					t.Errorf("GET %s header %s = %q, want none", tc.path, k, v)
				}
			}
			resp, body = c.read("GET", "/after")
			if resp.StatusCode != 200 || body != "path /after" {
				t.Errorf("GET /after pipelined behind %s = %d %q, want 200 %q", tc.path, resp.StatusCode, body, "path /after")
			}
			// stderr reaches the buffer through a pipe, maybe after the reply.
			for deadline := time.Now().Add(2 * time.Second); !strings.Contains(logs.String(), tc.wantLog); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("server logs = %q, want a traceback with %q", logs, tc.wantLog)
				}
			}
		})
	}
}

// TestServerRequestHeaders: event.headers is Flask's request.headers
// under waitress: repeated headers are one entry, their values joined
// with ", " (Cookie too), names title-cased, lookups case-insensitive.
func TestServerRequestHeaders(t *testing.T) {
	url, _ := startServer(t, "http", httpHandler)
	type headers struct {
		Items [][]string `json:"items"`
		Get   *string    `json:"get"`
		List  []string   `json:"list"`
		Has   bool       `json:"has"`
		Len   int        `json:"len"`
	}
	str := func(s string) *string { return &s }
	host := []string{"Host", "kiln"}
	tests := []struct {
		name, query string
		lines       []string
		want        headers
	}{
		{"repeated header joined", "x-dup", []string{"X-Dup: a", "X-Dup: b"},
			headers{Items: [][]string{host, {"X-Dup", "a, b"}}, Get: str("a, b"), List: []string{"a, b"}, Has: true, Len: 2}},
		{"names differing in case are one header", "X-DUP", []string{"x-dup: a", "X-DUP: b"},
			headers{Items: [][]string{host, {"X-Dup", "a, b"}}, Get: str("a, b"), List: []string{"a, b"}, Has: true, Len: 2}},
		{"cookies joined with a comma, as waitress", "cookie", []string{"Cookie: a=1", "cookie: b=2"},
			headers{Items: [][]string{host, {"Cookie", "a=1, b=2"}}, Get: str("a=1, b=2"), List: []string{"a=1, b=2"}, Has: true, Len: 2}},
		{"names title-cased", "content-type", []string{"x-lower-CASE: v", "content-TYPE: text/plain"},
			headers{Items: [][]string{host, {"X-Lower-Case", "v"}, {"Content-Type", "text/plain"}}, Get: str("text/plain"), List: []string{"text/plain"}, Has: true, Len: 3}},
		{"order of first appearance", "x-a", []string{"X-B: 1", "X-A: 2", "X-B: 3"},
			headers{Items: [][]string{host, {"X-B", "1, 3"}, {"X-A", "2"}}, Get: str("2"), List: []string{"2"}, Has: true, Len: 3}},
		{"values trimmed", "x-pad", []string{"X-Pad:  v \t"},
			headers{Items: [][]string{host, {"X-Pad", "v"}}, Get: str("v"), List: []string{"v"}, Has: true, Len: 2}},
		{"missing", "x-none", nil,
			headers{Items: [][]string{host}, List: []string{}, Len: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := dialRaw(t, url).do("GET", "/headers?q="+tc.query, tc.lines...)
			if resp.StatusCode != 200 {
				t.Fatalf("GET /headers = %d %q, want 200", resp.StatusCode, body)
			}
			var got headers
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("GET /headers body %q: %v", body, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("event.headers with %q (-want +got):\n%s", tc.lines, diff)
			}
		})
	}
}

const flaskHandler = `import datetime


def handle(req):
    if req == "tuple":
        return ("created", 201, {"X-Flask": "1"})
    if req == "tuple-headers":
        return ("paired", (("X-T", "1"), ("X-U", "2")))
    if req == "list-headers":
        return ("listed", 202, [("X-L", "3")])
    if req == "date":
        return {"d": datetime.date(2024, 1, 2)}
    if req == "pair":
        return ("teapot", 418)
    if req == "cookies":
        return ("c", 200, {"Set-Cookie": ["a=1", "b=2"]})
    if req == "cookies-json":
        return ({"a": 1}, {"Set-Cookie": ("a=1", "b=2")})
    if req == "pair-list":
        return ("p", [("X-L", ["1", "2"])])
    if req == "inject":
        return ("c", 200, {"X-Bad": "a\r\nX-Injected: 1"})
    if req == "dict":
        return {"b": 2, "a": 1}
    if req == "none":
        return None
    if req == "boom":
        raise ValueError("secret")
    return "got %s %s" % (type(req).__name__, req if isinstance(req, str) else req.decode())
`

func TestFlaskServer(t *testing.T) {
	tests := []struct {
		name       string
		env        []string
		method     string
		body       string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
		wantValues map[string][]string
	}{
		{name: "str body", method: "POST", body: "héllo", wantStatus: 200, wantBody: "got str héllo",
			wantHeader: map[string]string{"Content-Type": "text/html; charset=utf-8"}},
		{name: "empty GET", method: "GET", wantStatus: 200, wantBody: "got str "},
		{name: "RAW_BODY=true gives bytes", env: []string{"RAW_BODY=true"}, method: "POST", body: "raw", wantStatus: 200, wantBody: "got bytes raw"},
		{name: "RAW_BODY=1 gives bytes", env: []string{"RAW_BODY=1"}, method: "POST", body: "raw", wantStatus: 200, wantBody: "got bytes raw"},
		{name: "body, status, headers", method: "POST", body: "tuple", wantStatus: 201, wantBody: "created", wantHeader: map[string]string{"X-Flask": "1"}},
		{name: "body, status", method: "POST", body: "pair", wantStatus: 418, wantBody: "teapot"},
		{name: "body, tuple of header pairs", method: "POST", body: "tuple-headers", wantStatus: 200, wantBody: "paired",
			wantHeader: map[string]string{"X-T": "1", "X-U": "2", "Content-Type": "text/html; charset=utf-8"}},
		{name: "body, status, list of header pairs", method: "POST", body: "list-headers", wantStatus: 202, wantBody: "listed",
			wantHeader: map[string]string{"X-L": "3"}},
		{name: "date in a dict, as jsonify", method: "POST", body: "date", wantStatus: 200, wantBody: `{"d":"Tue, 02 Jan 2024 00:00:00 GMT"}` + "\n"},
		{name: "dict is JSON", method: "POST", body: "dict", wantStatus: 200, wantBody: `{"a":1,"b":2}` + "\n", wantHeader: map[string]string{"Content-Type": "application/json"}},
		{name: "mapping's list value is several headers", method: "POST", body: "cookies", wantStatus: 200, wantBody: "c",
			wantValues: map[string][]string{"Set-Cookie": {"a=1", "b=2"}}},
		{name: "mapping's tuple value is several headers, JSON body too", method: "POST", body: "cookies-json", wantStatus: 200,
			wantBody: `{"a":1}` + "\n", wantValues: map[string][]string{"Set-Cookie": {"a=1", "b=2"}}},
		{name: "pair's list value str()'d, as Flask", method: "POST", body: "pair-list", wantStatus: 200, wantBody: "p",
			wantValues: map[string][]string{"X-L": {"['1', '2']"}}},
		{name: "CR LF in a header value is a 500, the header unsent", method: "POST", body: "inject", wantStatus: 500,
			wantBody: "Internal Server Error\n", wantHeader: map[string]string{"X-Bad": "", "X-Injected": ""}},
		{name: "None is an error, as in Flask", method: "POST", body: "none", wantStatus: 500},
		{name: "exception", method: "POST", body: "boom", wantStatus: 500, wantBody: "Internal Server Error\n"},
		{name: "PUT not routed", method: "PUT", body: "x", wantStatus: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, logs := startServer(t, "flask", flaskHandler, tc.env...)
			r := do(t, tc.method, url+"/any/path?q=1", tc.body, nil)
			if r.status != tc.wantStatus {
				t.Fatalf("%s = %d %q, want %d\nlogs:\n%s", tc.method, r.status, r.body, tc.wantStatus, logs)
			}
			if tc.wantBody != "" && r.body != tc.wantBody {
				t.Errorf("%s body = %q, want %q", tc.method, r.body, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s header %s = %q, want %q", tc.method, k, got, v)
				}
			}
			for k, v := range tc.wantValues {
				if diff := cmp.Diff(v, r.header.Values(k)); diff != "" {
					t.Errorf("%s header %s (-want +got):\n%s", tc.method, k, diff)
				}
			}
		})
	}
}

// TestClassicServer: python3 and python call handle(req) as python3-flask
// does, for the methods of python3-http.
func TestClassicServer(t *testing.T) {
	url, _ := startServer(t, "classic", flaskHandler)
	for _, method := range []string{"GET", "PUT", "POST", "PATCH", "DELETE"} {
		if r := do(t, method, url+"/", "x", nil); r.status != 200 || r.body != "got str x" {
			t.Errorf("%s = %d %q, want 200 %q", method, r.status, r.body, "got str x")
		}
	}
}

// TestConcurrentRequests: a slow request does not hold up another.
func TestConcurrentRequests(t *testing.T) {
	url, _ := startServer(t, "http", "import time\n\ndef handle(event, context):\n    if event.path == '/slow':\n        time.sleep(1.5)\n    return {'body': event.path}\n")
	done := make(chan reply, 1)
	go func() {
		req, _ := http.NewRequest("GET", url+"/slow", nil)
		resp, err := client.Do(req)
		if err != nil {
			done <- reply{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- reply{status: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if r := do(t, "GET", url+"/fast", "", nil); r.body != "/fast" {
		t.Errorf("GET /fast = %q, want /fast", r.body)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("GET /fast took %s while /slow ran, want it served at once", took)
	}
	if r := <-done; r.body != "/slow" {
		t.Errorf("GET /slow = %+v, want /slow", r)
	}
}

func TestServerStartErrors(t *testing.T) {
	needPython(t)
	tests := []struct {
		name, handler, want string
	}{
		{"no handle", "def other():\n    pass\n", "defines no handle function"},
		{"import error", "import no_such_module_kiln\n\ndef handle(req):\n    return req\n", "No module named 'no_such_module_kiln'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := t.TempDir()
			write(t, filepath.Join(app, "index.py"), string(serverScript))
			write(t, filepath.Join(app, "function", "handler.py"), tc.handler)
			cmd := exec.Command("python3", "-B", filepath.Join(app, "index.py"), "flask")
			cmd.Env = append(os.Environ(), "http_port=1")
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("index.py with %s exited 0, want an error", tc.name)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("index.py output = %q, want it to contain %q", out, tc.want)
			}
		})
	}
}

// TestPackagesOnPath: requirements in packages/ are importable, after the
// standard library, and their .pth files are read.
func TestPackagesOnPath(t *testing.T) {
	needPython(t)
	app := t.TempDir()
	write(t, filepath.Join(app, "packages", "kilndep", "__init__.py"), "VALUE = 'from packages'\n")
	write(t, filepath.Join(app, "packages", "json.py"), "raise SystemExit('shadowed the standard library')\n")
	write(t, filepath.Join(app, "packages", "extra.pth"), "extra\n")
	write(t, filepath.Join(app, "packages", "extra", "pthdep.py"), "X = 1\n")
	write(t, filepath.Join(app, "index.py"), string(serverScript))
	write(t, filepath.Join(app, "function", "handler.py"), "import kilndep, pthdep, json\n\ndef handle(event, context):\n    return {'body': {'v': kilndep.VALUE, 'json': json.__file__.startswith('"+app+"')}}\n")
	check := exec.Command("python3", "-B", "-c", `
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("index", "index.py")
index = importlib.util.module_from_spec(spec)
spec.loader.exec_module(index)
h = index.load_handler()
class E: path = "/"
print(json.dumps(index.http_response(h(E(), None)).body.decode()))
`)
	check.Dir = app
	out, err := check.CombinedOutput()
	if err != nil {
		t.Fatalf("loading the handler with packages/: %v\n%s", err, out)
	}
	var body string
	if err := json.Unmarshal(out, &body); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if diff := cmp.Diff(`{"json":false,"v":"from packages"}`+"\n", body); diff != "" {
		t.Errorf("handler result (-want +got):\n%s", diff)
	}
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

// TestAPIFromEnv: a deploy that sends the template's "python index.py"
// gives no mode argument; the image's KILN_PYTHON_API decides.
func TestAPIFromEnv(t *testing.T) {
	url, _ := startServer(t, "", "def handle(req):\n    return 'flask says ' + req\n", "KILN_PYTHON_API=flask")
	resp, err := http.Post(url+"/", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "flask says hi" {
		t.Errorf("POST / = %q, want %q", body, "flask says hi")
	}
	req, _ := http.NewRequest(http.MethodPut, url+"/", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT / status = %d, want 405 as python3-flask routes only GET and POST", resp.StatusCode)
	}
}
