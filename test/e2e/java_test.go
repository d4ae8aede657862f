//go:build e2e

package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/test/debianrepo"
	"github.com/kiln-build/kiln/test/registrytest"
)

// The Java samples: java11 with commons-lang3 from build.gradle, and a
// plain Maven application with a main class.
const (
	javaHello    = "java-hello"
	javaMavenApp = "java-maven-app"
)

// javaLayers are the layers the java pack adds above the base, bottom first.
var javaLayers = []string{"watchdog", "java runtime (java.base,jdk.crypto.ec,jdk.httpserver)", "dependencies", "openfaas model and entrypoint", "resources", "classes"}

// javaEnv skips without a JDK, Maven or Debian's Maven repository, and
// returns the environment that points the user's Maven at that repository
// (Maven Central is unreachable here), and the same of Gradle.
func javaEnv(t *testing.T) []string {
	t.Helper()
	needBinaries(t, "javac", "jlink", "jdeps", "mvn")
	if missing := debianrepo.Missing(); missing != "" {
		t.Skip(missing + "; CI installs it")
	}
	env, err := debianrepo.Env(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestJavaFunction builds java-hello with a cold cache, pushes it, runs it
// with kiln run and with runc, checks the handler contract, the size, and
// that an edit of Handler.java uploads one layer plus the config.
func TestJavaFunction(t *testing.T) {
	env := javaEnv(t)
	reg := startRegistry(t)
	ctx := context.Background()
	dir := copySample(t, javaHello)
	o := kilnOpts{cache: t.TempDir(), env: env}
	repo := "e2e/" + javaHello
	image := reg.Host + "/" + repo + ":v1"
	args := []string{dir, "--lang", "java11", "--image", image, "--push"}

	start := time.Now()
	first := buildJSON(t, o, args...)
	t.Logf("cold build and push: %s", time.Since(start).Round(time.Millisecond))
	if names := layerNames(first.Layers); !isSuffix(names, javaLayers) {
		t.Errorf("kiln build layers = %v, want them to end with %v", names, javaLayers)
	}
	validateRemote(t, first.Image)
	compressed, uncompressed := javaImageSizes(t, first.Image)
	t.Logf("image size: %.1f MB compressed, %.1f MB (%.1f MiB) uncompressed", float64(compressed)/1e6, float64(uncompressed)/1e6, float64(uncompressed)/(1<<20))
	if uncompressed > 45<<20 {
		t.Errorf("image uncompressed size = %d bytes, want at most 45 MiB", uncompressed)
	}

	t.Run("contract", func(t *testing.T) {
		ports := newFunctionPorts(t)
		runArgs := []string{"run", image, "--port", strconv.Itoa(ports.http)}
		for _, kv := range ports.env() {
			runArgs = append(runArgs, "--env", kv)
		}
		start := time.Now()
		p := startProcess(t, kilnCommand(ctx, kilnOpts{cache: o.cache}, runArgs...))
		for {
			a, err := call(http.MethodGet, ports.http, "/", "")
			if err == nil && a.status == http.StatusOK {
				break
			}
			if time.Since(start) > readyTimeout || !p.running() {
				t.Fatalf("no 200 from GET / within %s: %v %+v\n%s", readyTimeout, err, a, p)
			}
			time.Sleep(pollEvery)
		}
		t.Logf("kiln run to first 200: %s", time.Since(start).Round(time.Millisecond))

		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+strconv.Itoa(ports.http)+"/any/path?name=kiln", strings.NewReader("ping"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Echo", "round trip")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body := make([]byte, 512)
		n, _ := resp.Body.Read(body)
		if want := "Hello, Java! body=ping q=kiln"; resp.StatusCode != 200 || string(body[:n]) != want {
			t.Errorf("POST = %d %q, want 200 %q", resp.StatusCode, body[:n], want)
		}
		if got := resp.Header.Get("X-Echo"); got != "ROUND TRIP" {
			t.Errorf("POST header X-Echo = %q, want %q", got, "ROUND TRIP")
		}
		if got := resp.Header.Get("X-Banner"); got != "kiln" {
			t.Errorf("POST header X-Banner (from src/main/resources) = %q, want %q", got, "kiln")
		}
		if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
			t.Errorf("POST Content-Type = %q, want text/plain; charset=utf-8", got)
		}
	})

	t.Run("runc", func(t *testing.T) {
		needBinaries(t, "skopeo", "umoci", "runc")
		c := startRunc(t, image, "v1", first.Digest, "mode=http", "upstream_url=http://127.0.0.1:8082")
		a, err := call(http.MethodPost, c.ports.http, "/?name=runc", "from runc")
		if want := "Hello, Java! body=from runc q=runc"; err != nil || a.status != 200 || a.body != want {
			t.Errorf("POST under runc = %d %q, %v; want 200 %q\n%s", a.status, a.body, err, want, c.p)
		}
		c.terminate(t)
	})

	t.Run("edit uploads one layer", func(t *testing.T) {
		editFile(t, dir, "src/main/java/com/openfaas/function/Handler.java", `"Hello, Java"`, `"Hello again, Java"`)
		mark := reg.Mark()
		start := time.Now()
		edited := buildJSON(t, o, args...)
		t.Logf("edit -> pushed: %s", time.Since(start).Round(time.Millisecond))
		reqs := requestsSince(t, reg, mark)
		javaCheckOnlyLayer(t, first, edited, "classes")
		m, err := reg.Manifest(ctx, repo, "v1")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{edited.layer(t, "classes").Digest, m.Config.Digest}
		if got := registrytest.BlobUploads(reqs); !sameSet(got, want) {
			t.Errorf("edit push: blob uploads = %v, want exactly the classes layer and the config %v\n%s", got, want, registrytest.Summary(reqs))
		}
		if got := registrytest.ManifestPuts(reqs); !slices.Equal(got, []string{repo + ":v1"}) {
			t.Errorf("edit push: manifest puts = %v, want [%s:v1]", got, repo)
		}
	})
}

// TestJavaMavenApp builds and runs a plain Maven application whose main
// class serves HTTP itself.
func TestJavaMavenApp(t *testing.T) {
	env := javaEnv(t)
	reg := startRegistry(t)
	o := kilnOpts{cache: t.TempDir(), env: env}
	image := reg.Host + "/e2e/" + javaMavenApp + ":v1"
	buildJSON(t, o, sample(javaMavenApp), "--lang", "java", "--image", image, "--push")
	_, ports := runFunction(t, o.cache, image)
	a, err := call(http.MethodGet, ports.http, "/", "")
	if want := "maven app: Hello\n"; err != nil || a.status != 200 || a.body != want {
		t.Errorf("GET / = %d %q, %v; want 200 %q", a.status, a.body, err, want)
	}
}

// TestJavaTrustStore runs a handler that builds the default SSLContext,
// counts the default trust store's certificates and the CA bundle's, and
// reads where the runtime's cacerts points: the trust store is the base's,
// generated from the bundle, with every certificate of it.
func TestJavaTrustStore(t *testing.T) {
	env := javaEnv(t)
	dir := t.TempDir()
	writeJavaHandler(t, dir, `        try {
            javax.net.ssl.SSLContext.getDefault();
            javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory.getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
            tmf.init((java.security.KeyStore) null);
            javax.net.ssl.X509TrustManager tm = (javax.net.ssl.X509TrustManager) tmf.getTrustManagers()[0];
            String bundle = java.nio.file.Files.readString(java.nio.file.Path.of("/etc/ssl/certs/ca-certificates.crt"));
            int pem = bundle.split("-----BEGIN CERTIFICATE-----", -1).length - 1;
            java.nio.file.Path cacerts = java.nio.file.Path.of(System.getProperty("java.home"), "lib", "security", "cacerts");
            String link = java.nio.file.Files.isSymbolicLink(cacerts) ? java.nio.file.Files.readSymbolicLink(cacerts).toString() : "not a link";
            res.setBody(tm.getAcceptedIssuers().length + " " + pem + " " + link);
        } catch (Exception e) {
            res.setStatusCode(500);
            res.setBody(e.toString());
        }`)
	o := kilnOpts{cache: t.TempDir(), env: env}
	image := "e2e/java-tls:v1"
	mustKiln(t, o, "build", dir, "--lang", "java17", "--image", image)
	_, ports := runFunction(t, o.cache, image)
	a, err := call(http.MethodGet, ports.http, "/", "")
	if err != nil || a.status != 200 {
		t.Fatalf("GET / = %d %q, %v; want 200", a.status, a.body, err)
	}
	f := strings.Fields(a.body)
	if len(f) != 3 {
		t.Fatalf("GET / = %q, want \"TRUSTED BUNDLE LINK\"", a.body)
	}
	trusted, _ := strconv.Atoi(f[0])
	bundle, _ := strconv.Atoi(f[1])
	if bundle <= 100 || trusted != bundle {
		t.Errorf("default trust store holds %s certificates, the CA bundle %s: want the same, more than 100", f[0], f[1])
	}
	if f[2] != "/etc/ssl/certs/java/cacerts" {
		t.Errorf("the runtime's lib/security/cacerts links to %q, want /etc/ssl/certs/java/cacerts", f[2])
	}
	t.Logf("trust store: %s certificates, CA bundle: %s", f[0], f[1])
}

// TestJavaBuildErrors checks the user mistakes: each is a one-line cause
// that names the culprit, and nothing is pushed.
func TestJavaBuildErrors(t *testing.T) {
	env := javaEnv(t)
	reg := startRegistry(t)
	noHandler := copySample(t, javaHello)
	if err := os.Remove(filepath.Join(noHandler, "src/main/java/com/openfaas/function/Handler.java")); err != nil {
		t.Fatal(err)
	}
	broken := copySample(t, javaHello)
	editFile(t, broken, "src/main/java/com/openfaas/function/Handler.java", `String greeting = "Hello, Java";`, `String greeting = notDeclared;`)
	missingDep := copySample(t, javaHello)
	editFile(t, missingDep, "build.gradle", "org.apache.commons:commons-lang3:3.12.0", "org.example.kiln:no-such-lib:9.9")
	unreadable := copySample(t, javaHello)
	editFile(t, unreadable, "build.gradle", "    implementation 'com.openfaas:model:0.1.1'", "    implementation project(':model')")
	noJDK := t.TempDir()

	tests := []struct {
		name   string
		dir    string
		env    []string
		args   []string
		want   []string
		detail []string
	}{
		{name: "no Handler class", dir: noHandler, want: []string{"Handler.java", "no Handler class"}},
		{name: "compile error", dir: broken, want: []string{"Handler.java:15", "javac failed"}, detail: []string{"cannot find symbol", "notDeclared"}},
		{name: "unresolvable dependency", dir: missingDep, want: []string{"build.gradle", "cannot resolve org.example.kiln:no-such-lib"}, detail: []string{}},
		{name: "unresolvable dependency, without Gradle", dir: missingDep, env: []string{"KILN_GRADLE=off"}, want: []string{"build.gradle", "cannot resolve org.example.kiln:no-such-lib"}, detail: []string{}},
		{name: "unreadable build.gradle line", dir: unreadable, env: []string{"KILN_GRADLE=off"}, want: []string{"build.gradle:12", "project(':model')", "without Gradle"}},
		{name: "no JDK", dir: sample(javaHello), env: []string{"JAVA_HOME=" + noJDK}, want: []string{"install JDK 17 or later", "JAVA_HOME"}},
		{name: "native-image missing", dir: sample(javaHello), env: []string{"GRAALVM_HOME=" + noJDK}, args: []string{"--build-arg", "NATIVE=true"}, want: []string{"native-image", "GRAALVM_HOME"}},
		{name: "native-image missing, --native", dir: sample(javaHello), env: []string{"PATH=" + noJDK + ":" + os.Getenv("PATH")}, args: []string{"--native"}, want: []string{"NATIVE=true needs GraalVM's native-image", "GRAALVM_HOME"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := "e2e/java-bad-" + strconv.Itoa(i)
			mark := reg.Mark()
			args := append([]string{"build", tc.dir, "--lang", "java11", "--image", reg.Host + "/" + repo + ":v1", "--push"}, tc.args...)
			r := kiln(t, kilnOpts{cache: warmCache, env: append(append([]string(nil), env...), tc.env...)}, args...)
			t.Logf("kiln exit %d after %s; stderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stderr)
			_, rest := checkOneLineError(t, r, 1, tc.want, tc.detail != nil)
			for _, d := range tc.detail {
				if !strings.Contains(rest, d) {
					t.Errorf("kiln stderr after the first line = %q, want it to contain %q", rest, d)
				}
			}
			assertNothingPushed(t, reg, mark, repo, "v1")
		})
	}
}

// writeJavaHandler writes a java11 handler whose Handle runs body with a
// Response named res.
func writeJavaHandler(t *testing.T, dir, body string) {
	t.Helper()
	p := filepath.Join(dir, "src/main/java/com/openfaas/function/Handler.java")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package com.openfaas.function;\n\nimport com.openfaas.model.*;\n\npublic class Handler extends AbstractHandler {\n    public IResponse Handle(IRequest req) {\n        Response res = new Response();\n" + body + "\n        return res;\n    }\n}\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// javaCheckOnlyLayer checks that only the layer named changed has a new
// digest between two builds.
func javaCheckOnlyLayer(t *testing.T, before, after buildReport, changed string) {
	t.Helper()
	if len(before.Layers) != len(after.Layers) {
		t.Fatalf("layers = %v, were %v", layerNames(after.Layers), layerNames(before.Layers))
	}
	for i, l := range after.Layers {
		if differs := l.Digest != before.Layers[i].Digest; differs != (l.Name == changed) {
			t.Errorf("layer %q digest changed = %v, want %v", l.Name, differs, l.Name == changed)
		}
	}
}

// javaImageSizes sums an image's layers, compressed as pushed and
// uncompressed as unpacked (tar streams).
func javaImageSizes(t *testing.T, ref string) (compressed, uncompressed int64) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		compressed += size
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		uncompressed += n
	}
	return compressed, uncompressed
}
