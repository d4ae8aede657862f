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

// stdlibStep compiles the standard library modules the server imports
// into the base's __pycache__ folders. Debian ships the standard library
// without bytecode (its postinst compiles it, and no postinst runs in a
// kiln base), so without this layer every start of a function compiles
// http.server, email and the rest anew: about 0.4 s. The sources are the
// base's own packages, pinned by its lock, so the bytecode matches the
// files it caches. The layer keeps the epoch 0 whatever SOURCE_DATE_EPOCH
// says, so every Python function built by the same host Python shares it.
// A host Python of another minor version cannot make the image's bytecode:
// the step then adds no layer.
type stdlibStep struct {
	pack *Pack
	fn   languages.Function
	pkgs []languages.Deb
}

func (s *stdlibStep) Name() string { return "python standard library bytecode" }

func (s *stdlibStep) Key(ctx context.Context) (v1.Hash, error) {
	h, err := s.pack.hostPython(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	if !h.compiles() {
		return v1.Hash{}, layers.ErrNoLayer
	}
	k := layers.NewKey("python/stdlib-bytecode/v2").String(h.Version).
		String(string(stdlibScript)).String(string(serverScript))
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
	sources := map[string]string{}
	for _, p := range s.pkgs {
		dir := filepath.Join(work, p.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		files, err := s.pack.opts.debian.Unpack(ctx, p, dir)
		if err != nil {
			return err
		}
		for _, f := range files {
			if rel, ok := strings.CutPrefix(f.Path, stdlibDir+"/"); ok && f.Mode.IsRegular() && strings.HasSuffix(rel, ".py") {
				sources[rel] = f.Source
			}
		}
	}
	list := filepath.Join(work, "sources.json")
	script := filepath.Join(work, "stdlib.py")
	server := filepath.Join(work, "index.py")
	out := filepath.Join(work, "out")
	data, err := json.Marshal(sources)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{list, data}, {script, stdlibScript}, {server, serverScript}} {
		if err := os.WriteFile(f.path, f.data, 0o644); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, h.python(s.pack.opts.python), "-I", "-B", script, list, server, out)
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
		return fmt.Errorf("compiling the standard library: no module of the server found in %s", strings.Join(stdlibPackages, ", "))
	}
	return layers.WriteTar(w, files, layers.WithEpoch(time.Unix(0, 0).UTC()))
}

// stdlibStepFor returns the step for the target's architecture, nil when
// no Debian source is set.
func (p *Pack) stdlibStepFor(fn languages.Function, arch string) (*stdlibStep, error) {
	if p.opts.debian == nil {
		return nil, nil
	}
	locked, err := p.opts.debian.Locked(baseName, arch)
	if err != nil {
		return nil, err
	}
	s := &stdlibStep{pack: p, fn: fn}
	for _, name := range stdlibPackages {
		i := slices.IndexFunc(locked, func(l languages.Deb) bool { return l.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("the %s base's lock has no %s for %s", baseName, name, arch)
		}
		s.pkgs = append(s.pkgs, locked[i])
	}
	return s, nil
}
