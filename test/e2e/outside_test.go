//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutsideHandlerFolder builds, from a stack file that copies a folder
// into the handler's (configuration.copy), a Go function whose go.mod
// replaces a module with a folder beside the handler folder: kiln reads
// that folder as go.mod names it, from the user's tree, not the staged
// copy's; an edit there rebuilds the binary, one elsewhere in the project
// does not; and a replace folder that is a link is one line naming go.mod.
func TestOutsideHandlerFolder(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"stack.yml":     "version: 1.0\nprovider:\n  name: openfaas\nconfiguration:\n  copy:\n    - ./common\nfunctions:\n  fn:\n    lang: go\n    handler: ./fn\n    image: " + unusedRegistry(t) + "/e2e/outside:latest\n",
		"fn/go.mod":     "module handler/function\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n",
		"fn/handler.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/lib\"\n)\n\nfunc main() { fmt.Println(lib.V) }\n",
		"lib/go.mod":    "module example.com/lib\n\ngo 1.22\n",
		"lib/lib.go":    "package lib\n\nconst V = 1\n",
		"common/a.txt":  "shared\n",
		"notes.txt":     "not read\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, []byte(content))
	}
	o := kilnOpts{cache: t.TempDir(), dir: dir}
	first := buildJSON(t, o).layer(t, "handler binary")

	writeFile(t, filepath.Join(dir, "notes.txt"), []byte("edited\n"))
	if again := buildJSON(t, o).layer(t, "handler binary"); !again.Cached || again.Digest != first.Digest {
		t.Errorf("after an edit outside what go.mod names, handler binary = %+v, want the cached %s", again, first.Digest)
	}
	writeFile(t, filepath.Join(dir, "lib", "lib.go"), []byte("package lib\n\nconst V = 2\n"))
	if edited := buildJSON(t, o).layer(t, "handler binary"); edited.Cached || edited.Digest == first.Digest {
		t.Errorf("after an edit in the replaced folder, handler binary = %+v, want a new one", edited)
	}

	if err := os.Rename(filepath.Join(dir, "lib"), filepath.Join(dir, "real-lib")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real-lib", filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	r := kiln(t, o, "build")
	want := filepath.Join(dir, "fn", "go.mod") + ":7: replace => ../lib: "
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "symlink") {
		t.Errorf("build with the replaced folder a link: want exit 1 and %q\n%s", want, r)
	}
}
