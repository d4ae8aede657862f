package python

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/bases"
	"github.com/kiln-build/kiln/runtime-images/debian"
	"github.com/kiln-build/kiln/runtime-images/debian/debiantest"
)

// TestStdlibStep compiles the modules the server imports from a base's
// standard library packages (here a test mirror's, whose sources mark
// themselves): they and only they get bytecode, in the base's __pycache__
// folders, the same bytes on every build.
func TestStdlibStep(t *testing.T) {
	needPython(t)
	p := New(WithEnv(nil))
	h, err := p.hostPython(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !h.compiles() {
		t.Skipf("the host's Python is %s, not the image's %s: no bytecode is made", h.Minor, pythonVersion)
	}
	src := func(path, marker string) debiantest.File {
		return debiantest.File{Path: "./usr/lib/python3.11/" + path, Mode: 0o644, Data: "MARKER = " + marker + "\n"}
	}
	mirror := debiantest.NewMirror(t, debiantest.Suite{Name: "bookworm", Packages: map[string][]debiantest.Deb{"amd64": {
		{Name: "libpython3.11-minimal", Version: "3.11.2-6", Arch: "amd64", Files: []debiantest.File{src("json/__init__.py", "'json-marker'")}},
		{Name: "libpython3.11-stdlib", Version: "3.11.2-6", Arch: "amd64", Files: []debiantest.File{src("http/server.py", "'server-marker'"), src("tkinter/__init__.py", "'tk'")}},
	}}})
	fetcher, err := debian.NewFetcher(t.TempDir(), mirror.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	p = New(WithEnv(nil), WithDebian(fetcher))
	step := &stdlibStep{pack: p, fn: languages.Function{ScratchDir: t.TempDir()}, pkgs: []debian.Package{
		mirror.Package(t, "bookworm", "amd64", "libpython3.11-minimal"), mirror.Package(t, "bookworm", "amd64", "libpython3.11-stdlib"),
	}}
	files, first := build(t, step)
	for _, want := range []struct{ path, marker string }{
		{"usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc", "json-marker"},
		{"usr/lib/python3.11/http/__pycache__/server.cpython-311.pyc", "server-marker"},
	} {
		if !strings.Contains(files[want.path], want.marker) {
			t.Errorf("%s: missing, or not compiled from the package's source (no %q in it); layer: %v", want.path, want.marker, keysOf(files))
		}
	}
	for path := range files {
		if strings.Contains(path, "tkinter") || !strings.HasSuffix(path, ".pyc") && !strings.HasSuffix(path, "/") {
			t.Errorf("layer holds %s: want only bytecode of the modules the server imports", path)
		}
	}
	step.fn.ScratchDir = t.TempDir()
	if _, second := build(t, step); !bytes.Equal(first, second) {
		t.Errorf("the layer built twice differs")
	}

	t.Run("the base's lock", func(t *testing.T) {
		got, err := p.stdlibStepFor(languages.Function{}, "arm64")
		if err != nil || got == nil || len(got.pkgs) != 2 {
			t.Fatalf("stdlibStepFor() = %+v, %v; want the lock's two packages", got, err)
		}
		r, err := bases.Lookup(baseName)
		if err != nil {
			t.Fatal(err)
		}
		for i, pkg := range got.pkgs {
			j := slices.IndexFunc(r.Lock.Architectures["arm64"], func(l bases.LockedPackage) bool { return l.Name == stdlibPackages[i] })
			if j < 0 || pkg.Name != stdlibPackages[i] || pkg.SHA256 != r.Lock.Architectures["arm64"][j].SHA256 {
				t.Errorf("stdlibStepFor() package %+v, want the arm64 lock's %s", pkg, stdlibPackages[i])
			}
		}
		if none, _ := New(WithEnv(nil)).stdlibStepFor(languages.Function{}, "amd64"); none != nil {
			t.Errorf("stdlibStepFor() without a Debian source = %+v, want nil", none)
		}
	})
}

// TestStdlibStepOtherPython: a host Python of another minor version cannot
// make the image's bytecode, and the step says it adds no layer.
func TestStdlibStepOtherPython(t *testing.T) {
	p := New(WithEnv(nil), WithDebian(stdlibDebs{dir: t.TempDir()}))
	p.host = &host{Version: "3.12.4", Minor: "3.12", Machine: "x86_64", Libc: "glibc", OS: "linux"}
	step, err := p.stdlibStepFor(languages.Function{ScratchDir: t.TempDir()}, "amd64")
	if err != nil || step == nil {
		t.Fatalf("stdlibStepFor() = %v, %v; want a step", step, err)
	}
	if _, err := step.Key(context.Background()); !errors.Is(err, layers.ErrNoLayer) {
		t.Errorf("Key() with Python 3.12 on the host = %v, want layers.ErrNoLayer", err)
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
