//go:build e2e

package e2e

import (
	"context"
	"debug/elf"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestJavaCrossPlatform builds java-hello for the other architecture: the
// runtime is linked from Debian's JDK for that platform, its native code is
// that platform's, and, under qemu's user-mode emulator, the runtime starts
// and the function answers.
func TestJavaCrossPlatform(t *testing.T) {
	env := javaEnv(t)
	needBinaries(t, "umoci")
	arch, elfMachine, qemu := "arm64", elf.EM_AARCH64, "qemu-aarch64-static"
	if runtime.GOARCH == "arm64" {
		arch, elfMachine, qemu = "amd64", elf.EM_X86_64, "qemu-x86_64-static"
	}
	o := kilnOpts{cache: warmCache, env: env}
	layout := filepath.Join(t.TempDir(), "layout")
	buildJSON(t, o, sample(javaHello), "--lang", "java11", "--image", "java-hello:cross", "--platform", "linux/"+arch, "--output", "oci:"+layout)
	bundle := filepath.Join(t.TempDir(), "bundle")
	// The layout names the image by its full name, as ggcr normalises it.
	tool(t, "umoci", "unpack", "--image", layout+":index.docker.io/library/java-hello:cross", bundle)
	root := filepath.Join(bundle, "rootfs")

	f, err := elf.Open(filepath.Join(root, "opt/java/lib/server/libjvm.so"))
	if err != nil {
		t.Fatalf("the runtime has no libjvm.so: %v", err)
	}
	if f.Machine != elfMachine {
		t.Errorf("libjvm.so is for %s, want %s", f.Machine, elfMachine)
	}
	if syms, _ := f.Symbols(); len(syms) > 0 {
		t.Errorf("libjvm.so keeps %d symbols, want it stripped", len(syms))
	}
	f.Close()

	if _, err := exec.LookPath(qemu); err != nil {
		t.Skipf("%s (Debian's qemu-user-static) is not installed: the %s runtime is not run", qemu, arch)
	}
	out := tool(t, qemu, "-L", root, filepath.Join(root, "opt/java/bin/java"), "--list-modules")
	for _, m := range []string{"java.base@17", "jdk.httpserver@17"} {
		if !strings.Contains(out, m) {
			t.Errorf("java --list-modules under %s = %q, want %s", qemu, out, m)
		}
	}

	// The image's own start command, with its class path under the
	// unpacked root: qemu finds absolute paths below -L first.
	var spec struct {
		Process struct {
			Env []string `json:"env"`
		} `json:"process"`
	}
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil || json.Unmarshal(b, &spec) != nil {
		t.Fatalf("reading the bundle's config.json: %v", err)
	}
	var fprocess, classpath string
	for _, kv := range spec.Process.Env {
		if v, ok := strings.CutPrefix(kv, "fprocess="); ok {
			fprocess = v
		}
		if v, ok := strings.CutPrefix(kv, "CLASSPATH="); ok {
			classpath = v
		}
	}
	args := strings.Fields(fprocess)
	if len(args) < 2 || args[0] != "java" {
		t.Fatalf("fprocess = %q, want java ...", fprocess)
	}
	var cp []string
	for _, p := range strings.Split(classpath, ":") {
		cp = append(cp, filepath.Join(root, p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, append([]string{"-L", root, filepath.Join(root, "opt/java/bin/java")}, args[1:]...)...)
	port := freePort(t)
	cmd.Env = append(baseEnv(), "CLASSPATH="+strings.Join(cp, ":"), "http_port="+strconv.Itoa(port))
	p := startProcess(t, cmd)
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(readyTimeout)
	for {
		a, err := call(http.MethodPost, port, "/?name=qemu", "from "+arch)
		if err == nil {
			if want := "Hello, Java! body=from " + arch + " q=qemu"; a.status != 200 || a.body != want {
				t.Errorf("POST under %s = %d %q, want 200 %q", qemu, a.status, a.body, want)
			}
			break
		}
		if time.Now().After(deadline) || !p.running() {
			t.Fatalf("the %s function did not answer within %s: %v\n%s", arch, readyTimeout, err, p)
		}
		time.Sleep(pollEvery)
	}
}

// TestJavaRuntimeVariants builds java-hello on Debian's whole JRE
// (JAVA_RUNTIME=jre) and on a jlinked runtime with a class data sharing
// archive (JAVA_CDS=true); both answer under kiln run, and each is the
// size its runtime says: the JRE image larger than the jlinked one.
func TestJavaRuntimeVariants(t *testing.T) {
	env := javaEnv(t)
	reg := startRegistry(t)
	o := kilnOpts{cache: warmCache, env: env}
	sizes := map[string]int64{}
	for _, v := range []struct{ name, arg string }{{"jlink", ""}, {"cds", "JAVA_CDS=true"}, {"jre", "JAVA_RUNTIME=jre"}} {
		image := reg.Host + "/e2e/java-variants:" + v.name
		args := []string{sample(javaHello), "--lang", "java11", "--image", image, "--push"}
		if v.arg != "" {
			args = append(args, "--build-arg", v.arg)
		}
		rep := buildJSON(t, o, args...)
		_, sizes[v.name] = javaImageSizes(t, rep.Image)
		_, ports := runFunction(t, o.cache, image)
		a, err := call(http.MethodPost, ports.http, "/?name="+v.name, "variant")
		if want := "Hello, Java! body=variant q=" + v.name; err != nil || a.status != 200 || a.body != want {
			t.Errorf("%s: POST = %d %q, %v; want 200 %q", v.name, a.status, a.body, err, want)
		}
	}
	t.Logf("uncompressed sizes: jlink %.1f MB, jlink+CDS %.1f MB, Debian JRE %.1f MB", float64(sizes["jlink"])/1e6, float64(sizes["cds"])/1e6, float64(sizes["jre"])/1e6)
	if sizes["cds"] <= sizes["jlink"] {
		t.Errorf("the CDS image (%d bytes) is not larger than the plain jlink one (%d): no archive in it?", sizes["cds"], sizes["jlink"])
	}
	if sizes["jre"] < 2*sizes["jlink"] {
		t.Errorf("the JRE image (%d bytes) is less than twice the jlink one (%d): is the JRE in it?", sizes["jre"], sizes["jlink"])
	}
}

// TestJavaNative builds java-hello with NATIVE=true where GraalVM is
// installed and runs the native binary under kiln run.
func TestJavaNative(t *testing.T) {
	env := javaEnv(t)
	if _, err := exec.LookPath("native-image"); err != nil && os.Getenv("GRAALVM_HOME") == "" {
		t.Skip("GraalVM native-image is not installed, and cannot be here (no Debian package, no download): NATIVE=true is covered by languages/java's unit tests with a stand-in compiler")
	}
	reg := startRegistry(t)
	o := kilnOpts{cache: warmCache, env: env}
	image := reg.Host + "/e2e/java-native:v1"
	buildJSON(t, o, sample(javaHello), "--lang", "java11", "--image", image, "--push", "--build-arg", "NATIVE=true")
	_, ports := runFunction(t, o.cache, image)
	a, err := call(http.MethodPost, ports.http, "/?name=native", "compiled")
	if want := "Hello, Java! body=compiled q=native"; err != nil || a.status != 200 || a.body != want {
		t.Errorf("POST = %d %q, %v; want 200 %q", a.status, a.body, err, want)
	}
}
