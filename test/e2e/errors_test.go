//go:build e2e

package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-build/kiln/test/registrytest"
)

// TestBuildErrors feeds kiln bad input and checks that it fails with a
// one-line cause (plus the compiler's output for a compile error), the
// right exit code, and nothing pushed.
func TestBuildErrors(t *testing.T) {
	reg := startRegistry(t)
	noGoMod := copySample(t, goHello)
	if err := os.Remove(filepath.Join(noGoMod, "go.mod")); err != nil {
		t.Fatal(err)
	}
	broken := copySample(t, goHello)
	editFile(t, broken, "handler.go", `fmt.Fprintf(w, "Hello from kiln")`, `fmt.Fprintf(w, greetingThatIsNotDeclared)`)
	missing := filepath.Join(t.TempDir(), "no-such-handler")
	refused := "127.0.0.1:" + strconv.Itoa(freePort(t))
	dropping, attempts := dropConnections(t)

	tests := []struct {
		name string
		dir  string
		// image is pushed to; nothing may land in reg.
		reg   *registrytest.Registry
		repo  string
		image string // default reg.Host/repo:v1
		code  int
		want  []string // in the error line of stderr
		// detail, when set, must follow the first line (compiler output).
		detail  []string
		maxTook time.Duration
		// attempts, when set, counts connections to the registry; there
		// must be more than minAttempts (retries) and fewer than
		// maxAttempts (bounded).
		attempts                 *atomic.Int64
		minAttempts, maxAttempts int64
	}{
		{
			name: "missing handler folder",
			dir:  missing,
			reg:  reg,
			repo: "e2e/missing",
			code: 1,
			want: []string{missing, "handler folder not found"},
		},
		{
			name: "no go.mod",
			dir:  noGoMod,
			reg:  reg,
			repo: "e2e/nogomod",
			code: 1,
			want: []string{filepath.Join(noGoMod, "go.mod"), "go.mod"},
		},
		{
			name:   "compile error",
			dir:    broken,
			reg:    reg,
			repo:   "e2e/broken",
			code:   1,
			want:   []string{broken, "failed"},
			detail: []string{"handler.go:17:", "undefined: greetingThatIsNotDeclared"},
		},
		{
			name:  "invalid image reference",
			dir:   sample(goHello),
			reg:   reg,
			repo:  "e2e/invalid",
			image: reg.Host + "/e2e/Invalid_Upper:v1",
			code:  2,
			want:  []string{"--image", "e2e/Invalid_Upper"},
		},
		{
			name:    "unreachable registry: connection refused",
			dir:     sample(goHello),
			image:   refused + "/e2e/unreachable:v1",
			code:    1,
			want:    []string{refused},
			maxTook: 60 * time.Second,
		},
		{
			name:    "unreachable registry: connections dropped",
			dir:     sample(goHello),
			image:   dropping + "/e2e/unreachable:v1",
			code:    1,
			want:    []string{dropping},
			maxTook: 60 * time.Second,
			// One try over HTTPS and one over HTTP would be 2.
			attempts:    attempts,
			minAttempts: 2,
			maxAttempts: 50,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			image := tc.image
			if image == "" {
				image = tc.reg.Host + "/" + tc.repo + ":v1"
			}
			var mark int
			if tc.reg != nil {
				mark = tc.reg.Mark()
			}
			if tc.attempts != nil {
				tc.attempts.Store(0)
			}
			r := kiln(t, kilnOpts{cache: warmCache}, "build", tc.dir, "--lang", "golang-middleware", "--image", image, "--push")
			t.Logf("kiln exit %d after %s; stderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stderr)
			_, rest := checkOneLineError(t, r, tc.code, tc.want, tc.detail != nil)
			for _, d := range tc.detail {
				if !strings.Contains(rest, d) {
					t.Errorf("kiln stderr after the first line = %q, want it to contain %q", rest, d)
				}
			}
			if tc.maxTook > 0 && r.took > tc.maxTook {
				t.Errorf("kiln build took %s, want at most %s (bounded retries)", r.took, tc.maxTook)
			}
			if tc.attempts != nil {
				if n := tc.attempts.Load(); n <= tc.minAttempts || n >= tc.maxAttempts {
					t.Errorf("kiln build connected to the registry %d times, want more than %d (retries) and fewer than %d (bounded)", n, tc.minAttempts, tc.maxAttempts)
				}
			}
			if tc.reg != nil {
				assertNothingPushed(t, tc.reg, mark, tc.repo, "v1")
			}
		})
	}
}

