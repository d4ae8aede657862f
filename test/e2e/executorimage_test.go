//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// executorCache is kiln's own cache: the executor images are made of some
// 400 MB of toolchains and Debian packages, downloaded once per machine.
func executorCache(t *testing.T) string {
	t.Helper()
	dir, err := os.UserCacheDir()
	if err != nil {
		t.Skipf("no cache folder for the executor images' toolchains: %v", err)
	}
	return filepath.Join(dir, "kiln")
}

// executorImages reads `kiln executor image build`'s lines, NAME REF SIZE
// MB, into NAME → REF.
func executorImages(t *testing.T, r result) map[string]string {
	t.Helper()
	refs := map[string]string{}
	for _, line := range r.lines() {
		f := strings.Fields(line)
		if len(f) != 4 || f[3] != "MB" {
			t.Fatalf("kiln executor image build printed %q, want NAME REF SIZE MB\n%s", line, r)
		}
		refs[f[0]] = f[1]
		t.Logf("executor image %s: %s MB", f[0], f[2])
	}
	return refs
}

// TestExecutorImages builds every executor image from the pinned inputs,
// pushes them to a real registry, checks the recorded default, the labels
// and that the same inputs give the same digest with an empty cache, then
// runs each toolchain in its image under runc: as 65532, on a read-only
// root with a writable /tmp, as kiln job runs them.
func TestExecutorImages(t *testing.T) {
	needBinaries(t, "skopeo", "umoci", "runc")
	if os.Geteuid() != 0 {
		t.Skip("runc runs the images' toolchains as root here")
	}
	reg := startRegistry(t)
	repo := reg.Host + "/e2e/executor"
	r := mustKiln(t, kilnOpts{cache: executorCache(t)}, "executor", "image", "build", "--push", repo)
	refs := executorImages(t, r)
	for _, name := range []string{"go", "node", "python", "java", "all"} {
		if !strings.HasPrefix(refs[name], repo+":"+name+"@sha256:") {
			t.Fatalf("image %s = %q, want %s:%s@sha256:…\n%s", name, refs[name], repo, name, r)
		}
	}
	recorded, err := os.ReadFile(filepath.Join(configHome, "kiln", "executor-image"))
	if err != nil || string(recorded) != refs["all"]+"\n" {
		t.Errorf("executor-image = %q, %v; want %q", recorded, err, refs["all"]+"\n")
	}

	t.Run("labels", func(t *testing.T) {
		labels := imageLabels(t, refs["all"])
		for _, key := range []string{"go", "node", "npm", "java", "maven", "python", "git"} {
			if labels["dev.kiln.toolchain."+key] == "" {
				t.Errorf("the all image has no label dev.kiln.toolchain.%s: %v", key, labels)
			}
		}
		if got := labels["dev.kiln.toolchain.go"]; got != "1.26.8" {
			t.Errorf("dev.kiln.toolchain.go = %q, want 1.26.8", got)
		}
	})

	t.Run("reproducible", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "layout")
		again := mustKiln(t, kilnOpts{cache: t.TempDir()}, "executor", "image", "build", "--only", "go", "--output", "oci:"+out)
		want := refs["go"][strings.IndexByte(refs["go"], '@')+1:]
		if got := executorImages(t, again)["go"]; !strings.HasSuffix(got, "@"+want) {
			t.Errorf("go image with an empty cache = %s, want digest %s", got, want)
		}
	})

	t.Run("kiln build in go", func(t *testing.T) {
		hostLayout := filepath.Join(t.TempDir(), "layout")
		mustKiln(t, kilnOpts{cache: t.TempDir()}, "build", sample(goHello), "--lang", "golang-middleware", "--image", "fn:1", "--output", "oci:"+hostLayout)
		// The runtime base's Debian packages, so that the build in the
		// container needs no network; the function is compiled there.
		cache := t.TempDir()
		mustKiln(t, kilnOpts{cache: cache}, "base", "build", "static")
		got := buildInImage(t, refs["go"], "go", goHello, "golang-middleware", cache, podMounts{})
		if want := layoutDigest(t, hostLayout); got != want {
			t.Errorf("go-hello built in the go image = %s, on the host with the same Go = %s", got, want)
		}
	})
	t.Run("kiln build in node", func(t *testing.T) {
		hostLayout := filepath.Join(t.TempDir(), "layout")
		mustKiln(t, kilnOpts{cache: t.TempDir()}, "build", sample(nodeHello), "--lang", "node22", "--image", "fn:1", "--output", "oci:"+hostLayout)
		// npm install reaches the npm registry, as the host's build did.
		got := buildInImage(t, refs["node"], "node", nodeHello, "node22", t.TempDir(), podMounts{network: true})
		if want := layoutDigest(t, hostLayout); got != want {
			t.Errorf("node-hello built in the node image = %s, on the host with the same Node = %s", got, want)
		}
	})
	// The host's Python and JDK are not the images' releases: these builds
	// are checked to succeed, not to match the host's.
	t.Run("kiln build in python", func(t *testing.T) {
		env := pythonWheelhouse(t)
		wheels := strings.TrimPrefix(env[1], "PIP_FIND_LINKS=")
		// The python base's Debian packages: the build needs no network.
		cache := t.TempDir()
		mustKiln(t, kilnOpts{cache: cache}, "base", "build", "python")
		buildInImage(t, refs["python"], "python", pyHTTP, "python3-http", cache, podMounts{ro: map[string]string{wheels: wheels}}, env...)
	})
	t.Run("kiln build in java", func(t *testing.T) {
		// Maven reaches Maven Central.
		buildInImage(t, refs["java"], "java", javaHello, "java11", t.TempDir(), podMounts{network: true})
	})

	checks := map[string][]string{
		"go":     {"go version | grep -F go1.26.8", "git --version", "kiln --version"},
		"node":   {"node --version | grep -Fx v22.23.3", "npm --version | grep -Fx 10.9.9", "strip --version"},
		"python": {"python3 --version | grep -F 'Python 3.11'", "python3 -m pip --version", "python3 -m venv /tmp/venv"},
		"java":   {"java -version 2>&1 | grep -F 17.0", "javac -version", "mvn -v | grep -F 'Apache Maven 3'", "test -s /etc/ssl/certs/java/cacerts"},
	}
	var all []string
	for _, name := range []string{"go", "node", "python", "java"} {
		all = append(all, checks[name]...)
	}
	checks["all"] = all
	for name, cmds := range checks {
		t.Run("run "+name, func(t *testing.T) {
			bundle := unpackImage(t, refs[name], name)
			script := "set -e; " + strings.Join(cmds, "; ") + "; test \"$(id -u)\" = 65532; ! touch /usr/x 2>/dev/null; /kaniko/executor version"
			if out, err := runInBundle(t, bundle, podMounts{}, "sh", "-c", script); err != nil {
				t.Errorf("in the %s image: %s: %v\n%s", name, script, err, out)
			}
		})
	}
}

