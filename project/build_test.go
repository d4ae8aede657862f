package project

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestCopiedPaths: the configuration.copy paths that exist outside the
// handler folder are what a build reads there.
func TestCopiedPaths(t *testing.T) {
	cwd := t.TempDir()
	for _, d := range []string{"fn/extra", "common", "shared/deep"} {
		if err := os.MkdirAll(filepath.Join(cwd, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got := copiedPaths(cwd, filepath.Join(cwd, "fn"), []string{"./common", "fn/extra", "missing", "shared/deep", "../elsewhere"})
	if want := []string{filepath.Join(cwd, "common"), filepath.Join(cwd, "shared", "deep")}; !slices.Equal(got, want) {
		t.Errorf("copiedPaths() = %v, want %v", got, want)
	}
}
