package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packtest"
)

// TestGolden builds the samples at a fixed epoch, twice, and compares
// their images with testdata/<sample>/golden.json, which records the
// host's node and npm that installed their dependencies (node-hello's ms,
// from the npm registry or npm's cache): on others the comparison is
// skipped. The runtime is a made-up Node build of fixed bytes, left
// unstripped, since the real one's bytes are pinned by the lock's
// integrity already. node-classic is the classic node template's
// function, lang node.
func TestGolden(t *testing.T) {
	env := os.Environ()
	toolchain := map[string]string{
		"node": packtest.Version(t, env, "node", "--version"),
		"npm":  packtest.Version(t, env, "npm", "--version"),
	}
	tests := []struct {
		sample, lang, major string
	}{
		{"node-hello", LangNode20, "20"},
		{"node-classic", LangNode, "22"},
	}
	for _, tc := range tests {
		t.Run(tc.sample, func(t *testing.T) {
			reg, _ := serveMajor(t, tc.major, tc.major+".0.0-golden", []byte("\x7fELF not really node, but fixed bytes\n"))
			dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "functions", tc.sample))
			if err != nil {
				t.Fatal(err)
			}
			packtest.Check(t, packtest.Case{
				Golden:    filepath.Join("testdata", tc.sample, "golden.json"),
				Function:  languages.Function{Name: tc.sample, Dir: dir, Lang: tc.lang},
				Toolchain: toolchain,
				NewBuilder: func(t testing.TB) *builder.Builder {
					return packtest.NewBuilder(t, newPack(t, WithCacheDir(t.TempDir()), WithEnv(env), WithRegistry(reg), WithStrip("amd64")))
				},
			})
		})
	}
}
