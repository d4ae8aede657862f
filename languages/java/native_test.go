package java

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
)

func TestReadBuildArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    map[string]string
		want    buildArgs
		wantErr string
	}{
		{name: "defaults", want: buildArgs{runtime: runtimeJlink}},
		{name: "cds", args: map[string]string{"JAVA_CDS": "true"}, want: buildArgs{cds: true, runtime: runtimeJlink}},
		{name: "jre", args: map[string]string{"JAVA_RUNTIME": "jre"}, want: buildArgs{runtime: runtimeJRE}},
		{name: "native", args: map[string]string{"NATIVE": "yes"}, want: buildArgs{native: true, runtime: runtimeNative}},
		{name: "bad bool", args: map[string]string{"JAVA_CDS": "maybe"}, wantErr: "build arg JAVA_CDS=maybe: want true or false"},
		{name: "bad runtime", args: map[string]string{"JAVA_RUNTIME": "jdk"}, wantErr: "build arg JAVA_RUNTIME=jdk: want jlink (the default) or jre"},
		{name: "native and runtime", args: map[string]string{"NATIVE": "true", "JAVA_RUNTIME": "jlink"}, wantErr: "a native image has no Java runtime"},
		{name: "native and cds", args: map[string]string{"NATIVE": "true", "JAVA_CDS": "true"}, wantErr: "NATIVE=true and JAVA_CDS=true"},
		{name: "cds and jre", args: map[string]string{"JAVA_CDS": "1", "JAVA_RUNTIME": "jre"}, wantErr: "JAVA_CDS=true and JAVA_RUNTIME=jre"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBuildArgs(languages.Function{BuildArgs: tc.args})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("readBuildArgs(%v) = %v, want an error containing %q", tc.args, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("readBuildArgs(%v) = %+v, %v; want %+v", tc.args, got, err, tc.want)
			}
		})
	}
}

// planWith plans the handler dir for amd64 with build args and extra
// environment.
func planWith(t *testing.T, dir string, args map[string]string, env ...string) (*languages.Plan, error) {
	t.Helper()
	p := newPack(t, WithEnv(append(os.Environ(), env...)), WithCacheDir(t.TempDir()))
	fn := languages.Function{Name: "fn", Dir: dir, Lang: LangJava11, BuildArgs: args, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Epoch: time.Unix(0, 0).UTC(), ScratchDir: t.TempDir()}
	return planAndFinish(p, fn)
}

func stepNames(plan *languages.Plan) []string {
	var names []string
	for _, s := range plan.Steps {
		names = append(names, s.Name())
	}
	return names
}

func TestRuntimeVariants(t *testing.T) {
	needJDK(t)
	dir := handlerDir(t, "        return new Response();")
	jlinked, err := planWith(t, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("jre", func(t *testing.T) {
		plan, err := planWith(t, dir, map[string]string{"JAVA_RUNTIME": "jre"})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"openjdk-17-jre-headless"}; !slices.Equal(plan.Packages, want) {
			t.Errorf("Packages = %v, want %v", plan.Packages, want)
		}
		if names := stepNames(plan); slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "java runtime") }) {
			t.Errorf("steps = %v, want no jlinked runtime", names)
		}
		if !slices.Contains(plan.Env, "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64") {
			t.Errorf("Env = %v, want JAVA_HOME at Debian's JRE", plan.Env)
		}
		if got := plan.Labels["dev.kiln.java.runtime"]; got != runtimeJRE {
			t.Errorf("label dev.kiln.java.runtime = %q, want jre", got)
		}
	})
	t.Run("cds", func(t *testing.T) {
		plan, err := planWith(t, dir, map[string]string{"JAVA_CDS": "true"})
		if err != nil {
			t.Fatal(err)
		}
		rt, ok := plan.Steps[0].(*runtimeStep)
		if !ok || !slices.Contains(rt.jlinkArgs(), "--generate-cds-archive") {
			t.Fatalf("first step = %v, want a runtime linked with --generate-cds-archive", plan.Steps[0].Name())
		}
		if slices.Contains(jlinked.Steps[0].(*runtimeStep).jlinkArgs(), "--generate-cds-archive") {
			t.Errorf("the default runtime is linked with a CDS archive")
		}
		with, _ := rt.Key(context.Background())
		without, _ := jlinked.Steps[0].Key(context.Background())
		if with == without {
			t.Errorf("runtime keys with and without CDS are both %s", with)
		}
	})
	t.Run("cds for another platform", func(t *testing.T) {
		p := newPack(t, WithEnv(os.Environ()))
		fn := languages.Function{Dir: dir, Lang: LangJava11, BuildArgs: map[string]string{"JAVA_CDS": "true"}, Platform: v1.Platform{OS: "linux", Architecture: otherArch()}, ScratchDir: t.TempDir()}
		if _, err := p.Plan(context.Background(), fn); err == nil || !strings.Contains(err.Error(), "JAVA_CDS=true builds for this machine's platform only") {
			t.Errorf("Plan() = %v, want the CDS platform error", err)
		}
	})
}

