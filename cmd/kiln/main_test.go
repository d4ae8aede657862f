package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/internal/usage"
)

func TestCommandLineErrors(t *testing.T) {
	hello, _ := filepath.Abs("../../testdata/functions/go-hello")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantMsg  string
	}{
		{"unknown flag", []string{"build", "--nope"}, 2, "unknown flag: --nope"},
		{"DIR without --lang", []string{"build", hello, "--image", "x"}, 2, "--lang is required"},
		{"DIR without --image", []string{"build", hello, "--lang", "go"}, 2, "--image is required"},
		{"bad platform", []string{"build", hello, "--lang", "go", "--image", "x", "--platform", "amd64"}, 2, "--platform"},
		{"windows platform", []string{"build", hello, "--lang", "go", "--image", "x", "--platform", "windows/amd64"}, 2, `--platform "windows/amd64": windows is not supported`},
		{"bad image reference", []string{"build", hello, "--lang", "go", "--image", "Bad:Ref:x"}, 2, `--image: image reference "Bad:Ref:x"`},
		{"image starting with -", []string{"build", hello, "--lang", "go", "--image", "-x"}, 2, `--image: image reference "-x": path segment "-x"`},
		{"image starting with /", []string{"build", hello, "--lang", "go", "--image", "/x"}, 2, `--image: image reference "/x": empty path segment`},
		{"image with //", []string{"build", hello, "--lang", "go", "--image", "x//y"}, 2, `--image: image reference "x//y": empty path segment`},
		{"unknown platform variant", []string{"build", hello, "--lang", "go", "--image", "x", "--platform", "linux/amd64/v99"}, 2, `--platform "linux/amd64/v99": amd64 has no variant "v99"`},
		{"bad output", []string{"build", hello, "--lang", "go", "--image", "x", "--output", "docker"}, 2, "--output"},
		{"push with oci output", []string{"build", hello, "--lang", "go", "--image", "x", "--push", "--output", "oci:x"}, 2, "--push and --output"},
		{"bad build arg", []string{"build", hello, "--lang", "go", "--image", "x", "-b", "NOEQUALS"}, 2, "--build-arg"},
		{"empty build arg value", []string{"build", hello, "--lang", "go", "--image", "x", "-b", "GOFLAGS="}, 2, `--build-arg "GOFLAGS=": want KEY=VALUE, neither empty`},
		{"empty build arg key", []string{"build", hello, "--lang", "go", "--image", "x", "-b", "=x"}, 2, `--build-arg "=x"`},
		{"bad build label", []string{"build", hello, "--lang", "go", "--image", "x", "--build-label", "nolabel"}, 2, `--build-label "nolabel"`},
		{"copy-extra outside", []string{"build", hello, "--lang", "go", "--image", "x", "--copy-extra", "/etc"}, 2, `--copy-extra "/etc": must be a path inside`},
		{"copy-extra missing", []string{"build", hello, "--lang", "go", "--image", "x", "--copy-extra", "nope"}, 2, `--copy-extra "nope": nope not found`},
		{"shrinkwrap", []string{"build", hello, "--lang", "go", "--image", "x", "--shrinkwrap"}, 2, "--shrinkwrap: kiln builds without a Docker build context"},
		{"missing stack file", []string{"build", "-f", "/nonexistent/stack.yml"}, 1, "stack file /nonexistent/stack.yml not found"},
		{"run without image", []string{"run"}, 2, "accepts 1 arg"},
		{"unknown lang", []string{"build", hello, "--lang", "cobol", "--image", "x"}, 2, `--lang: lang "cobol" is not one kiln builds, and ./template/cobol/ holds no faas-cli template (faas-cli template pull, or faas-cli template store pull cobol, fetches it); kiln builds: dockerfile, go, `},
		{"unknown base", []string{"base", "build", "nope"}, 2, `"nope"`},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate" for "kiln"`},
		{"build two dirs", []string{"build", hello, hello}, 2, "accepts at most 1 arg(s)"},
		{"run bad port", []string{"run", "x", "--port", "0"}, 2, "--port 0"},
		{"run secret name", []string{"run", "x", "--secret", "Bad_Name=" + hello + "/go.mod"}, 2, "--secret Bad_Name="},
		{"run secret file", []string{"run", "x", "--secret", "api-key=/nonexistent"}, 2, "--secret api-key=/nonexistent: /nonexistent not found"},
		{"run secret form", []string{"run", "x", "--secret", "api-key"}, 2, `--secret "api-key": want KEY=VALUE`},
		{"replace with update", []string{"deploy", "--replace"}, 2, "--replace and --update: one of them must be false"},
		{"up replace with update", []string{"up", "--replace", "-f", "/nonexistent/stack.yml"}, 2, "--replace and --update"},
		{"dashboards without output", []string{"dashboards"}, 2, `--output "": want grafana or prometheus-rules`},
		{"dashboards bad output", []string{"dashboards", "--output", "kibana"}, 2, `--output "kibana": want grafana or prometheus-rules`},
		{"dashboards bad slo", []string{"dashboards", "-o", "grafana", "--slo", "100"}, 2, "--slo 100: want a percentage between 0 and 100"},
		{"dashboards file in a missing folder", []string{"dashboards", "-o", "grafana", "--file", "/nonexistent/d.json"}, 1, "--file /nonexistent/d.json: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := map[string]string{"KILN_CACHE_DIR": t.TempDir()}
			cmd := newRootCmd(&stdout, &stderr, func(k string) string { return env[k] })
			code := reportError(&stderr, execute(context.Background(), cmd, tc.args), false)
			if code != tc.wantCode {
				t.Errorf("kiln %v exit = %d, want %d (stderr %q)", tc.args, code, tc.wantCode, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.wantMsg) {
				t.Errorf("kiln %v stderr = %q, want it to contain %q", tc.args, stderr.String(), tc.wantMsg)
			}
			if lines := strings.Count(strings.TrimSpace(stderr.String()), "\n"); lines > 0 {
				t.Errorf("kiln %v stderr has %d lines, want one: %q", tc.args, lines+1, stderr.String())
			}
		})
	}
}

