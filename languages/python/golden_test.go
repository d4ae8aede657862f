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
	"github.com/kiln-build/kiln/runtime-images/debian"
	"github.com/kiln-build/kiln/runtime-images/debian/debiantest"
	"github.com/kiln-build/kiln/test/wheelhouse"
)

// stdlibDebs stands in for the base's standard library packages: whatever
// the lock asks for, it hands out a package of the same name holding two
// of the modules the server imports.
type stdlibDebs struct{ dir string }

func (d stdlibDebs) Download(ctx context.Context, p debian.Package) (string, error) {
	src := func(path string) debiantest.File {
		return debiantest.File{Path: "./" + stdlibDir + "/" + path, Mode: 0o644, Data: "# " + p.Name + "\nMARKER = " + fmt.Sprintf("%q", path) + "\n"}
	}
	deb := debiantest.Deb{Name: p.Name, Version: "3.11.2-6", Arch: "amd64", Files: []debiantest.File{src("json/__init__.py")}}
	if strings.HasSuffix(p.Name, "-stdlib") {
		deb.Files = []debiantest.File{src("http/server.py"), src("email/__init__.py")}
	}
	b, err := deb.Build()
	if err != nil {
		return "", err
	}
	path := filepath.Join(d.dir, p.Name+".deb")
	return path, os.WriteFile(path, b, 0o644)
}

// TestGolden builds the Python samples at a fixed epoch, twice, and
// compares their images with testdata/<case>/golden.json, which records
// the host's Python and pip, whose bytecode and installs the images hold:
// on others the comparison is skipped. kiln-greeting comes from a local
// wheelhouse, the standard library from made-up packages.
func TestGolden(t *testing.T) {
	needPython(t)
	wheels := t.TempDir()
	if _, err := wheelhouse.Write(wheels, "kiln_greeting", "1.0", map[string]string{
		"kiln_greeting/__init__.py": "VERSION = \"1.0\"\n\n\ndef greet(name):\n    return \"Hello from \" + name\n",
	}); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), wheelhouse.Env(wheels)...)
	toolchain := map[string]string{
		"python": packtest.Version(t, env, "python3", "-c", "import platform; print(platform.python_version())"),
		"pip":    strings.Join(strings.Fields(packtest.Version(t, env, "python3", "-m", "pip", "--version"))[:2], " "),
	}
	tests := []struct{ name, lang string }{
		{"python-http", LangHTTP},
		{"python-flask", LangFlask},
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
					return packtest.NewBuilder(t, New(WithEnv(env), WithDebian(stdlibDebs{dir: t.TempDir()})))
				},
			})
		})
	}
}
