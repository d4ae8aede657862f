package node

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/languages"
)

// TestHandlerInputs checks that a manifest linked out of the handler folder
// is never read and that .npmrc feeds the install but no layer.
func TestHandlerInputs(t *testing.T) {
	tests := []struct {
		name      string
		link      string // package.json's target, "" for a regular file
		npmrc     string
		wantErr   bool
		wantNpmrc string
	}{
		{"package.json linked out", "../shadow", "", true, ""},
		{"package.json linked inside", "real.json", "", false, ""},
		{".npmrc with a token", "", "//registry.example/:_authToken=s3cret\n", false, "//registry.example/:_authToken=s3cret\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			write(t, filepath.Join(parent, "shadow"), "root:$6$hash:19000::::::\n")
			dir := function(t, map[string]string{".npmrc": tc.npmrc})
			if err := os.Rename(dir, filepath.Join(parent, "fn")); err != nil {
				t.Fatal(err)
			}
			dir = filepath.Join(parent, "fn")
			if tc.link != "" {
				if err := os.Rename(filepath.Join(dir, "package.json"), filepath.Join(dir, "real.json")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(tc.link, filepath.Join(dir, "package.json")); err != nil {
					t.Fatal(err)
				}
			}
			m, err := readManifest(dir)
			if tc.wantErr {
				var se *languages.SourceError
				if !errors.As(err, &se) || !strings.Contains(se.Reason, "outside the handler folder") || strings.Contains(err.Error(), "root") {
					t.Fatalf("readManifest() = %v, want a SourceError on the link", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("readManifest() = %v", err)
			}
			if string(m.npmrc) != tc.wantNpmrc {
				t.Errorf("readManifest().npmrc = %q, want %q", m.npmrc, tc.wantNpmrc)
			}
			code := &codeStep{fn: languages.Function{Dir: dir}}
			files, err := code.files()
			if err != nil {
				t.Fatalf("files() = %v", err)
			}
			var paths []string
			for _, f := range files {
				paths = append(paths, f.Path)
			}
			if slices.Contains(paths, functionDir+"/.npmrc") {
				t.Errorf("files() = %v, want no .npmrc", paths)
			}
		})
	}
}