// fakeNativeImage writes a native-image that answers --version and
// otherwise writes its arguments, and the reflection configuration it was
// given, into the file named by -o.
func fakeNativeImage(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	script := `#!/bin/sh
if [ "$1" = --version ]; then echo "native-image 17.0.9 (fake)"; exit 0; fi
out=""; prev=""; config=""
for a in "$@"; do
  [ "$prev" = -o ] && out=$a
  case $a in -H:ReflectionConfigurationFiles=*) config=${a#*=};; esac
  prev=$a
done
{ echo "$*"; [ -n "$config" ] && cat "$config"; } > "$out"
`
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "bin", "native-image"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return home
}

// TestNativePlan wires a stand-in for GraalVM's native-image (which these
// machines cannot have) into a build: one layer holding what it compiled,
// formed from the handler's classes, the model and the entrypoint.
func TestNativePlan(t *testing.T) {
	needJDK(t)
	dir := handlerDir(t, "        return new Response();")
	home := fakeNativeImage(t)
	plan, err := planWith(t, dir, map[string]string{"NATIVE": "true"}, "GRAALVM_HOME="+home)
	if err != nil {
		t.Fatal(err)
	}
	if names := stepNames(plan); !slices.Equal(names, []string{"native image"}) {
		t.Fatalf("steps = %v, want [native image]", names)
	}
	if !slices.Contains(plan.Env, "fprocess=/home/app/handler") {
		t.Errorf("Env = %v, want fprocess=/home/app/handler", plan.Env)
	}
	var layer bytes.Buffer
	if err := plan.Steps[0].Build(context.Background(), &layer); err != nil {
		t.Fatalf("Build() = %v", err)
	}
	tr := tar.NewReader(&layer)
	var binary string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == nativeBinary {
			if hdr.Mode&0o111 == 0 {
				t.Errorf("%s mode = %o, want it executable", hdr.Name, hdr.Mode)
			}
			b, _ := io.ReadAll(tr)
			binary = string(b)
		}
	}
	for _, want := range []string{"--no-fallback", "/classes:", "openfaas", "-o ", " " + entrypoint, `"name":"com.openfaas.function.Handler"`} {
		if !strings.Contains(binary, want) {
			t.Errorf("native-image ran as %q, want it to contain %q", binary, want)
		}
	}
	k1, _ := plan.Steps[0].Key(context.Background())
	edited := handlerDir(t, "        Response r = new Response();\n        r.setBody(\"x\");\n        return r;")
	plan2, err := planWith(t, edited, map[string]string{"NATIVE": "true"}, "GRAALVM_HOME="+home)
	if err != nil {
		t.Fatal(err)
	}
	if k2, _ := plan2.Steps[0].Key(context.Background()); k1 == k2 {
		t.Errorf("native image keys of two different handlers are both %s", k1)
	}

	p := newPack(t, WithEnv(append(os.Environ(), "GRAALVM_HOME="+home)))
	fn := languages.Function{Dir: dir, Lang: LangJava11, BuildArgs: map[string]string{"NATIVE": "true"}, Platform: v1.Platform{OS: "linux", Architecture: otherArch()}, ScratchDir: t.TempDir()}
	if _, err := p.Plan(context.Background(), fn); err == nil || !strings.Contains(err.Error(), "native-image does not compile for") {
		t.Errorf("Plan() for another platform = %v, want the native cross error", err)
	}
}
