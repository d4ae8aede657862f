package python

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/languagestest"
	"github.com/kiln-build/kiln/layers"
)

// TestStdlibStep compiles the modules the server imports from a base's
// standard library packages (here a fake Debian's, whose sources mark
// themselves): they and only they get bytecode, in the base's __pycache__
// folders, the same bytes on every build.
func TestStdlibStep(t *testing.T) {
	needPython(t)
	p := newPack(t, WithEnv(nil))
	h, err := p.hostPython(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !h.compiles() {
		t.Skipf("the host's Python is %s, not the image's %s: no bytecode is made", h.Minor, pythonVersion)
	}
	src := func(marker string) string { return "MARKER = " + marker + "\n" }
	minimal := languagestest.NewDeb("libpython3.11-minimal", "3.11.2-6", "amd64", "bookworm", map[string]string{
		"usr/lib/python3.11/json/__init__.py": src("'json-marker'"),
	})
	stdlib := languagestest.NewDeb("libpython3.11-stdlib", "3.11.2-6", "amd64", "bookworm", map[string]string{
		"usr/lib/python3.11/http/server.py":      src("'server-marker'"),
		"usr/lib/python3.11/tkinter/__init__.py": src("'tk'"),
	})
	p = newPack(t, WithEnv(nil), WithDebian(&languagestest.Debian{Bases: map[string][]languagestest.Deb{baseName: {minimal, stdlib}}}))
	step := &stdlibStep{pack: p, fn: languages.Function{ScratchDir: t.TempDir()}, pkgs: []languages.Deb{minimal.Deb, stdlib.Deb}}
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
		other := languagestest.NewDeb("libpython3.11-stdlib", "3.11.2-6", "arm64", "bookworm", nil)
		debian := &languagestest.Debian{Bases: map[string][]languagestest.Deb{baseName: {
			languagestest.NewDeb("libc6", "2.36-9", "arm64", "bookworm", nil),
			languagestest.NewDeb("libpython3.11-minimal", "3.11.2-6", "arm64", "bookworm", nil),
			other, minimal, stdlib,
		}}}
		got, err := newPack(t, WithEnv(nil), WithDebian(debian)).stdlibStepFor(languages.Function{}, "arm64")
		if err != nil || got == nil || len(got.pkgs) != 2 {
			t.Fatalf("stdlibStepFor() = %+v, %v; want the lock's two packages", got, err)
		}
		for i, pkg := range got.pkgs {
			if pkg.Name != stdlibPackages[i] || pkg.Architecture != "arm64" {
				t.Errorf("stdlibStepFor() package %+v, want the arm64 lock's %s", pkg, stdlibPackages[i])
			}
		}
		if got.pkgs[1].SHA256 != other.SHA256 {
			t.Errorf("stdlibStepFor() package %+v, want %+v", got.pkgs[1], other.Deb)
		}
		if _, err := newPack(t, WithEnv(nil), WithDebian(&languagestest.Debian{Bases: map[string][]languagestest.Deb{baseName: {other}}})).stdlibStepFor(languages.Function{}, "arm64"); err == nil || !strings.Contains(err.Error(), "has no libpython3.11-minimal for arm64") {
			t.Errorf("stdlibStepFor() without libpython3.11-minimal in the lock = %v, want an error naming it", err)
		}
		if none, _ := newPack(t, WithEnv(nil)).stdlibStepFor(languages.Function{}, "amd64"); none != nil {
			t.Errorf("stdlibStepFor() without a Debian source = %+v, want nil", none)
		}
	})
}

// TestStdlibStepOtherPython: a host Python of another minor version cannot
// make the image's bytecode, and the step says it adds no layer.
func TestStdlibStepOtherPython(t *testing.T) {
	debs := []languagestest.Deb{
		languagestest.NewDeb("libpython3.11-minimal", "3.11.2-6", "amd64", "bookworm", nil),
		languagestest.NewDeb("libpython3.11-stdlib", "3.11.2-6", "amd64", "bookworm", nil),
	}
	p := newPack(t, WithEnv(nil), WithDebian(&languagestest.Debian{Bases: map[string][]languagestest.Deb{baseName: debs}}))
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
