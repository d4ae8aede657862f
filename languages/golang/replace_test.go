package golang

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packtest"
)

func TestLocalReplaces(t *testing.T) {
	tests := []struct {
		name string
		mod  string
		want []localReplace
	}{
		{"none", "module handler/function\n\ngo 1.22\n", nil},
		{"one line", "module m\n\nreplace example.com/lib => ../lib\n",
			[]localReplace{{Path: "../lib", Line: 3}}},
		{"with a version, quoted, commented", "module m\nreplace example.com/lib v1.2.3 => \"./vendor2/lib\" // local\n",
			[]localReplace{{Path: "./vendor2/lib", Line: 2}}},
		{"block", "module m\n\nreplace (\n\texample.com/a => ../a\n\texample.com/b => example.com/b v1.0.0\n\texample.com/c v0.1.0 => /opt/c\n)\n",
			[]localReplace{{Path: "../a", Line: 4}, {Path: "/opt/c", Line: 6}}},
		{"module replacement only", "module m\nreplace example.com/lib => example.com/fork v1.0.0\n", nil},
		{"commented out", "module m\n// replace example.com/lib => ../lib\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := localReplaces([]byte(tc.mod))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("localReplaces() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// replaceFunction writes a function whose go.mod replaces example.com/lib
// with the folder ../lib, and that folder, under parent; it returns the
// handler folder. go.mod's replace is on line 7.
func replaceFunction(t *testing.T, parent string) string {
	t.Helper()
	dir := filepath.Join(parent, "fn")
	write(t, filepath.Join(dir, "go.mod"), "module handler/function\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n")
	write(t, filepath.Join(dir, "handler.go"), "package main\n\nimport \"example.com/lib\"\n\nfunc main() { println(lib.V) }\n")
	write(t, filepath.Join(parent, "lib", "go.mod"), "module example.com/lib\n\ngo 1.22\n")
	write(t, filepath.Join(parent, "lib", "lib.go"), "package lib\n\nconst V = 1\n")
	return dir
}

// TestReplaceKey checks that the binary's key covers the folder go.mod's
// replace names, and only it of what is outside the handler folder: an
// edit there rebuilds the binary, one elsewhere does not. A folder that is
// gone or is a link is an error on go.mod's line, from the plan or the
// key.
func TestReplaceKey(t *testing.T) {
	parent := t.TempDir()
	dir := replaceFunction(t, parent)
	write(t, filepath.Join(parent, "other", "x.go"), "package other\n")
	p := newPack(t)
	key := func() (v1.Hash, error) {
		t.Helper()
		pl, err := p.Plan(context.Background(), languages.Function{Dir: dir, Lang: LangMain, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
		if err != nil {
			return v1.Hash{}, err
		}
		bin := pl.Steps[0].(*binaryStep)
		bin.goVersion = lazy.New(func(context.Context) (string, error) { return "go1.26.0", nil })
		return bin.Key(context.Background())
	}
	gomod := filepath.Join(dir, "go.mod")
	tests := []struct {
		name    string
		edit    func()
		changes bool
		wantErr string // the file:line a SourceError names
	}{
		{"nothing", func() {}, false, ""},
		{"edit the replaced folder", func() { write(t, filepath.Join(parent, "lib", "lib.go"), "package lib\n\nconst V = 2\n") }, true, ""},
		{"add a file there", func() { write(t, filepath.Join(parent, "lib", "more.go"), "package lib\n") }, true, ""},
		{"edit a folder beside it", func() { write(t, filepath.Join(parent, "other", "x.go"), "package other // edited\n") }, false, ""},
		{"add a file beside the handler folder", func() { write(t, filepath.Join(parent, "notes.txt"), "x") }, false, ""},
		{"edit the replaced folder's .git", func() { write(t, filepath.Join(parent, "lib", ".git", "HEAD"), "ref: x") }, false, ""},
		{"a link out of it", func() {
			if err := os.Symlink("/etc/passwd", filepath.Join(parent, "lib", "passwd")); err != nil {
				t.Fatal(err)
			}
		}, false, filepath.Join(parent, "lib", "passwd")},
		{"the folder gone", func() {
			if err := os.RemoveAll(filepath.Join(parent, "lib")); err != nil {
				t.Fatal(err)
			}
		}, false, gomod + ":7"},
		{"the folder a link to another", func() {
			write(t, filepath.Join(parent, "real", "go.mod"), "module example.com/lib\n")
			if err := os.Symlink("real", filepath.Join(parent, "lib")); err != nil {
				t.Fatal(err)
			}
		}, false, gomod + ":7"},
	}
	before, err := key()
	if err != nil {
		t.Fatalf("Key() = %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.edit()
			after, err := key()
			if tc.wantErr != "" {
				var se *languages.SourceError
				if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), tc.wantErr+":") || strings.Contains(err.Error(), "\n") {
					t.Errorf("Key() = %v, want one line on %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Key() = %v", err)
			}
			if changed := after != before; changed != tc.changes {
				t.Errorf("Key() changed = %v, want %v", changed, tc.changes)
			}
			before = after
		})
	}
}

// TestReplaceNamed: the plan names the replaced folder, outside the
// handler folder, for `kiln dev` to watch.
func TestReplaceNamed(t *testing.T) {
	parent := t.TempDir()
	dir := replaceFunction(t, parent)
	pl, err := newPack(t).Plan(context.Background(), languages.Function{Dir: dir, Lang: LangMain, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil {
		t.Fatalf("Plan() = %v", err)
	}
	if len(pl.Named) != 1 || pl.Named[0].Path != filepath.Join(parent, "lib") || pl.Named[0].Rel != "../lib" || !pl.Named[0].Outside() {
		t.Errorf("Plan().Named = %+v, want ../lib, outside", pl.Named)
	}
}

// TestReplaceRefused: go.mod's replace names a folder as a relative path,
// reached without links; anything else is one line on go.mod's line.
func TestReplaceRefused(t *testing.T) {
	tests := []struct {
		name, target string
		setup        func(t *testing.T, parent string)
		wantReason   string
	}{
		{"absolute path", "/usr/lib/go", nil, "absolute path"},
		{"missing", "../nowhere", nil, "not found"},
		{"a file", "../lib/lib.go", nil, "not a folder"},
		{"through a linked folder", "../linked/lib", func(t *testing.T, parent string) {
			if err := os.Symlink(parent, filepath.Join(parent, "linked")); err != nil {
				t.Fatal(err)
			}
		}, "is a symlink to"},
		{"through a link inside the handler folder", "./vendored/lib", func(t *testing.T, parent string) {
			if err := os.Symlink("../../lib", filepath.Join(parent, "fn", "vendored")); err != nil {
				t.Fatal(err)
			}
		}, "is a symlink to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := replaceFunction(t, parent)
			write(t, filepath.Join(dir, "go.mod"), "module handler/function\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => "+tc.target+"\n")
			if tc.setup != nil {
				tc.setup(t, parent)
			}
			fn := languages.Function{Dir: dir, Lang: LangMain, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}}
			_, err := resolveReplaces(fn, []localReplace{{Path: tc.target, Line: 7}})
			want := filepath.Join(dir, "go.mod") + ":7: replace => " + tc.target + ": "
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.wantReason) || strings.Contains(err.Error(), "\n") {
				t.Errorf("resolveReplaces() = %v, want one line starting %q, saying %q", err, want, tc.wantReason)
			}
		})
	}
}

// TestReplaceBuild builds a function whose go.mod replaces a module with
// a folder beside it, with the real go command: the build reads the
// staged copy of that folder, an edit there rebuilds the binary with the
// new code, and an edit elsewhere outside the handler folder does not.
func TestReplaceBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	parent := t.TempDir()
	dir := replaceFunction(t, parent)
	b := packtest.NewBuilder(t, newPack(t, WithEnv(os.Environ())))
	fn := languages.Function{Name: "fn", Dir: dir, Lang: LangMain, Platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}
	build := func() builder.LayerReport {
		t.Helper()
		res, err := b.Build(context.Background(), fn)
		if err != nil {
			t.Fatalf("Build() = %v", err)
		}
		for _, l := range res.Layers {
			if l.Name == "handler binary" {
				return l
			}
		}
		t.Fatalf("Build() layers = %v, want a handler binary", res.Layers)
		return builder.LayerReport{}
	}
	first := build()
	write(t, filepath.Join(parent, "elsewhere.go"), "package x\n")
	if again := build(); !again.Cached || again.Digest != first.Digest {
		t.Errorf("after an edit outside the replaced folder, binary = %+v, want the cached %s", again, first.Digest)
	}
	write(t, filepath.Join(parent, "lib", "lib.go"), "package lib\n\nconst V = 2\n")
	if edited := build(); edited.Cached || edited.Digest == first.Digest {
		t.Errorf("after an edit in the replaced folder, binary = %+v, want a new one", edited)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("the handler folder holds %d entries after the builds, want its 2: go wrote into it", len(entries))
	}
}
