package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
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
		{"bad image reference", []string{"build", hello, "--lang", "go", "--image", "Bad:Ref:x"}, 2, `--image: image reference "Bad:Ref:x"`},
		{"bad output", []string{"build", hello, "--lang", "go", "--image", "x", "--output", "docker"}, 2, "--output"},
		{"push with oci output", []string{"build", hello, "--lang", "go", "--image", "x", "--push", "--output", "oci:x"}, 2, "--push and --output"},
		{"bad build arg", []string{"build", hello, "--lang", "go", "--image", "x", "-b", "NOEQUALS"}, 2, "--build-arg"},
		{"missing stack file", []string{"build", "-f", "/nonexistent/stack.yml"}, 1, "stack file /nonexistent/stack.yml not found"},
		{"run without image", []string{"run"}, 2, "accepts 1 arg"},
		{"run bad port", []string{"run", "x", "--port", "0"}, 2, "--port 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := map[string]string{"KILN_CACHE_DIR": t.TempDir()}
			cmd := newRootCmd(&stdout, &stderr, func(k string) string { return env[k] })
			cmd.SetArgs(tc.args)
			code := reportError(&stderr, cmd.ExecuteContext(context.Background()))
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

func TestSourceDateEpoch(t *testing.T) {
	for in, wantErr := range map[string]bool{"": false, "1700000000": false, "-1": true, "soon": true} {
		_, err := sourceDateEpoch(func(string) string { return in })
		if (err != nil) != wantErr {
			t.Errorf("sourceDateEpoch(%q) = %v, want error %v", in, err, wantErr)
		}
	}
}

func TestWithLocalDrain(t *testing.T) {
	tests := []struct {
		name     string
		imageEnv []string
		flags    []string
		want     []string
	}{
		{"default added", []string{"mode=http"}, []string{"a=b"}, []string{"a=b", "healthcheck_interval=1s"}},
		{"image sets it", []string{"healthcheck_interval=5s"}, nil, nil},
		{"flag sets it", nil, []string{"healthcheck_interval=3s"}, []string{"healthcheck_interval=3s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			img, err := mutate.Config(empty.Image, v1.Config{Env: tc.imageEnv})
			if err != nil {
				t.Fatal(err)
			}
			got, err := withLocalDrain(img, tc.flags)
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("withLocalDrain() = %v, %v, want %v", got, err, tc.want)
			}
		})
	}
}
