package golang

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packtest"
)

// TestGolden builds the Go samples at a fixed epoch, twice, and compares
// their images with testdata/<case>/golden.json, which records the Go
// toolchain that compiled them: on another Go the comparison is skipped.
// go-deps needs its module from the Go proxy or the module cache; go-http
// needs none, since kiln brings its templates-sdk package.
func TestGolden(t *testing.T) {
	tests := []struct {
		name, sample, lang string
	}{
		{"go-hello", "go-hello", LangMiddleware},
		{"go-deps", "go-deps", LangMiddleware},
		{"go-main", "go-main", LangMain},
		{"go-classic", "go-classic", LangMain},
		{"go-http", "go-http", LangHTTP},
	}
	env := os.Environ()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			goVersion := packtest.Version(t, env, "go", "env", "GOVERSION")
			dir, err := filepath.Abs(filepath.Join("..", "..", "testdata", "functions", tc.sample))
			if err != nil {
				t.Fatal(err)
			}
			packtest.Check(t, packtest.Case{
				Golden:     filepath.Join("testdata", tc.name, "golden.json"),
				Function:   languages.Function{Name: tc.name, Dir: dir, Lang: tc.lang},
				Toolchain:  map[string]string{"go": goVersion},
				NewBuilder: func(t testing.TB) *builder.Builder { return packtest.NewBuilder(t, newPack(t, WithEnv(env))) },
			})
		})
	}
}
