package python

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/envlist"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

var (
	//go:embed shim/classic.py
	classicScript []byte
	//go:embed shim/check.py
	checkScript []byte
)

// The lang values this pack builds.
const (
	LangHTTP    = "python3-http"
	LangFlask   = "python3-flask"
	LangPython3 = "python3"
	LangPython  = "python"
)

// The image's Python: the "python" runtime base carries Debian bookworm's
// CPython 3.11, whose bytecode cache tag is cpython-311.
const (
	baseName      = "python"
	pythonVersion = "3.11"
	cacheTag      = "cpython-311"
	glibcVersion  = "2_36"
)

// Where things go in the image. The server sits beside function/, as the
// templates' index.py does, so that "from function import handler"
// resolves from the script's own folder.
const (
	serverPath  = contract.AppDir + "/index.py"
	functionDir = contract.AppDir + "/function"
	packagesDir = contract.AppDir + "/packages"
	port        = 5000
)

// Option configures the pack.
type Option func(*options) error

type options struct {
	python string
	env    []string
	debian languages.Debian
}

// WithPython sets the host's python3 command, which runs pip and compiles
// the handler. The default is "python3", found on PATH.
func WithPython(path string) Option { return func(o *options) error { o.python = path; return nil } }

// WithEnv sets the environment pip runs in (PIP_INDEX_URL, PIP_FIND_LINKS,
// HOME for pip.conf, ...). The default is empty, so the CLI passes
// os.Environ().
func WithEnv(env []string) Option { return func(o *options) error { o.env = env; return nil } }

// Pack builds Python functions.
type Pack struct {
	opts options

	// host is the host query's answer, asked once per pack: kiln dev
	// plans every save with the same pack, and the query costs a Python
	// start (0.3 s through pyenv's shim).
	mu   sync.Mutex
	host *host
}

var _ languages.Pack = (*Pack)(nil)

// New returns the Python pack.
func New(opts ...Option) (*Pack, error) {
	o := options{python: "python3"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("configuring the Python pack: %w", err)
		}
	}
	return &Pack{opts: o}, nil
}

// Langs implements languages.Pack.
func (p *Pack) Langs() []string { return languages.Built(Langs()) }

// api returns the server's mode for a lang: how handle is called and which
// methods are routed to it.
func api(lang string) (string, bool) {
	switch lang {
	case LangHTTP:
		return "http", true
	case LangFlask:
		return "flask", true
	case LangPython3, LangPython:
		return "classic", true
	}
	return "", false
}

// Plan implements languages.Pack. The host's Python, which installs the
// requirements and compiles the bytecode, is asked by the steps.
func (p *Pack) Plan(ctx context.Context, fn languages.Function) (*languages.Plan, error) {
	mode, ok := api(fn.Lang)
	if !ok {
		return nil, fmt.Errorf("python pack cannot build lang %q", fn.Lang)
	}
	if err := languages.CheckHandlerDir(fn.Dir); err != nil {
		return nil, err
	}
	handler := filepath.Join(fn.Dir, "handler.py")
	if _, err := os.Stat(handler); err != nil {
		return nil, &languages.SourceError{Path: handler, Reason: "missing: a Python handler folder needs a handler.py defining " + signature(mode)}
	}
	target, err := targetOf(fn.Platform)
	if err != nil {
		return nil, err
	}
	if err := checkVersionArg(fn); err != nil {
		return nil, err
	}
	pythonEnv := []string{
		// The layers are root's: the function cannot write bytecode
		// next to them, and need not try on every import.
		"PYTHONDONTWRITEBYTECODE=1",
		// print() reaches the logs at once, not when a buffer fills.
		"PYTHONUNBUFFERED=1",
	}
	entry := layers.FilesStep("python server", []layers.File{layers.Bytes(serverPath, 0o644, flaskScript)}, languages.LayerOptions(fn.Epoch)...)
	env := slices.Concat([]string{contract.FProcess(fprocess(mode)), "KILN_PYTHON_API=" + mode}, contract.HTTPMode(port), pythonEnv)
	if mode == "classic" {
		// The classic template: python3 index.py forked per request
		// behind the classic watchdog, which is told by the absence of
		// a mode.
		entry = layers.FilesStep("python classic entry point", []layers.File{layers.Bytes(serverPath, 0o644, classicScript)}, languages.LayerOptions(fn.Epoch)...)
		env = slices.Concat([]string{contract.FProcess(fprocess(mode))}, contract.ClassicMode(), pythonEnv)
	}
	plan := &languages.Plan{
		Base:   baseName,
		Env:    env,
		Labels: map[string]string{"dev.kiln.lang": fn.Lang, "dev.kiln.python.version": pythonVersion},
	}
	stdlibEntry := "server"
	if mode == "classic" {
		stdlibEntry = "classic"
	}
	stdlib, err := p.stdlibStepFor(fn, target, stdlibEntry)
	if err != nil {
		return nil, err
	}
	if stdlib != nil {
		plan.Steps = append(plan.Steps, stdlib)
	}
	if mode != "classic" {
		plan.Steps = append(plan.Steps, &serverPackagesStep{pack: p, fn: fn, target: target})
	}
	// requirements.txt and pip.conf are read where they are, and only
	// while they stay in the folder.
	var se *languages.SourceError
	if _, err := languages.ManifestPath(fn.Dir, "pip.conf"); errors.As(err, &se) {
		return nil, se
	}
	_, err = languages.ManifestPath(fn.Dir, "requirements.txt")
	if errors.As(err, &se) {
		return nil, se
	}
	if err == nil {
		refs, err := requirementRefs(fn)
		if err != nil {
			return nil, err
		}
		plan.Steps = append(plan.Steps, &requirementsStep{pack: p, fn: fn, target: target, refs: refs})
		plan.Named = refs
	}
	plan.Steps = append(plan.Steps, entry, &codeStep{pack: p, fn: fn, mode: mode})
	return plan, nil
}

