package node

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
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
  if (event.headers['x-echo-path']) {
    return event.path + ' ' + JSON.stringify(event.query);
  }
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
    case '/failnull':
      context.headers({ 'X-Failed': 'yes' }).fail(null);
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
    case '/body':
      return { body: event.body };
    case '/query':
      return event.query;
    case '/badstatus':
      context.status(isNaN(Number(event.query.s)) ? event.query.s : Number(event.query.s)).headers({ 'X-Before': 'set' }).succeed('x');
      return;
    case '/ctarray':
      context.headers({ 'X-Before': 'set', 'Content-Type': ['text/plain', 'x'] }).succeed('x');
      return;
    case '/uint8':
      return new Uint8Array([104, 105]);
    case '/reset':
      context.status(205).succeed('dropped');
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
	headers     map[string]string
	body        string
	wantStatus  int
	wantBody    string
	wantHeaders map[string]string
	wantIn      string // in the body, for an error page
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
		{name: "fail(null) keeps the headers", method: "GET", path: "/failnull", wantStatus: 500,
			wantHeaders: map[string]string{"X-Failed": "yes"}},

		// Charsets, as iconv-lite decodes them for body-parser.
		{name: "iso-8859-1 text", method: "POST", path: "/body", contentType: "text/plain; charset=iso-8859-1", body: "caf\xe9 \x80",
			wantStatus: 200, wantBody: "{\"body\":\"café \u0080\"}"},
		{name: "quoted upper-case ISO_8859-1 text", method: "POST", path: "/body", contentType: `text/plain; charset="ISO_8859-1"`, body: "caf\xe9",
			wantStatus: 200, wantBody: `{"body":"café"}`},
		{name: "latin1 text", method: "POST", path: "/body", contentType: "text/plain; charset=Latin1", body: "caf\xe9",
			wantStatus: 200, wantBody: `{"body":"café"}`},
		{name: "windows-1252 text", method: "POST", path: "/body", contentType: "text/plain; charset=windows-1252", body: "\x93caf\xe9\x94 \x80 \x81",
			wantStatus: 200, wantBody: "{\"body\":\"“café” € \ufffd\"}"},
		{name: "cp1252 text", method: "POST", path: "/body", contentType: "text/plain; charset=CP1252", body: "\x92",
			wantStatus: 200, wantBody: `{"body":"’"}`},
		{name: "us-ascii text", method: "POST", path: "/body", contentType: "text/plain; charset=us-ascii", body: "caf\xe9",
			wantStatus: 200, wantBody: "{\"body\":\"caf\ufffd\"}"},
		{name: "utf8 alias", method: "POST", path: "/body", contentType: "text/plain; charset=UTF8", body: "héllo",
			wantStatus: 200, wantBody: `{"body":"héllo"}`},
		{name: "ucs-2 text", method: "POST", path: "/body", contentType: "text/plain; charset=ucs-2", body: "h\x00i\x00",
			wantStatus: 200, wantBody: `{"body":"hi"}`},
		{name: "koi8-r text", method: "POST", path: "/body", contentType: "text/plain; charset=koi8-r", body: "\xc1\xc2",
			wantStatus: 200, wantBody: `{"body":"аб"}`},
		{name: "utf-8 BOM dropped", method: "POST", path: "/body", contentType: "application/json", body: "\ufeff{\"x\":1}",
			wantStatus: 200, wantBody: `{"body":{"x":1}}`},
		{name: "unknown charset", method: "POST", path: "/body", contentType: "text/plain; charset=bogus", body: "x", wantStatus: 415},
		{name: "urlencoded takes only utf-8", method: "POST", path: "/body", contentType: "application/x-www-form-urlencoded; charset=latin1", body: "a=1", wantStatus: 415},
		{name: "utf-16 big-endian BOM", method: "POST", path: "/body", contentType: "text/plain; charset=utf-16", body: "\xfe\xff\x00h\x00i",
			wantStatus: 200, wantBody: `{"body":"hi"}`},
		{name: "utf-16 little-endian BOM", method: "POST", path: "/body", contentType: "text/plain; charset=UTF16", body: "\xff\xfeh\x00i\x00",
			wantStatus: 200, wantBody: `{"body":"hi"}`},
		{name: "utf-16 without BOM read as big-endian ASCII", method: "POST", path: "/body", contentType: "text/plain; charset=utf-16", body: "\x00h\x00i",
			wantStatus: 200, wantBody: `{"body":"hi"}`},
		{name: "utf-16 without BOM undecided is little-endian", method: "POST", path: "/body", contentType: "text/plain; charset=utf-16", body: "\x00\x00\x00hA\x00",
			wantStatus: 200, wantBody: `{"body":"\u0000栀A"}`},
		{name: "utf-16 guessed from 32 units (Express 4)", method: "POST", path: "/body", contentType: "text/plain; charset=utf-16", body: utf16Guess,
			wantStatus: 200, wantBody: `{"body":"` + strings.Repeat("h", 20) + strings.Repeat("愀", 30) + `"}`},
		{name: "utf-16be keeps lone surrogates, drops an odd byte", method: "POST", path: "/body", contentType: "text/plain; charset=utf-16be", body: "\xfe\xff\xde\x00\x00h\xd8\x3d\x00",
			wantStatus: 200, wantBody: `{"body":"\ude00h\ud83d"}`},
		{name: "utf-16le odd byte dropped", method: "POST", path: "/body", contentType: "text/plain; charset=utf-16le", body: "h\x00i",
			wantStatus: 200, wantBody: `{"body":"h"}`},
		{name: "utf-16 json", method: "POST", path: "/body", contentType: "application/json; charset=utf-16", body: "\xfe\xff\x00{\x00}",
			wantStatus: 200, wantBody: `{"body":{}}`},

		// urlencoded bodies, as body-parser's extended parser limits them.
		{name: "urlencoded 1000 parameters", method: "POST", path: "/nothing", contentType: "application/x-www-form-urlencoded", body: formParams(1000), wantStatus: 200},
		{name: "urlencoded over 1000 parameters", method: "POST", path: "/nothing", contentType: "application/x-www-form-urlencoded", body: formParams(1000) + "&",
			wantStatus: 413, wantIn: "PayloadTooLargeError: too many parameters"},
		{name: "urlencoded 32 levels", method: "POST", path: "/nothing", contentType: "application/x-www-form-urlencoded", body: "a" + strings.Repeat("[b]", 32) + "=1", wantStatus: 200},
		{name: "urlencoded over 32 levels", method: "POST", path: "/nothing", contentType: "application/x-www-form-urlencoded", body: "a" + strings.Repeat("[]", 33) + "=1",
			wantStatus: 400, wantIn: "BadRequestError: The input exceeded the depth"},
		{name: "urlencoded bad escape", method: "POST", path: "/body", contentType: "application/x-www-form-urlencoded", body: "d=%zz+e&e%zz+f=1",
			wantStatus: 200, wantBody: `{"body":{"d":"%zz e","e%zz f":"1"}}`},
		{name: "query bad escape", method: "GET", path: "/query?d=%zz+e", wantStatus: 200, wantBody: `{"d":"%zz e"}`},
		{name: "Uint8Array as JSON (Express 4)", method: "GET", path: "/uint8", wantStatus: 200, wantBody: `{"0":104,"1":105}`},
		{name: "205 has no body", method: "GET", path: "/reset", wantStatus: 205, wantBody: "",
			wantHeaders: map[string]string{"Content-Length": "0", "Content-Type": "text/html; charset=utf-8"}},

		// Index keys, as qs parses them: arrays up to index 20, compacted in index order.
		{name: "query index keys out of order", method: "GET", path: "/query?a[1]=x&a[0]=y", wantStatus: 200, wantBody: `{"a":["y","x"]}`},
		{name: "query sparse index keys", method: "GET", path: "/query?a[3]=x&a[10]=y", wantStatus: 200, wantBody: `{"a":["x","y"]}`},
		{name: "query single index key", method: "GET", path: "/query?a[0]=x", wantStatus: 200, wantBody: `{"a":["x"]}`},
		{name: "query empty brackets", method: "GET", path: "/query?a[]=x&a[]=y", wantStatus: 200, wantBody: `{"a":["x","y"]}`},
		{name: "query index keys of objects", method: "GET", path: "/query?a[1][b]=x&a[0][b]=y", wantStatus: 200, wantBody: `{"a":[{"b":"y"},{"b":"x"}]}`},
		{name: "query index under the limit", method: "GET", path: "/query?a[0]=y&a[999]=x", wantStatus: 200, wantBody: `{"a":["y","x"]}`},
		{name: "query index at the limit", method: "GET", path: "/query?a[0]=y&a[1000]=x", wantStatus: 200, wantBody: `{"a":{"0":"y","1000":"x"}}`},
		{name: "urlencoded index keys up to 100", method: "POST", path: "/body", contentType: "application/x-www-form-urlencoded", body: "a[50]=x&a[0]=y",
			wantStatus: 200, wantBody: `{"body":{"a":["y","x"]}}`},

		// Content-Encoding, as body-parser inflates it.
		{name: "gzip json", method: "POST", path: "/body", contentType: "application/json", headers: map[string]string{"Content-Encoding": "gzip"}, body: gzipped(t, `{"x":1}`),
			wantStatus: 200, wantBody: `{"body":{"x":1}}`},
		{name: "deflate text", method: "POST", path: "/body", contentType: "text/plain", headers: map[string]string{"Content-Encoding": "Deflate"}, body: deflated(t, "hello"),
			wantStatus: 200, wantBody: `{"body":"hello"}`},
		{name: "gzip urlencoded", method: "POST", path: "/body", contentType: "application/x-www-form-urlencoded", headers: map[string]string{"Content-Encoding": "gzip"}, body: gzipped(t, "a=1"),
			wantStatus: 200, wantBody: `{"body":{"a":"1"}}`},
		{name: "identity", method: "POST", path: "/body", contentType: "text/plain", headers: map[string]string{"Content-Encoding": "identity"}, body: "hello",
			wantStatus: 200, wantBody: `{"body":"hello"}`},
		{name: "corrupt gzip", method: "POST", path: "/body", contentType: "text/plain", headers: map[string]string{"Content-Encoding": "gzip"}, body: "not gzip", wantStatus: 400},
		{name: "unknown content encoding", method: "POST", path: "/body", contentType: "text/plain", headers: map[string]string{"Content-Encoding": "compress"}, body: "x", wantStatus: 415},
		{name: "brotli refused (Express 4)", method: "POST", path: "/body", contentType: "text/plain", headers: map[string]string{"Content-Encoding": "br"}, body: "x", wantStatus: 415},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, base) })
	}
}

