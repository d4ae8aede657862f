package golang

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

//go:embed shim/main.go.tmpl
var middlewareMain []byte

// The main programs of the classic and golang-http layouts. They import
// the function as handler/function, or by its go.mod's module path.
var (
	//go:embed shim/classic.go.tmpl
	classicMain []byte
	//go:embed shim/http.go.tmpl
	httpMain []byte

	shims = map[layout][]byte{layoutMiddleware: middlewareMain, layoutClassic: classicMain, layoutHTTP: httpMain}
)

// Kiln's templates-sdk package for golang-http functions: the files of
// sdk/handler, a module of its own in the build's main module.
var (
	//go:embed sdk/handler/doc.go
	sdkDoc []byte
	//go:embed sdk/handler/handler.go
	sdkHandler []byte
	sdkGoMod   = []byte("module " + sdkModule + "\n\ngo 1.22\n")
)

// sdkModule is the module golang-http functions import their types from;
// sdkVersion is the version kiln's main module requires of it, which the
// go.work's replace directive turns into kiln's copy.
const (
	sdkModule  = "github.com/openfaas/templates-sdk/go-http"
	sdkVersion = "v0.0.0-00010101000000-000000000000"
)

// The lang values this pack builds: OpenFaaS's golang-middleware and
// golang-http, and go, a plain main package or a function of the classic
// go template.
const (
	LangMiddleware = "golang-middleware"
	LangMain       = "go"
	LangHTTP       = "golang-http"
)

// Where things go in the image; fprocess matches the template's, which
// OpenFaaS deploys send as envProcess.
const (
	binaryPath = contract.AppDir + "/handler"
	staticDir  = contract.AppDir + "/static"
	fprocess   = "./handler"
)

// Option configures the pack.
type Option func(*options) error

type options struct {
	goBin string
	env   []string
}

// WithGo sets the go command to run. The default is "go", found on PATH.
func WithGo(path string) Option { return func(o *options) error { o.goBin = path; return nil } }

// WithEnv sets the environment go runs in (GOCACHE, GOPATH, GOPROXY, ...).
// The default is empty, so the CLI passes os.Environ().
func WithEnv(env []string) Option { return func(o *options) error { o.env = env; return nil } }

// Pack builds Go functions.
type Pack struct {
	opts options
}

var _ languages.Pack = (*Pack)(nil)

// New returns the Go pack.
func New(opts ...Option) (*Pack, error) {
	o := options{goBin: "go"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("configuring the Go pack: %w", err)
		}
	}
	return &Pack{opts: o}, nil
}

// Langs implements languages.Pack.
func (p *Pack) Langs() []string { return languages.Built(Langs()) }

// Plan implements languages.Pack. The go command's version, which the
// binary's key and the image's labels hold, is asked by the binary step.
// For lang go and golang-http, Plan reads the package clause of the
// folder's Go files to tell a package main from a package function.
func (p *Pack) Plan(ctx context.Context, fn languages.Function) (*languages.Plan, error) {
	if fn.Lang != LangMiddleware && fn.Lang != LangMain && fn.Lang != LangHTTP {
		return nil, fmt.Errorf("golang pack cannot build lang %q", fn.Lang)
	}
	if err := languages.CheckHandlerDir(fn.Dir); err != nil {
		return nil, err
	}
	lay, err := planLayout(fn)
	if err != nil {
		return nil, err
	}
	gomod := filepath.Join(fn.Dir, "go.mod")
	mod, err := languages.ReadManifest(fn.Dir, "go.mod")
	module := ""
	var se *languages.SourceError
	switch {
	case errors.As(err, &se):
		return nil, se
	case err != nil && (lay == layoutClassic || lay == layoutHTTP):
		// As the templates build in GOPATH mode or rewrite the module,
		// a function needs no go.mod: the build makes one.
	case err != nil:
		return nil, &languages.SourceError{Path: gomod, Reason: "missing: a Go handler folder needs a go.mod (run: go mod init handler/function)"}
	case lay == layoutMiddleware:
		if err := checkModulePath(gomod, mod); err != nil {
			return nil, err
		}
	case lay == layoutClassic || lay == layoutHTTP:
		if module, err = functionModule(gomod, mod); err != nil {
			return nil, err
		}
	}
	env := slices.Concat([]string{contract.FProcess(fprocess)}, contract.HTTPMode(contract.UpstreamPort), []string{contract.RawLogs})
	if lay == layoutClassic {
		env = slices.Concat([]string{contract.FProcess(fprocess)}, contract.ClassicMode())
	}
	goVersion := lazy.New(func(ctx context.Context) (string, error) { return p.goEnv(ctx, "GOVERSION") })
	var replaced []languages.Named
	if mod != nil {
		if replaced, err = resolveReplaces(fn, localReplaces(mod)); err != nil {
			return nil, err
		}
	}
	bin := &binaryStep{pack: p, fn: fn, layout: lay, module: module, goVersion: goVersion, replaced: replaced}
	plan := &languages.Plan{
		Base:   "static",
		Steps:  []layers.Step{bin},
		Env:    env,
		Labels: map[string]string{"dev.kiln.lang": fn.Lang},
		Named:  replaced,
		Finish: func(ctx context.Context, plan *languages.Plan) error {
			v, err := goVersion.Get(ctx)
			if err != nil {
				return err
			}
			plan.Labels["dev.kiln.go.version"] = v
			return nil
		},
	}
	if st, err := os.Stat(filepath.Join(fn.Dir, "static")); err == nil && st.IsDir() {
		files, err := languages.HandlerFiles(filepath.Join(fn.Dir, "static"), staticDir, nil)
		if err != nil {
			return nil, err
		}
		plan.Steps = append(plan.Steps, layers.FilesStep("static files", files, languages.LayerOptions(fn.Epoch)...))
	}
	return plan, nil
}