// checkVersionArg refuses a PYTHON_VERSION build argument, the templates'
// choice of Python (3.12 by default), that asks for another Python than
// the image's: kiln has one, and a function asking for another would run
// on what it did not ask for.
func checkVersionArg(fn languages.Function) error {
	v, ok := fn.BuildArgs["PYTHON_VERSION"]
	if !ok || v == "" || v == pythonVersion || strings.HasPrefix(v, pythonVersion+".") {
		return nil
	}
	return fmt.Errorf("build arg PYTHON_VERSION=%s: kiln's Python functions run on Debian bookworm's CPython %s, the only Python it provides; drop the build argument or set it to %s", v, pythonVersion, pythonVersion)
}

// fprocess is the command that starts the server for an API mode, or, in
// the classic mode, the entry point that answers one request.
func fprocess(mode string) string {
	if mode == "classic" {
		return "python3 /" + serverPath
	}
	return "python3 /" + serverPath + " " + mode
}

func signature(mode string) string {
	if mode == "http" {
		return "handle(event, context)"
	}
	return "handle(req)"
}

// target is the platform pip installs for.
type target struct {
	// machine is the wheel tag's architecture: x86_64, aarch64.
	machine string
}

func targetOf(p v1.Platform) (target, error) {
	if p.OS != "" && p.OS != "linux" {
		return target{}, fmt.Errorf("python functions run on linux, not %s", p.OS)
	}
	switch p.Architecture {
	case "amd64":
		return target{machine: "x86_64"}, nil
	case "arm64":
		return target{machine: "aarch64"}, nil
	}
	return target{}, fmt.Errorf("the python base has no %s build; use linux/amd64 or linux/arm64", p.Architecture)
}

// host describes the host's python3, which runs pip and the compiler.
type host struct {
	Version string `json:"version"` // full, e.g. 3.11.7
	Minor   string `json:"minor"`   // e.g. 3.11
	Machine string `json:"machine"`
	Libc    string `json:"libc"`
	OS      string `json:"os"`
	// Executable is the interpreter itself (sys.executable): the build
	// runs it directly, not through a launcher such as pyenv's shim,
	// which costs 0.3 s a start.
	Executable string `json:"executable"`
}

// python returns the command that runs the host's interpreter.
func (h host) python(fallback string) string {
	if h.Executable != "" {
		return h.Executable
	}
	return fallback
}

// compiles reports whether the host's bytecode is the image's.
func (h host) compiles() bool { return h.Minor == pythonVersion }

// native reports whether pip may install for the host itself: same
// Python, same machine, glibc. Otherwise it is told the image's platform
// and takes wheels only.
func (h host) native(t target) bool {
	return h.compiles() && h.Machine == t.machine && h.Libc == "glibc" && h.OS == "linux"
}

const hostQuery = `import json, platform, sys
print(json.dumps({"version": platform.python_version(), "minor": "%d.%d" % sys.version_info[:2],
  "machine": platform.machine(), "libc": platform.libc_ver()[0], "os": sys.platform,
  "executable": sys.executable}))`

func (p *Pack) hostPython(ctx context.Context) (host, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.host != nil {
		return *p.host, nil
	}
	h, err := p.queryHost(ctx)
	if err != nil {
		return host{}, err
	}
	p.host = &h
	return h, nil
}

func (p *Pack) queryHost(ctx context.Context) (host, error) {
	cmd := exec.CommandContext(ctx, p.opts.python, "-I", "-c", hostQuery)
	cmd.Env = p.opts.env
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return host{}, fmt.Errorf("building Python functions needs python3 with pip on the host (3.11 for compiled bytecode); install it or put it on PATH")
	}
	if err != nil {
		return host{}, fmt.Errorf("running %s: %w", p.opts.python, err)
	}
	var h host
	if err := json.Unmarshal(out, &h); err != nil {
		return host{}, fmt.Errorf("reading what %s says of itself: %w", p.opts.python, err)
	}
	return h, nil
}

// getenv looks a variable up in the pack's environment.
func (p *Pack) getenv(name string) string { return envlist.Get(p.opts.env, name) }

