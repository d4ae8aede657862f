package executor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/project"
)

// TestFromGitCommit clones a ref, and a commit older than the ref's tip.
func TestFromGitCommit(t *testing.T) {
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"v.txt": "one"})
	repo := gitRepo(t, src)
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	first := git("rev-parse", "HEAD")
	os.WriteFile(filepath.Join(repo, "v.txt"), []byte("two"), 0o644)
	git("commit", "-qam", "two")
	tests := []struct{ context, want string }{
		{repo, "two"},
		{repo + "#main", "two"},
		{repo + "#main#" + first, "one"},
	}
	for _, tc := range tests {
		t.Run(tc.context, func(t *testing.T) {
			ws, err := fromGit(context.Background(), tc.context, nil, Env{Getenv: noEnv, Environ: os.Environ()})
			if err != nil {
				t.Fatalf("fromGit() = %v", err)
			}
			defer ws.Close()
			got, _ := os.ReadFile(filepath.Join(ws.Dir, "v.txt"))
			if string(got) != tc.want {
				t.Errorf("v.txt = %q, want %q", got, tc.want)
			}
			if _, err := os.Stat(filepath.Join(ws.Dir, ".git")); err == nil {
				t.Errorf("the context holds .git")
			}
		})
	}
	if _, err := fromGit(context.Background(), repo+"#no-such-branch", nil, Env{Getenv: noEnv}); err == nil || !strings.Contains(err.Error(), "git fetch") {
		t.Errorf("fromGit(no such branch) = %v, want git fetch's error", err)
	}
}

// TestRunSubPathTargetAndFailure builds a stage of a Dockerfile in a
// sub-folder of the context, and a failing build, which pushes nothing.
func TestRunSubPathTargetAndFailure(t *testing.T) {
	reg := startRegistry(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"app/Dockerfile": "FROM scratch AS first\nCOPY a.txt /a.txt\nFROM scratch\nCOPY missing.txt /m.txt\n",
		"app/a.txt":      "a",
	})
	getenv := func(k string) string { return map[string]string{"KILN_CACHE_DIR": t.TempDir()}[k] }
	run := func(args ...string) error {
		f, err := Parse(args, getenv)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Run(context.Background(), f, Env{Getenv: getenv}, project.WithGetenv(getenv))
		return err
	}
	if err := run("-c", dir, "--context-sub-path", "app", "--target", "first", "-d", reg+"/fn/first:1"); err != nil {
		t.Fatalf("--target first: %v", err)
	}
	if _, err := remote.Head(mustRef(t, reg+"/fn/first:1")); err != nil {
		t.Errorf("--target first was not pushed: %v", err)
	}
	err := run("-c", dir, "--context-sub-path", "app", "-d", reg+"/fn/last:1")
	if err == nil || !strings.Contains(err.Error(), "missing.txt") || strings.Contains(strings.TrimSpace(err.Error()), "\n") {
		t.Errorf("a failing build = %v, want one line naming missing.txt", err)
	}
	if _, err := remote.Head(mustRef(t, reg+"/fn/last:1")); err == nil {
		t.Errorf("a failed build was pushed")
	}
	if err := run("-c", dir, "--context-sub-path", "../x", "-d", reg+"/fn/x:1"); err == nil || !strings.Contains(err.Error(), "--context-sub-path") {
		t.Errorf("--context-sub-path ../x = %v, want an error naming the flag", err)
	}
}

// TestRunRegistryMirror pulls a Docker Hub FROM from --registry-mirror
// (and --registry-map's docker.io entry), and with
// --skip-default-registry-fallback fails one the mirror lacks without
// trying Docker Hub.
func TestRunRegistryMirror(t *testing.T) {
	mirror := startRegistry(t)
	base, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, mirror+"/library/kiln-base:1"), base); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from string
		flags      []string
		wantErr    string
	}{
		{"mirror", "kiln-base:1", []string{"--registry-mirror", mirror}, ""},
		{"registry map", "docker.io/library/kiln-base:1", []string{"--registry-map", "index.docker.io=" + mirror}, ""},
		{"no fallback", "kiln-missing:1", []string{"--registry-mirror", mirror, "--skip-default-registry-fallback"}, "no registry mirror has it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"Dockerfile": "FROM " + tc.from + "\nCOPY a.txt /a.txt\n", "a.txt": "a"})
			getenv := func(k string) string { return map[string]string{"KILN_CACHE_DIR": t.TempDir()}[k] }
			f, err := Parse(append([]string{"-c", dir, "--no-push"}, tc.flags...), getenv)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Run(context.Background(), f, Env{Getenv: getenv}, project.WithGetenv(getenv))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Run() = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Run() = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}