// planLayout tells how fn's folder is built: by its lang, and for lang go
// and golang-http by the package its files declare.
func planLayout(fn languages.Function) (layout, error) {
	if fn.Lang == LangMiddleware {
		return layoutMiddleware, nil
	}
	pkg, err := readPackage(fn.Dir, fn.Platform.Architecture)
	var se *languages.SourceError
	if errors.As(err, &se) && se.Reason == "no Go files" {
		if fn.Lang == LangHTTP {
			se.Reason = "no Go files; golang-http wants a package function with " + handleSignature[layoutHTTP]
		} else {
			se.Reason = "no Go files; " + goWants
		}
	}
	if err != nil {
		return 0, err
	}
	switch {
	case fn.Lang == LangMain && pkg.name == "main":
		return layoutMain, nil
	case fn.Lang == LangMain && pkg.name == "function":
		return layoutClassic, nil
	case fn.Lang == LangMain:
		return 0, &languages.SourceError{Path: pkg.path, Line: pkg.line, Reason: fmt.Sprintf("package %s: %s", pkg.name, goWants)}
	case pkg.name == "function":
		return layoutHTTP, nil
	case pkg.name == "main":
		return 0, &languages.SourceError{Path: pkg.path, Line: pkg.line, Reason: "package main: golang-http wants a package function with " + handleSignature[layoutHTTP] + "; a package main builds with --lang go"}
	}
	return 0, &languages.SourceError{Path: pkg.path, Line: pkg.line, Reason: fmt.Sprintf("package %s: golang-http wants a package function with %s", pkg.name, handleSignature[layoutHTTP])}
}

// functionModule returns the module path of a classic or golang-http
// function's go.mod, which kiln's main program imports the function by.
// The templates rename the module, so any path will do but handler, the
// main program's own.
func functionModule(path string, mod []byte) (string, error) {
	m := moduleLine.FindSubmatchIndex(mod)
	if m == nil {
		return "", &languages.SourceError{Path: path, Reason: "no module line; add one: module handler/function"}
	}
	if got := string(mod[m[2]:m[3]]); got != mainModule {
		return got, nil
	}
	line := 1 + bytes.Count(mod[:m[0]], []byte("\n"))
	return "", &languages.SourceError{Path: path, Line: line, Reason: "module handler is the name of kiln's main program; name the function's: module handler/function"}
}

var moduleLine = regexp.MustCompile(`(?m)^[ \t]*module[ \t]+"?([^"\s]+)"?`)

func checkModulePath(path string, mod []byte) error {
	m := moduleLine.FindSubmatchIndex(mod)
	if m == nil {
		return &languages.SourceError{Path: path, Reason: "no module line; golang-middleware needs: module handler/function"}
	}
	if got := string(mod[m[2]:m[3]]); got != "handler/function" {
		line := 1 + bytes.Count(mod[:m[0]], []byte("\n"))
		return &languages.SourceError{Path: path, Line: line, Reason: fmt.Sprintf("module is %q; golang-middleware needs: module handler/function", got)}
	}
	return nil
}

