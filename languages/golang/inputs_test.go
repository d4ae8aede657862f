package golang

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/languages"
)

// TestSourceFilesLinks checks that a Go file linked from outside the
// handler folder, which go build would read but the key would not cover,
// is refused, while a link inside is kept.
func TestSourceFilesLinks(t *testing.T) {
	tests := []struct {
		name    string
		target  string
		wantErr bool
	}{
		{"link inside", "handler.go", false},
		{"link out", "../lib/shared.go", true},
		{"absolute link", "/usr/lib/go/src/fmt/print.go", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			write(t, filepath.Join(parent, "lib", "shared.go"), "package function\n")
			dir := filepath.Join(parent, "fn")
			write(t, filepath.Join(dir, "handler.go"), "package function\n")
			if err := os.Symlink(tc.target, filepath.Join(dir, "shared.go")); err != nil {
				t.Fatal(err)
			}
			_, err := sourceFiles(dir)
			var se *languages.SourceError
			if got := errors.As(err, &se); got != tc.wantErr {
				t.Errorf("sourceFiles() = %v, want a SourceError: %v", err, tc.wantErr)
			}
		})
	}
}
