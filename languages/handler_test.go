package languages

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// secret stands for a host file outside the handler folder, such as
// /etc/shadow, whose content must reach no layer and no error.
const secret = "root:$6$secret-hash:19000:0:99999:7:::\n"

// handlerDir writes a handler folder beside a secret host file: files maps
// names to contents, links maps names to link targets.
func handlerDir(t *testing.T, files, links map[string]string) string {
	t.Helper()
	parent := t.TempDir()
	if err := os.WriteFile(filepath.Join(parent, "shadow"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "fn")
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range links {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestHandlerFiles(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		links   map[string]string
		want    []string // paths in the layer
		wantErr string   // the link a SourceError names
	}{
		{"link inside is kept", map[string]string{"handler.js": "x"}, map[string]string{"index.js": "handler.js"},
			[]string{"f/handler.js", "f/index.js"}, ""},
		{"link from a subfolder to the top", map[string]string{"lib/a.go": "x", "b.go": "y"}, map[string]string{"lib/b.go": "../b.go"},
			[]string{"f/b.go", "f/lib", "f/lib/a.go", "f/lib/b.go"}, ""},
		{"relative link out", map[string]string{"handler.py": "x"}, map[string]string{"shared.py": "../shadow"}, nil, "shared.py"},
		{"link out through a subfolder", map[string]string{"handler.py": "x"}, map[string]string{"sub/shared.py": "../../shadow"}, nil, "sub/shared.py"},
		{"absolute link", map[string]string{"handler.py": "x"}, map[string]string{"passwd": "/etc/passwd"}, nil, "passwd"},
		{"skipped link out is no matter", map[string]string{"handler.py": "x"}, map[string]string{"node_modules/x": "/etc/passwd"},
			[]string{"f/handler.py"}, ""},
		{"credentials are left out", map[string]string{"handler.js": "x", ".npmrc": "//r/:_authToken=t", "pip.conf": "[global]", ".pypirc": "[pypi]", "sub/settings.xml": "<settings/>"}, nil,
			[]string{"f/handler.js", "f/sub"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := handlerDir(t, tc.files, tc.links)
			files, err := HandlerFiles(dir, "f", func(rel string, d fs.DirEntry) bool { return rel == "node_modules" })
			if tc.wantErr != "" {
				var se *SourceError
				if !errors.As(err, &se) || se.Path != filepath.Join(dir, tc.wantErr) {
					t.Fatalf("HandlerFiles() = %v, want a SourceError on %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("HandlerFiles() = %v", err)
			}
			var got []string
			for _, f := range files {
				got = append(got, f.Path)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("HandlerFiles() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadManifest(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		links    map[string]string
		want     string
		wantErr  bool // a SourceError
		notExist bool
	}{
		{"regular", map[string]string{"package.json": "{}"}, nil, "{}", false, false},
		{"link inside", map[string]string{"real.json": "{}"}, map[string]string{"package.json": "real.json"}, "{}", false, false},
		{"link out", nil, map[string]string{"package.json": "../shadow"}, "", true, false},
		{"absolute link out", nil, map[string]string{"package.json": "/etc/passwd"}, "", true, false},
		{"link inside to a link out", nil, map[string]string{"package.json": "sub/p.json", "sub/p.json": "../../shadow"}, "", true, false},
		{"missing", nil, nil, "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := handlerDir(t, tc.files, tc.links)
			got, err := ReadManifest(dir, "package.json")
			var se *SourceError
			switch {
			case tc.wantErr:
				if !errors.As(err, &se) {
					t.Fatalf("ReadManifest() = %q, %v, want a SourceError", got, err)
				}
				if strings.Contains(err.Error(), "secret") || got != nil {
					t.Errorf("ReadManifest() = %q, %v: the host file's content leaks", got, err)
				}
			case tc.notExist:
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("ReadManifest() = %v, want fs.ErrNotExist", err)
				}
			case err != nil || string(got) != tc.want:
				t.Errorf("ReadManifest() = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}