// buildInImage builds a sample function with kiln in the executor image
// ref, as an executor pod does: as 65532, on a read-only root, with the
// cache and the output on volumes it owns, and env set. It returns the
// built image's digest.
func buildInImage(t *testing.T, ref, tag, fn, lang, cache string, m podMounts, env ...string) string {
	t.Helper()
	out, src := t.TempDir(), copySample(t, fn)
	for _, dir := range []string{cache, out, src} {
		chownTree(t, dir, 65532)
	}
	// The folder's name is the function's, which a label holds.
	m.rw = map[string]string{"/cache": cache, "/out": out, "/" + fn: src}
	args := append(append([]string{"env"}, env...), "kiln", "build", "/"+fn, "--lang", lang, "--image", "fn:1",
		"--output", "oci:/out/layout", "--cache-dir", "/cache", "--progress", "plain")
	if log, err := runInBundle(t, unpackImage(t, ref, tag), m, args...); err != nil {
		t.Fatalf("in the %s image: %s: %v\n%s", tag, strings.Join(args, " "), err, log)
	}
	return layoutDigest(t, filepath.Join(out, "layout"))
}

// chownTree gives every file under dir to uid (and the group of that
// number), as a volume an executor pod writes to.
func chownTree(t *testing.T, dir string, uid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// untagged returns REPO@DIGEST for REPO:TAG@DIGEST, which skopeo refuses.
func untagged(ref string) string {
	name, digest, _ := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	return name + "@" + digest
}

// imageLabels returns the labels of an image in a registry.
func imageLabels(t *testing.T, ref string) map[string]string {
	t.Helper()
	var info struct{ Labels map[string]string }
	if err := json.Unmarshal([]byte(tool(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+untagged(ref))), &info); err != nil {
		t.Fatal(err)
	}
	return info.Labels
}

// unpackImage copies an image from its registry and unpacks it into a
// runtime bundle, whose path it returns.
func unpackImage(t *testing.T, ref, tag string) string {
	t.Helper()
	work := t.TempDir()
	layout := filepath.Join(work, "layout")
	tool(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+untagged(ref), "oci:"+layout+":"+tag)
	bundle := filepath.Join(work, "bundle")
	tool(t, "umoci", "unpack", "--image", layout+":"+tag, bundle)
	return bundle
}

// podMounts are what runInBundle mounts beside the tmpfs /tmp.
type podMounts struct {
	// rw and ro map a destination to a host path.
	rw, ro map[string]string
	// network runs the container on the host's network, with its
	// resolv.conf and CA certificates (CA bundle, Java trust store), as
	// a cluster that reaches the internet through its own CAs.
	network bool
}

// runInBundle runs args in the bundle's image as its user, on a read-only
// root with a tmpfs /tmp and HOME=/tmp, as an executor pod runs, with m's
// mounts, and returns what it printed.
func runInBundle(t *testing.T, bundle string, m podMounts, args ...string) (string, error) {
	t.Helper()
	spec := readSpec(t, bundle)
	proc := spec.object(t, "process")
	proc["terminal"] = false
	proc["args"] = args
	var env []any
	for _, kv := range stringsOf(proc["env"]) {
		// umoci sets HOME from /etc/passwd; the image's is the pod's.
		if !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	proc["env"] = append(env, "HOME=/tmp")
	spec.object(t, "root")["readonly"] = true
	ms, _ := spec["mounts"].([]any)
	ms = append(ms, map[string]any{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": []string{"nosuid", "nodev", "mode=1777"}})
	for dst, src := range m.rw {
		ms = append(ms, map[string]any{"destination": dst, "type": "bind", "source": src, "options": []string{"rbind", "rw"}})
	}
	ro := maps.Clone(m.ro)
	if m.network {
		if ro == nil {
			ro = map[string]string{}
		}
		for _, p := range []string{"/etc/resolv.conf", "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/java/cacerts"} {
			if _, err := os.Stat(p); err == nil {
				ro[p] = p
			}
		}
		linux := spec.object(t, "linux")
		var namespaces []any
		for _, ns := range linux["namespaces"].([]any) {
			if n, ok := ns.(map[string]any); !ok || n["type"] != "network" {
				namespaces = append(namespaces, ns)
			}
		}
		linux["namespaces"] = namespaces
	}
	for dst, src := range ro {
		ms = append(ms, map[string]any{"destination": dst, "type": "bind", "source": src, "options": []string{"rbind", "ro"}})
	}
	spec["mounts"] = ms
	spec.write(t, bundle)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	id := "kiln-e2e-exec-" + filepath.Base(filepath.Dir(bundle))
	root := filepath.Join(filepath.Dir(bundle), "runc-state")
	cmd := exec.CommandContext(ctx, "runc", "--root", root, "run", "--bundle", bundle, id)
	out, err := cmd.CombinedOutput()
	_ = exec.Command("runc", "--root", root, "delete", "--force", id).Run()
	return string(out), err
}
