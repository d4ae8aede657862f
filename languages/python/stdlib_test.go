package python

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/languagestest"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/test/wheelhouse"
)

// TestStdlibStep runs each entry point as the image would and compiles the
// standard library modules it loads from a base's packages (here a fake
// Debian's, whose sources mark themselves): they and only they get
// bytecode, in the base's __pycache__ folders, the same bytes on every
// build.
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
	wheels := t.TempDir()
	serverWheels(t, wheels)
	env := append(os.Environ(), wheelhouse.Env(wheels)...)
	src := func(marker string) string { return "MARKER = " + marker + "\n" }
	minimal := languagestest.NewDeb("libpython3.11-minimal", "3.11.2-6", "amd64", "bookworm", map[string]string{
		// Every start loads encodings and os, which is frozen in the
		// interpreter.
		"usr/lib/python3.11/encodings/__init__.py": src("'encodings-marker'"),
		"usr/lib/python3.11/os.py":                 src("'os-marker'"),
		"usr/lib/python3.11/json/__init__.py":      src("'json-marker'"),
	})
	stdlib := languagestest.NewDeb("libpython3.11-stdlib", "3.11.2-6", "amd64", "bookworm", map[string]string{
		// Flask's start imports logging and inspect, its first answer
		// werkzeug's routing.
		"usr/lib/python3.11/logging/__init__.py": src("'logging-marker'"),
		"usr/lib/python3.11/inspect.py":          src("'inspect-marker'"),
		"usr/lib/python3.11/tkinter/__init__.py": src("'tk'"),
	})
	pyc := func(rel string) string {
		dir, file := path.Split(rel)
		return "usr/lib/python3.11/" + dir + "__pycache__/" + strings.TrimSuffix(file, ".py") + ".cpython-311.pyc"
	}
	tests := []struct {
		entry     string
		want, not []string
	}{
		{"server", []string{"encodings/__init__.py", "json/__init__.py", "logging/__init__.py", "inspect.py"}, []string{"os.py", "tkinter/__init__.py"}},
		// The classic entry point imports neither json nor logging.
		{"classic", []string{"encodings/__init__.py"}, []string{"os.py", "json/__init__.py", "logging/__init__.py", "tkinter/__init__.py"}},
	}
	for _, tc := range tests {
		t.Run(tc.entry, func(t *testing.T) {
			p := newPack(t, WithEnv(env), WithDebian(&languagestest.Debian{Bases: map[string][]languagestest.Deb{baseName: {minimal, stdlib}}}))
			step := &stdlibStep{pack: p, fn: languages.Function{ScratchDir: t.TempDir()}, target: target{machine: h.Machine}, entry: tc.entry, pkgs: []languages.Deb{minimal.Deb, stdlib.Deb}}
			files, first := build(t, step)
			for _, rel := range tc.want {
				marker := strings.TrimSuffix(strings.TrimSuffix(rel, "/__init__.py"), ".py") + "-marker"
				if !strings.Contains(files[pyc(rel)], marker) {
					t.Errorf("%s: missing, or not compiled from the package's source (no %q in it); layer: %v", pyc(rel), marker, keysOf(files))
				}
			}
			for _, rel := range tc.not {
				if _, ok := files[pyc(rel)]; ok {
					t.Errorf("layer holds %s: the %s entry point does not import it, or it is frozen in the interpreter", pyc(rel), tc.entry)
				}
			}
			for name := range files {
				if !strings.HasSuffix(name, ".pyc") && !strings.HasSuffix(name, "/") {
					t.Errorf("layer holds %s: want only bytecode", name)
				}
			}
			step.fn.ScratchDir = t.TempDir()
			if _, second := build(t, step); !bytes.Equal(first, second) {
				t.Errorf("the layer built twice differs")
			}
		})
	}

	t.Run("the base's lock", func(t *testing.T) {
		other := languagestest.NewDeb("libpython3.11-stdlib", "3.11.2-6", "arm64", "bookworm", nil)
		debian := &languagestest.Debian{Bases: map[string][]languagestest.Deb{baseName: {
			languagestest.NewDeb("libc6", "2.36-9", "arm64", "bookworm", nil),
			languagestest.NewDeb("libpython3.11-minimal", "3.11.2-6", "arm64", "bookworm", nil),
			other, minimal, stdlib,
		}}}
		got, err := newPack(t, WithEnv(nil), WithDebian(debian)).stdlibStepFor(languages.Function{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}}, target{machine: "aarch64"}, "server")
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
		if _, err := newPack(t, WithEnv(nil), WithDebian(&languagestest.Debian{Bases: map[string][]languagestest.Deb{baseName: {other}}})).stdlibStepFor(languages.Function{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}}, target{machine: "aarch64"}, "server"); err == nil || !strings.Contains(err.Error(), "has no libpython3.11-minimal for arm64") {
			t.Errorf("stdlibStepFor() without libpython3.11-minimal in the lock = %v, want an error naming it", err)
		}
		if none, _ := newPack(t, WithEnv(nil)).stdlibStepFor(languages.Function{Platform: linuxAMD64}, target{machine: "x86_64"}, "server"); none != nil {
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
	step, err := p.stdlibStepFor(languages.Function{ScratchDir: t.TempDir(), Platform: linuxAMD64}, target{machine: "x86_64"}, "server")
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
