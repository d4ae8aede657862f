package languages_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/golang"
)

// tools are the host tools a pack may start; the test puts fakes of them
// on PATH.
var tools = []string{
	"go", "node", "npm", "python3", "strip", "x86_64-linux-gnu-strip", "aarch64-linux-gnu-strip",
	"java", "javac", "jdeps", "jlink", "mvn", "gradle", "native-image",
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
