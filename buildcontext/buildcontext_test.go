package buildcontext

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// writeTree writes files (path to content; a content starting with "->"
// makes a symbolic link) under a new folder.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, full)
		} else {
			err = os.WriteFile(full, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// listTree returns the files and links under dir, as writeTree takes them.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if info.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			out[filepath.ToSlash(rel)] = "->" + target
			return err
		}
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPackExtract(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		opts  []Option
		want  map[string]string
	}{
		{
			name:  "a plain tree with a link",
			files: map[string]string{"handler.go": "package function", "static/index.html": "hi", "static/home.html": "->index.html"},
			want:  map[string]string{"handler.go": "package function", "static/index.html": "hi", "static/home.html": "->index.html"},
		},
		{
			name: "dockerignore and credential files",
			files: map[string]string{
				".dockerignore": "*.log\nnode_modules\n!keep.log", "Dockerfile": "FROM scratch",
				"a.log": "x", "keep.log": "kept", "node_modules/x/index.js": "x", "src/.npmrc": "//registry/:_authToken=secret",
				".pypirc": "p", "pip.conf": "p", ".netrc": "n", ".git-credentials": "g", ".docker/config.json": "{}",
				".git/HEAD": "ref", "settings.xml": "<settings/>", "src/app.js": "app",
			},
			want: map[string]string{".dockerignore": "*.log\nnode_modules\n!keep.log", "Dockerfile": "FROM scratch", "keep.log": "kept", "settings.xml": "<settings/>", "src/app.js": "app"},
		},
		{
			name:  "extra excludes",
			files: map[string]string{"a.txt": "a", "b.txt": "b"},
			opts:  []Option{WithExclude("b.txt")},
			want:  map[string]string{"a.txt": "a"},
		},
		{
			name:  "an ignored Dockerfile stays",
			files: map[string]string{".dockerignore": "Dockerfile\n*.txt", "Dockerfile": "FROM scratch", "a.txt": "a"},
			want:  map[string]string{".dockerignore": "Dockerfile\n*.txt", "Dockerfile": "FROM scratch"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := writeTree(t, tc.files)
			img, err := Pack(ctx, dir, tc.opts...)
			if err != nil {
				t.Fatalf("Pack() = %v", err)
			}
			// The config is not an image config: validate the layer.
			layers, err := img.Layers()
			if err != nil || len(layers) != 1 {
				t.Fatalf("Layers() = %d layers, %v; want 1", len(layers), err)
			}
			if err := validate.Layer(layers[0]); err != nil {
				t.Fatalf("validate.Layer() = %v", err)
			}
			dst := t.TempDir()
			if err := Extract(img, dst); err != nil {
				t.Fatalf("Extract() = %v", err)
			}
			if diff := cmp.Diff(tc.want, listTree(t, dst)); diff != "" {
				t.Errorf("extracted tree (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPackDeterministic packs the same tree twice, written at different
// times in different folders, and wants one digest.
func TestPackDeterministic(t *testing.T) {
	ctx := context.Background()
	files := map[string]string{"a/b.txt": "b", "a.txt": "a", "c": "->a.txt"}
	first, err := Pack(ctx, writeTree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeTree(t, files)
	if err := os.Chtimes(filepath.Join(dir, "a.txt"), time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
		t.Fatal(err)
	}
	second, err := Pack(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Digest()
	d2, _ := second.Digest()
	if d1 != d2 {
		t.Errorf("Pack() digests = %s, %s, want one", d1, d2)
	}
	m, err := first.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != string(MediaType) || m.Config.MediaType != MediaType {
		t.Errorf("manifest artifactType %q config %q, want %s", m.ArtifactType, m.Config.MediaType, MediaType)
	}
}

func TestPushFetch(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	files := map[string]string{"stack.yml": "version: 1.0", "fn/handler.go": "package function"}
	img, err := Pack(ctx, writeTree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(srv.URL, "http://") + "/ctx/fn:latest")
	if err != nil {
		t.Fatal(err)
	}
	dref, err := Push(ctx, ref, img)
	if err != nil {
		t.Fatalf("Push() = %v", err)
	}
	dst := t.TempDir()
	if err := Fetch(ctx, dref, dst); err != nil {
		t.Fatalf("Fetch(%s) = %v", dref, err)
	}
	if diff := cmp.Diff(files, listTree(t, dst)); diff != "" {
		t.Errorf("fetched tree (-want +got):\n%s", diff)
	}
}

func TestExtractTarRefuses(t *testing.T) {
	tests := []struct {
		name    string
		headers []tar.Header
		want    string
	}{
		{"dot-dot path", []tar.Header{{Name: "../evil", Typeflag: tar.TypeReg}}, "leaves the context folder"},
		{"absolute path", []tar.Header{{Name: "/etc/evil", Typeflag: tar.TypeReg}}, "leaves the context folder"},
		{"symlink out", []tar.Header{{Name: "a/l", Typeflag: tar.TypeSymlink, Linkname: "../../x"}}, "link to"},
		{"absolute symlink", []tar.Header{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}, "link to"},
		{"hard link out", []tar.Header{{Name: "l", Typeflag: tar.TypeLink, Linkname: "../x"}}, "link to"},
		{"device", []tar.Header{{Name: "d", Typeflag: tar.TypeChar}}, "not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tc.headers {
				h.Mode = 0o644
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			err := ExtractTar(&buf, dst)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ExtractTar() = %v, want an error with %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(parent); !slices.EqualFunc(entries, []string{"dst"}, func(e os.DirEntry, n string) bool { return e.Name() == n }) {
				t.Errorf("ExtractTar() wrote outside dst: %v", entries)
			}
		})
	}
}