// codeStep writes the handler folder into /home/app/function, with its
// bytecode, after checking it.
type codeStep struct {
	pack *Pack
	fn   languages.Function
	mode string
}

func (s *codeStep) Name() string { return "handler code" }

func (s *codeStep) Key(ctx context.Context) (v1.Hash, error) {
	h, err := s.pack.hostPython(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	files, err := codeFiles(s.fn.Dir)
	if err != nil {
		return v1.Hash{}, err
	}
	k := layers.NewKey("python/code/v1").
		String(s.mode).
		String(string(checkScript)).
		String(s.fn.Epoch.UTC().Format(time.RFC3339))
	// The bytecode is the host's compiler's output.
	if h.compiles() {
		k.String(h.Version)
	}
	if err := k.Files(files); err != nil {
		return v1.Hash{}, fmt.Errorf("hashing %s: %w", s.fn.Dir, err)
	}
	return k.Sum(), nil
}

// codeFiles lists the handler folder as it goes into the image: without
// version control, the templates' build and template folders, bytecode
// and virtual environments, and without requirements.txt, which the
// requirements layer carries so that a change to it leaves this layer
// alone.
func codeFiles(dir string) ([]layers.File, error) {
	return languages.HandlerFiles(dir, functionDir, func(rel string, d fs.DirEntry) bool {
		name := path.Base(rel)
		switch {
		case rel == ".git", rel == "build", rel == "template", rel == ".venv", rel == ".tox", rel == "requirements.txt":
			return true
		case name == "__pycache__" || name == ".pytest_cache":
			return true
		case !d.IsDir() && strings.HasSuffix(name, ".pyc"):
			return true
		}
		return false
	})
}

// checkResult is what check.py prints.
type checkResult struct {
	Errors []struct {
		Path   string `json:"path"`
		Line   int    `json:"line"`
		Msg    string `json:"msg"`
		Text   string `json:"text"`
		Offset int    `json:"offset"`
	} `json:"errors"`
	Handle bool `json:"handle"`
}

func (s *codeStep) Build(ctx context.Context, w io.Writer) error {
	h, err := s.pack.hostPython(ctx)
	if err != nil {
		return err
	}
	files, err := codeFiles(s.fn.Dir)
	if err != nil {
		return err
	}
	var sources []string
	hasInit := false
	for _, f := range files {
		rel := strings.TrimPrefix(f.Path, functionDir+"/")
		if f.Mode.IsRegular() && strings.HasSuffix(rel, ".py") {
			sources = append(sources, rel)
		}
		hasInit = hasInit || rel == "__init__.py"
	}
	out := ""
	if h.compiles() {
		out = filepath.Join(s.fn.ScratchDir, "bytecode")
	}
	res, err := s.check(ctx, h, sources, out)
	if err != nil {
		return err
	}
	if len(res.Errors) > 0 {
		e := res.Errors[0]
		detail := e.Text
		if e.Offset > 0 && e.Text != "" {
			detail += "\n" + strings.Repeat(" ", e.Offset-1) + "^"
		}
		if len(res.Errors) > 1 {
			detail += fmt.Sprintf("\n(and %d more files with errors)", len(res.Errors)-1)
		}
		return &languages.SourceError{Path: filepath.Join(s.fn.Dir, filepath.FromSlash(e.Path)), Line: e.Line, Reason: "syntax error: " + e.Msg, Detail: strings.TrimSpace(detail)}
	}
	if !res.Handle {
		return &languages.SourceError{Path: filepath.Join(s.fn.Dir, "handler.py"), Reason: "no top-level handle function; " + s.fn.Lang + " calls " + signature(s.mode)}
	}
	// The templates' build creates the package marker.
	if !hasInit {
		files = append(files, layers.Bytes(functionDir+"/__init__.py", 0o644, nil))
	}
	if out != "" {
		compiled, err := layers.FromDir(out, functionDir)
		if err != nil {
			return err
		}
		files = append(files, compiled...)
	}
	return layers.WriteTar(w, files, languages.LayerOptions(s.fn.Epoch)...)
}

// check runs check.py on the sources.
func (s *codeStep) check(ctx context.Context, h host, sources []string, out string) (*checkResult, error) {
	script := filepath.Join(s.fn.ScratchDir, "check.py")
	if err := os.WriteFile(script, checkScript, 0o644); err != nil {
		return nil, fmt.Errorf("writing the handler check: %w", err)
	}
	list, err := json.Marshal(sources)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, h.python(s.pack.opts.python), "-I", "-B", script, s.fn.Dir, "/"+functionDir, out)
	// A fixed hash seed: the bytecode of a set literal must not depend on
	// the run.
	cmd.Env = append(append([]string(nil), s.pack.opts.env...), "PYTHONHASHSEED=0")
	cmd.Stdin = bytes.NewReader(list)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("checking the handler with %s: %w: %s", h.python(s.pack.opts.python), err, strings.TrimSpace(stderr.String()))
	}
	var res checkResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("reading the handler check's result: %w", err)
	}
	return &res, nil
}
