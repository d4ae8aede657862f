package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// lockfiles npm reads, in the order it prefers them.
var lockfiles = []string{"npm-shrinkwrap.json", "package-lock.json"}

// manifest is what decides a function's dependencies.
type manifest struct {
	packageJSON []byte
	lockName    string // "" without a lockfile
	lock        []byte
	npmrc       []byte
	// locals are the folders and tarballs the dependencies name by path
	// (localDeps), which npm reads beside package.json.
	locals     []languages.Named
	testScript string
	devDeps    bool
}

func readManifest(dir string) (*manifest, error) {
	path := filepath.Join(dir, "package.json")
	data, err := languages.ReadManifest(dir, "package.json")
	var se *languages.SourceError
	if errors.As(err, &se) {
		return nil, se
	}
	if err != nil {
		return nil, &languages.SourceError{Path: path, Reason: "missing: a Node handler folder needs a package.json (run: npm init -y)"}
	}
	var pkg struct {
		Scripts         map[string]string `json:"scripts"`
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		se := &languages.SourceError{Path: path, Reason: "not valid JSON: " + err.Error()}
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			se.Line = 1 + bytes.Count(data[:syn.Offset], []byte("\n"))
		}
		return nil, se
	}
	m := &manifest{packageJSON: data, testScript: pkg.Scripts["test"], devDeps: len(pkg.DevDependencies) > 0}
	for _, name := range lockfiles {
		b, err := languages.ReadManifest(dir, name)
		if errors.As(err, &se) {
			return nil, se
		}
		if err == nil {
			m.lockName, m.lock = name, b
			break
		}
	}
	// .npmrc may hold a registry token: the install reads it, no layer
	// carries it (languages.HandlerFiles leaves it out).
	b, err := languages.ReadManifest(dir, ".npmrc")
	if errors.As(err, &se) {
		return nil, se
	}
	if err == nil {
		m.npmrc = b
	}
	return m, nil
}

// hasTest reports whether package.json defines a test other than the one
// npm init writes, which only fails.
func (m *manifest) hasTest() bool {
	return strings.TrimSpace(m.testScript) != "" && !strings.Contains(m.testScript, "no test specified")
}

// depsStep installs the production dependencies and writes them, with
// package.json and the lockfile, under /home/app/function.
type depsStep struct {
	pack     *Pack
	fn       languages.Function
	manifest *manifest
	runtime  *runtime
	// tools are asked once per build, when a step first needs them.
	tools *lazy.Value[hostTools]

	mu sync.Mutex // one install of each kind at a time within a build
	// fresh holds this build's own installs under fn.NoCache, by dev.
	fresh map[bool]string
}

func (s *depsStep) Name() string { return "node dependencies" }

func (s *depsStep) Key(ctx context.Context) (v1.Hash, error) {
	return s.key(ctx, false)
}

