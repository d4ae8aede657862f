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
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

//go:embed shim/main.go.tmpl
var middlewareMain []byte

// The lang values this pack builds, and LangHTTP, OpenFaaS's
// golang-http, which it does not build but whose images it knows.
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
func (p *Pack) Plan(ctx context.Context, fn languages.Function) (*languages.Plan, error) {
	if fn.Lang != LangMiddleware && fn.Lang != LangMain {
		return nil, fmt.Errorf("golang pack cannot build lang %q", fn.Lang)
	}
	if err := languages.CheckHandlerDir(fn.Dir); err != nil {
		return nil, err
	}
	gomod := filepath.Join(fn.Dir, "go.mod")
	mod, err := os.ReadFile(gomod)
	if err != nil {
		return nil, &languages.SourceError{Path: gomod, Reason: "missing: a Go handler folder needs a go.mod (run: go mod init handler/function)"}
	}
	if fn.Lang == LangMiddleware {
		if err := checkModulePath(gomod, mod); err != nil {
			return nil, err
		}
	}
	goVersion := lazy.New(func(ctx context.Context) (string, error) { return p.goEnv(ctx, "GOVERSION") })
	bin := &binaryStep{pack: p, fn: fn, goVersion: goVersion}
	plan := &languages.Plan{
		Base:   "static",
		Steps:  []layers.Step{bin},
		Env:    slices.Concat([]string{contract.FProcess(fprocess)}, contract.HTTPMode(contract.UpstreamPort), []string{contract.RawLogs}),
		Labels: map[string]string{"dev.kiln.lang": fn.Lang},
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
		files, err := layers.FromDir(filepath.Join(fn.Dir, "static"), staticDir)
		if err != nil {
			return nil, err
		}
		plan.Steps = append(plan.Steps, layers.FilesStep("static files", files, languages.LayerOptions(fn.Epoch)...))
	}
	return plan, nil
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
	pack *Pack
	fn   languages.Function
	// goVersion is the go command's GOVERSION, asked once per build.
	goVersion *lazy.Value[string]
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
	// The templates' ARG GOPROXY reaches go build's environment; unset or
	// empty, go keeps kiln's environment's.
	if v := s.fn.BuildArgs["GOPROXY"]; v != "" {
		env = append(env, "GOPROXY="+v)
	}
	return env
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
	files, err := sourceFiles(s.fn.Dir)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := k.Files(files); err != nil {
		return v1.Hash{}, fmt.Errorf("hashing %s: %w", s.fn.Dir, err)
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
	return layers.FromDir(dir, "", layers.WithSkip(func(rel string, d fs.DirEntry) bool {
		switch {
		case rel == ".git", rel == "build", rel == "template":
			return true
		case rel == "static":
			return !embeds
		}
		return false
	}))
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
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
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
	if s.fn.Lang == LangMiddleware {
		if err := checkFormatted(s.fn.Dir); err != nil {
			return err
		}
	}
	out := filepath.Join(s.fn.ScratchDir, "handler")
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out}
	dir := s.fn.Dir
	env := append(append([]string(nil), s.pack.opts.env...), s.buildEnv()...)
	if s.fn.Lang == LangMiddleware {
		goVersion, err := s.goVersion.Get(ctx)
		if err != nil {
			return err
		}
		work, err := writeWorkspace(s.fn, goVersion)
		if err != nil {
			return err
		}
		dir = work
		env = append(env, "GOWORK="+filepath.Join(work, "go.work"))
	} else {
		env = append(env, "GOWORK=off")
	}
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, s.pack.opts.goBin, args...)
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		if stderr.Len() == 0 {
			return fmt.Errorf("running go build: %w", err)
		}
		return &languages.SourceError{Path: s.fn.Dir, Reason: "go build failed", Detail: strings.TrimSpace(stderr.String())}
	}
	// Tests run after the build so that a compile error reads as one.
	if err := s.test(ctx); err != nil {
		return err
	}
	return layers.WriteTar(w, []layers.File{layers.HostFile(binaryPath, 0o755, out)}, languages.LayerOptions(s.fn.Epoch)...)
}

// test runs the function's own tests, as the template's build does, when it
// has any and TEST_ENABLED is not false. They run for the host, not the
// target platform, and only when the binary is rebuilt.
func (s *binaryStep) test(ctx context.Context) error {
	if v, ok := s.fn.BuildArgs["TEST_ENABLED"]; ok && (v == "false" || v == "0") {
		return nil
	}
	has, err := hasTests(s.fn.Dir)
	if err != nil || !has {
		return err
	}
	cmd := exec.CommandContext(ctx, s.pack.opts.goBin, "test", "-count=1", "./...")
	cmd.Dir = s.fn.Dir
	cmd.Env = append(append([]string(nil), s.pack.opts.env...), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS="+s.fn.BuildArgs["GOFLAGS"])
	out, err := cmd.CombinedOutput()
	if err != nil {
		return &languages.SourceError{Path: s.fn.Dir, Reason: "go test failed (skip with --build-arg TEST_ENABLED=false)", Detail: strings.TrimSpace(string(out))}
	}
	return nil
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

// writeWorkspace lays out the main module beside the function's, joined by
// a go.work as the OpenFaaS template does, so the function keeps its own
// go.mod and go.sum untouched.
func writeWorkspace(fn languages.Function, goVersion string) (string, error) {
	work := filepath.Join(fn.ScratchDir, "main")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", err
	}
	lang := strings.TrimPrefix(goVersion, "go")
	if i := strings.IndexAny(lang, " -+"); i >= 0 {
		lang = lang[:i]
	}
	files := map[string]string{
		"go.mod":  "module handler\n\ngo " + lang + "\n",
		"go.work": fmt.Sprintf("go %s\n\nuse (\n\t.\n\t%q\n)\n", lang, fn.Dir),
		"main.go": string(middlewareMain),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(work, name), []byte(content), 0o644); err != nil {
			return "", fmt.Errorf("writing the main module: %w", err)
		}
	}
	return work, nil
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
