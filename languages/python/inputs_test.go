package python

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/languages"
)

// TestHandlerInputs checks that requirements.txt or pip.conf linked out of
// the handler folder is never read, and that pip.conf and .pypirc feed the
// install but no layer.
func TestHandlerInputs(t *testing.T) {
	tests := []struct {
		name    string
		links   map[string]string
		files   map[string]string
		wantErr string // the file a SourceError names
	}{
		{"requirements.txt linked out", map[string]string{"requirements.txt": "../shadow"}, nil, "requirements.txt"},
		{"pip.conf linked out", map[string]string{"pip.conf": "/etc/shadow"}, nil, "pip.conf"},
		{"requirements.txt linked inside", map[string]string{"requirements.txt": "deps/requirements.txt"}, map[string]string{"deps/requirements.txt": "\n"}, ""},
		{"credentials", nil, map[string]string{"pip.conf": "[global]\nindex-url = https://u:p@example/simple\n", ".pypirc": "[pypi]\npassword = p\n"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			write(t, filepath.Join(parent, "shadow"), "root:$6$hash:19000::::::\n")
			dir := filepath.Join(parent, "fn")
			write(t, filepath.Join(dir, "handler.py"), "def handle(event, context):\n    return 'ok'\n")
			for name, content := range tc.files {
				write(t, filepath.Join(dir, name), content)
			}
			for name, target := range tc.links {
				if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			fn := languages.Function{Name: "fn", Dir: dir, Lang: LangHTTP, Platform: linuxAMD64, ScratchDir: t.TempDir()}
			_, err := newPack(t).Plan(context.Background(), fn)
			if tc.wantErr != "" {
				var se *languages.SourceError
				if !errors.As(err, &se) || se.Path != filepath.Join(dir, tc.wantErr) || strings.Contains(err.Error(), "root") {
					t.Fatalf("Plan() = %v, want a SourceError on %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Plan() = %v", err)
			}
			files, err := codeFiles(dir)
			if err != nil {
				t.Fatalf("codeFiles() = %v", err)
			}
			for _, f := range files {
				if name := filepath.Base(f.Path); slices.Contains([]string{"pip.conf", ".pypirc"}, name) {
					t.Errorf("codeFiles() has %s, want no credentials", f.Path)
				}
			}
		})
	}
}
