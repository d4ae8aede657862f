package golang

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
)

// TestGOPROXYBuildArg: the GOPROXY build argument reaches go build, as the
// templates' ARG GOPROXY does, over the GOPROXY kiln runs with.
func TestGOPROXYBuildArg(t *testing.T) {
	tmp := t.TempDir()
	log := filepath.Join(tmp, "env.log")
	fakeGo := filepath.Join(tmp, "go")
	if err := os.WriteFile(fakeGo, []byte("#!/bin/sh\nenv > "+log+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module handler\n\ngo 1.24\n")
	write(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")
	for _, tc := range []struct {
		name, arg, want string
	}{
		{"build arg", "https://proxy.example.com", "GOPROXY=https://proxy.example.com"},
		{"none", "", "GOPROXY=https://host.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := map[string]string{}
			if tc.arg != "" {
				args["GOPROXY"] = tc.arg
			}
			p := newPack(t, WithGo(fakeGo), WithEnv([]string{"PATH=" + os.Getenv("PATH"), "GOPROXY=https://host.example.com"}))
			s := &binaryStep{pack: p, fn: languages.Function{Dir: dir, Lang: LangMain, ScratchDir: t.TempDir(), Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, BuildArgs: args}, goVersion: known("go1.26.0")}
			s.Build(context.Background(), io.Discard)
			b, err := os.ReadFile(log)
			if err != nil {
				t.Fatalf("go was not run: %v", err)
			}
			var last string
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "GOPROXY=") {
					last = line
				}
			}
			if last != tc.want {
				t.Errorf("go build ran with %q, want %q", last, tc.want)
			}
		})
	}
}

// TestGOPROXYGoTest: the GOPROXY build argument reaches the go test the
// build runs, as it reaches go build.
func TestGOPROXYGoTest(t *testing.T) {
	tmp := t.TempDir()
	log := filepath.Join(tmp, "calls.log")
	fakeGo := filepath.Join(tmp, "go")
	if err := os.WriteFile(fakeGo, []byte("#!/bin/sh\necho \"$1 GOPROXY=$GOPROXY\" >> "+log+"\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module handler\n\ngo 1.24\n")
	write(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")
	write(t, filepath.Join(dir, "main_test.go"), "package main\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) {}\n")
	p := newPack(t, WithGo(fakeGo), WithEnv([]string{"PATH=" + os.Getenv("PATH"), "GOPROXY=https://host.example.com"}))
	s := &binaryStep{pack: p, fn: languages.Function{Dir: dir, Lang: LangMain, ScratchDir: t.TempDir(), Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, BuildArgs: map[string]string{"GOPROXY": "https://proxy.example.com"}}, goVersion: known("go1.26.0")}
	s.Build(context.Background(), io.Discard)
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("go was not run: %v", err)
	}
	if !strings.Contains(string(b), "test GOPROXY=https://proxy.example.com") {
		t.Errorf("go ran as:\n%s\nwant go test with the build argument's GOPROXY", b)
	}
}
