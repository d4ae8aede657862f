//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// pyClassic is a function of OpenFaaS's classic python3 template:
// handle(req) returning a string, kiln-greeting from requirements.txt.
const pyClassic = "python-classic"

// TestPythonClassic builds python-classic with --lang python3, runs it
// with `kiln run` and calls it. Under the classic template the classic
// watchdog forks python3 index.py per request with the body on stdin;
// index.py prints handle's return value (and a newline) unless it is
// None; an exception exits 1, which the watchdog answers with 500 and the
// output, the traceback included (combine_output). The image sets fprocess
// and no mode, so kiln's watchdog does the same.
func TestPythonClassic(t *testing.T) {
	reg := startRegistry(t)
	image := reg.Host + "/e2e/python-classic:v1"
	o := kilnOpts{cache: t.TempDir(), env: pythonWheelhouse(t)}
	r := mustKiln(t, o, "build", sample(pyClassic), "--lang", "python3", "--image", image, "--push")
	pushed(t, reg, "e2e/python-classic", "v1", digestOf(t, r.stdout))

	checkClassicEnv(t, image, "python3 /home/app/index.py")

	p, ports := runFunction(t, t.TempDir(), image)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 string
		prefix                   bool
	}{
		{name: "no body", method: http.MethodGet, path: "/", wantStatus: 200, wantBody: "Hello from kiln\n"},
		{name: "a body", method: http.MethodPost, path: "/a/b?c=d", body: "it works", wantStatus: 200, wantBody: "Hello from kiln, you said: it works\n"},
		{name: "None", method: http.MethodPost, path: "/", body: "nothing", wantStatus: 200, wantBody: ""},
		{name: "an exception", method: http.MethodPost, path: "/", body: "fail", wantStatus: 500, wantBody: "ValueError: failing as asked", prefix: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := call(tc.method, ports.http, tc.path, tc.body)
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", tc.method, tc.path, err, p)
			}
			ok := a.body == tc.wantBody || (tc.prefix && strings.Contains(a.body, tc.wantBody))
			if a.status != tc.wantStatus || !ok {
				t.Errorf("%s %s = %d %q, want %d %q", tc.method, tc.path, a.status, a.body, tc.wantStatus, tc.wantBody)
			}
		})
	}
}
