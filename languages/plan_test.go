package languages_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/golang"
	"github.com/kiln-build/kiln/languages/node"
	"github.com/kiln-build/kiln/languages/python"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// tools are the host tools a pack may start; the test puts fakes of them
// on PATH.
var tools = []string{
	"go", "node", "npm", "python3", "strip", "x86_64-linux-gnu-strip", "aarch64-linux-gnu-strip",
	"java", "javac", "jdeps", "jlink", "mvn", "gradle", "native-image",
}

// noDebian fails the test if a plan downloads a package.
type noDebian struct{ t *testing.T }

func (d noDebian) Download(ctx context.Context, p debian.Package) (string, error) {
	d.t.Errorf("Plan() downloaded %s", p.Name)
	return "", errors.New("no downloads while planning")
}

// TestPlanStartsNoProcess plans the sample functions with every host tool
// replaced by a fake that writes its name to a log and fails: Plan must
// succeed and the log stay empty, since the tools run in the steps, whose
// time the builder reports.
func TestPlanStartsNoProcess(t *testing.T) {
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "started")
	for _, tool := range tools {
		script := "#!/bin/sh\necho \"" + tool + " $*\" >> " + log + "\nexit 3\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	env := []string{"PATH=" + bin, "HOME=" + t.TempDir()}
	sample := func(name string) string {
		dir, err := filepath.Abs(filepath.Join("..", "testdata", "functions", name))
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name string
		pack languages.Pack
		fn   languages.Function
	}{
		{"golang-middleware", golang.New(golang.WithEnv(env)), languages.Function{Dir: sample("go-hello"), Lang: golang.LangMiddleware}},
		{"go", golang.New(golang.WithEnv(env)), languages.Function{Dir: sample("go-main"), Lang: golang.LangMain}},
		{"node", node.New(t.TempDir(), node.WithEnv(env)), languages.Function{Dir: sample("node-hello"), Lang: node.LangNode20}},
		{"python3-http", python.New(python.WithEnv(env), python.WithDebian(noDebian{t})), languages.Function{Dir: sample("python-http"), Lang: python.LangHTTP}},
		{"python3-flask", python.New(python.WithEnv(env)), languages.Function{Dir: sample("python-flask"), Lang: python.LangFlask}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(log)
			fn := tc.fn
			fn.Name = "fn"
			fn.Platform = v1.Platform{OS: "linux", Architecture: "amd64"}
			fn.ScratchDir = t.TempDir()
			if _, err := tc.pack.Plan(context.Background(), fn); err != nil {
				t.Errorf("Plan() = %v, want a plan made without starting a tool", err)
			}
			if started, err := os.ReadFile(log); err == nil {
				t.Errorf("Plan() started: %s", strings.TrimSpace(string(started)))
			}
		})
	}
}
