package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/cacherepo"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/golang"
	"github.com/kiln-build/kiln/layers"
)

type testBases struct{}

func (testBases) Base(ctx context.Context, name string, p v1.Platform, packages []string) (*Base, error) {
	if name != "static" {
		return nil, errors.New("no such base")
	}
	return &Base{
		Name:   name,
		Steps:  []layers.Step{layers.FilesStep("test base", []layers.File{layers.Bytes("etc/passwd", 0o644, []byte("root:x:0:0::/root:/sbin/nologin\n"))})},
		Config: v1.Config{User: "65532:65532", Env: []string{"PATH=/usr/bin:/bin"}},
	}, nil
}

func testWatchdog(t *testing.T) WatchdogSource {
	path := filepath.Join(t.TempDir(), "fwatchdog")
	if err := os.WriteFile(path, []byte("not really a watchdog"), 0o755); err != nil {
		t.Fatal(err)
	}
	return func(v1.Platform) (string, error) { return path, nil }
}

func newBuilder(t *testing.T, cacheDir string, opts ...Option) *Builder {
	t.Helper()
	store, err := cache.Open(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	pack, err := golang.New(golang.WithEnv(os.Environ()))
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]Option{WithPack(pack), WithBases(testBases{}), WithWatchdog(testWatchdog(t))}, opts...)
	b, err := New(store, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sample(t *testing.T, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "functions", name))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// copySample copies a sample function so a test may edit it.
func copySample(t *testing.T, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(sample(t, name))); err != nil {
		t.Fatal(err)
	}
	return dst
}

var linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}

func TestBuildGo(t *testing.T) {
	tests := []struct {
		name       string
		sample     string
		lang       string
		wantLayers []string
	}{
		{"middleware with static", "go-hello", golang.LangMiddleware, []string{"test base", "watchdog", "handler binary", "static files"}},
		{"middleware with a module dependency", "go-deps", golang.LangMiddleware, []string{"test base", "watchdog", "handler binary"}},
		{"plain main", "go-main", golang.LangMain, []string{"test base", "watchdog", "handler binary"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder(t, t.TempDir())
			res, err := b.Build(context.Background(), languages.Function{Name: "fn", Dir: sample(t, tc.sample), Lang: tc.lang, Platform: linuxAMD64})
			if err != nil {
				t.Fatalf("Build() = %v", err)
			}
			if err := validate.Image(res.Image); err != nil {
				t.Fatalf("validate.Image() = %v", err)
			}
			var names []string
			for _, l := range res.Layers {
				names = append(names, l.Name)
			}
			if !slices.Equal(names, tc.wantLayers) {
				t.Errorf("Build() layers = %v, want %v", names, tc.wantLayers)
			}
			cf, err := res.Image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if got := cf.Config.Entrypoint; !slices.Equal(got, []string{"/usr/bin/fwatchdog"}) {
				t.Errorf("entrypoint = %v, want [/usr/bin/fwatchdog]", got)
			}
			for _, want := range []string{"fprocess=./handler", "mode=http", "upstream_url=http://127.0.0.1:8082", "PATH=/usr/bin:/bin"} {
				if !slices.Contains(cf.Config.Env, want) {
					t.Errorf("env %v lacks %s", cf.Config.Env, want)
				}
			}
			if cf.Config.User != "65532:65532" || cf.Config.WorkingDir != "/home/app" {
				t.Errorf("user, workdir = %q, %q, want 65532:65532, /home/app", cf.Config.User, cf.Config.WorkingDir)
			}
			if _, ok := cf.Config.ExposedPorts["8080/tcp"]; !ok {
				t.Errorf("exposed ports = %v, want 8080/tcp", cf.Config.ExposedPorts)
			}
			if got := cf.Config.Labels["org.opencontainers.image.base.digest"]; got != res.BaseDigest.String() {
				t.Errorf("base digest label = %q, want %q", got, res.BaseDigest)
			}
			// As the templates chown /home/app: the function may write there.
			ls, err := res.Image.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range ls[2:] {
				rc, err := l.Uncompressed()
				if err != nil {
					t.Fatal(err)
				}
				tr := tar.NewReader(rc)
				for h, err := tr.Next(); err == nil; h, err = tr.Next() {
					if strings.HasPrefix(h.Name, "home/app") && (h.Uid != 65532 || h.Gid != 65532) {
						t.Errorf("/%s is owned by %d:%d, want the function's user 65532:65532", h.Name, h.Uid, h.Gid)
					}
				}
				rc.Close()
			}
		})
	}
}

