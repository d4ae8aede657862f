package stack

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestWithLatest(t *testing.T) {
	tests := []struct{ in, want string }{
		{"fn", "fn:latest"},
		{"fn:0.2", "fn:0.2"},
		{"localhost:5000/fn", "localhost:5000/fn:latest"},
		{"localhost:5000/team/fn:1", "localhost:5000/team/fn:1"},
		{"ghcr.io/me/fn@sha256:abc", "ghcr.io/me/fn@sha256:abc"},
	}
	for _, tt := range tests {
		if got := WithLatest(tt.in); got != tt.want {
			t.Errorf("WithLatest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseTagFormat(t *testing.T) {
	for in, want := range map[string]TagFormat{"": TagLatest, "default": TagLatest, "latest": TagLatest, "sha": TagSHA, "branch": TagBranch, "describe": TagDescribe, "digest": TagDigest} {
		if got, err := ParseTagFormat(in); got != want || err != nil {
			t.Errorf("ParseTagFormat(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseTagFormat("semver"); err == nil {
		t.Errorf("ParseTagFormat(semver) = nil error")
	}
}

func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=k", "GIT_AUTHOR_EMAIL=k@example.com", "GIT_COMMITTER_NAME=k", "GIT_COMMITTER_EMAIL=k@example.com", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestImageName(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	handler := filepath.Join(dir, "fn")
	os.MkdirAll(filepath.Join(handler, "sub"), 0o755)
	os.WriteFile(filepath.Join(handler, "handler.go"), []byte("package function\n"), 0o644)
	os.WriteFile(filepath.Join(handler, "sub", "a.txt"), []byte("a"), 0o644)
	runGit(t, dir, "init", "-q", "-b", "master")
	runGit(t, dir, "add", ".")
	runGit(t, dir, "commit", "-q", "-m", "one")
	sha := runGit(t, dir, "rev-parse", "--short", "HEAD")

	// The digest tag, computed independently: MD5 of the concatenated
	// per-file MD5 hex strings, files in sorted path order.
	h1, h2 := md5.Sum([]byte("package function\n")), md5.Sum([]byte("a"))
	sum := md5.Sum([]byte(hex.EncodeToString(h1[:]) + hex.EncodeToString(h2[:])))
	digest := hex.EncodeToString(sum[:])

	tests := []struct {
		format TagFormat
		image  string
		want   string
	}{
		{TagLatest, "fn", "fn:latest"},
		{TagLatest, "localhost:5000/fn", "localhost:5000/fn:latest"},
		{TagSHA, "fn", "fn:latest-" + sha},
		{TagSHA, "fn:0.2", "fn:0.2-" + sha},
		{TagBranch, "fn:0.2", "fn:0.2-master-" + sha},
		{TagDescribe, "fn:0.2", "fn:0.2-" + sha},
		{TagDigest, "fn:0.2", "fn:" + digest},
		{TagDigest, "localhost:5000/fn", "localhost:5000/fn:" + digest},
	}
	for _, tt := range tests {
		t.Run(string(tt.format)+"/"+tt.image, func(t *testing.T) {
			got, err := ImageName(ctx, tt.format, tt.image, handler, dir)
			if err != nil || got != tt.want {
				t.Errorf("ImageName(%s, %q) = %q, %v, want %q", tt.format, tt.image, got, err, tt.want)
			}
		})
	}
	runGit(t, dir, "tag", "v0.1.0")
	if got, _ := ImageName(ctx, TagDescribe, "fn:0.2", handler, dir); got != "fn:0.2-v0.1.0" {
		t.Errorf("ImageName(describe) with a tag = %q, want fn:0.2-v0.1.0", got)
	}
	_, err := ImageName(ctx, TagSHA, "fn", handler, t.TempDir())
	var exit *exec.ExitError
	if err == nil || errors.As(err, &exit) || !strings.Contains(err.Error(), "not a git repository") {
		t.Errorf("ImageName(sha) outside a git repository = %v, want git's message and no *exec.ExitError (main takes that for a child's exit status)", err)
	}
}

// The whole paths are sorted: a walk, folder by folder, would hash a/z
// before a-b.
func TestHandlerHashOrder(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "z"), []byte("z"), 0o644)
	os.WriteFile(filepath.Join(dir, "a-b"), []byte("ab"), 0o644)
	hz, hab := md5.Sum([]byte("z")), md5.Sum([]byte("ab"))
	sum := md5.Sum([]byte(hex.EncodeToString(hab[:]) + hex.EncodeToString(hz[:])))
	got, err := HandlerHash(dir)
	if want := hex.EncodeToString(sum[:]); err != nil || got != want {
		t.Errorf("HandlerHash = %q, %v, want %q (a-b before a/z)", got, err, want)
	}
}
