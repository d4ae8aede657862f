//go:build e2e

package e2e

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestNodeRunc runs the node20 sample on the standard OCI path: skopeo
// copies it from the registry, umoci unpacks it, runc runs it on the host
// network as user 65532; GET and POST answer as the event and context
// contract says, and SIGTERM ends it with exit code 0.
func TestNodeRunc(t *testing.T) {
	needBinaries(t, "node", "npm", "skopeo", "umoci", "runc")
	reg := startRegistry(t)
	repo, tag := "e2e/runc-node", "v1"
	image := reg.Host + "/" + repo + ":" + tag
	r := mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(nodeHello), "--lang", "node20", "--image", image, "--push")
	c := startRunc(t, image, tag, digestOf(t, r.stdout), "fprocess=node index.js", "mode=http", "upstream_url=http://127.0.0.1:3000")

	tests := []struct {
		method, path, contentType, body string
		wantStatus                      int
		wantBody                        string
		wantHeader                      [2]string
	}{
		{http.MethodGet, "/", "", "", 200, "Hello from kiln on Node 20, in 1m", [2]string{"Content-Type", "text/html; charset=utf-8"}},
		{http.MethodPost, "/", "application/json", `{"n":[1,2]}`, 200, `{"received":{"n":[1,2]},"type":"object"}`, [2]string{}},
		{http.MethodPost, "/", "text/plain", "runc text", 200, `{"received":"runc text","type":"string"}`, [2]string{}},
		{http.MethodGet, "/custom", "", "", 201, `{"created":true}`, [2]string{"X-Kiln", "custom"}},
	}
	for _, tc := range tests {
		req, err := http.NewRequest(tc.method, "http://127.0.0.1:"+strconv.Itoa(c.ports.http)+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", tc.method, tc.path, err, c.p)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.wantStatus || string(body) != tc.wantBody {
			t.Errorf("%s %s (%s) = %d %q, want %d %q", tc.method, tc.path, tc.contentType, resp.StatusCode, body, tc.wantStatus, tc.wantBody)
		}
		if h := tc.wantHeader; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
			t.Errorf("%s %s header %s = %q, want %q", tc.method, tc.path, h[0], resp.Header.Get(h[0]), h[1])
		}
	}
	c.terminate(t)
}
