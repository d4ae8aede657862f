package python

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packtest"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/test/wheelhouse"
)

// stdlibDebs stands in for the base's standard library packages: its lock
// pins the two the step needs, each holding modules the server imports,
// and encodings, which the classic entry point imports too.
type stdlibDebs struct{}

func (stdlibDebs) Locked(base, arch string) ([]languages.Deb, error) {
	return []languages.Deb{
		{Name: "libpython3.11-minimal", Version: "3.11.2-6", Architecture: arch, SHA256: "minimal"},
		{Name: "libpython3.11-stdlib", Version: "3.11.2-6", Architecture: arch, SHA256: "stdlib"},
	}, nil
}

func (stdlibDebs) Versions(ctx context.Context, base, arch, name string) ([]languages.Deb, error) {
	return nil, fmt.Errorf("no index of %s here", name)
}

func (stdlibDebs) Unpack(ctx context.Context, p languages.Deb, dir string) ([]layers.File, error) {
	paths := []string{"encodings/__init__.py", "json/__init__.py"}
	if strings.HasSuffix(p.Name, "-stdlib") {
		paths = []string{"http/server.py", "email/__init__.py"}
	}
	var files []layers.File
	for _, path := range paths {
		src := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(src, []byte("# "+p.Name+"\nMARKER = "+fmt.Sprintf("%q", path)+"\n"), 0o644); err != nil {
			return nil, err
		}
		files = append(files, layers.HostFile(stdlibDir+"/"+path, 0o644, src))
	}
	return files, nil
}

// TestGolden builds the Python samples at a fixed epoch, twice, and
// compares their images with testdata/<case>/golden.json, which records
// the host's Python and pip, whose bytecode and installs the images hold:
// on others the comparison is skipped. kiln-greeting comes from a local
// wheelhouse, the standard library from made-up packages. python-classic
// is the classic python3 template's function.
func TestGolden(t *testing.T) {
	needPython(t)
	wheels := t.TempDir()
	if _, err := wheelhouse.Write(wheels, "kiln_greeting", "1.0", map[string]string{
		"kiln_greeting/__init__.py": "VERSION = \"1.0\"\n\n\ndef greet(name):\n    return \"Hello from \" + name\n",
	}); err != nil {
		t.Fatal(err)
	}
	serverWheels(t, wheels)
	env := append(os.Environ(), wheelhouse.Env(wheels)...)
	toolchain := map[string]string{
		"python": packtest.Version(t, env, "python3", "-c", "import platform; print(platform.python_version())"),
		"pip":    strings.Join(strings.Fields(packtest.Version(t, env, "python3", "-m", "pip", "--version"))[:2], " "),
	}
	tests := []struct{ name, lang string }{
		{"python-http", LangHTTP},
		{"python-flask", LangFlask},
		{"python-classic", LangPython3},
		{"python-flask-request", LangFlask},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "functions", tc.name))
			if err != nil {
				t.Fatal(err)
			}
			packtest.Check(t, packtest.Case{
				Golden:    filepath.Join("testdata", tc.name, "golden.json"),
				Function:  languages.Function{Name: tc.name, Dir: dir, Lang: tc.lang},
				Toolchain: toolchain,
				NewBuilder: func(t testing.TB) *builder.Builder {
					return packtest.NewBuilder(t, newPack(t, WithEnv(env), WithDebian(stdlibDebs{})))
				},
			})
		})
	}
}
