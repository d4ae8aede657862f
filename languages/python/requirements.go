package python

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/step"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
)

// pipSettings are the environment variables that change what pip
// resolves or where it looks; their values are part of the layer's key.
var pipSettings = []string{
	"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX",
	"PIP_PRE", "PIP_ONLY_BINARY", "PIP_NO_BINARY", "PIP_CONSTRAINT", "PIP_CONFIG_FILE",
}

// requirementsStep installs requirements.txt with pip into
// /home/app/packages, and carries requirements.txt itself.
type requirementsStep struct {
	pack   *Pack
	fn     languages.Function
	target target
	// refs are what requirements.txt names by path (requirementRefs),
	// which pip reads too.
	refs []languages.Named
}

func (s *requirementsStep) Name() string { return "requirements" }

// Key covers requirements.txt, the image's Python and platform, the host's
// Python (it builds what has no wheel, and compiles the bytecode) and the
// pip settings from the environment and pip.conf files. What an unpinned
// requirement resolves to is fixed by the first build: pin versions, as a
// lock file would. The files it names (-r, -c, local projects, -f
// folders) are covered.
func (s *requirementsStep) Key(ctx context.Context) (v1.Hash, error) {
	h, err := s.pack.hostPython(ctx)
	if err != nil {
		return v1.Hash{}, err
	}
	k := layers.NewKey("python/requirements/v1").
		Strings(pythonVersion, s.target.machine, s.fn.Platform.Variant).
		Strings(h.Version, h.Machine, h.Libc, h.OS).
		String(s.fn.Epoch.UTC().Format(time.RFC3339))
	if err := k.File(filepath.Join(s.fn.Dir, "requirements.txt")); err != nil {
		return v1.Hash{}, fmt.Errorf("hashing requirements.txt: %w", err)
	}
	if err := s.pack.keyPipSettings(k); err != nil {
		return v1.Hash{}, err
	}
	if conf, ok := s.handlerPipConf(); ok {
		k.String("handler pip.conf")
		if err := k.File(conf); err != nil {
			return v1.Hash{}, fmt.Errorf("hashing %s: %w", conf, err)
		}
	}
	// Only requirements naming files add to the key, so that the others'
	// cache entries still match.
	if len(s.refs) > 0 {
		files, err := refFiles(s.refs)
		if err != nil {
			return v1.Hash{}, err
		}
		if err := k.String("named by requirements").Files(files); err != nil {
			return v1.Hash{}, fmt.Errorf("hashing what requirements.txt names: %w", err)
		}
	}
	return k.Sum(), nil
}

// keyPipSettings adds to k the pip settings from the environment and the
// pip.conf files: their contents in pip's order, not their paths, which
// differ between machines (HOME) that share a cache repository.
func (p *Pack) keyPipSettings(k *layers.Key) error {
	for _, name := range pipSettings {
		k.String(name + "=" + p.getenv(name))
	}
	for _, conf := range p.pipConfigFiles() {
		if _, err := os.Stat(conf); err != nil {
			continue
		}
		k.String("pip.conf")
		if err := k.File(conf); err != nil {
			return fmt.Errorf("hashing %s: %w", conf, err)
		}
	}
	return nil
}

// handlerPipConf returns the handler folder's pip.conf, which the install
// reads (PIP_CONFIG_FILE) and no layer carries: it may hold an index's
// credentials. Plan has checked that it does not lead out of the folder.
func (s *requirementsStep) handlerPipConf() (string, bool) {
	p, err := languages.ManifestPath(s.fn.Dir, "pip.conf")
	return p, err == nil
}

// pipConfigFiles lists where pip reads its configuration on Linux.
func (p *Pack) pipConfigFiles() []string {
	var files []string
	dirs := p.getenv("XDG_CONFIG_DIRS")
	if dirs == "" {
		dirs = "/etc/xdg"
	}
	for _, d := range filepath.SplitList(dirs) {
		files = append(files, filepath.Join(d, "pip", "pip.conf"))
	}
	files = append(files, "/etc/pip.conf")
	if home := p.getenv("HOME"); home != "" {
		files = append(files, filepath.Join(home, ".pip", "pip.conf"))
		config := p.getenv("XDG_CONFIG_HOME")
		if config == "" {
			config = filepath.Join(home, ".config")
		}
		files = append(files, filepath.Join(config, "pip", "pip.conf"))
	}
	if f := p.getenv("PIP_CONFIG_FILE"); f != "" && f != os.DevNull {
		files = append(files, f)
	}
	return files
}

func (s *requirementsStep) Build(ctx context.Context, w io.Writer) error {
	h, err := s.pack.hostPython(ctx)
	if err != nil {
		return err
	}
	requirements := filepath.Join(s.fn.Dir, "requirements.txt")
	staging := filepath.Join(s.fn.ScratchDir, "packages")
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return err
	}
	some, err := hasRequirements(requirements)
	if err != nil {
		return err
	}
	// The scaffold's requirements.txt is empty: no need to start pip.
	if some {
		if err := s.install(ctx, h, requirements, staging); err != nil {
			return err
		}
	}
	if err := fixScripts(filepath.Join(staging, "bin")); err != nil {
		return err
	}
	if h.compiles() {
		s.pack.compile(ctx, h, staging, packagesDir)
	}
	files, err := layers.FromDir(staging, packagesDir)
	if err != nil {
		return err
	}
	files = append(files, layers.HostFile(functionDir+"/requirements.txt", 0o644, requirements))
	return layers.WriteTar(w, files, languages.LayerOptions(s.fn.Epoch)...)
}