// TestReproducible builds twice, in two cache directories at two clock
// times, and wants one digest; then a no-change rebuild from a warm cache
// builds nothing.
func TestReproducible(t *testing.T) {
	ctx := context.Background()
	fn := languages.Function{Name: "fn", Dir: sample(t, "go-deps"), Lang: golang.LangMiddleware, Platform: linuxAMD64}
	first, err := newBuilder(t, t.TempDir()).Build(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	warm := newBuilder(t, t.TempDir())
	second, err := warm.Build(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := first.Image.Digest()
	d2, _ := second.Image.Digest()
	if d1 != d2 {
		t.Fatalf("second build digest = %s, want %s", d2, d1)
	}
	third, err := warm.Build(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range third.Layers {
		if !l.Cached {
			t.Errorf("no-change rebuild built layer %q, want it from the cache", l.Name)
		}
	}
}

func TestEditRebuildsOneLayer(t *testing.T) {
	ctx := context.Background()
	dir := copySample(t, "go-hello")
	b := newBuilder(t, t.TempDir())
	fn := languages.Function{Name: "fn", Dir: dir, Lang: golang.LangMiddleware, Platform: linuxAMD64}
	before, err := b.Build(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "handler.go")
	code, _ := os.ReadFile(src)
	code = bytes.ReplaceAll(code, []byte(`"Hello from kiln")`), []byte(`"Hello again from kiln")`))
	if err := os.WriteFile(src, code, 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := b.Build(ctx, fn)
	if err != nil {
		t.Fatal(err)
	}
	var rebuilt []string
	for i, l := range after.Layers {
		if !l.Cached {
			rebuilt = append(rebuilt, l.Name)
		}
		if changed := l.Digest != before.Layers[i].Digest; changed != (l.Name == "handler binary") {
			t.Errorf("layer %q changed = %v after a handler edit", l.Name, changed)
		}
	}
	if !slices.Equal(rebuilt, []string{"handler binary"}) {
		t.Errorf("rebuilt layers = %v, want [handler binary]", rebuilt)
	}
}

func TestBuildErrors(t *testing.T) {
	write := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := []struct {
		name  string
		dir   func(t *testing.T) string
		lang  string
		check func(t *testing.T, err error)
	}{
		{"unknown lang", func(t *testing.T) string { return t.TempDir() }, "cobol", func(t *testing.T, err error) {
			var ue *UnknownLangError
			if !errors.As(err, &ue) {
				t.Errorf("Build() = %v, want UnknownLangError", err)
			}
		}},
		{"missing folder", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, golang.LangMiddleware, wantSourceError("handler folder not found")},
		{"no go.mod", func(t *testing.T) string { return write(t, map[string]string{"handler.go": "package function\n"}) }, golang.LangMiddleware, wantSourceError("missing")},
		{"wrong module path", func(t *testing.T) string {
			return write(t, map[string]string{"go.mod": "module example.com/x\n\ngo 1.24\n", "handler.go": "package function\n"})
		}, golang.LangMiddleware, wantSourceError(`module is "example.com/x"`)},
		{"compile error", func(t *testing.T) string {
			return write(t, map[string]string{"go.mod": "module handler/function\n\ngo 1.24\n", "handler.go": "package function\n\nimport \"net/http\"\n\nfunc Handle(w http.ResponseWriter, r *http.Request) {\n\tundefinedThing()\n}\n"})
		}, golang.LangMiddleware, wantSourceError("go build failed")},
		{"failing test", func(t *testing.T) string {
			return write(t, map[string]string{
				"go.mod":          "module handler/function\n\ngo 1.24\n",
				"handler.go":      "package function\n\nimport \"net/http\"\n\nfunc Handle(w http.ResponseWriter, r *http.Request) {}\n",
				"handler_test.go": "package function\n\nimport \"testing\"\n\nfunc TestFails(t *testing.T) { t.Fatal(\"handler test says no\") }\n",
			})
		}, golang.LangMiddleware, wantSourceError("go test failed")},
		{"not gofmt-formatted", func(t *testing.T) string {
			return write(t, map[string]string{"go.mod": "module handler/function\n\ngo 1.24\n", "handler.go": "package function\nimport \"net/http\"\nfunc Handle(w http.ResponseWriter, r *http.Request) {   }\n"})
		}, golang.LangMiddleware, wantSourceError("not gofmt-formatted")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cacheDir := t.TempDir()
			_, err := newBuilder(t, cacheDir).Build(context.Background(), languages.Function{Name: "fn", Dir: tc.dir(t), Lang: tc.lang, Platform: linuxAMD64})
			if err == nil {
				t.Fatal("Build() = nil error")
			}
			tc.check(t, err)
			store, _ := cache.Open(cacheDir)
			entries, _ := store.List(context.Background())
			for _, e := range entries {
				if e.Name == "handler binary" {
					t.Errorf("failed build left a cache entry for %q", e.Name)
				}
			}
		})
	}
}

func wantSourceError(reason string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var se *languages.SourceError
		if !errors.As(err, &se) {
			t.Fatalf("Build() = %v, want a SourceError", err)
		}
		if !containsStr(se.Reason, reason) {
			t.Errorf("Build() reason = %q, want it to contain %q", se.Reason, reason)
		}
	}
}

func containsStr(s, sub string) bool { return strings.Contains(s, sub) }

func TestCrossPlatform(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cross builds are checked on linux")
	}
	b := newBuilder(t, t.TempDir())
	arm := v1.Platform{OS: "linux", Architecture: "arm64"}
	res, err := b.Build(context.Background(), languages.Function{Name: "fn", Dir: sample(t, "go-hello"), Lang: golang.LangMiddleware, Platform: arm})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := res.Image.ConfigFile()
	if cf.Architecture != "arm64" || cf.OS != "linux" {
		t.Errorf("config platform = %s/%s, want linux/arm64", cf.OS, cf.Architecture)
	}
}

func TestTestsCanBeSkipped(t *testing.T) {
	dir := copySample(t, "go-hello")
	failing := "package function\n\nimport \"testing\"\n\nfunc TestFails(t *testing.T) { t.Fatal(\"no\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "handler_test.go"), []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, t.TempDir())
	fn := languages.Function{Name: "fn", Dir: dir, Lang: golang.LangMiddleware, Platform: linuxAMD64, BuildArgs: map[string]string{"TEST_ENABLED": "false"}}
	if _, err := b.Build(context.Background(), fn); err != nil {
		t.Errorf("Build(TEST_ENABLED=false) = %v, want the failing test skipped", err)
	}
}

// TestEpoch: SOURCE_DATE_EPOCH reaches the function's layers and the
// config, while the base and the watchdog stay byte-identical, so every
// image shares them.
func TestEpoch(t *testing.T) {
	b := newBuilder(t, t.TempDir())
	build := func(epoch time.Time) *Result {
		res, err := b.Build(context.Background(), languages.Function{Name: "fn", Dir: sample(t, "go-main"), Lang: golang.LangMain, Platform: linuxAMD64, Epoch: epoch})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	zero, later := build(time.Unix(0, 0)), build(time.Unix(1700000000, 0))
	for i, l := range later.Layers {
		shared := l.Name != "handler binary"
		if same := l.Digest == zero.Layers[i].Digest; same != shared {
			t.Errorf("layer %q unchanged across epochs = %v, want %v", l.Name, same, shared)
		}
	}
	cf, _ := later.Image.ConfigFile()
	if got := cf.Created.Unix(); got != 1700000000 {
		t.Errorf("config created = %d, want 1700000000", got)
	}
}

// countingStep counts its builds and takes a while, so concurrent builds
// overlap.
type countingStep struct {
	builds atomic.Int32
}

func (s *countingStep) Name() string { return "shared" }

func (s *countingStep) Key(ctx context.Context) (v1.Hash, error) {
	return layers.NewKey("test/counting").Sum(), nil
}

func (s *countingStep) Build(ctx context.Context, w io.Writer) error {
	s.builds.Add(1)
	time.Sleep(50 * time.Millisecond)
	return layers.WriteTar(w, []layers.File{layers.Bytes("shared", 0o644, []byte("x"))})
}

func TestConcurrentBuildsShareALayer(t *testing.T) {
	b := newBuilder(t, t.TempDir())
	step := &countingStep{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if _, _, err := b.layer(context.Background(), step, nil); err != nil {
				t.Errorf("layer() = %v", err)
			}
		})
	}
	wg.Wait()
	if n := step.builds.Load(); n != 1 {
		t.Errorf("4 concurrent builds of one layer built it %d times, want 1", n)
	}
}

