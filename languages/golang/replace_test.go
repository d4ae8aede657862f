package golang

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
)

func TestLocalReplaces(t *testing.T) {
	tests := []struct {
		name string
		mod  string
		want []localReplace
	}{
		{"none", "module handler/function\n\ngo 1.22\n", nil},
		{"one line", "module m\n\nreplace example.com/lib => ../lib\n",
			[]localReplace{{Path: "../lib", Dir: "/src/lib", Line: 3}}},
		{"with a version, quoted, commented", "module m\nreplace example.com/lib v1.2.3 => \"./vendor2/lib\" // local\n",
			[]localReplace{{Path: "./vendor2/lib", Dir: "/src/fn/vendor2/lib", Line: 2}}},
		{"block", "module m\n\nreplace (\n\texample.com/a => ../a\n\texample.com/b => example.com/b v1.0.0\n\texample.com/c v0.1.0 => /opt/c\n)\n",
			[]localReplace{{Path: "../a", Dir: "/src/a", Line: 4}, {Path: "/opt/c", Dir: "/opt/c", Line: 6}}},
		{"module replacement only", "module m\nreplace example.com/lib => example.com/fork v1.0.0\n", nil},
		{"commented out", "module m\n// replace example.com/lib => ../lib\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := localReplaces("/src/fn/go.mod", []byte(tc.mod))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("localReplaces() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReplaceKey checks that the binary's key covers a folder go.mod's
// replace names: an edit there rebuilds the binary.
func TestReplaceKey(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "fn")
	write(t, filepath.Join(dir, "go.mod"), "module handler/function\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n")
	write(t, filepath.Join(dir, "handler.go"), "package main\n\nfunc main() {}\n")
	write(t, filepath.Join(parent, "lib", "go.mod"), "module example.com/lib\n")
	write(t, filepath.Join(parent, "lib", "lib.go"), "package lib\n\nconst V = 1\n")
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	key := func() (v1.Hash, error) {
		t.Helper()
		pl, err := p.Plan(context.Background(), languages.Function{Dir: dir, Lang: LangMain, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
		if err != nil {
			t.Fatalf("Plan() = %v", err)
		}
		bin := pl.Steps[0].(*binaryStep)
		bin.goVersion = lazy.New(func(context.Context) (string, error) { return "go1.26.0", nil })
		return bin.Key(context.Background())
	}
	tests := []struct {
		name    string
		edit    func()
		changes bool
		wantErr bool
	}{
		{"nothing", func() {}, false, false},
		{"edit the replaced folder", func() { write(t, filepath.Join(parent, "lib", "lib.go"), "package lib\n\nconst V = 2\n") }, true, false},
		{"add a file there", func() { write(t, filepath.Join(parent, "lib", "more.go"), "package lib\n") }, true, false},
		{"a link out of it", func() {
			if err := os.Symlink("/etc/passwd", filepath.Join(parent, "lib", "passwd")); err != nil {
				t.Fatal(err)
			}
		}, false, true},
		{"the folder gone", func() {
			if err := os.RemoveAll(filepath.Join(parent, "lib")); err != nil {
				t.Fatal(err)
			}
		}, false, true},
	}
	before, err := key()
	if err != nil {
		t.Fatalf("Key() = %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.edit()
			after, err := key()
			var se *languages.SourceError
			if tc.wantErr {
				if !errors.As(err, &se) {
					t.Errorf("Key() = %v, want a SourceError", err)
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
