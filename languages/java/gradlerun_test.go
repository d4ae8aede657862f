package java

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/test/debianrepo"
)

// gradleEnv skips without Gradle or what the tests need of Debian's Maven
// repository, and returns an environment whose Gradle and Maven resolve
// from that repository (Maven Central is unreachable here).
func gradleEnv(t *testing.T) []string {
	t.Helper()
	needJDK(t)
	if _, err := exec.LookPath("gradle"); err != nil {
		t.Skip("no gradle on PATH (Debian package gradle; .ci/run installs it)")
	}
	if missing := debianrepo.Missing(); missing != "" {
		t.Skip(missing)
	}
	env, err := debianrepo.Env(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func gradleHandler(t *testing.T, deps string) string {
	t.Helper()
	dir := handlerDir(t, "        return new Response();")
	build := "plugins {\n    id 'java-library'\n}\nrepositories {\n    mavenCentral()\n}\ndependencies {\n" + deps + "}\n"
	if err := os.WriteFile(filepath.Join(dir, "build.gradle"), []byte(build), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestGradleResolve resolves build.gradle with the real Gradle: what only
// Gradle can read (a variable version) resolves, kiln's own OpenFaaS jars
// are left out, and nothing is written into the handler folder.
func TestGradleResolve(t *testing.T) {
	env := gradleEnv(t)
	dir := gradleHandler(t, "    def lang3 = '3.12.0'\n    implementation \"org.apache.commons:commons-lang3:${lang3}\"\n    implementation 'com.openfaas:model:0.1.1'\n    testImplementation 'junit:junit:4.12'\n")
	cache := t.TempDir()
	p := newPack(t, WithEnv(append(os.Environ(), env...)), WithCacheDir(cache))
	fn := languages.Function{Name: "fn", Dir: dir, Lang: LangJava11, ScratchDir: t.TempDir()}
	b := &build{pack: p, fn: fn, cache: cache}
	var err error
	if b.jdk, err = findJDK(context.Background(), p.getenv); err != nil {
		t.Fatal(err)
	}
	d, err := b.dependencies(context.Background())
	if err != nil {
		t.Fatalf("dependencies() = %v", err)
	}
	var names []string
	for _, j := range d.all() {
		names = append(names, filepath.Base(j))
	}
	if want := []string{"commons-lang3-3.12.0.jar"}; !slices.Equal(names, want) {
		t.Errorf("dependencies() = %v, want %v", names, want)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "src" && e.Name() != "build.gradle" {
			t.Errorf("Gradle left %s in the handler folder", e.Name())
		}
	}

	t.Run("unresolvable", func(t *testing.T) {
		dir := gradleHandler(t, "    implementation 'org.example.kiln:no-such-lib:1.0'\n")
		b := &build{pack: p, fn: languages.Function{Dir: dir, Lang: LangJava11}, jdk: b.jdk, cache: t.TempDir()}
		_, err := b.dependencies(context.Background())
		var se *languages.SourceError
		if !errors.As(err, &se) || !strings.HasSuffix(se.Path, "build.gradle") || se.Reason != "cannot resolve org.example.kiln:no-such-lib:1.0" {
			t.Errorf("dependencies() = %v, want a build.gradle error naming org.example.kiln:no-such-lib:1.0", err)
		}
	})
	t.Run("a build Gradle cannot evaluate", func(t *testing.T) {
		// Debian's Gradle 4.4 has no java {} extension, which the
		// OpenFaaS templates use: kiln reads the coordinates itself.
		dir := gradleHandler(t, "    implementation 'org.apache.commons:commons-lang3:3.12.0'\n}\nno_such_method {\n    x = 1\n")
		b := &build{pack: p, fn: languages.Function{Dir: dir, Lang: LangJava11}, jdk: b.jdk, cache: t.TempDir()}
		d, err := b.dependencies(context.Background())
		if err != nil || len(d.all()) != 1 || filepath.Base(d.all()[0]) != "commons-lang3-3.12.0.jar" {
			t.Errorf("dependencies() = %+v, %v; want commons-lang3 from the plain coordinates", d, err)
		}
	})
	t.Run("off", func(t *testing.T) {
		off := newPack(t, WithEnv(append(os.Environ(), env...)), WithGradle(GradleOff))
		b := &build{pack: off, fn: fn, jdk: b.jdk, cache: t.TempDir()}
		_, err := b.dependencies(context.Background())
		if err == nil || !strings.Contains(err.Error(), "without Gradle") {
			t.Errorf("dependencies() with Gradle off = %v, want the without-Gradle error for the variable version", err)
		}
	})
}

func TestGradleArgs(t *testing.T) {
	got := gradleArgs("/s", "/i.gradle", "/o")
	want := []string{"-q", "--no-daemon", "--console=plain", "-p", "/s", "--project-cache-dir", "/s/.gradle", "-I", "/i.gradle", "-Dkiln.out=/o", "kilnCopyDependencies"}
	if !slices.Equal(got, want) {
		t.Errorf("gradleArgs() = %v, want %v", got, want)
	}
	out := []byte("> Could not resolve all files for configuration ':runtimeClasspath'.\n   > Could not find org.example:a:1.0.\n     Required by:\n   > Could not find org.example:b:2.\n   > Could not find org.example:a:1.0.\n")
	if got, want := gradleUnresolved(out), []string{"org.example:a:1.0", "org.example:b:2"}; !slices.Equal(got, want) {
		t.Errorf("gradleUnresolved() = %v, want %v", got, want)
	}
	failed := []byte("FAILURE: Build failed with an exception.\n\n* What went wrong:\nA problem occurred evaluating root project 'function'.\n> Could not find method java()\n")
	if got, want := gradleFailure(failed), "A problem occurred evaluating root project 'function'."; got != want {
		t.Errorf("gradleFailure() = %q, want %q", got, want)
	}
}

func TestFindGradle(t *testing.T) {
	dir := t.TempDir()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "gradle"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	withWrapper := t.TempDir()
	if err := os.WriteFile(filepath.Join(withWrapper, "gradlew"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, path, option, want string
	}{
		{"wrapper first", withWrapper, bin, "", filepath.Join(withWrapper, "gradlew")},
		{"gradle on PATH", dir, bin, "", filepath.Join(bin, "gradle")},
		{"none", dir, t.TempDir(), "", ""},
		{"off", withWrapper, bin, GradleOff, ""},
		{"named", dir, bin, "/opt/gradle/bin/gradle", "/opt/gradle/bin/gradle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &build{pack: newPack(t, WithEnv([]string{"PATH=" + tc.path}), WithGradle(tc.option)), fn: languages.Function{Dir: tc.dir}}
			if got := b.findGradle(); got != tc.want {
				t.Errorf("findGradle() = %q, want %q", got, tc.want)
			}
		})
	}
}
