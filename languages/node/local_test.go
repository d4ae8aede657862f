package node

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/languages"
)

// localFunction writes, under a folder of its own, a handler folder fn
// whose package.json has deps, and a local package lib beside it; it
// returns the handler folder.
func localFunction(t *testing.T, deps string) string {
	t.Helper()
	parent := t.TempDir()
	dir := filepath.Join(parent, "fn")
	write(t, filepath.Join(dir, "handler.js"), "'use strict';\nconst lib = require('lib');\nmodule.exports = async () => 'hello ' + lib.v;\n")
	write(t, filepath.Join(dir, "package.json"), `{
  "name": "fn",
  "version": "1.0.0",
  "private": true,
  "dependencies": `+deps+`
}
`)
	write(t, filepath.Join(parent, "lib", "package.json"), `{"name": "lib", "version": "1.0.0", "main": "index.js"}`+"\n")
	write(t, filepath.Join(parent, "lib", "index.js"), "module.exports = {v: 1};\n")
	return dir
}

// TestLocalDeps lists the paths package.json's dependencies name, and
// refuses what npm would read from elsewhere than named.
func TestLocalDeps(t *testing.T) {
	tests := []struct {
		name       string
		deps       string
		setup      func(t *testing.T, parent string)
		want       []string // Rel of each
		wantLine   int
		wantReason string
	}{
		{"none", `{"left-pad": "^1.3.0", "g": "github:a/b", "u": "https://x/y.tgz"}`, nil, nil, 0, ""},
		{"file: folder", `{"lib": "file:../lib"}`, nil, []string{"../lib"}, 0, ""},
		{"bare path", `{"lib": "../lib"}`, nil, []string{"../lib"}, 0, ""},
		{"tarball inside", `{"t": "file:vendor/t.tgz"}`, func(t *testing.T, parent string) { write(t, filepath.Join(parent, "fn", "vendor", "t.tgz"), "x") },
			[]string{"vendor/t.tgz"}, 0, ""},
		{"a dependency's own", `{"lib": "file:../lib"}`, func(t *testing.T, parent string) {
			write(t, filepath.Join(parent, "lib", "package.json"), `{"name": "lib", "dependencies": {"deep": "file:../deep"}, "devDependencies": {"no": "file:../nowhere"}}`)
			write(t, filepath.Join(parent, "deep", "package.json"), `{"name": "deep"}`)
		}, []string{"../lib", "../deep"}, 0, ""},
		{"link:", `{"lib": "link:../lib"}`, nil, nil, 5, "link: is yarn's and pnpm's"},
		{"home folder", `{"lib": "file:~/lib"}`, nil, nil, 5, "home folder"},
		{"absolute", `{"lib": "file:/etc"}`, nil, nil, 5, "absolute path"},
		{"missing", `{"lib": "file:../nothere"}`, nil, nil, 5, "not found"},
		{"a link to the folder", `{"lib": "file:../linked"}`, func(t *testing.T, parent string) {
			if err := os.Symlink("lib", filepath.Join(parent, "linked")); err != nil {
				t.Fatal(err)
			}
		}, nil, 5, "is a symlink"},
		{"a link out of the folder", `{"lib": "file:../lib"}`, func(t *testing.T, parent string) {
			if err := os.Symlink("/etc/shadow", filepath.Join(parent, "lib", "shadow")); err != nil {
				t.Fatal(err)
			}
		}, []string{"../lib"}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := localFunction(t, tc.deps)
			if tc.setup != nil {
				tc.setup(t, filepath.Dir(dir))
			}
			m, err := readManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := localDeps(languages.Function{Dir: dir}, m.packageJSON)
			if tc.wantReason != "" {
				var se *languages.SourceError
				if !errors.As(err, &se) || se.Path != filepath.Join(dir, "package.json") || se.Line != tc.wantLine || !strings.Contains(se.Reason, tc.wantReason) {
					t.Fatalf("localDeps() = %v, want a SourceError on package.json:%d saying %q", err, tc.wantLine, tc.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("localDeps() = %v", err)
			}
			var rels []string
			for _, n := range got {
				rels = append(rels, n.Rel)
			}
			if diff := cmp.Diff(tc.want, rels); diff != "" {
				t.Errorf("localDeps() mismatch (-want +got):\n%s", diff)
			}
			// A link out of a local dependency is refused when its files
			// are read, for the key or the install.
			_, err = localFiles(got)
			var se *languages.SourceError
			if wantErr := tc.name == "a link out of the folder"; errors.As(err, &se) != wantErr {
				t.Errorf("localFiles() = %v, want a SourceError: %v", err, wantErr)
			}
		})
	}
}

// TestLocalDepsBuild builds, with the real npm, a function depending on a
// folder beside it, with and without a lockfile: the folder is staged
// where package.json's path leads, installed as a copy in the image, and
// an edit in it rebuilds the dependency layer while an edit elsewhere
// outside the handler folder does not.
func TestLocalDepsBuild(t *testing.T) {
	for _, lockfile := range []bool{false, true} {
		t.Run(map[bool]string{false: "npm install", true: "npm ci"}[lockfile], func(t *testing.T) {
			reg, _ := fakeRegistry(t)
			b := newBuilder(t, reg)
			dir := localFunction(t, `{"lib": "file:../lib"}`)
			parent := filepath.Dir(dir)
			if lockfile {
				cmd := exec.Command("npm", "install", "--package-lock-only", "--no-audit", "--no-fund")
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("npm install --package-lock-only: %v\n%s", err, out)
				}
			}
			fn := languages.Function{Name: "fn", Dir: dir, Lang: LangNode20, Platform: linuxAMD64}
			build := func() builder.LayerReport {
				t.Helper()
				res, err := b.Build(context.Background(), fn)
				if err != nil {
					t.Fatalf("Build() = %v", err)
				}
				if want := []string{filepath.Join(parent, "lib")}; !slices.Equal(res.Outside, want) {
					t.Errorf("Build().Outside = %v, want %v", res.Outside, want)
				}
				ls, err := res.Image.Layers()
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(res.Layers, func(l builder.LayerReport) bool { return l.Name == "node dependencies" })
				if paths := layerPaths(t, ls[i]); !slices.Contains(paths, "home/app/function/node_modules/lib/index.js") {
					t.Fatalf("dependencies layer = %v, want lib installed as a copy", paths)
				}
				return res.Layers[i]
			}
			first := build()
			write(t, filepath.Join(parent, "other", "x.js"), "edited elsewhere\n")
			if again := build(); !again.Cached || again.Digest != first.Digest {
				t.Errorf("after an edit outside the local dependency, dependencies = %+v, want the cached %s", again, first.Digest)
			}
			write(t, filepath.Join(parent, "lib", "index.js"), "module.exports = {v: 2};\n")
			if edited := build(); edited.Cached || edited.Digest == first.Digest {
				t.Errorf("after an edit in the local dependency, dependencies = %+v, want a new layer", edited)
			}
			if _, err := os.Stat(filepath.Join(dir, "node_modules")); err == nil {
				t.Errorf("npm wrote node_modules into the handler folder")
			}
		})
	}
}
