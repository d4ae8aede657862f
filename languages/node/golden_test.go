package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packtest"
)

// TestGolden builds the node-hello sample at a fixed epoch, twice, and
// compares its image with testdata/node-hello/golden.json, which records
// the host's node and npm that installed its dependency (ms, from the npm
// registry or npm's cache): on others the comparison is skipped. The
// runtime is a made-up Node build of fixed bytes, left unstripped, since
// the real one's bytes are pinned by the lock's integrity already.
func TestGolden(t *testing.T) {
	env := os.Environ()
	toolchain := map[string]string{
		"node": packtest.Version(t, env, "node", "--version"),
		"npm":  packtest.Version(t, env, "npm", "--version"),
	}
	reg, _ := serveRuntime(t, "20.0.0-golden", []byte("\x7fELF not really node, but fixed bytes\n"))
	dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "functions", "node-hello"))
	if err != nil {
		t.Fatal(err)
	}
	packtest.Check(t, packtest.Case{
		Golden:    filepath.Join("testdata", "node-hello", "golden.json"),
		Function:  languages.Function{Name: "node-hello", Dir: dir, Lang: LangNode20},
		Toolchain: toolchain,
		NewBuilder: func(t testing.TB) *builder.Builder {
			return packtest.NewBuilder(t, newPack(t, WithCacheDir(t.TempDir()), WithEnv(env), WithRegistry(reg), WithStrip("amd64")))
		},
	})
}
