package stack

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if !d.IsDir() {
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

func TestStage(t *testing.T) {
	cwd := t.TempDir()
	write := func(rel, body string) {
		p := filepath.Join(cwd, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	write("fn/handler.go", "package function")
	write("fn/build/old", "x")
	write("fn/template/t", "x")
	write("common/util.go", "package common")
	write("data/model.bin", "m")
	before := listTree(t, filepath.Join(cwd, "fn"))

	dst := t.TempDir()
	if err := Stage(filepath.Join(cwd, "fn"), dst, cwd, []string{"./common", "data/model.bin"}); err != nil {
		t.Fatalf("Stage() = %v", err)
	}
	want := []string{"common/util.go", "data/model.bin", "handler.go"}
	if got := listTree(t, dst); !slices.Equal(got, want) {
		t.Errorf("Stage() wrote %v, want %v", got, want)
	}
	if after := listTree(t, filepath.Join(cwd, "fn")); !slices.Equal(after, before) {
		t.Errorf("Stage() changed the handler folder: %v, was %v", after, before)
	}

	for _, bad := range []string{".", "..", "../elsewhere", "/etc"} {
		err := Stage(filepath.Join(cwd, "fn"), t.TempDir(), cwd, []string{bad})
		if err == nil || !strings.Contains(err.Error(), "must be a path inside") {
			t.Errorf("Stage(copy %q) = %v, want an outside-the-project error", bad, err)
		}
	}
}