// TestNoCache: a layer in the cache is built again, once per builder.
func TestNoCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	step := &countingStep{}
	if _, cached, err := newBuilder(t, dir).layer(ctx, step, nil); err != nil || cached {
		t.Fatalf("first layer() = cached %v, %v", cached, err)
	}
	b := newBuilder(t, dir, WithNoCache())
	for i := range 2 {
		if _, cached, err := b.layer(ctx, step, nil); err != nil || cached != (i == 1) {
			t.Errorf("layer() #%d with no cache = cached %v, %v, want %v", i+1, cached, err, i == 1)
		}
	}
	if n := step.builds.Load(); n != 2 {
		t.Errorf("built %d times, want 2: once into the cache, once more with no cache", n)
	}
}

// lateStep is a step whose key comes from a probe: it adds no layer when
// the probe says so, and fails with the probe's error.
type lateStep struct {
	name string
	skip bool
	err  error
}

func (s *lateStep) Name() string { return s.name }

func (s *lateStep) Key(ctx context.Context) (v1.Hash, error) {
	switch {
	case s.err != nil:
		return v1.Hash{}, s.err
	case s.skip:
		return v1.Hash{}, layers.ErrNoLayer
	}
	return layers.NewKey("test/late").String(s.name).Sum(), nil
}

