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
	rep := buildJSON(t, o, sample(javaHello), "--lang", "java11", "--image", "java-hello:cross", "--platform", "linux/"+arch, "--output", "oci:"+layout)
	bundle := filepath.Join(t.TempDir(), "bundle")
	tool(t, "umoci", "unpack", "--image", layout+":"+rep.Image[:strings.LastIndex(rep.Image, "@")]+":cross", bundle)
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
