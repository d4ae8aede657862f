package java

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/languagestest"
	"github.com/kiln-build/kiln/layers"
)

func TestGradleDependencies(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		want     []coordinate
		wantLine int
	}{
		{
			name: "template scaffold",
			src: `plugins { id 'java-library' }
buildscript {
    dependencies {
        classpath 'com.example:plugin:1.0'
    }
}
dependencies {
    // exported to consumers
    api 'org.apache.commons:commons-math3:3.6.1'
    implementation "com.google.guava:guava:23.0"
    implementation("org.slf4j:slf4j-api:2.0.9")
    runtimeOnly group: 'org.slf4j', name: 'slf4j-simple', version: '2.0.9'
    testImplementation 'junit:junit:4.12'
    compile 'com.openfaas:model:0.1.1'
    compile 'com.openfaas:entrypoint:0.1.0'
    /* a comment
       spanning lines */
}
`,
			want: []coordinate{
				{"org.apache.commons", "commons-math3", "3.6.1", "compile"},
				{"com.google.guava", "guava", "23.0", "compile"},
				{"org.slf4j", "slf4j-api", "2.0.9", "compile"},
				{"org.slf4j", "slf4j-simple", "2.0.9", "runtime"},
			},
		},
		{name: "no dependencies", src: "plugins { id 'java' }\n"},
		{name: "project dependency", src: "dependencies {\n    implementation project(':lib')\n}\n", wantLine: 2},
		{name: "dynamic version", src: "dependencies {\n\n    implementation 'a:b:1.+'\n}\n", wantLine: 3},
		{name: "variable version", src: "dependencies {\n    implementation \"a:b:${v}\"\n}\n", wantLine: 2},
		{name: "unknown configuration", src: "dependencies {\n    annotationProcessor 'a:b:1'\n}\n", wantLine: 2},
		{name: "platform", src: "dependencies {\n    implementation platform('a:bom:1')\n}\n", wantLine: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := gradleDependencies("build.gradle", []byte(tc.src))
			var se *languages.SourceError
			if tc.wantLine > 0 {
				if !errors.As(err, &se) || se.Line != tc.wantLine {
					t.Fatalf("gradleDependencies() = %v, want a SourceError at line %d", err, tc.wantLine)
				}
				return
			}
			if err != nil {
				t.Fatalf("gradleDependencies() = %v", err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(coordinate{})); diff != "" {
				t.Errorf("gradleDependencies() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGeneratedPom(t *testing.T) {
	got := string(generatedPom([]coordinate{{"a&b", "c", "1", "runtime"}}))
	want := "<dependency><groupId>a&amp;b</groupId><artifactId>c</artifactId><version>1</version><scope>runtime</scope></dependency>"
	if !strings.Contains(got, want) {
		t.Errorf("generatedPom() = %s, want it to contain %s", got, want)
	}
}

func TestUnresolved(t *testing.T) {
	tests := []struct {
		name, out string
		want      []string
	}{
		{
			name: "missing artifact",
			out:  "[ERROR] Failed to execute goal on project function: Could not resolve dependencies for project dev.kiln.generated:function:jar:1.0: Could not find artifact org.example:nope:jar:9.9 in debian (file:///usr/share/maven-repo) -> [Help 1]",
			want: []string{"org.example:nope:jar:9.9"},
		},
		{
			name: "list",
			out:  "[ERROR] Failed to execute goal on project x: Could not resolve dependencies for project g:x:jar:1: The following artifacts could not be resolved: a:b:jar:1, c:d:jar:2: Could not find",
			want: []string{"a:b:jar:1", "c:d:jar:2"},
		},
		{name: "other", out: "[ERROR] something else"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := unresolved([]byte(tc.out)); !cmp.Equal(got, tc.want) {
				t.Errorf("unresolved() = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsSnapshot(t *testing.T) {
	tests := map[string]bool{
		"commons-lang3-3.12.0.jar":            false,
		"lib-1.0-SNAPSHOT.jar":                true,
		"lib-1.0-20240101.120000-3.jar":       true,
		"lib-1.0-20240101.120000-3-tests.jar": true,
	}
	for jar, want := range tests {
		if got := isSnapshot(jar); got != want {
			t.Errorf("isSnapshot(%q) = %v, want %v", jar, got, want)
		}
	}
}

func TestReachableModules(t *testing.T) {
	out := `classes -> java.base
   com.openfaas.function.Handler -> org.apache.commons.lang3.StringUtils  commons-lang3.jar
   com.openfaas.function.Handler -> java.lang.String  java.base
commons-lang3.jar -> java.desktop
   org.apache.commons.lang3.StringUtils -> java.util.regex.Pattern  java.base
   org.apache.commons.lang3.event.EventUtils -> java.beans.EventSetDescriptor  java.desktop
   com.openfaas.entrypoint.App -> com.sun.net.httpserver.HttpServer  jdk.httpserver
   com.openfaas.entrypoint.App -> x.Missing  not found
`
	got := reachableModules([]byte(out), []string{"com.openfaas.function.Handler", "com.openfaas.entrypoint.App"})
	want := []string{"java.base", "jdk.httpserver"}
	if !cmp.Equal(got, want) {
		t.Errorf("reachableModules() = %v, want %v", got, want)
	}
}

func TestNativeImage(t *testing.T) {
	t.Run("args", func(t *testing.T) {
		got := nativeImageArgs("/g/bin/native-image", entrypoint, "/out/handler", "/out/reflect.json", []string{"/c", "/m.jar"})
		want := []string{"/g/bin/native-image", "--no-fallback", "-H:ReflectionConfigurationFiles=/out/reflect.json", "-cp", "/c:/m.jar", "-o", "/out/handler", entrypoint}
		if !cmp.Equal(got, want) {
			t.Errorf("nativeImageArgs() = %v, want %v", got, want)
		}
		if got, want := reflectionConfig(handlerClass), `[{"name":"com.openfaas.function.Handler","allDeclaredConstructors":true,"allPublicMethods":true}]`+"\n"; got != want {
			t.Errorf("reflectionConfig() = %s, want %s", got, want)
		}
	})
	t.Run("missing", func(t *testing.T) {
		empty := t.TempDir()
		for _, env := range []map[string]string{{"PATH": empty}, {"PATH": empty, "GRAALVM_HOME": empty}} {
			_, err := findNativeImage(func(k string) string { return env[k] })
			if err == nil || !strings.Contains(err.Error(), "GRAALVM_HOME") {
				t.Errorf("findNativeImage(%v) = %v, want an error naming GRAALVM_HOME", env, err)
			}
		}
	})
	t.Run("found", func(t *testing.T) {
		home := t.TempDir()
		bin := filepath.Join(home, "bin", "native-image")
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, nil, 0o755); err != nil {
			t.Fatal(err)
		}
		got, err := findNativeImage(func(k string) string { return map[string]string{"GRAALVM_HOME": home}[k] })
		if err != nil || got != bin {
			t.Errorf("findNativeImage() = %q, %v, want %q", got, err, bin)
		}
	})
}

func TestNoJDK(t *testing.T) {
	empty := t.TempDir()
	for _, env := range []map[string]string{{"PATH": empty}, {"PATH": empty, "JAVA_HOME": empty}} {
		_, err := findJDK(context.Background(), func(k string) string { return env[k] })
		if err == nil || !strings.Contains(err.Error(), "install JDK 17 or later") || !strings.Contains(err.Error(), "JAVA_HOME") {
			t.Errorf("findJDK(%v) = %v, want an error saying to install JDK 17+ or set JAVA_HOME", env, err)
		}
	}
}

func TestFindMain(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, content := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	mainSrc := "package a.b;\npublic class App { public static void main(String[] args) {} }\n"
	tests := []struct {
		name    string
		lang    string
		files   map[string]string
		args    map[string]string
		want    string
		wantErr string
	}{
		{name: "handler", lang: LangJava11, files: map[string]string{handlerFile: "class Handler {}"}, want: entrypoint},
		{name: "no handler", lang: LangJava17, files: map[string]string{"src/main/java/Other.java": ""}, wantErr: "no Handler class"},
		{name: "main method", lang: LangJava, files: map[string]string{"src/main/java/a/b/App.java": mainSrc}, want: "a.b.App"},
		{name: "pom mainClass", lang: LangJava, files: map[string]string{"pom.xml": "<mainClass> x.Y </mainClass>", "src/main/java/a/b/App.java": mainSrc}, want: "x.Y"},
		{name: "build arg", lang: LangJava, files: map[string]string{"src/main/java/a/b/App.java": mainSrc}, args: map[string]string{"MAIN_CLASS": "z.Z"}, want: "z.Z"},
		{name: "two mains", lang: LangJava, files: map[string]string{"src/main/java/a/b/App.java": mainSrc, "src/main/java/C.java": "public class C { public static void main(String[] a) {} }"}, wantErr: "several main classes"},
		{name: "nothing", lang: LangJava, files: map[string]string{"pom.xml": "<project/>"}, wantErr: "no class with a main method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fn := languages.Function{Dir: write(t, tc.files), Lang: tc.lang, BuildArgs: tc.args}
			got, err := findMain(fn)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("findMain() = %q, %v, want an error with %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("findMain() = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}

// needJDK skips tests that run the real JDK where there is none.
func needJDK(t *testing.T) {
	t.Helper()
	if _, err := findJDK(context.Background(), os.Getenv); err != nil {
		t.Skipf("no JDK: %v", err)
	}
}

// handlerDir writes a java11 handler without dependencies.
func handlerDir(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, filepath.FromSlash(handlerFile))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package com.openfaas.function;\n\nimport com.openfaas.model.*;\n\npublic class Handler extends AbstractHandler {\n    public IResponse Handle(IRequest req) {\n" + body + "\n    }\n}\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// otherArch is an architecture other than this machine's.
func otherArch() string {
	if runtime.GOARCH == "arm64" {
		return "amd64"
	}
	return "arm64"
}

func planFor(t *testing.T, dir, cache string) (*languages.Plan, error) {
	t.Helper()
	p := newPack(t, WithEnv(os.Environ()), WithCacheDir(cache))
	fn := languages.Function{Name: "fn", Dir: dir, Lang: LangJava11, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, Epoch: time.Unix(0, 0).UTC(), ScratchDir: t.TempDir()}
	return planAndFinish(p, fn)
}

// planAndFinish plans fn and does what the builder does with the plan
// before it writes the image config: it asks every step's key, which runs
// the build's stages, drops the steps that add no layer, and calls Finish.
func planAndFinish(p *Pack, fn languages.Function) (*languages.Plan, error) {
	ctx := context.Background()
	plan, err := p.Plan(ctx, fn)
	if err != nil {
		return nil, err
	}
	var kept []layers.Step
	for _, s := range plan.Steps {
		_, err := s.Key(ctx)
		if errors.Is(err, layers.ErrNoLayer) {
			continue
		}
		if err != nil {
			return nil, err
		}
		kept = append(kept, s)
	}
	plan.Steps = kept
	if plan.Finish != nil {
		if err := plan.Finish(ctx, plan); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

// TestPlanTwice plans the same handler with two empty caches: every step
// has the same key and, but for the runtime, the same bytes. TestGolden
// builds whole images twice, the jlinked runtime included.
func TestPlanTwice(t *testing.T) {
	needJDK(t)
	dir := handlerDir(t, `        Response res = new Response();
        res.setBody("hi " + req.getBody());
        return res;`)
	if err := os.MkdirAll(filepath.Join(dir, "src", "main", "resources"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "main", "resources", "app.properties"), []byte("a=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := planFor(t, dir, t.TempDir())
	if err != nil {
		t.Fatalf("Plan() = %v", err)
	}
	b, err := planFor(t, dir, t.TempDir())
	if err != nil {
		t.Fatalf("Plan() = %v", err)
	}
	if !cmp.Equal(a.Env, b.Env) {
		t.Errorf("Plan().Env = %v, then %v", a.Env, b.Env)
	}
	var names []string
	for _, s := range a.Steps {
		names = append(names, s.Name())
	}
	if want := []string{"java runtime (java.base,jdk.crypto.ec,jdk.httpserver)", "openfaas model and entrypoint", "resources", "classes"}; !cmp.Equal(names, want) {
		t.Fatalf("Plan() steps = %v, want %v", names, want)
	}
	if len(b.Steps) != len(a.Steps) {
		t.Fatalf("Plan() = %d steps, then %d", len(a.Steps), len(b.Steps))
	}
	wantCP := "CLASSPATH=/home/app/classes:/home/app/resources:/home/app/kiln/openfaas.jar"
	if !slices.Contains(a.Env, wantCP) {
		t.Errorf("Plan().Env = %v, want it to hold %s", a.Env, wantCP)
	}
	if got := a.Labels["dev.kiln.java.modules"]; got != "java.base,jdk.crypto.ec,jdk.httpserver" {
		t.Errorf("modules = %s, want java.base,jdk.crypto.ec,jdk.httpserver", got)
	}
	for i := range a.Steps {
		ka, err := a.Steps[i].Key(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		kb, err := b.Steps[i].Key(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ka != kb {
			t.Errorf("step %q key = %s, then %s", a.Steps[i].Name(), ka, kb)
		}
		if _, ok := a.Steps[i].(*runtimeStep); ok {
			continue
		}
		var ba, bb bytes.Buffer
		if err := a.Steps[i].Build(context.Background(), &ba); err != nil {
			t.Fatal(err)
		}
		if err := b.Steps[i].Build(context.Background(), &bb); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ba.Bytes(), bb.Bytes()) {
			t.Errorf("step %q bytes differ between two builds", a.Steps[i].Name())
		}
	}
}

func TestPlanErrors(t *testing.T) {
	needJDK(t)
	t.Run("compile error", func(t *testing.T) {
		dir := handlerDir(t, "        return nope;")
		_, err := planFor(t, dir, t.TempDir())
		var se *languages.SourceError
		if !errors.As(err, &se) || !strings.HasSuffix(se.Path, "Handler.java") || se.Line != 7 || !strings.Contains(se.Detail, "cannot find symbol") {
			t.Fatalf("Plan() = %v, want a SourceError at Handler.java:7 with javac's output", err)
		}
	})
	t.Run("JAVA_MODULES", func(t *testing.T) {
		dir := handlerDir(t, "        return new Response();")
		p := newPack(t, WithEnv(os.Environ()), WithCacheDir(t.TempDir()))
		fn := languages.Function{Dir: dir, Lang: LangJava17, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, ScratchDir: t.TempDir(), BuildArgs: map[string]string{"JAVA_MODULES": "java.sql, jdk.zipfs"}}
		plan, err := planAndFinish(p, fn)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := plan.Labels["dev.kiln.java.modules"], "java.base,java.sql,jdk.crypto.ec,jdk.httpserver,jdk.zipfs"; got != want {
			t.Errorf("modules = %s, want %s", got, want)
		}
	})
	t.Run("other platform without a Debian mirror", func(t *testing.T) {
		dir := handlerDir(t, "        return new Response();")
		p := newPack(t, WithEnv(os.Environ()))
		other := otherArch()
		fn := languages.Function{Dir: dir, Lang: LangJava11, Platform: v1.Platform{OS: "linux", Architecture: other}, ScratchDir: t.TempDir()}
		_, err := planAndFinish(p, fn)
		if err == nil || !strings.Contains(err.Error(), "cross-building Java for linux/"+other+": no Debian mirror") {
			t.Errorf("Plan() = %v, want the cross-building error", err)
		}
	})
}

// TestModel runs kiln's Request against the contract's examples with the
// real JDK.
func TestModel(t *testing.T) {
	needJDK(t)
	dir := handlerDir(t, "        return null;")
	p := newPack(t, WithEnv(os.Environ()), WithCacheDir(t.TempDir()))
	j, err := findJDK(context.Background(), p.getenv)
	if err != nil {
		t.Fatal(err)
	}
	b := &build{pack: p, fn: languages.Function{Dir: dir, ScratchDir: t.TempDir()}, jdk: j, cache: t.TempDir()}
	jar, err := b.modelJar(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "Check.java")
	check := `import com.openfaas.model.*;
import java.util.*;
public class Check {
    public static void main(String[] a) {
        Request r = new Request("b", new HashMap<>(Map.of("X-a", "1")), "q=a%20b&n=1&flag", "/a/1/b/2");
        Response res = new Response();
        res.setHeader("K", "v");
        res.setHeader("K", null);
        System.out.println(new TreeMap<>(r.getQuery()) + " " + new TreeMap<>(r.getPath()) + " " + r.getHeader("X-a")
            + " " + res.getStatusCode() + " [" + res.getBody() + "] [" + res.getContentType() + "] " + res.getHeaders());
    }
}
`
	if err := os.WriteFile(src, []byte(check), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(j.tool("java"), "-cp", jar, src).CombinedOutput()
	if err != nil {
		t.Fatalf("java Check.java: %v\n%s", err, out)
	}
	want := "{flag=, n=1, q=a b} {a=1, b=2} 1 200 [] [] {}\n"
	if string(out) != want {
		t.Errorf("model check = %q, want %q", out, want)
	}
}

// jdkDeb is a Debian JDK package for arm64 in suite holding the given
// jmods.
func jdkDeb(suite, version string, jmods ...string) languagestest.Deb {
	files := map[string]string{"usr/lib/jvm/java-17-openjdk-arm64/bin/jlink": "elf"}
	for _, m := range jmods {
		files["usr/lib/jvm/java-17-openjdk-arm64/jmods/"+m] = m + " of " + version
	}
	return languagestest.NewDeb("openjdk-17-jdk-headless", version, "arm64", suite, files)
}

func TestCrossJDK(t *testing.T) {
	tests := []struct {
		name        string
		offered     []languagestest.Deb // in the java base's suite order
		wantVersion string              // of the jmods chosen; "" for an error
		wantErr     []string
	}{
		{
			name: "newest build of this release",
			offered: []languagestest.Deb{
				jdkDeb("bookworm", "17.0.19+10-1~deb12u2", "java.base.jmod", "java.sql.jmod"),
				jdkDeb("bookworm-security", "17.0.21.1+2-1~deb12u1", "java.base.jmod", "java.sql.jmod"),
			},
			wantVersion: "17.0.21.1+2-1~deb12u1",
		},
		{
			name: "another release is passed over",
			offered: []languagestest.Deb{
				jdkDeb("bookworm", "17.0.19+10-1~deb12u2", "java.base.jmod"),
				jdkDeb("bookworm-security", "17.1.2+1-1", "java.base.jmod"),
			},
			wantVersion: "17.0.19+10-1~deb12u2",
		},
		{
			name:    "no build jlink can link",
			offered: []languagestest.Deb{jdkDeb("bookworm", "21.0.5+11-1", "java.base.jmod")},
			wantErr: []string{"cross-building Java for linux/arm64:", "has no openjdk-17-jdk-headless for arm64 that this JDK's jlink", "release 17.0", "21.0.5+11-1 (bookworm)"},
		},
		{
			name:    "no JDK for the architecture",
			wantErr: []string{"has no openjdk-17-jdk-headless for arm64", "it has: none"},
		},
		{
			name:    "no java.base",
			offered: []languagestest.Deb{jdkDeb("bookworm", "17.0.19+10-1~deb12u2", "java.sql.jmod")},
			wantErr: []string{"openjdk-17-jdk-headless 17.0.19+10-1~deb12u2 has no jmods/java.base.jmod"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debian := &languagestest.Debian{Bases: map[string][]languagestest.Deb{"java": tc.offered}}
			b := &build{pack: newPack(t, WithDebian(debian)), jdk: &jdk{home: "/jdk", version: "17.0.15"}, cache: t.TempDir()}
			target, err := b.crossJDK(context.Background(), "linux/arm64", "arm64")
			if tc.wantVersion == "" {
				for _, w := range tc.wantErr {
					if err == nil || !strings.Contains(err.Error(), w) {
						t.Errorf("crossJDK() = %v, want an error containing %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("crossJDK() = %v", err)
			}
			if target.pkg.Version != tc.wantVersion {
				t.Errorf("crossJDK() chose %s, want %s", target.pkg.Version, tc.wantVersion)
			}
			data, err := os.ReadFile(filepath.Join(target.jmods, "java.base.jmod"))
			if want := "java.base.jmod of " + tc.wantVersion; err != nil || string(data) != want {
				t.Errorf("jmods/java.base.jmod = %q, %v; want %q", data, err, want)
			}
			if entries, _ := os.ReadDir(filepath.Dir(target.jmods)); len(entries) != 1 {
				t.Errorf("the jmods cache entry holds %d entries, want only jmods/", len(entries))
			}
			again, err := b.crossJDK(context.Background(), "linux/arm64", "arm64")
			if err != nil || again.jmods != target.jmods {
				t.Errorf("second crossJDK() = %+v, %v; want the cached %s", again, err, target.jmods)
			}
			if n := debian.Unpacked(target.pkg); n != 1 {
				t.Errorf("the package was unpacked %d times, want once", n)
			}
		})
	}
	t.Run("no Debian mirror", func(t *testing.T) {
		b := &build{pack: newPack(t), jdk: &jdk{home: "/jdk", version: "17.0.15"}, cache: t.TempDir()}
		if _, err := b.crossJDK(context.Background(), "linux/arm64", "arm64"); err == nil || !strings.Contains(err.Error(), "no Debian mirror to fetch openjdk-17-jdk-headless for arm64") {
			t.Errorf("crossJDK() = %v, want the no-mirror error", err)
		}
	})
}

func TestJDKRelease(t *testing.T) {
	tests := []struct{ version, major, release string }{
		{"17.0.15", "17", "17.0"},
		{"17.0.19+10-1~deb12u2", "17", "17.0"},
		{"17.0.21.1+2-1~deb12u1", "17", "17.0"},
		{"21", "21", "21.0"},
		{"21.1.2+3", "21", "21.1"},
	}
	for _, tc := range tests {
		if major, release := jdkRelease(tc.version); major != tc.major || release != tc.release {
			t.Errorf("jdkRelease(%q) = %q, %q; want %q, %q", tc.version, major, release, tc.major, tc.release)
		}
	}
}
