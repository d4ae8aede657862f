//go:build e2e

package e2e

import (
	"net/http"
	"testing"
)

// pyFlaskRequest is a python3-flask function that reads Flask's request
// and streams a Response, as the template's handlers may.
const pyFlaskRequest = "python-flask-request"

// TestPythonFlaskRequest builds python-flask-request, runs it and calls
// it: the handler runs inside a Flask request context, as under the
// template's index.py, so request.method, request.path and request.args
// are the call's, and a streamed Response arrives whole.
func TestPythonFlaskRequest(t *testing.T) {
	image := "kiln.local/e2e/python-flask-request:v1"
	o := kilnOpts{cache: t.TempDir(), env: pythonWheelhouse(t)}
	rep := buildJSON(t, o, sample(pyFlaskRequest), "--lang", "python3-flask", "--image", image)
	if got, want := layerNames(rep.Layers), []string{"flask and waitress", "requirements", "python server", "handler code"}; !isSuffix(got, want) {
		t.Errorf("layers = %v, want them to end with %v", got, want)
	}
	p, ports := runFunction(t, o.cache, image)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantType, wantBody       string
	}{
		{name: "request.args", method: http.MethodGet, path: "/hello?name=amy", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: "GET /hello name=amy body="},
		{name: "body and method", method: http.MethodPost, path: "/", body: "it works", wantStatus: 200, wantType: "text/html; charset=utf-8", wantBody: "POST / name= body=it works"},
		{name: "streamed", method: http.MethodPost, path: "/?stream=1", wantStatus: 200, wantType: "text/plain; charset=utf-8", wantBody: "chunk 0 from POST\nchunk 1 from POST\nchunk 2 from POST\n"},
		{name: "PUT is not routed", method: http.MethodPut, path: "/", wantStatus: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := call(tc.method, ports.http, tc.path, tc.body)
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", tc.method, tc.path, err, p)
			}
			if a.status != tc.wantStatus || (tc.wantStatus == 200 && (a.body != tc.wantBody || a.header.Get("Content-Type") != tc.wantType)) {
				t.Errorf("%s %s = %d %q %q, want %d %q %q", tc.method, tc.path, a.status, a.header.Get("Content-Type"), a.body, tc.wantStatus, tc.wantType, tc.wantBody)
			}
		})
	}
}