func (p *Pack) goEnv(ctx context.Context, name string) (string, error) {
	cmd := exec.CommandContext(ctx, p.opts.goBin, "env", name)
	cmd.Env = p.opts.env
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("building Go functions needs the go command; install Go 1.22 or later or put it on PATH")
	}
	if err != nil {
		return "", fmt.Errorf("running %s env %s: %w", p.opts.goBin, name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// binaryStep compiles the function into /home/app/handler.
type binaryStep struct {
	pack   *Pack
	fn     languages.Function
	layout layout
	// module is the module path of the function's go.mod, "" when it has
	// none; only the classic and golang-http layouts read it.
	module string
	// goVersion is the go command's GOVERSION, asked once per build.
	goVersion *lazy.Value[string]
	// replaced are the folders go.mod's replace directives name, whose
	// files the compiler reads too: the build stages them beside the
	// handler folder's copy.
	replaced []languages.Named
}

func (s *binaryStep) Name() string { return "handler binary" }

// buildEnv lists what changes the compiler's output besides the source,
// and the build arguments the templates pass to go.
func (s *binaryStep) buildEnv() []string {
	p := s.fn.Platform
	env := []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Architecture, "GOFLAGS=" + s.fn.BuildArgs["GOFLAGS"]}
	if p.Architecture == "arm" && strings.HasPrefix(p.Variant, "v") {
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	if p.Architecture == "amd64" && strings.HasPrefix(p.Variant, "v") {
		env = append(env, "GOAMD64="+p.Variant)
	}
	return append(env, s.proxyEnv()...)
}

// proxyEnv passes the templates' ARG GOPROXY to go build and go test;
// unset or empty, go keeps kiln's environment's.
func (s *binaryStep) proxyEnv() []string {
	if v := s.fn.BuildArgs["GOPROXY"]; v != "" {
		return []string{"GOPROXY=" + v}
	}
	return nil
}

func (s *binaryStep) Key(ctx context.Context) (v1.Hash, error) {
	goVersion, err := s.goVersion.Get(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	k := layers.NewKey("golang/binary/v1").
		String(s.fn.Lang).
		String(goVersion).
		Strings(s.buildEnv()...).
		String(string(middlewareMain)).
		String(s.fn.BuildArgs["TEST_ENABLED"]).
		String(s.fn.Epoch.UTC().Format(time.RFC3339))
	if s.layout == layoutClassic || s.layout == layoutHTTP {
		// Only these layouts add to the key, so that the others' cache
		// entries still match.
		k.String(s.layout.String()).String(s.module).String(string(shims[s.layout]))
		if s.layout == layoutHTTP {
			k.String(string(sdkGoMod)).String(string(sdkDoc)).String(string(sdkHandler))
		}
	}
	files, err := sourceFiles(s.fn.Dir)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := k.Files(files); err != nil {
		return v1.Hash{}, fmt.Errorf("hashing %s: %w", s.fn.Dir, err)
	}
	// Only a function with such replaces adds to the key, so that the
	// others' cache entries still match.
	if len(s.replaced) > 0 {
		replaced, err := replacedFiles(s.replaced)
		if err != nil {
			return v1.Hash{}, err
		}
		if err := k.Files(replaced); err != nil {
			return v1.Hash{}, fmt.Errorf("hashing what go.mod replaces: %w", err)
		}
	}
	return k.Sum(), nil
}

// sourceFiles lists what the compiler may read from the handler folder. The
// static folder has a layer of its own and only counts when the code embeds
// files, since //go:embed can reach it.
func sourceFiles(dir string) ([]layers.File, error) {
	embeds, err := usesEmbed(dir)
	if err != nil {
		return nil, err
	}
	return languages.HandlerFiles(dir, "", func(rel string, d fs.DirEntry) bool {
		return notSource(rel) || (rel == "static" && !embeds)
	})
}

// notSource reports whether rel, in the handler folder, is left out of
// the build: the repository, faas-cli's build folder and templates.
func notSource(rel string) bool { return rel == ".git" || rel == "build" || rel == "template" }

// stage copies what go reads into the build's scratch folder: the handler
// folder (static files too, which its tests may read) and the folders
// go.mod's replaces name, at the same places relative to one another, so
// that go.mod's relative paths resolve among the copies and go never
// reads the user's tree beyond what the key covers. It returns the
// handler folder's copy.
func (s *binaryStep) stage() (string, error) {
	files, err := languages.HandlerFiles(s.fn.Dir, "", func(rel string, d fs.DirEntry) bool { return notSource(rel) })
	if err != nil {
		return "", err
	}
	replaced, err := replacedFiles(s.replaced)
	if err != nil {
		return "", err
	}
	return languages.Stage(filepath.Join(s.fn.ScratchDir, "src"), append(files, replaced...))
}

func usesEmbed(dir string) (bool, error) {
	found := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		// A link's target is a file of the folder, read on its own, or
		// outside it, which sourceFiles refuses.
		if d.Type().IsRegular() && strings.HasSuffix(p, ".go") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			found = bytes.Contains(b, []byte("//go:embed"))
		}
		return nil
	})
	return found, err
}

