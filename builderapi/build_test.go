package builderapi

import (
	"bufio"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/project"
)

// TestExecutorBuilderDockerfile sends contexts whose lang kiln has no pack
// for (a template's Dockerfile) or none (faas-cli's lang dockerfile): the
// Dockerfile engine builds them, and the reply's NAME@DIGEST is pushed.
func TestExecutorBuilderDockerfile(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	getenv := func(string) string { return "" }
	b := &ExecutorBuilder{CacheDir: t.TempDir(), Getenv: getenv, Options: []project.Option{project.WithGetenv(getenv)}}
	_, url := newServer(t, b)
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"template lang without a pack", map[string]string{
			"template.yml": "language: rust-custom\n", "Dockerfile": "FROM scratch\nCOPY function/ /home/app/\n", "function/main.rs": "fn main() {}\n"}},
		{"lang dockerfile", map[string]string{"Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n", "hello.txt": "hi\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, c := range tc.files {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
				os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644)
			}
			image := host + "/fn/" + strings.ReplaceAll(tc.name, " ", "-") + ":latest"
			body := makeTar(t, dir, Config{Image: image, BuildArgs: map[string]string{"X": "1"}}, nil)
			resp := post(t, url, body, sign(body, secret), true)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d", resp.StatusCode)
			}
			var last Result
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
					t.Fatal(err)
				}
			}
			if last.Status != StatusSuccess {
				t.Fatalf("last reply = %+v, want success", last)
			}
			ref, err := name.NewDigest(last.Image)
			if err != nil {
				t.Fatalf("reply image %q: %v", last.Image, err)
			}
			desc, err := remote.Head(mustTag(t, image))
			if err != nil || desc.Digest.String() != ref.DigestStr() {
				t.Errorf("registry has %s = %v (%v), reply %s", image, desc, err, last.Image)
			}
		})
	}
}

func mustTag(t *testing.T, s string) name.Tag {
	t.Helper()
	tag, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return tag
}
