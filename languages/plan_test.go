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
	"github.com/kiln-build/kiln/languages/java"
	"github.com/kiln-build/kiln/languages/node"
	"github.com/kiln-build/kiln/languages/python"
	"github.com/kiln-build/kiln/layers"
)

// tools are the host tools a pack may start; the test puts fakes of them
// on PATH.
var tools = []string{
	"go", "node", "npm", "python3", "strip", "x86_64-linux-gnu-strip", "aarch64-linux-gnu-strip",
	"java", "javac", "jdeps", "jlink", "mvn", "gradle", "native-image",
}

// noDebian fails the test if a plan reads a Debian index or downloads a
// package; reading a base's lock, which kiln carries, is fine.
type noDebian struct{ t *testing.T }

var _ languages.Debian = noDebian{}

func (d noDebian) Locked(base, arch string) ([]languages.Deb, error) {
	return []languages.Deb{
		{Name: "libpython3.11-minimal", Version: "3.11.2-6", Architecture: arch},
		{Name: "libpython3.11-stdlib", Version: "3.11.2-6", Architecture: arch},
	}, nil
}

func (d noDebian) Versions(ctx context.Context, base, arch, name string) ([]languages.Deb, error) {
	d.t.Errorf("Plan() read the indexes of base %s for %s", base, arch)
	return nil, errors.New("no indexes while planning")
}

func (d noDebian) Unpack(ctx context.Context, p languages.Deb, dir string) ([]layers.File, error) {
	d.t.Errorf("Plan() downloaded %s", p.Name)
	return nil, errors.New("no downloads while planning")
}

// TestPlanStartsNoProcess plans the sample functions with every host tool,
// the JDK's and GraalVM's included, replaced by a fake that writes its
// name to a log and fails: Plan must succeed and the log stay empty, since
// the tools run in the steps, whose time the builder reports. Nor may a
// plan fetch from Debian.
func TestPlanStartsNoProcess(t *testing.T) {
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "started")
	for _, tool := range tools {
		script := "#!/bin/sh\necho \"" + tool + " $*\" >> " + log + "\nexit 3\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A JDK and a GraalVM whose tools are such fakes too.
	jdk, graal := t.TempDir(), t.TempDir()
	for _, f := range []struct{ path, text string }{
		{filepath.Join(jdk, "release"), "IMPLEMENTOR=\"fake\"\nJAVA_VERSION=\"17.0.15\"\nJAVA_RUNTIME_VERSION=\"17.0.15+6\"\n"},
		{filepath.Join(jdk, "jmods", "java.base.jmod"), "not a jmod"},
		{filepath.Join(jdk, "bin", "javac"), "javac"},
		{filepath.Join(jdk, "bin", "jdeps"), "jdeps"},
		{filepath.Join(jdk, "bin", "jlink"), "jlink"},
		{filepath.Join(graal, "bin", "native-image"), "native-image"},
	} {
		text := f.text
		if filepath.Base(filepath.Dir(f.path)) == "bin" {
			text = "#!/bin/sh\necho \"" + f.text + " $*\" >> " + log + "\nexit 3\n"
		}
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin)
	env := []string{"PATH=" + bin, "HOME=" + t.TempDir(), "JAVA_HOME=" + jdk}
	sample := func(name string) string {
		dir, err := filepath.Abs(filepath.Join("..", "testdata", "functions", name))
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	must := func(p languages.Pack, err error) languages.Pack {
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		pack languages.Pack
		fn   languages.Function
	}{
		{"golang-middleware", must(golang.New(golang.WithEnv(env))), languages.Function{Dir: sample("go-hello"), Lang: golang.LangMiddleware}},
		{"go", must(golang.New(golang.WithEnv(env))), languages.Function{Dir: sample("go-main"), Lang: golang.LangMain}},
		{"go, classic", must(golang.New(golang.WithEnv(env))), languages.Function{Dir: sample("go-classic"), Lang: golang.LangMain}},
		{"golang-http", must(golang.New(golang.WithEnv(env))), languages.Function{Dir: sample("go-http"), Lang: golang.LangHTTP}},
		{"node", must(node.New(node.WithCacheDir(t.TempDir()), node.WithEnv(env))), languages.Function{Dir: sample("node-hello"), Lang: node.LangNode20}},
		{"python3-http", must(python.New(python.WithEnv(env), python.WithDebian(noDebian{t}))), languages.Function{Dir: sample("python-http"), Lang: python.LangHTTP}},
		{"python3-flask", must(python.New(python.WithEnv(env))), languages.Function{Dir: sample("python-flask"), Lang: python.LangFlask}},
		{"java11 with Gradle", must(java.New(java.WithEnv(env), java.WithCacheDir(t.TempDir()))), languages.Function{Dir: sample("java-hello"), Lang: java.LangJava11}},
		{"java with Maven", must(java.New(java.WithEnv(env))), languages.Function{Dir: sample("java-maven-app"), Lang: java.LangJava}},
		{"java, Debian's JRE", must(java.New(java.WithEnv(env))), languages.Function{Dir: sample("java-hello"), Lang: java.LangJava11, BuildArgs: map[string]string{"JAVA_RUNTIME": "jre"}}},
		{"java, native", must(java.New(java.WithEnv(append(env, "GRAALVM_HOME="+graal)))), languages.Function{Dir: sample("java-hello"), Lang: java.LangJava11, BuildArgs: map[string]string{"NATIVE": "true"}}},
		{"java, for arm64", must(java.New(java.WithEnv(env), java.WithDebian(noDebian{t}))), languages.Function{Dir: sample("java-hello"), Lang: java.LangJava11, Platform: v1.Platform{OS: "linux", Architecture: "arm64"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(log)
			fn := tc.fn
			fn.Name = "fn"
			if fn.Platform.OS == "" {
				fn.Platform = v1.Platform{OS: "linux", Architecture: "amd64"}
			}
			fn.ScratchDir = t.TempDir()
			if _, err := tc.pack.Plan(context.Background(), fn); err != nil {
				t.Errorf("Plan() = %v, want a plan made without starting a tool", err)
			}
			if started, err := os.ReadFile(log); err == nil {
				var cmds []string
				for _, line := range strings.Split(strings.TrimSpace(string(started)), "\n") {
					if len(line) > 100 {
						line = line[:100] + "..."
					}
					cmds = append(cmds, line)
				}
				t.Errorf("Plan() started:\n%s", strings.Join(cmds, "\n"))
			}
		})
	}
}