// TestBuildUnauthorized pushes to a registry that wants a password: a 401
// is a one-line cause that names the registry and shows no secret, and
// nothing is pushed; the right credentials then push.
func TestBuildUnauthorized(t *testing.T) {
	const (
		user     = "kiln"
		password = "the-real-password"
		wrong    = "hunter2-not-the-password"
	)
	reg := startRegistry(t, registrytest.WithHtpasswd(user, password))
	wrongAuth := base64.StdEncoding.EncodeToString([]byte(user + ":" + wrong))
	tests := []struct {
		name  string
		auth  string // docker config auth for the registry; "" for none
		never []string
	}{
		{name: "no credentials"},
		{name: "wrong credentials", auth: wrongAuth, never: []string{wrong, wrongAuth}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			config := t.TempDir()
			if tc.auth != "" {
				writeDockerConfig(t, config, reg.Host, tc.auth)
			}
			mark := reg.Mark()
			r := kiln(t, kilnOpts{cache: warmCache, env: []string{"DOCKER_CONFIG=" + config}}, "build", sample(goHello), "--lang", "golang-middleware", "--image", reg.Host+"/e2e/denied:v1", "--push")
			t.Logf("kiln exit %d after %s; stderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stderr)
			checkOneLineError(t, r, 1, []string{reg.Host}, false)
			for _, s := range tc.never {
				if strings.Contains(r.stderr, s) {
					t.Errorf("kiln stderr = %q, it must not contain the secret %q", r.stderr, s)
				}
			}
			reqs := requestsSince(t, reg, mark)
			if !hasStatus(reqs, http.StatusUnauthorized) {
				t.Errorf("the registry answered no 401; requests:\n%s", registrytest.Summary(reqs))
			}
			assertNothingPushed(t, reg, mark, "e2e/denied", "v1")
		})
	}

	// The 401s above were about the credentials: the right ones push.
	t.Run("right credentials", func(t *testing.T) {
		config := t.TempDir()
		writeDockerConfig(t, config, reg.Host, base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
		r := mustKiln(t, kilnOpts{cache: warmCache, env: []string{"DOCKER_CONFIG=" + config}}, "build", sample(goHello), "--lang", "golang-middleware", "--image", reg.Host+"/e2e/denied:v1", "--push")
		pushed(t, reg, "e2e/denied", "v1", digestOf(t, r.stdout))
	})
}

func hasStatus(reqs []registrytest.Request, status int) bool {
	for _, q := range reqs {
		if q.Status == status {
			return true
		}
	}
	return false
}

// dropConnections listens on a free loopback port and closes every
// connection at once, as a registry behind a failing proxy would. It
// returns HOST:PORT and the count of connections.
func dropConnections(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return l.Addr().String(), &n
}

// writeDockerConfig writes a docker config.json holding auth for host.
func writeDockerConfig(t *testing.T, dir, host, auth string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": auth}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestUsageErrors checks that wrong command lines exit 2 with one line.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "no lang", args: []string{"build", sample(goHello), "--image", "kiln.local/x:v1"}, want: []string{"--lang"}},
		{name: "no image", args: []string{"build", sample(goHello), "--lang", "go"}, want: []string{"--image"}},
		{name: "unknown flag", args: []string{"build", "--no-such-flag"}, want: []string{"--no-such-flag"}},
		{name: "bad output", args: []string{"build", sample(goHello), "--lang", "go", "--image", "kiln.local/x:v1", "--output", "ftp:x"}, want: []string{"--output"}},
		{name: "bad platform", args: []string{"build", sample(goHello), "--lang", "go", "--image", "kiln.local/x:v1", "--platform", "arm64"}, want: []string{"--platform"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := kiln(t, kilnOpts{cache: warmCache}, tc.args...)
			checkOneLineError(t, r, 2, tc.want, false)
		})
	}
}

// TestRunErrors checks that `kiln run` of an image it cannot get fails
// with a one-line cause naming the image, after saying that it pulls.
func TestRunErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-layout")
	refused := "127.0.0.1:" + strconv.Itoa(freePort(t)) + "/e2e/absent:v1"
	tests := []struct {
		name  string
		image string
		want  []string
	}{
		{name: "no such layout", image: "oci:" + missing, want: []string{missing}},
		{name: "unreachable registry", image: refused, want: []string{refused}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := kiln(t, kilnOpts{cache: t.TempDir()}, "run", tc.image, "--port", strconv.Itoa(freePort(t)))
			r.stderr = strings.TrimPrefix(r.stderr, "kiln: pulling "+tc.image+"\n")
			checkOneLineError(t, r, 1, tc.want, false)
		})
	}
}