// TestShimExpress5 checks where node22's Express 5 and body-parser 2
// answer otherwise than Express 4, with the shim made to believe it runs
// on Node 22.
func TestShimExpress5(t *testing.T) {
	base := startShim(t, express5(t))
	tests := []shimCase{
		{name: "empty json is an object", method: "POST", path: "/body", contentType: "application/json", wantStatus: 200, wantBody: `{"body":{}}`},
		{name: "empty gzip json is an object", method: "POST", path: "/body", contentType: "application/json", headers: map[string]string{"Content-Encoding": "gzip"}, body: gzipped(t, ""),
			wantStatus: 200, wantBody: `{"body":{}}`},
		{name: "other type not parsed", method: "POST", path: "/body", contentType: "application/octet-stream", body: "xx", wantStatus: 200, wantBody: `{}`},
		{name: "Uint8Array as bytes", method: "GET", path: "/uint8", wantStatus: 200, wantBody: "hi",
			wantHeaders: map[string]string{"Content-Type": "application/octet-stream", "Content-Length": "2"}},
		{name: "205 has no body", method: "GET", path: "/reset", wantStatus: 205, wantBody: "",
			wantHeaders: map[string]string{"Content-Length": "0"}},
		{name: "utf-16 guessed from 100 units", method: "POST", path: "/body", contentType: "text/plain; charset=utf-16", body: utf16Guess,
			wantStatus: 200, wantBody: `{"body":"` + strings.Repeat("栀", 20) + strings.Repeat("a", 30) + `"}`},
		{name: "urlencoded over 1000 parameters", method: "POST", path: "/nothing", contentType: "application/x-www-form-urlencoded", body: formParams(1001),
			wantStatus: 413, wantIn: "PayloadTooLargeError: too many parameters"},
		{name: "urlencoded over 32 levels", method: "POST", path: "/nothing", contentType: "application/x-www-form-urlencoded", body: "a" + strings.Repeat("[b]", 33) + "=1",
			wantStatus: 400, wantIn: "BadRequestError: The input exceeded the depth"},
		{name: "urlencoded bad escape", method: "POST", path: "/body", contentType: "application/x-www-form-urlencoded", body: "d=%zz+e",
			wantStatus: 200, wantBody: `{"body":{"d":"%zz e"}}`},
		{name: "query bad escape", method: "GET", path: "/query?d=%zz+e", wantStatus: 200, wantBody: `{"d":"%zz e"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.check(t, base) })
	}
}

// TestShimKeepAlive checks that an answer the shim cannot send as the
// function asked leaves the connection usable: the 500 that replaces it
// carries none of the headers set before the failure, so the next
// response on the connection parses.
func TestShimKeepAlive(t *testing.T) {
	tests := []struct {
		name, path, wantIn string
	}{
		{"status under 100", "/badstatus?s=42", "Invalid status code"},
		{"status over 999", "/badstatus?s=1000", "Invalid status code"},
		{"status not a number", "/badstatus?s=abc", "Invalid status code"},
		{"Content-Type array", "/ctarray", "TypeError: Content-Type cannot be set to an Array"},
	}
	for _, express := range []struct {
		name string
		env  []string
	}{{"Express 4", nil}, {"Express 5", express5(t)}} {
		addr := strings.TrimPrefix(startShim(t, express.env), "http://")
		for _, tc := range tests {
			t.Run(express.name+"/"+tc.name, func(t *testing.T) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(conn)
				first, firstBody := roundTrip(t, conn, r, tc.path)
				if first.StatusCode != 500 || !strings.Contains(firstBody, tc.wantIn) {
					t.Errorf("GET %s = %d %q, want 500 with %q", tc.path, first.StatusCode, firstBody, tc.wantIn)
				}
				if got := first.Header.Values("X-Before"); len(got) != 0 {
					t.Errorf("GET %s header X-Before = %q, want none", tc.path, got)
				}
				if got := first.Header.Values("Content-Type"); len(got) != 1 {
					t.Errorf("GET %s header Content-Type = %q, want one", tc.path, got)
				}
				if next, body := roundTrip(t, conn, r, "/"); next.StatusCode != 200 || body != "hello" {
					t.Errorf("next GET / = %d %q, want 200 %q", next.StatusCode, body, "hello")
				}
			})
		}
	}
}

// roundTrip sends GET path on conn and reads the response from r.
func roundTrip(t *testing.T, conn net.Conn, r *bufio.Reader, path string) (*http.Response, string) {
	t.Helper()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: kiln\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading the answer to GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of GET %s: %v", path, err)
	}
	return resp, string(body)
}

// TestShimPath checks that event.path is the path as sent, as Express's
// req.path is: no dot segments resolved, no "//" read as an authority.
func TestShimPath(t *testing.T) {
	base := startShim(t, nil)
	echo := map[string]string{"X-Echo-Path": "1"}
	tests := []shimCase{
		{name: "double slash", path: "//foo/e/z", wantBody: "//foo/e/z {}"},
		{name: "dot segments", path: "/a/../x/./y", wantBody: "/a/../x/./y {}"},
		{name: "escaped slash", path: "/a%2Fb", wantBody: "/a%2Fb {}"},
		{name: "query kept apart", path: "//a/../b?x=1&y[]=2", wantBody: `//a/../b {"x":"1","y":["2"]}`},
		{name: "only slashes", path: "//", wantBody: "// {}"},
		{name: "still serving", path: "/", wantBody: "/ {}"},
	}
	for _, tc := range tests {
		tc.method, tc.headers, tc.wantStatus = "GET", echo, 200
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
		{"gzip json inflated over MAX_JSON_SIZE", []string{"MAX_JSON_SIZE=100"},
			shimCase{method: "POST", path: "/echo", contentType: "application/json", headers: map[string]string{"Content-Encoding": "gzip"}, body: gzipped(t, big), wantStatus: 413}},
		{"gzip json inflated under MAX_JSON_SIZE", []string{"MAX_JSON_SIZE=1kb"},
			shimCase{method: "POST", path: "/nothing", contentType: "application/json", headers: map[string]string{"Content-Encoding": "gzip"}, body: gzipped(t, big), wantStatus: 200}},
		{"RAW_BODY inflated", []string{"RAW_BODY=true"},
			shimCase{method: "POST", path: "/raw", contentType: "application/json", headers: map[string]string{"Content-Encoding": "gzip"}, body: gzipped(t, "{}"), wantStatus: 200, wantBody: "raw true 7b7d"}},
		{"RAW_BODY inflated over MAX_RAW_SIZE", []string{"RAW_BODY=true", "MAX_RAW_SIZE=100b"},
			shimCase{method: "POST", path: "/raw", contentType: "text/plain", headers: map[string]string{"Content-Encoding": "deflate"}, body: deflated(t, big), wantStatus: 413}},
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
	for k, v := range tc.headers {
		req.Header.Set(k, v)
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
	if !strings.Contains(string(body), tc.wantIn) {
		t.Errorf("%s %s body = %q, want it to hold %q", tc.method, tc.path, body, tc.wantIn)
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

// express5 returns the environment that makes the shim take the node22
// template's side, Express 5: a module preloaded through NODE_OPTIONS
// gives it a Node 22 version number.
func express5(t *testing.T) []string {
	t.Helper()
	preload := filepath.Join(t.TempDir(), "node22.js")
	write(t, preload, "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '22.12.0' } });\n")
	return []string{"NODE_OPTIONS=--require=" + preload}
}

// formParams returns an urlencoded body of n parameters.
func formParams(n int) string {
	params := make([]string, n)
	for i := range params {
		params[i] = fmt.Sprintf("a%d=1", i)
	}
	return strings.Join(params, "&")
}

// utf16Guess is UTF-16 without a BOM whose byte order iconv-lite guesses
// from its first code units: 20 read as ASCII if big-endian, then 30 read
// as ASCII if little-endian. iconv-lite 0.4 (Express 4) looks at 32 units
// and reads it big-endian, 0.7 (Express 5) looks at 100 and reads it
// little-endian.
var utf16Guess = strings.Repeat("\x00h", 20) + strings.Repeat("a\x00", 30)

// gzipped and deflated compress s as a client sends a body with
// Content-Encoding gzip or deflate (zlib format, as RFC 9110 defines it).
func gzipped(t *testing.T, s string) string {
	return compressed(t, s, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
}

func deflated(t *testing.T, s string) string {
	return compressed(t, s, func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) })
}

func compressed(t *testing.T, s string, newWriter func(io.Writer) io.WriteCloser) string {
	t.Helper()
	var b bytes.Buffer
	w := newWriter(&b)
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
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
