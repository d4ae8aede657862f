package languages

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/layers"
)

// TestName resolves paths as a manifest in the handler folder names them:
// relative, lexically, and never through a link.
func TestName(t *testing.T) {
	tests := []struct {
		name       string
		written    string
		setup      func(t *testing.T, parent string)
		origin     bool // fn.Dir is a staged copy of parent/fn
		wantRel    string
		wantReason string // for a SourceError on the manifest's line
	}{
		{"sibling folder", "../lib", nil, false, "../lib", ""},
		{"inside the handler folder", "./deps/base.txt", nil, false, "deps/base.txt", ""},
		{"two levels up", "../../up/lib", func(t *testing.T, parent string) { mkdir(t, filepath.Join(filepath.Dir(parent), "up", "lib")) }, false, "../../up/lib", ""},
		{"absolute", "/etc", nil, false, "", "absolute path"},
		{"missing", "../nowhere", nil, false, "", "not found"},
		{"a link to the folder", "../linked", func(t *testing.T, parent string) { symlink(t, "lib", filepath.Join(parent, "linked")) }, false, "", "is a symlink to lib"},
		{"through a linked folder", "../linked/x", func(t *testing.T, parent string) { symlink(t, "lib", filepath.Join(parent, "linked")) }, false, "", "is a symlink to lib"},
		{"through a link in the handler folder", "./out/x", func(t *testing.T, parent string) { symlink(t, "../lib", filepath.Join(parent, "fn", "out")) }, false, "", "is a symlink to ../lib"},
		{"a link to a host file", "../shadow-link", func(t *testing.T, parent string) { symlink(t, "shadow", filepath.Join(parent, "shadow-link")) }, false, "", "is a symlink to shadow"},
		{"from a staged copy", "../lib", nil, true, "../lib", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := handlerDir(t, map[string]string{"go.mod": "module m\n", "deps/base.txt": "x\n"}, nil)
			parent := filepath.Dir(dir)
			mkdir(t, filepath.Join(parent, "lib", "x"))
			if tc.setup != nil {
				tc.setup(t, parent)
			}
			fn := Function{Dir: dir}
			if tc.origin {
				fn = Function{Dir: t.TempDir(), Origin: dir}
			}
			manifest := filepath.Join(fn.Dir, "go.mod")
			n, err := Name(fn, manifest, 3, "replace => "+tc.written, fn.Dir, tc.written)
			if tc.wantReason != "" {
				var se *SourceError
				if !errors.As(err, &se) || se.Path != manifest || se.Line != 3 || !strings.Contains(se.Reason, tc.wantReason) || strings.Contains(err.Error(), "secret") {
					t.Fatalf("Name() = %v, want a SourceError on go.mod:3 saying %q", err, tc.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Name() = %v", err)
			}
			if n.Rel != tc.wantRel {
				t.Errorf("Name().Rel = %q, want %q", n.Rel, tc.wantRel)
			}
			if want := filepath.Join(dir, tc.written); n.Path != want {
				t.Errorf("Name().Path = %q, want %q", n.Path, want)
			}
		})
	}
}

// TestStage stages the handler folder with the paths its manifests name
// and checks that each lands where its relative path says, in a layout
// named by the paths alone.
func TestStage(t *testing.T) {
	tests := []struct {
		name    string
		files   []layers.File
		wantDir string // the handler folder's copy, relative to the root
		want    []string
		wantErr bool
	}{
		{"inside only", []layers.File{layers.Bytes("go.mod", 0o644, nil), layers.Bytes("deps/a.txt", 0o644, nil)}, ".",
			[]string{"deps/a.txt", "go.mod"}, false},
		{"a sibling", []layers.File{layers.Bytes("go.mod", 0o644, nil), layers.Dir("../lib", 0o755), layers.Bytes("../lib/lib.go", 0o644, nil)}, "kiln-function",
			[]string{"kiln-function/go.mod", "lib/lib.go"}, false},
		{"two levels up", []layers.File{layers.Bytes("go.mod", 0o644, nil), layers.Bytes("../../x/y.txt", 0o644, nil), layers.Bytes("../lib.go", 0o644, nil)}, "kiln-up/kiln-function",
			[]string{"kiln-up/kiln-function/go.mod", "kiln-up/lib.go", "x/y.txt"}, false},
		{"a link kept", []layers.File{layers.Bytes("a", 0o644, nil), layers.Symlink("b", "a")}, ".",
			[]string{"a", "b"}, false},
		{"back into the made-up name", []layers.File{layers.Bytes("go.mod", 0o644, nil), layers.Bytes("../kiln-function/x", 0o644, nil)}, "", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir, err := Stage(root, tc.files)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Stage() = %s, want an error", dir)
				}
				return
			}
			if err != nil {
				t.Fatalf("Stage() = %v", err)
			}
			if want := filepath.Join(root, tc.wantDir); dir != want || StagedDir(root, tc.files) != want {
				t.Errorf("Stage() = %s, StagedDir() = %s, want %s", dir, StagedDir(root, tc.files), want)
			}
			var got []string
			err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(root, p)
					got = append(got, filepath.ToSlash(rel))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Stage() wrote %v, want %v", got, tc.want)
			}
		})
	}
}

// TestNamedFilesStaged lists a named folder, stages it beside the handler
// folder's files, and reads the copy: the content is the host's at the
// time of staging, and a credentials file stays behind.
func TestNamedFilesStaged(t *testing.T) {
	dir := handlerDir(t, map[string]string{"package.json": "{}"}, nil)
	lib := filepath.Join(filepath.Dir(dir), "lib")
	mkdir(t, lib)
	for name, content := range map[string]string{"index.js": "module.exports = 1\n", ".npmrc": "//r/:_authToken=t\n"} {
		if err := os.WriteFile(filepath.Join(lib, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n, err := Name(Function{Dir: dir}, filepath.Join(dir, "package.json"), 0, `"lib": "file:../lib"`, dir, "../lib")
	if err != nil {
		t.Fatal(err)
	}
	named, err := n.Files(nil)
	if err != nil {
		t.Fatalf("Files() = %v", err)
	}
	own, err := HandlerFiles(dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	staged, err := Stage(t.TempDir(), append(own, named...))
	if err != nil {
		t.Fatalf("Stage() = %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(staged, "..", "lib", "index.js")); err != nil || string(b) != "module.exports = 1\n" {
		t.Errorf("staged ../lib/index.js = %q, %v, want the host's", b, err)
	}
	if _, err := os.Stat(filepath.Join(staged, "..", "lib", ".npmrc")); err == nil {
		t.Errorf("staged ../lib/.npmrc, want credentials left behind")
	}
	if b, err := os.ReadFile(filepath.Join(staged, "package.json")); err != nil || string(b) != "{}" {
		t.Errorf("staged package.json = %q, %v", b, err)
	}
}

func TestUnstage(t *testing.T) {
	out := "../src/kiln-function/handler.go:5: x\n../src/lib/lib.go:4: y\n/s/src/kiln-function/a.go:1: z"
	got := Unstage(out, "/s/src/kiln-function", "/home/u/fn", "/s/main")
	want := "/home/u/fn/handler.go:5: x\n/home/u/lib/lib.go:4: y\n/home/u/fn/a.go:1: z"
	if got != want {
		t.Errorf("Unstage() = %q, want %q", got, want)
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
