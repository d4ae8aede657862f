//go:build e2e

package e2e

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunc runs a pushed kiln image on the standard OCI path: skopeo copies
// it from the registry into an OCI layout, umoci unpacks it into a runtime
// bundle, and runc runs it on the host network. The image must answer, be
// healthy, and drain a slow request on SIGTERM.
func TestRunc(t *testing.T) {
	needBinaries(t, "skopeo", "umoci", "runc")
	reg := startRegistry(t)
	repo, tag := "e2e/runc-deps", "v1"
	image := reg.Host + "/" + repo + ":" + tag
	r := mustKiln(t, kilnOpts{cache: warmCache}, "build", sample(goDeps), "--lang", "golang-middleware", "--image", image, "--push")
	c := startRunc(t, image, tag, digestOf(t, r.stdout), "fprocess=./handler", "mode=http", "upstream_url=http://127.0.0.1:8082")
	checkSpec(t, readSpec(t, c.bundle))
	// The watchdog's lock file, for exec probes; the bundle's rootfs is the
	// container's / (runc's default spec mounts no tmpfs on /tmp).
	if _, err := os.Stat(filepath.Join(c.bundle, "rootfs", "tmp", ".lock")); err != nil {
		t.Errorf("healthy, but no /tmp/.lock in the container: %v", err)
	}

	a, err := call(http.MethodGet, c.ports.http, "/", "")
	if err != nil {
		t.Fatalf("GET /: %v\n%s", err, c.p)
	}
	if want := "uuid " + uuidV5URL("kiln") + "\n"; a.status != http.StatusOK || a.body != want {
		t.Errorf("GET / = %d %q, want 200 %q", a.status, a.body, want)
	}

	// SIGTERM through runc during a slow request.
	slow := make(chan answer, 1)
	slowErr := make(chan error, 1)
	go func() {
		a, err := call(http.MethodGet, c.ports.http, "/slow", "")
		slow <- a
		slowErr <- err
	}()
	waitInFlight(t, c.ports.metrics, 1)
	tool(t, "runc", "--root", c.root, "kill", c.id, "TERM")
	select {
	case a = <-slow:
	case <-time.After(exitTimeout):
		t.Fatalf("GET /slow did not finish within %s of SIGTERM\n%s", exitTimeout, c.p)
	}
	if err := <-slowErr; err != nil || a.status != http.StatusOK || a.body != "slow done\n" {
		t.Errorf("GET /slow across SIGTERM = %d %q, %v; want 200 %q, nil\n%s", a.status, a.body, err, "slow done\n", c.p)
	}
	code, ok := c.p.wait(exitTimeout)
	if !ok {
		t.Fatalf("runc run did not exit within %s of SIGTERM\n%s", exitTimeout, c.p)
	}
	if code != 0 {
		t.Errorf("runc run exit code after the drain = %d, want 0 (the watchdog's)\n%s", code, c.p)
	}
	tool(t, "runc", "--root", c.root, "delete", c.id)
}

// tool runs an external tool that must succeed and returns its stdout.
func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = baseEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// layoutDigest returns the digest of the one manifest in an OCI layout.
func layoutDigest(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 {
		t.Fatalf("%s/index.json has %d manifests, want 1", dir, len(index.Manifests))
	}
	return index.Manifests[0].Digest
}

// runtimeSpec is an OCI runtime config.json, kept whole as generic JSON so
// that editing it loses nothing.
type runtimeSpec map[string]any

func readSpec(t *testing.T, bundle string) runtimeSpec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s runtimeSpec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s runtimeSpec) object(t *testing.T, key string) map[string]any {
	t.Helper()
	m, ok := s[key].(map[string]any)
	if !ok {
		t.Fatalf("config.json: %s is %T, want an object", key, s[key])
	}
	return m
}

// checkSpec checks what umoci made of kiln's image config beyond the
// environment, which startRunc checks.
func checkSpec(t *testing.T, s runtimeSpec) {
	t.Helper()
	proc := s.object(t, "process")
	if got, want := fmt.Sprint(proc["args"]), "[/usr/bin/fwatchdog]"; got != want {
		t.Errorf("process.args = %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(proc["cwd"]), "/home/app"; got != want {
		t.Errorf("process.cwd = %s, want %s", got, want)
	}
	if user, ok := proc["user"].(map[string]any); !ok || fmt.Sprint(user["uid"]) != "65532" || fmt.Sprint(user["gid"]) != "65532" {
		t.Errorf("process.user = %v, want uid and gid 65532", proc["user"])
	}
}

// set makes the bundle run without a terminal, on the host network, on
// free ports and with a one-second drain.
func (s runtimeSpec) set(t *testing.T, ports functionPorts) {
	t.Helper()
	proc := s.object(t, "process")
	proc["terminal"] = false
	proc["env"] = append(append(stringsOf(proc["env"]), "port="+strconv.Itoa(ports.http)), ports.env()...)
	linux := s.object(t, "linux")
	var namespaces []any
	for _, ns := range linux["namespaces"].([]any) {
		if m, ok := ns.(map[string]any); ok && m["type"] == "network" {
			continue
		}
		namespaces = append(namespaces, ns)
	}
	linux["namespaces"] = namespaces
}

func (s runtimeSpec) write(t *testing.T, bundle string) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func stringsOf(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, e := range list {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// uuidV5URL is uuid.NewSHA1(uuid.NameSpaceURL, name), what go-deps answers:
// computing it here proves the dependency is compiled into the image.
func uuidV5URL(name string) string {
	ns, _ := hex.DecodeString("6ba7b8119dad11d180b400c04fd430c8")
	h := sha1.Sum(append(ns, name...))
	u := h[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}
