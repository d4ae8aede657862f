package node

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/contract"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// The server and the build-time checker, ours, in JavaScript.
var (
	//go:embed shim/index.js
	serverJS []byte
	//go:embed shim/check.js
	checkJS []byte
	//go:embed shim/classic.js
	classicJS []byte
)

// The lang values this pack builds.
const (
	LangNode18 = "node18"
	LangNode20 = "node20"
	LangNode22 = "node22"
	LangNode   = "node"
)

// majors maps a lang to the Node major version its image runs: the one
// its name says (Node 18 is past its end of life, but node18 functions
// still get it). Plain "node", the classic template, takes the newest.
var majors = map[string]string{
	LangNode18: "18",
	LangNode20: "20",
	LangNode22: "22",
	LangNode:   "22",
}

// Where things go in the image; fprocess and the port match the template's.
const (
	serverPath  = contract.AppDir + "/index.js"
	functionDir = contract.AppDir + "/function"
	nodePath    = "usr/local/bin/node"
	fprocess    = "node index.js"
	port        = 3000
)

// DefaultRegistry is the npm registry the Node runtimes come from.
const DefaultRegistry = "https://registry.npmjs.org"

// Option configures the pack.
type Option func(*options) error

type options struct {
	cacheDir  string
	node, npm string
	env       []string
	registry  string
	client    *http.Client
	strip     map[string][]string
}

// WithNode sets the node command that checks the handler. The default is
// "node", found on PATH.
func WithNode(path string) Option { return func(o *options) error { o.node = path; return nil } }

// WithNpm sets the npm command that installs dependencies and runs tests.
// The default is "npm", found on PATH.
func WithNpm(path string) Option { return func(o *options) error { o.npm = path; return nil } }

// WithEnv sets the environment node and npm run in (HOME, PATH, npm_config_*,
// ...). The default is empty, so the CLI passes os.Environ().
func WithEnv(env []string) Option { return func(o *options) error { o.env = env; return nil } }

// WithRegistry sets the npm registry the Node runtimes are downloaded from.
// The default, also used when url is empty, is DefaultRegistry. The
// function's own dependencies follow npm's configuration, not this.
func WithRegistry(url string) Option {
	return func(o *options) error {
		if url != "" {
			o.registry = strings.TrimRight(url, "/")
		}
		return nil
	}
}

// WithCacheDir sets kiln's cache directory, where downloaded runtimes
// (cache.NodeRuntimes) and installed dependencies (cache.NodeModules) are
// kept between builds. Required: there is no default.
func WithCacheDir(dir string) Option { return func(o *options) error { o.cacheDir = dir; return nil } }

// WithHTTPClient sets the client that downloads runtimes. The default is
// http.DefaultClient.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error { o.client = c; return nil }
}

// WithStrip sets, per architecture, the commands tried in order to strip
// the debug information from the node binary; the first found on PATH is
// used. The defaults are binutils' cross strip for the architecture
// (x86_64-linux-gnu-strip, aarch64-linux-gnu-strip), then plain strip for
// the host's own. When none is found the binary ships unstripped and a
// warning is logged.
func WithStrip(arch string, commands ...string) Option {
	return func(o *options) error { o.strip[arch] = commands; return nil }
}

// Pack builds Node functions.
type Pack struct {
	opts options
}

var _ languages.Pack = (*Pack)(nil)

// New returns the Node pack.
func New(opts ...Option) (*Pack, error) {
	o := options{
		node:     "node",
		npm:      "npm",
		registry: DefaultRegistry,
		client:   http.DefaultClient,
		strip: map[string][]string{
			"amd64": {"x86_64-linux-gnu-strip"},
			"arm64": {"aarch64-linux-gnu-strip"},
		},
	}
	o.strip[goruntime.GOARCH] = append(o.strip[goruntime.GOARCH], "strip")
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("configuring the Node pack: %w", err)
		}
	}
	if o.cacheDir == "" {
		return nil, errors.New("configuring the Node pack: no cache folder (WithCacheDir)")
	}
	return &Pack{opts: o}, nil
}

// store opens kiln's cache.
func (p *Pack) store() (*cache.Store, error) { return cache.Open(p.opts.cacheDir) }

// Langs implements languages.Pack.
func (p *Pack) Langs() []string { return languages.Built(Langs()) }