func (s *lateStep) Build(ctx context.Context, w io.Writer) error {
	return layers.WriteTar(w, []layers.File{layers.Bytes(s.name, 0o644, []byte(s.name))})
}

// stepsPack plans the given steps, naming named, and finishes the plan
// with a label.
type stepsPack struct {
	steps []layers.Step
	named []languages.Named
}

func (p stepsPack) Langs() []string { return []string{"steps"} }

func (p stepsPack) Plan(ctx context.Context, fn languages.Function) (*languages.Plan, error) {
	return &languages.Plan{
		Base:   "static",
		Steps:  p.steps,
		Env:    []string{"fprocess=./x"},
		Labels: map[string]string{"early": "1"},
		Named:  p.named,
		Finish: func(ctx context.Context, pl *languages.Plan) error {
			pl.Labels["late"] = fmt.Sprint(len(pl.Steps))
			pl.Env = append(pl.Env, "LATE=1")
			return nil
		},
	}, nil
}

// TestLateSteps: a step whose key says it adds no layer is left out of the
// image and the report, the plan's Finish reaches the config, and a cause
// several steps share is reported once.
func TestLateSteps(t *testing.T) {
	ctx := context.Background()
	fn := languages.Function{Name: "fn", Lang: "steps", Platform: linuxAMD64}
	pack := stepsPack{steps: []layers.Step{&lateStep{name: "kept"}, &lateStep{name: "skipped", skip: true}, &lateStep{name: "top"}}}
	res, err := newBuilder(t, t.TempDir(), WithPack(pack)).Build(ctx, fn)
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	if err := validate.Image(res.Image); err != nil {
		t.Fatalf("validate.Image() = %v", err)
	}
	var names []string
	for _, l := range res.Layers {
		names = append(names, l.Name)
	}
	if want := []string{"test base", "watchdog", "kept", "top"}; !slices.Equal(names, want) {
		t.Errorf("Build() layers = %v, want %v", names, want)
	}
	cf, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.History) != 4 || cf.History[3].CreatedBy != "kiln: top" {
		t.Errorf("history = %+v, want 4 entries, the last by kiln: top", cf.History)
	}
	if cf.Config.Labels["early"] != "1" || cf.Config.Labels["late"] != "3" || !slices.Contains(cf.Config.Env, "LATE=1") {
		t.Errorf("config labels %v, env %v; want early=1, late=3 and LATE=1", cf.Config.Labels, cf.Config.Env)
	}

	missing := errors.New("building needs a tool that is not installed")
	pack = stepsPack{steps: []layers.Step{&lateStep{name: "a", err: missing}, &lateStep{name: "b", err: missing}}}
	_, err = newBuilder(t, t.TempDir(), WithPack(pack)).Build(ctx, fn)
	if err == nil || err.Error() != missing.Error() {
		t.Errorf("Build() = %v, want %q once", err, missing)
	}
}