// TestNoDockerDaemonClient keeps kiln daemonless: the CLI must never link
// Docker's engine client.
func TestNoDockerDaemonClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/docker/docker/client") || strings.HasPrefix(pkg, "github.com/google/go-containerregistry/pkg/v1/daemon") {
			t.Errorf("kiln imports %s, a Docker daemon client", pkg)
		}
	}
}

// TestStackValueErrors: values that only a later step can check still
// name the stack file, line and key.
func TestStackValueErrors(t *testing.T) {
	t.Chdir(t.TempDir())
	const head = "provider:\n  name: openfaas\nfunctions:\n  fig:\n    skip_build: true\n    image: ghcr.io/openfaas/figlet\n"
	tests := []struct {
		name, stack string
		args        []string
		want        string
	}{
		{"memory quantity", head + "    fprocess: figlet\n    limits:\n      memory: lots\n", []string{"deploy", "--output", "k8s"}, `stack.yml:9: functions.fig.limits.memory: "lots": quantities must match`},
		{"second function's quantity: nothing written", head + "    fprocess: figlet\n  zz:\n    skip_build: true\n    image: zz\n    fprocess: zz\n    limits:\n      memory: lots\n", []string{"deploy", "--output", "k8s"}, `stack.yml:13: functions.zz.limits.memory: "lots"`},
		{"cpu request", head + "    fprocess: figlet\n    requests:\n      cpu: 1x\n", []string{"deploy", "--output", "k8s"}, `stack.yml:9: functions.fig.requests.cpu: "1x"`},
		{"constraint", head + "    fprocess: figlet\n    constraints:\n      - nodeless\n", []string{"deploy", "--output", "k8s"}, `stack.yml:8: functions.fig.constraints: "nodeless": want key=value`},
		{"constraint flag", head + "    fprocess: figlet\n", []string{"deploy", "--output", "k8s", "--constraint", "nodeless"}, `--constraint "nodeless": want key=value`},
		{"no fprocess", head + "    lang: cobol\n", []string{"deploy", "--output", "k8s"}, "stack.yml:4: functions.fig.fprocess: no fprocess for lang cobol"},
		{"copy outside", "configuration:\n  copy:\n    - ./common\n    - ../outside\n" + head + "    fprocess: figlet\n", []string{"build"}, `stack.yml:4: configuration.copy: "../outside": must be a path inside`},
		{"unset variable in image", "provider:\n  name: openfaas\nfunctions:\n  fig:\n    skip_build: true\n    image: ${REGISTRY}/figlet\n", []string{"deploy", "--output", "k8s"}, `stack.yml:6: functions.fig.image: image reference "/figlet": empty path segment; ${REGISTRY} is unset or empty`},
		{"no functions", "provider:\n  name: openfaas\nfunctions:\n", []string{"deploy"}, "stack.yml:3: functions: no functions defined"},
		{"copy missing", "configuration:\n  copy: [./nothere]\n" + head + "    fprocess: figlet\n", []string{"build"}, `stack.yml:2: configuration.copy: "./nothere": ./nothere not found`},
	}
	os.Mkdir("common", 0o755)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile("stack.yml", []byte(tc.stack), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			env := map[string]string{"KILN_CACHE_DIR": t.TempDir()}
			cmd := newRootCmd(&stdout, &stderr, func(k string) string { return env[k] })
			if code := reportError(&stderr, execute(context.Background(), cmd, tc.args), false); code == 0 {
				t.Errorf("kiln %v exit 0, want an error", tc.args)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("kiln %v stderr = %q, want it to contain %q", tc.args, stderr.String(), tc.want)
			}
			if stdout.Len() > 0 {
				t.Errorf("kiln %v wrote %q to stdout, want nothing on error", tc.args, stdout.String())
			}
		})
	}
}

