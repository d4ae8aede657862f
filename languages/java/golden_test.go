package java

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packtest"
	"github.com/kiln-build/kiln/test/debianrepo"
)

// TestGolden builds the Java samples at a fixed epoch, twice, the jlinked
// runtime included, and compares their images with
// testdata/<case>/golden.json. The images hold the output of the host's
// JDK (javac, jlink), of binutils' strip and the jars of Debian's Maven
// repository, so the golden file records them: on others the comparison
// is skipped. Dependencies resolve from that repository, as the
// end-to-end tests do; without it, Maven or a JDK the test skips.
func TestGolden(t *testing.T) {
	needJDK(t)
	if missing := debianrepo.Missing(); missing != "" {
		t.Skip(missing)
	}
	home := t.TempDir()
	repoEnv, err := debianrepo.Env(home)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), repoEnv...)
	j, err := findJDK(context.Background(), os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	toolchain := map[string]string{
		"jdk":           j.build,
		"strip":         packtest.Version(t, env, stripCommands[runtime.GOARCH][0], "--version"),
		"commons-lang3": fileSHA256(t, filepath.Join(debianrepo.Dir, "org/apache/commons/commons-lang3/3.12.0/commons-lang3-3.12.0.jar")),
	}
	tests := []struct{ name, lang string }{
		{"java-hello", LangJava11},
		{"java-maven-app", LangJava},
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
					return packtest.NewBuilder(t, newPack(t, WithEnv(env), WithCacheDir(t.TempDir())))
				},
			})
		})
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("reading %s: %v", path, err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
