//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// nodeClassic is a function of OpenFaaS's classic node template:
// module.exports = (context, callback), no dependencies.
const nodeClassic = "node-classic"

// TestNodeClassic builds node-classic with --lang node, runs it with
// `kiln run` and calls it. Under the classic template the classic watchdog
// forks node index.js per request with the body on stdin; index.js calls
// the handler with (body, callback), prints an object as JSON and a
// newline, a string as it is, and an error on stderr, which the watchdog
// includes in the answer (combine_output), still with 200 since node exits
// 0. The image sets fprocess and no mode, so kiln's watchdog does the same.
func TestNodeClassic(t *testing.T) {
	needBinaries(t, "node", "npm")
	reg := startRegistry(t)
	image := reg.Host + "/e2e/node-classic:v1"
	r := mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(nodeClassic), "--lang", "node", "--image", image, "--push")
	pushed(t, reg, "e2e/node-classic", "v1", digestOf(t, r.stdout))

	checkClassicEnv(t, image, "node index.js")

	p, ports := runFunction(t, t.TempDir(), image)
	tests := []struct {
		name, method, path, body string
		wantPrefix               string
		exact                    bool
	}{
		{name: "callback with an object", method: http.MethodPost, path: "/", body: "it works", wantPrefix: `{"status":"done","said":"it works"}` + "\n", exact: true},
		{name: "no body", method: http.MethodGet, path: "/", wantPrefix: `{"status":"done","said":""}` + "\n", exact: true},
		{name: "promise", method: http.MethodPost, path: "/a/b?c=d", body: "promise please", wantPrefix: "Node 22 says, through a promise: promise please", exact: true},
		{name: "callback with an error", method: http.MethodPost, path: "/", body: "fail", wantPrefix: "Error: failing as asked\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := call(tc.method, ports.http, tc.path, tc.body)
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", tc.method, tc.path, err, p)
			}
			ok := a.body == tc.wantPrefix || (!tc.exact && strings.HasPrefix(a.body, tc.wantPrefix))
			if a.status != http.StatusOK || !ok {
				t.Errorf("%s %s = %d %q, want 200 %q", tc.method, tc.path, a.status, a.body, tc.wantPrefix)
			}
		})
	}
}