// TestOutside: a build reports what its manifests name outside the
// handler folder, once each, sorted, and still does when a step fails.
func TestOutside(t *testing.T) {
	ctx := context.Background()
	fn := languages.Function{Name: "fn", Lang: "steps", Platform: linuxAMD64}
	named := []languages.Named{
		{Path: "/src/lib", Rel: "../lib"},
		{Path: "/src/fn/deps/base.txt", Rel: "deps/base.txt"},
		{Path: "/base.txt", Rel: "../../base.txt"},
		{Path: "/src/lib", Rel: "../lib"},
	}
	want := []string{"/base.txt", "/src/lib"}
	res, err := newBuilder(t, t.TempDir(), WithPack(stepsPack{steps: []layers.Step{&lateStep{name: "top"}}, named: named})).Build(ctx, fn)
	if err != nil {
		t.Fatalf("Build() = %v", err)
	}
	if !slices.Equal(res.Outside, want) {
		t.Errorf("Build().Outside = %v, want %v", res.Outside, want)
	}
	broken := errors.New("the compiler refused ../lib")
	res, err = newBuilder(t, t.TempDir(), WithPack(stepsPack{steps: []layers.Step{&lateStep{name: "top", err: broken}}, named: named})).Build(ctx, fn)
	if !errors.Is(err, broken) || res == nil || !slices.Equal(res.Outside, want) || res.Image != nil {
		t.Errorf("Build() = %+v, %v; want only Outside %v, and the step's error", res, err, want)
	}
}