// install stages requirements.txt and what it names in the scratch folder,
// at the same places relative to each other, and runs pip there, so that
// pip reads what the key covers and nothing else of the host; the
// handler's pip.conf is read where it is.
func (s *requirementsStep) install(ctx context.Context, h host, requirements, staging string) error {
	refs, err := refFiles(s.refs)
	if err != nil {
		return err
	}
	files := append([]layers.File{layers.HostFile("requirements.txt", 0o644, requirements)}, refs...)
	src, err := languages.Stage(filepath.Join(s.fn.ScratchDir, "requirements"), files)
	if err != nil {
		return err
	}
	conf, _ := s.handlerPipConf()
	err = s.pack.pipInstall(ctx, h, s.target, src, filepath.Join(src, "requirements.txt"), staging, conf)
	var se *languages.SourceError
	if errors.As(err, &se) {
		// Name the user's files, not the copies.
		se.Path = languages.Unstage(se.Path, src, s.fn.Dir, "")
		se.Detail = languages.Unstage(se.Detail, src, s.fn.Dir, src)
	}
	return err
}

// pipInstall runs pip install --target staging for the requirements file,
// in dir, for the image's Python and platform; extra arguments follow.
// conf, when not "", is the handler's pip.conf (PIP_CONFIG_FILE).
func (p *Pack) pipInstall(ctx context.Context, h host, t target, dir, requirements, staging, conf string, extra ...string) error {
	args := []string{"-m", "pip", "install",
		"--target", staging,
		"--requirement", requirements,
		// Bytecode is compiled afterwards, reproducibly.
		"--no-compile",
		"--disable-pip-version-check",
		"--no-warn-script-location",
		"--no-input",
		"--progress-bar", "off",
	}
	args = append(args, extra...)
	if !h.native(t) {
		args = append(args,
			"--python-version", pythonVersion,
			"--implementation", "cp",
			"--abi", "cp"+strings.ReplaceAll(pythonVersion, ".", ""),
			// pip widens a manylinux_2_X tag to every older glibc.
			"--platform", "manylinux_"+glibcVersion+"_"+t.machine,
			"--only-binary=:all:",
		)
	}
	cmd := exec.CommandContext(ctx, h.python(p.opts.python), args...)
	cmd.Dir = dir
	// A user install (pip.conf's user = true) cannot be combined with
	// --target.
	cmd.Env = append(append([]string(nil), p.opts.env...), "PIP_USER=0")
	if conf != "" {
		cmd.Env = append(cmd.Env, "PIP_CONFIG_FILE="+conf)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	install := step.Start(ctx, "pip install")
	err := cmd.Run()
	install.End(err)
	if err != nil {
		if out.Len() == 0 {
			return fmt.Errorf("running pip install: %w", err)
		}
		return pipError(requirements, out.String())
	}
	return nil
}

var (
	pipErrorLine = regexp.MustCompile(`(?m)^ERROR: (.*)$`)
	notFound     = regexp.MustCompile(`(?:No matching distribution found for|satisfies the requirement) ([A-Za-z0-9._-]+)`)
	requirement  = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)`)
)

// pipError turns pip's output into a SourceError on requirements.txt that
// names the requirement and, when pip says which, its line.
func pipError(requirements, output string) error {
	reason := "pip install failed"
	if m := pipErrorLine.FindAllStringSubmatch(output, -1); len(m) > 0 {
		reason = "pip install: " + m[len(m)-1][1]
	}
	line := 0
	if m := notFound.FindStringSubmatch(output); m != nil {
		line = lineOf(requirements, m[1])
	}
	return &languages.SourceError{Path: requirements, Line: line, Reason: reason, Detail: strings.TrimSpace(output)}
}

// hasRequirements reports whether requirements.txt holds more than blank
// lines and comments.
func hasRequirements(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading requirements: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line, _, _ = strings.Cut(line, "#"); strings.TrimSpace(line) != "" {
			return true, nil
		}
	}
	return false, nil
}

// lineOf returns the line of requirements.txt naming project, or 0.
func lineOf(requirements, project string) int {
	f, err := os.Open(requirements)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if m := requirement.FindStringSubmatch(sc.Text()); m != nil && normalise(m[1]) == normalise(project) {
			return n
		}
	}
	return 0
}

// normalise compares project names as PEP 503 does.
func normalise(name string) string {
	return strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(name))
}

// fixScripts points the console scripts pip wrote at the image's
// interpreter: pip writes the host's, which the image lacks and whose path
// is host data.
func fixScripts(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		first, rest, _ := bytes.Cut(b, []byte("\n"))
		if !bytes.HasPrefix(first, []byte("#!")) || !bytes.Contains(first, []byte("python")) {
			continue
		}
		fixed := append([]byte("#!/usr/bin/python3\n"), rest...)
		if err := os.WriteFile(p, fixed, fs.FileMode(0o755)); err != nil {
			return fmt.Errorf("fixing %s: %w", p, err)
		}
	}
	return nil
}

// compile writes the packages' bytecode with unchecked hashes, as the
// handler's. A file the compiler refuses (a Python 2 example shipped in a
// package) is left to the interpreter, which never imports it either.
// imageDir is where staging goes in the image.
func (p *Pack) compile(ctx context.Context, h host, staging, imageDir string) {
	cmd := exec.CommandContext(ctx, h.python(p.opts.python), "-I", "-m", "compileall", "-q", "-q",
		"--invalidation-mode", "unchecked-hash", "-d", "/"+imageDir, staging)
	cmd.Env = append(append([]string(nil), p.opts.env...), "PYTHONHASHSEED=0")
	// Its errors are left to the interpreter: the step is done either way.
	s := step.Start(ctx, "compile")
	_ = cmd.Run()
	s.End(nil)
}