func (s *binaryStep) Build(ctx context.Context, w io.Writer) error {
	if s.layout != layoutMain {
		if err := checkFormatted(s.fn.Dir); err != nil {
			return err
		}
	}
	if s.layout == layoutClassic || s.layout == layoutHTTP {
		if err := checkHandle(s.fn.Dir, s.layout); err != nil {
			return err
		}
	}
	src, err := s.stage()
	if err != nil {
		return err
	}
	out := filepath.Join(s.fn.ScratchDir, "handler")
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out}
	dir := src
	env := append(append([]string(nil), s.pack.opts.env...), s.buildEnv()...)
	// The function's tests run where its package is, without the
	// workspace unless they need kiln's templates-sdk package.
	testDir, testWork := src, "off"
	if s.layout == layoutMain {
		env = append(env, "GOWORK=off")
	} else {
		goVersion, err := s.goVersion.Get(ctx)
		if err != nil {
			return err
		}
		ws, err := writeWorkspace(s.fn.ScratchDir, src, s.layout, s.module, goVersion)
		if err != nil {
			return err
		}
		dir = ws.dir
		env = append(env, "GOWORK="+ws.goWork)
		if s.layout != layoutMiddleware {
			testDir, testWork = ws.function, ws.goWork
		}
	}
	modEnv, err := s.modules(ctx, dir, env)
	if err != nil {
		return err
	}
	env = append(env, modEnv...)
	cacheEnv, err := s.buildCache(ctx, dir, env, func(gocache []string) {
		// Only the compile: the tests run in the build proper.
		_ = s.test(ctx, testDir, testWork, src, slices.Concat(modEnv, gocache), "-run=^$")
	})
	if err != nil {
		return err
	}
	env = append(env, cacheEnv...)
	modEnv = append(modEnv, cacheEnv...)
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, s.pack.opts.goBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	compile := step.Start(ctx, "compile")
	err = cmd.Run()
	compile.End(err)
	if err != nil {
		if stderr.Len() == 0 {
			return fmt.Errorf("running go build: %w", err)
		}
		return &languages.SourceError{Path: s.fn.Dir, Reason: "go build failed", Detail: languages.Unstage(strings.TrimSpace(stderr.String()), src, s.fn.Dir, dir)}
	}
	// Tests run after the build so that a compile error reads as one.
	if err := s.test(ctx, testDir, testWork, src, modEnv); err != nil {
		return err
	}
	return layers.WriteTar(w, []layers.File{layers.HostFile(binaryPath, 0o755, out)}, languages.LayerOptions(s.fn.Epoch)...)
}

// test runs the function's own tests in dir, with GOWORK=goWork, as the
// template's build does, when it has any and TEST_ENABLED is not false.
// They run for the host, not the target platform, and only when the binary
// is rebuilt. src is the handler folder's staged copy; extraEnv is what
// modules and buildCache gave the build, args go before the packages.
func (s *binaryStep) test(ctx context.Context, dir, goWork, src string, extraEnv []string, args ...string) error {
	if !s.testsEnabled() {
		return nil
	}
	has, err := hasTests(s.fn.Dir)
	if err != nil || !has {
		return err
	}
	cmd := exec.CommandContext(ctx, s.pack.opts.goBin, slices.Concat([]string{"test", "-count=1"}, args, []string{"./..."})...)
	cmd.Dir = dir
	cmd.Env = slices.Concat(s.pack.opts.env, []string{"CGO_ENABLED=0", "GOWORK=" + goWork, "GOFLAGS=" + s.fn.BuildArgs["GOFLAGS"]}, s.proxyEnv(), extraEnv)
	test := step.Start(ctx, "test")
	out, err := cmd.CombinedOutput()
	test.End(err)
	if err != nil {
		return &languages.SourceError{Path: s.fn.Dir, Reason: "go test failed (skip with --build-arg TEST_ENABLED=false)", Detail: languages.Unstage(strings.TrimSpace(string(out)), src, s.fn.Dir, dir)}
	}
	return nil
}