// TestLayerSteps: each layer is a step of the context's sink, which ends
// with its compressed size, cached on a second build; a step that adds no
// layer ends empty, and one whose key fails ends failed.
func TestLayerSteps(t *testing.T) {
	fn := languages.Function{Name: "fn", Lang: "steps", Platform: linuxAMD64}
	b := newBuilder(t, t.TempDir(), WithPack(stepsPack{steps: []layers.Step{&lateStep{name: "top"}, &lateStep{name: "skipped", skip: true}}}))
	for i, cached := range []bool{false, true} {
		var mu sync.Mutex
		ends := map[string]step.Event{}
		ctx := step.WithSink(context.Background(), func(e step.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.State != step.Started && e.State != step.Running {
				ends[e.Step] = e
			}
		})
		res, err := b.Build(ctx, fn)
		if err != nil {
			t.Fatalf("Build() = %v", err)
		}
		for _, l := range res.Layers {
			e := ends["layer "+l.Name]
			if e.State != step.Done || e.Bytes != l.Size || e.Cached != l.Cached || (cached && !e.Cached) {
				t.Errorf("build %d: step %q ended %+v, want done with %d bytes, cached %v", i+1, "layer "+l.Name, e, l.Size, cached || l.Cached)
			}
		}
		if e := ends["layer skipped"]; e.State != step.Done || !e.Empty {
			t.Errorf("step of a layer with nothing ended %+v, want done and empty", e)
		}
		if len(ends) != len(res.Layers)+1 {
			t.Errorf("steps ended: %v, want one per layer and the empty one", slices.Collect(maps.Keys(ends)))
		}
	}

	missing := errors.New("no such tool")
	b = newBuilder(t, t.TempDir(), WithPack(stepsPack{steps: []layers.Step{&lateStep{name: "a", err: missing}}}))
	var mu sync.Mutex
	var failed []string
	ctx := step.WithSink(context.Background(), func(e step.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.State == step.Failed && errors.Is(e.Err, missing) {
			failed = append(failed, e.Step)
		}
	})
	if _, err := b.Build(ctx, fn); err == nil || !slices.Equal(failed, []string{"layer a"}) {
		t.Errorf("Build() = %v, failed steps %v; want the error and layer a failed", err, failed)
	}
}

// TestCacheRepoAcrossMachines: a build with a cache repository leaves its
// layers there; a build of a copy of the source in another folder, with
// another empty cache directory and another watchdog path (another
// machine), takes every layer from it and makes the same image; after a
// one-line edit, only the handler's layer is built.
func TestCacheRepoAcrossMachines(t *testing.T) {
	ctx := context.Background()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	repo, err := name.NewRepository(strings.TrimPrefix(srv.URL, "http://")+"/cache", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	machine := func(dir string) (*Builder, *cacherepo.Cache, languages.Function) {
		store, err := cache.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		shared := cacherepo.New(store, repo, cacherepo.WithKeychain(authn.NewMultiKeychain()))
		b := newBuilder(t, t.TempDir())
		b.store = shared
		return b, shared, languages.Function{Name: "fn", Dir: dir, Lang: golang.LangMiddleware, Platform: linuxAMD64}
	}
	build := func(dir string) *Result {
		t.Helper()
		b, shared, fn := machine(dir)
		res, err := b.Build(ctx, fn)
		if err != nil {
			t.Fatal(err)
		}
		if warnings := shared.Flush(ctx); len(warnings) > 0 {
			t.Fatalf("Flush() = %v, want no warnings", warnings)
		}
		return res
	}
	notCached := func(res *Result) []string {
		var out []string
		for _, l := range res.Layers {
			if !l.Cached {
				out = append(out, l.Name)
			}
		}
		return out
	}

	first := build(copySample(t, "go-hello"))
	if got := notCached(first); len(got) != len(first.Layers) {
		t.Fatalf("first build: built %v, want every layer", got)
	}
	second := build(copySample(t, "go-hello"))
	if got := notCached(second); len(got) != 0 {
		t.Errorf("fresh machine: built %v, want every layer from the cache repository", got)
	}
	d1, _ := first.Image.Digest()
	d2, _ := second.Image.Digest()
	if d1 != d2 {
		t.Errorf("fresh machine: digest %s, want %s", d2, d1)
	}
	if err := validate.Image(second.Image); err != nil {
		t.Errorf("fresh machine: %v", err)
	}

	edited := copySample(t, "go-hello")
	path := filepath.Join(edited, "handler.go")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(src, []byte("\n// An edit.\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	third := build(edited)
	if got, want := notCached(third), []string{"handler binary"}; !slices.Equal(got, want) {
		t.Errorf("one-line edit on a fresh machine: built %v, want %v", got, want)
	}
}