// Plan implements languages.Pack. The host's node and npm, whose versions
// the dependencies' key holds, are asked by the steps.
func (p *Pack) Plan(ctx context.Context, fn languages.Function) (*languages.Plan, error) {
	major, ok := majors[fn.Lang]
	if !ok {
		return nil, fmt.Errorf("node pack cannot build lang %q", fn.Lang)
	}
	if fn.Platform.OS != "linux" {
		return nil, fmt.Errorf("node functions run on linux only, not %s", fn.Platform.OS)
	}
	if err := languages.CheckHandlerDir(fn.Dir); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(fn.Dir, "handler.js")); err != nil {
		return nil, &languages.SourceError{Path: filepath.Join(fn.Dir, "handler.js"), Reason: "missing: a Node handler folder needs a handler.js whose module.exports is a function " + signature(fn.Lang)}
	}
	rt, err := p.runtime(major, fn.Platform.Architecture)
	if err != nil {
		return nil, err
	}
	manifest, err := readManifest(fn.Dir)
	if err != nil {
		return nil, err
	}
	if manifest.locals, err = localDeps(fn, manifest.packageJSON); err != nil {
		return nil, err
	}
	deps := &depsStep{pack: p, fn: fn, manifest: manifest, runtime: rt, tools: lazy.New(p.hostTools)}
	code := &codeStep{pack: p, fn: fn, deps: deps}
	entry := layers.FilesStep("node server", []layers.File{layers.Bytes(serverPath, 0o644, serverJS)}, languages.LayerOptions(fn.Epoch)...)
	env := slices.Concat([]string{contract.FProcess(fprocess)}, contract.HTTPMode(port), []string{
		"exec_timeout=10s",
		"write_timeout=15s",
		"read_timeout=15s",
		contract.RawLogs,
		"NPM_CONFIG_LOGLEVEL=warn",
	})
	if classic(fn.Lang) {
		// The classic template: node index.js forked per request behind
		// the classic watchdog, which is told by the absence of a mode.
		entry = layers.FilesStep("node classic entry point", []layers.File{layers.Bytes(serverPath, 0o644, classicJS)}, languages.LayerOptions(fn.Epoch)...)
		env = slices.Concat([]string{contract.FProcess(fprocess)}, contract.ClassicMode(), []string{"NPM_CONFIG_LOGLEVEL=warn"})
	}
	return &languages.Plan{
		Base:   "node",
		Steps:  []layers.Step{newRuntimeStep(p, rt), deps, entry, code},
		Env:    env,
		Labels: map[string]string{"dev.kiln.lang": fn.Lang, "dev.kiln.node.version": rt.Version},
		Named:  manifest.locals,
	}, nil
}

// classic reports whether a lang is the classic node template's, whose
// handler is called once per process with (content, callback).
func classic(lang string) bool { return lang == LangNode }

// signature is the handler's signature under a lang, for messages.
func signature(lang string) string {
	if classic(lang) {
		return "(context, callback), or one returning a promise"
	}
	return "(event, context)"
}

// hostTools are the versions of the host's node and npm, which install
// and check the dependencies.
type hostTools struct {
	node, npm string // node without its "v"
}

func (p *Pack) hostTools(ctx context.Context) (hostTools, error) {
	node, err := p.hostVersion(ctx, p.opts.node, "--version")
	if err != nil {
		return hostTools{}, err
	}
	npm, err := p.npmVersion(ctx)
	if err != nil {
		return hostTools{}, err
	}
	return hostTools{node: strings.TrimPrefix(node, "v"), npm: npm}, nil
}

// hostVersion runs a host tool's --version, which also proves it is there.
func (p *Pack) hostVersion(ctx context.Context, tool string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = p.opts.env
	out, err := cmd.Output()
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("building Node functions needs node and npm on the host; %s was not found", tool)
	}
	if err != nil {
		return "", fmt.Errorf("running %s --version: %w", tool, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// npmVersion returns the version of the host's npm. npm's command is its
// package's bin/npm-cli.js, so the version is read from the package.json
// beside it, sparing the 0.3 to 0.5 s npm takes to start on every build;
// an npm laid out otherwise is asked.
func (p *Pack) npmVersion(ctx context.Context) (string, error) {
	if path, err := exec.LookPath(p.opts.npm); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Base(real) == "npm-cli.js" {
			var pkg struct{ Name, Version string }
			b, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(real)), "package.json"))
			if err == nil && json.Unmarshal(b, &pkg) == nil && pkg.Name == "npm" && pkg.Version != "" {
				return pkg.Version, nil
			}
		}
	}
	return p.hostVersion(ctx, p.opts.npm, "--version")
}

// command prepares a host tool to run in dir with the pack's environment.
func (p *Pack) command(ctx context.Context, tool, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	cmd.Env = append(slices.Clone(p.opts.env), "NPM_CONFIG_UPDATE_NOTIFIER=false")
	return cmd
}