// testsEnabled says whether the function's tests run: unless TEST_ENABLED
// is false, as in the templates.
func (s *binaryStep) testsEnabled() bool {
	v, ok := s.fn.BuildArgs["TEST_ENABLED"]
	return !ok || (v != "false" && v != "0")
}

func hasTests(dir string) (bool, error) {
	found := false
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found {
			return err
		}
		if d.IsDir() && (d.Name() == "vendor" || d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		found = !d.IsDir() && strings.HasSuffix(d.Name(), "_test.go")
		return nil
	})
	return found, err
}

// mainModule is the module of the main programs kiln writes.
const mainModule = "handler"

// workspace is the main module a build writes beside the function.
type workspace struct {
	// dir holds the main module, where go build runs.
	dir string
	// goWork is the go.work that joins the main module and the function.
	goWork string
	// function is the folder of the function's package: the handler
	// folder, or its copy when it has no go.mod.
	function string
}

// writeWorkspace lays out the main module in scratch beside the function's
// staged copy src, joined by a go.work as the OpenFaaS templates do, so
// that the function keeps its own go.mod and go.sum. A classic or
// golang-http function without a go.mod is copied into the main module's
// function folder, where the templates put it too; golang-http's
// templates-sdk package comes from a replace directive in the go.work, to
// kiln's own copy of it.
func writeWorkspace(scratch, src string, lay layout, module, goVersion string) (workspace, error) {
	work := filepath.Join(scratch, "main")
	ws := workspace{dir: work, goWork: filepath.Join(work, "go.work"), function: src}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return ws, err
	}
	lang := strings.TrimPrefix(goVersion, "go")
	if i := strings.IndexAny(lang, " -+"); i >= 0 {
		lang = lang[:i]
	}
	if lay == layoutMiddleware {
		// Unchanged since the first golden images: these files make the
		// middleware binaries.
		return ws, writeFiles(work, map[string]string{
			"go.mod":  "module handler\n\ngo " + lang + "\n",
			"go.work": fmt.Sprintf("go %s\n\nuse (\n\t.\n\t%q\n)\n", lang, src),
			"main.go": string(middlewareMain),
		})
	}

	gomod := "module " + mainModule + "\n\ngo " + lang + "\n"
	gowork := fmt.Sprintf("go %s\n\nuse (\n\t.\n", lang)
	shim := shims[lay]
	if module == "" {
		ws.function = filepath.Join(work, "function")
		if err := copyDir(src, ws.function); err != nil {
			return ws, fmt.Errorf("copying the function into the build's main module: %w", err)
		}
	} else {
		gowork += fmt.Sprintf("\t%q\n", src)
		shim = bytes.Replace(shim, []byte(strconv.Quote(mainModule+"/function")), []byte(strconv.Quote(module)), 1)
	}
	gowork += ")\n"
	files := map[string]string{"main.go": string(shim)}
	if lay == layoutHTTP {
		// The main module requires the SDK, so the function may import it
		// whether or not its go.mod does; the replace covers any version.
		gomod += "\nrequire " + sdkModule + " " + sdkVersion + "\n"
		gowork += "\nreplace " + sdkModule + " => ./sdk\n"
		files["sdk/go.mod"] = string(sdkGoMod)
		files["sdk/doc.go"] = string(sdkDoc)
		files["sdk/handler.go"] = string(sdkHandler)
	}
	files["go.mod"] = gomod
	files["go.work"] = gowork
	return ws, writeFiles(work, files)
}

func writeFiles(dir string, files map[string]string) error {
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("writing the main module: %w", err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing the main module: %w", err)
		}
	}
	return nil
}

// copyDir copies the handler folder's staged copy src to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
		return nil
	})
}

// checkFormatted mirrors the template's gofmt gate, which fails the build
// when any file outside vendor/ is not gofmt-formatted.
func checkFormatted(dir string) error {
	var bad []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "vendor" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		formatted, err := format.Source(src)
		if err != nil {
			// A syntax error: the compiler reports it with its position.
			return nil
		}
		if !bytes.Equal(src, formatted) {
			rel, _ := filepath.Rel(dir, p)
			bad = append(bad, rel)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checking formatting: %w", err)
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return &languages.SourceError{Path: filepath.Join(dir, bad[0]), Reason: fmt.Sprintf("not gofmt-formatted (%s); run: gofmt -w %s", strings.Join(bad, ", "), dir)}
	}
	return nil
}
