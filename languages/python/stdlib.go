package python

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

//go:embed shim/stdlib.py
var stdlibScript []byte

// stdlibDir is where Debian's CPython keeps its standard library.
const stdlibDir = "usr/lib/python" + pythonVersion

// stdlibPackages are the base's packages that hold the standard library.
var stdlibPackages = []string{"libpython" + pythonVersion + "-minimal", "libpython" + pythonVersion + "-stdlib"}

// WithDebian sets where the pack fetches the python base's standard
// library packages, whose modules it compiles. The default is none: the
// image compiles them at every start of the function.
func WithDebian(d languages.Debian) Option {
	return func(o *options) error { o.debian = d; return nil }
}

// stdlibStep compiles the standard library modules an entry point loads
// into the base's __pycache__ folders. Debian ships the standard library
// without bytecode (its postinst compiles it, and no postinst runs in a
// kiln base), so without this layer every start of a function compiles
// what Flask, waitress and the rest import from it: about 0.3 s.
//
// The modules are not listed by hand: shim/stdlib.py runs the entry point
// with the host's Python, laid out as the image's /home/app (the server
// with the pinned Flask and waitress beside it, answering one request;
// the classic entry point, answering one), and compiles the standard
// library modules it loaded. The sources are the base's own packages,
// pinned by its lock, so the bytecode matches the files it caches. The
// layer keeps the epoch 0 whatever SOURCE_DATE_EPOCH says, so every Python
// function of an entry built by the same host Python shares it. A host
// Python of another minor version cannot make the image's bytecode: the
// step then adds no layer.
type stdlibStep struct {
	pack   *Pack
	fn     languages.Function
	target target
	// entry is "server" (python3-http and python3-flask) or "classic".
	entry string
	pkgs  []languages.Deb
}

// probeHandler is the function/handler.py the entry points run with while
// their imports are recorded: it answers both the server's modes and the
// classic one, and imports nothing.
const probeHandler = `def handle(*args):
    return {"statusCode": 200, "body": "ok"}
`

func (s *stdlibStep) Name() string { return "python standard library bytecode" }

func (s *stdlibStep) Key(ctx context.Context) (v1.Hash, error) {
	h, err := s.pack.hostPython(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	if !h.compiles() {
		return v1.Hash{}, layers.ErrNoLayer
	}
	// What the entry point loads depends on the host's Python (its
	// version and OS) and on the pinned server packages, not on where
	// pip finds them: the hashes pin their bytes.
	k := layers.NewKey("python/stdlib-bytecode/v3").Strings(h.Version, h.OS, s.entry).
		String(string(stdlibScript)).String(probeHandler)
	if s.entry == "server" {
		k.String(string(flaskScript)).String(string(serverRequirements))
	} else {
		k.String(string(classicScript))
	}
	for _, p := range s.pkgs {
		k.String(p.SHA256).String(p.Unpacker)
	}
	return k.Sum(), nil
}

func (s *stdlibStep) Build(ctx context.Context, w io.Writer) error {
	h, err := s.pack.hostPython(ctx)
	if err != nil {
		return err
	}
	work := filepath.Join(s.fn.ScratchDir, "stdlib")
	sources, err := s.sources(ctx, work)
	if err != nil {
		return err
	}
	app, err := s.app(ctx, h, work)
	if err != nil {
		return err
	}
	list := filepath.Join(work, "sources.json")
	script := filepath.Join(work, "stdlib.py")
	out := filepath.Join(work, "out")
	data, err := json.Marshal(sources)
	if err != nil {
		return err
	}
	if err := writeFiles(map[string][]byte{list: data, script: stdlibScript}); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, h.python(s.pack.opts.python), "-I", "-B", script, list, out, s.entry+"="+app)
	// A fixed hash seed: the bytecode of a set literal must not depend on
	// the run.
	cmd.Env = append(slices.Clone(s.pack.opts.env), "PYTHONHASHSEED=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("compiling the standard library: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var files []layers.File
	for _, rel := range strings.Fields(stdout.String()) {
		files = append(files, layers.HostFile(stdlibDir+"/"+filepath.ToSlash(rel), 0o644, filepath.Join(out, rel)))
	}
	if len(files) == 0 {
		return fmt.Errorf("compiling the standard library: no module the %s entry point loads found in %s", s.entry, strings.Join(stdlibPackages, ", "))
	}
	return layers.WriteTar(w, files, layers.WithEpoch(time.Unix(0, 0).UTC()))
}

// sources unpacks the base's standard library packages under work and
// maps each module's path in the standard library (http/server.py) to its
// file there.
func (s *stdlibStep) sources(ctx context.Context, work string) (map[string]string, error) {
	sources := map[string]string{}
	for _, p := range s.pkgs {
		dir := filepath.Join(work, p.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		files, err := s.pack.opts.debian.Unpack(ctx, p, dir)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			if rel, ok := strings.CutPrefix(f.Path, stdlibDir+"/"); ok && f.Mode.IsRegular() && strings.HasSuffix(rel, ".py") {
				sources[rel] = f.Source
			}
		}
	}
	return sources, nil
}

// app lays the entry point out under work as the image's /home/app, with
// probeHandler as the function, and for the server Flask and waitress
// installed from serverRequirements, and returns its folder.
func (s *stdlibStep) app(ctx context.Context, h host, work string) (string, error) {
	app := filepath.Join(work, "app")
	index := classicScript
	if s.entry == "server" {
		index = flaskScript
		requirements := filepath.Join(work, "server-requirements.txt")
		if err := os.WriteFile(requirements, serverRequirements, 0o644); err != nil {
			return "", err
		}
		site := filepath.Join(app, filepath.Base(serverPackagesDir))
		if err := s.pack.pipInstall(ctx, h, s.target, work, requirements, site, "", "--require-hashes", "--no-deps"); err != nil {
			return "", fmt.Errorf("installing Flask and waitress to learn what the server imports: %w", err)
		}
	}
	fn := filepath.Join(app, filepath.Base(functionDir))
	if err := os.MkdirAll(fn, 0o755); err != nil {
		return "", err
	}
	return app, writeFiles(map[string][]byte{
		filepath.Join(app, path.Base(serverPath)): index,
		filepath.Join(fn, "__init__.py"):          nil,
		filepath.Join(fn, "handler.py"):           []byte(probeHandler),
	})
}

// writeFiles writes each file's content, readable by all.
func writeFiles(files map[string][]byte) error {
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// stdlibStepFor returns the step for the function's entry point ("server"
// or "classic") and architecture, nil when no Debian source is set.
func (p *Pack) stdlibStepFor(fn languages.Function, t target, entry string) (*stdlibStep, error) {
	if p.opts.debian == nil {
		return nil, nil
	}
	arch := fn.Platform.Architecture
	locked, err := p.opts.debian.Locked(baseName, arch)
	if err != nil {
		return nil, err
	}
	s := &stdlibStep{pack: p, fn: fn, target: t, entry: entry}
	for _, name := range stdlibPackages {
		i := slices.IndexFunc(locked, func(l languages.Deb) bool { return l.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("the %s base's lock has no %s for %s", baseName, name, arch)
		}
		s.pkgs = append(s.pkgs, locked[i])
	}
	return s, nil
}