// exitError is a function's exit, as kiln run reports it.
type exitError struct{ code int }

func (e exitError) Error() string { return "exited" }
func (e exitError) ExitCode() int { return e.code }

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var stdout, stderr bytes.Buffer
		cmd := newRootCmd(&stdout, &stderr, func(string) string { return "" })
		if err := execute(context.Background(), cmd, args); err != nil || stdout.String() != versionLine() {
			t.Errorf("kiln %v = %q, %v; want %q", args, stdout.String(), err, versionLine())
		}
	}
}

// TestCompletion asks cobra's __complete, as the shells do.
func TestCompletion(t *testing.T) {
	dir := t.TempDir()
	stackFile := filepath.Join(dir, "stack.yml")
	if err := os.WriteFile(stackFile, []byte("provider:\n  name: openfaas\nfunctions:\n  hello:\n    lang: go\n    image: hello\n  world:\n    lang: go\n    image: world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"build", "--lang", ""}, []string{"golang-middleware", "python3-http", "java11", "node20"}},
		{[]string{"deploy", "-f", stackFile, "--filter", ""}, []string{"hello", "world"}},
		{[]string{"base", "build", ""}, []string{"static", "python", "node", "java"}},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		cmd := newRootCmd(&stdout, &stderr, func(k string) string { return map[string]string{"KILN_CACHE_DIR": dir}[k] })
		if err := execute(context.Background(), cmd, append([]string{"__complete"}, tc.args...)); err != nil {
			t.Fatalf("kiln __complete %v = %v", tc.args, err)
		}
		lines := strings.Split(stdout.String(), "\n")
		for _, w := range tc.want {
			if !slices.Contains(lines, w) {
				t.Errorf("kiln __complete %v = %q, want %s among them", tc.args, stdout.String(), w)
			}
		}
	}
}

func TestReportError(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		interrupted bool
		wantCode    int
		wantOut     string
	}{
		{"success", nil, false, 0, ""},
		{"success after Ctrl-C stopped a server", nil, true, 0, ""},
		{"failure", errors.New("building fn: boom"), false, 1, "kiln: building fn: boom\n"},
		{"usage", usage.Errorf("--port 0: want 1-65535"), false, 2, "kiln: --port 0: want 1-65535\n"},
		{"interrupted", context.Canceled, true, 130, "kiln: interrupted\n"},
		{"the function's exit code", exitError{3}, false, 3, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := reportError(&out, tc.err, tc.interrupted); code != tc.wantCode || out.String() != tc.wantOut {
				t.Errorf("reportError(%v, %v) = %d, %q; want %d, %q", tc.err, tc.interrupted, code, out.String(), tc.wantCode, tc.wantOut)
			}
		})
	}
}

// TestStackWarnings: the stack file's warnings and a flag with no effect
// are printed as kiln: FILE:LINE: lines, and the command goes on.
func TestStackWarnings(t *testing.T) {
	t.Chdir(t.TempDir())
	stack := "provider:\n  name: openfaas\nfunctions:\n  fig:\n    skip_build: true\n    image: ghcr.io/openfaas/figlet\n    fprocess: figlet\n    enviroment:\n      a: b\n"
	if err := os.WriteFile("stack.yml", []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	env := map[string]string{"KILN_CACHE_DIR": t.TempDir()}
	args := []string{"deploy", "--output", "k8s", "--fprocess", "cat"}
	if code := reportError(&stderr, execute(context.Background(), newRootCmd(&stdout, &stderr, func(k string) string { return env[k] }), args), false); code != 0 {
		t.Fatalf("kiln %v exit %d: %s", args, code, stderr.String())
	}
	want := "kiln: stack.yml:8: functions.fig.enviroment: unknown key, ignored; did you mean environment?\n" +
		"kiln: --fprocess \"cat\" is ignored with a stack file, as by faas-cli: set fprocess in the stack file\n"
	if stderr.String() != want {
		t.Errorf("kiln %v stderr = %q, want %q", args, stderr.String(), want)
	}
	if !strings.Contains(stdout.String(), "value: figlet") {
		t.Errorf("kiln %v stdout = %q, want the stack's fprocess", args, stdout.String())
	}
}