// key covers what npm's result depends on: the manifest, the local
// dependencies' files, the target, npm and the node it runs on.
func (s *depsStep) key(ctx context.Context, dev bool) (v1.Hash, error) {
	tools, err := s.tools.Get(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	m := s.manifest
	k := layers.NewKey("node/deps/v1").
		String(string(m.packageJSON)).
		String(m.lockName).
		String(string(m.lock)).
		String(string(m.npmrc)).
		String(s.runtime.Version).
		String(s.runtime.Arch).
		String(tools.node).
		String(tools.npm).
		String(fmt.Sprint(dev)).
		String(s.fn.Epoch.UTC().Format(time.RFC3339))
	// Only a function with local dependencies adds to the key, so that
	// the others' cache entries still match.
	if len(m.locals) > 0 {
		files, err := localFiles(m.locals)
		if err != nil {
			return v1.Hash{}, err
		}
		if err := k.String("local dependencies").Files(files); err != nil {
			return v1.Hash{}, fmt.Errorf("hashing the local dependencies: %w", err)
		}
	}
	return k.Sum(), nil
}

func (s *depsStep) Build(ctx context.Context, w io.Writer) error {
	dir, err := s.install(ctx, false)
	if err != nil {
		return err
	}
	files := []layers.File{layers.Bytes(functionDir+"/package.json", 0o644, s.manifest.packageJSON)}
	if s.manifest.lockName != "" {
		files = append(files, layers.Bytes(functionDir+"/"+s.manifest.lockName, 0o644, s.manifest.lock))
	}
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(modules); err == nil {
		mods, err := layers.FromDir(modules, functionDir+"/node_modules", layers.WithSkip(func(rel string, d fs.DirEntry) bool {
			// npm's own bookkeeping; node never reads it.
			return rel == ".package-lock.json"
		}))
		if err != nil {
			return err
		}
		files = append(files, mods...)
	}
	return layers.WriteTar(w, files, languages.LayerOptions(s.fn.Epoch)...)
}

// npmCPU names an architecture as npm's --cpu does.
func npmCPU(arch string) string {
	if arch == "amd64" {
		return "x64"
	}
	return arch
}

// install runs npm in a staging folder, once per key, and returns the
// folder holding node_modules; dev adds the devDependencies, for tests.
// Installs stay in the cache (fn.Trees when set, shared with other
// machines) so that later builds check and test the handler against them
// without reinstalling. With fn.NoCache the build
// installs afresh, once, into its scratch folder, and leaves the cache as
// other builds see it.
func (s *depsStep) install(ctx context.Context, dev bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fn.NoCache {
		return s.installFresh(ctx, dev)
	}
	key, err := s.key(ctx, dev)
	if err != nil {
		return "", err
	}
	trees := s.fn.Trees
	if trees == nil {
		store, err := s.pack.store()
		if err != nil {
			return "", err
		}
		trees = store
	}
	l, err := trees.Tree(ctx, cache.NodeModules, key.Hex, func(stage string) error {
		_, err := s.installIn(ctx, stage, dev)
		return err
	})
	if err != nil {
		return "", err
	}
	// Its last use, stamped now, keeps Prune off it for the build.
	l.Close()
	return s.manifest.stagedDir(l.Path), nil
}

// installFresh installs once per build into its scratch folder, which the
// builder removes, for fn.NoCache.
func (s *depsStep) installFresh(ctx context.Context, dev bool) (string, error) {
	if dir, ok := s.fresh[dev]; ok {
		return dir, nil
	}
	stage, err := os.MkdirTemp(s.fn.ScratchDir, "npm-")
	if err != nil {
		return "", err
	}
	dir, err := s.installIn(ctx, stage, dev)
	if err != nil {
		return "", err
	}
	if s.fresh == nil {
		s.fresh = map[bool]string{}
	}
	s.fresh[dev] = dir
	return dir, nil
}

// stagedDir returns where installIn stages package.json under stage, and
// npm writes node_modules: stage itself, unless local dependencies climb
// out of the handler folder (languages.StagedDir).
func (m *manifest) stagedDir(stage string) string {
	var rels []layers.File
	for _, n := range m.locals {
		rels = append(rels, layers.Dir(n.Rel, 0o755))
	}
	return languages.StagedDir(stage, rels)
}

// installIn stages the manifest and the local dependencies in stage, a new
// folder, runs npm there and checks what it installed. It returns the
// folder holding node_modules. .npmrc, which may hold a token, is there
// for npm only: it is removed once npm is done.
func (s *depsStep) installIn(ctx context.Context, stage string, dev bool) (string, error) {
	m := s.manifest
	files := []layers.File{layers.Bytes("package.json", 0o644, m.packageJSON)}
	if m.lockName != "" {
		files = append(files, layers.Bytes(m.lockName, 0o644, m.lock))
	}
	if m.npmrc != nil {
		files = append(files, layers.Bytes(".npmrc", 0o600, m.npmrc))
	}
	locals, err := localFiles(m.locals)
	if err != nil {
		return "", err
	}
	dir, err := languages.Stage(stage, append(files, locals...))
	if err != nil {
		return "", err
	}
	if m.npmrc != nil {
		defer os.Remove(filepath.Join(dir, ".npmrc"))
	}
	args := []string{"install", "--no-package-lock"}
	if m.lockName != "" {
		args = []string{"ci"}
	} else {
		slog.WarnContext(ctx, "no package-lock.json: dependencies are resolved afresh on every change; run npm install and commit the lockfile", "dir", s.fn.Dir)
	}
	if !dev {
		args = append(args, "--omit=dev")
	}
	if len(m.locals) > 0 {
		// npm links a local folder into node_modules by default, and the
		// link would point out of the function's folder in the image.
		args = append(args, "--install-links")
	}
	args = append(args, "--no-audit", "--no-fund", "--os=linux", "--cpu="+npmCPU(s.runtime.Arch), "--libc=glibc")
	install := step.Start(ctx, "npm "+args[0])
	out, err := s.pack.command(ctx, s.pack.opts.npm, dir, args...).CombinedOutput()
	install.End(err)
	if err != nil {
		return "", s.npmError(args, []byte(languages.Unstage(string(out), dir, s.fn.Dir, dir)), err)
	}
	tools, err := s.tools.Get(ctx)
	if err != nil {
		return "", err
	}
	return dir, s.checkNative(filepath.Join(dir, "node_modules"), tools.node)
}

// npmError turns a failed npm run into the user's mistake it reports.
func (s *depsStep) npmError(args []string, out []byte, err error) error {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return fmt.Errorf("running npm %s: %w", args[0], err)
	}
	detail := strings.TrimSpace(string(out))
	pkg := filepath.Join(s.fn.Dir, "package.json")
	if strings.Contains(detail, "in sync") {
		lock := filepath.Join(s.fn.Dir, s.manifest.lockName)
		return &languages.SourceError{Path: lock, Reason: fmt.Sprintf("out of sync with %s; run npm install there and commit both files", pkg), Detail: detail}
	}
	return &languages.SourceError{Path: pkg, Reason: "npm " + args[0] + " failed", Detail: detail}
}

// checkNative refuses native addons that were built for the host when the
// image runs another platform or Node major: the image would fail when the
// function loads them. Prebuilt binaries for the target are fine.
func (s *depsStep) checkNative(modules, hostNode string) error {
	hostMajor, _, _ := strings.Cut(hostNode, ".")
	if s.runtime.Arch == goruntime.GOARCH && s.runtime.Major == hostMajor {
		return nil
	}
	target := "linux-" + npmCPU(s.runtime.Arch)
	var native []string
	err := filepath.WalkDir(modules, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == modules {
			return filepath.SkipAll
		}
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(modules, p)
		rel = filepath.ToSlash(rel)
		built := d.Name() == "binding.gyp" || (strings.HasSuffix(d.Name(), ".node") && !strings.Contains(rel, "/prebuilds/"+target))
		if built {
			native = append(native, packageOf(rel))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("looking for native addons: %w", err)
	}
	if len(native) == 0 {
		return nil
	}
	slices.Sort(native)
	native = slices.Compact(native)
	return &languages.SourceError{
		Path: filepath.Join(s.fn.Dir, "package.json"),
		Reason: fmt.Sprintf("%s: native addons are built for this machine (linux/%s, Node %s) and cannot run on the image's linux/%s, Node %s; build on a matching machine or drop them",
			strings.Join(native, ", "), goruntime.GOARCH, hostMajor, s.runtime.Arch, s.runtime.Major),
	}
}

// packageOf names the dependency a path under node_modules belongs to.
func packageOf(rel string) string {
	parts := strings.SplitN(rel, "/", 3)
	if strings.HasPrefix(parts[0], "@") && len(parts) > 1 {
		return parts[0] + "/" + parts[1]
	}
	return parts[0]
}
