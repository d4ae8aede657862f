package python

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/layers"
	"github.com/kiln-build/kiln/test/wheelhouse"
)

var linuxAMD64 = v1.Platform{OS: "linux", Architecture: "amd64"}

// function writes a handler folder and returns it.
func function(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		write(t, filepath.Join(dir, name), content)
	}
	return dir
}

// kilndepIndex makes a local package index with kilndep 1.0 and 2.0 and
// returns the environment that points pip at it, and nowhere else.
func kilndepIndex(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	for _, v := range []string{"1.0", "2.0"} {
		if _, err := wheelhouse.Write(dir, "kilndep", v, map[string]string{"kilndep/__init__.py": "VERSION = '" + v + "'\n"}); err != nil {
			t.Fatal(err)
		}
	}
	serverWheels(t, dir)
	return append(os.Environ(), wheelhouse.Env(dir)...)
}

// serverWheels adds to a wheelhouse the wheels of Flask, waitress and
// their dependencies that serverRequirements pins, downloaded once.
func serverWheels(t *testing.T, dir string) {
	t.Helper()
	if err := wheelhouse.Pinned(dir, serverRequirements); err != nil {
		t.Fatalf("wheelhouse.Pinned() = %v", err)
	}
}

// plan plans fn in a fresh scratch folder.
func plan(t *testing.T, p *Pack, dir, lang string, platform v1.Platform) (*languages.Plan, languages.Function) {
	t.Helper()
	fn := languages.Function{Name: "fn", Dir: dir, Lang: lang, Platform: platform, ScratchDir: t.TempDir()}
	pl, err := p.Plan(context.Background(), fn)
	if err != nil {
		t.Fatalf("Plan() = %v", err)
	}
	return pl, fn
}

// build runs a step and returns its tar's entries by name, with the
// content of regular files.
func build(t *testing.T, s layers.Step) (map[string]string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := s.Build(context.Background(), &buf); err != nil {
		t.Fatalf("%s: Build() = %v", s.Name(), err)
	}
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out, buf.Bytes()
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[hdr.Name] = string(b)
	}
}

// stepNamed returns the plan's step of that name.
func stepNamed(t *testing.T, pl *languages.Plan, name string) layers.Step {
	t.Helper()
	for _, s := range pl.Steps {
		if s.Name() == name {
			return s
		}
	}
	t.Fatalf("plan has no step %q: %v", name, stepNames(pl))
	return nil
}

func stepNames(pl *languages.Plan) []string {
	var names []string
	for _, s := range pl.Steps {
		names = append(names, s.Name())
	}
	return names
}

func keys(t *testing.T, pl *languages.Plan) map[string]v1.Hash {
	t.Helper()
	out := map[string]v1.Hash{}
	for _, s := range pl.Steps {
		k, err := s.Key(context.Background())
		if err != nil {
			t.Fatalf("%s: Key() = %v", s.Name(), err)
		}
		out[s.Name()] = k
	}
	return out
}

func TestPlan(t *testing.T) {
	needPython(t)
	tests := []struct {
		lang      string
		files     map[string]string
		wantSteps []string
		wantEnv   string
	}{
		{LangHTTP, map[string]string{"handler.py": "def handle(event, context):\n    return None\n", "requirements.txt": ""},
			[]string{"flask and waitress", "requirements", "python server", "handler code"}, "fprocess=python3 /home/app/index.py http"},
		{LangFlask, map[string]string{"handler.py": "def handle(req):\n    return req\n"},
			[]string{"flask and waitress", "python server", "handler code"}, "fprocess=python3 /home/app/index.py flask"},
		{LangPython3, map[string]string{"handler.py": "def handle(req):\n    return req\n"},
			[]string{"python classic entry point", "handler code"}, "fprocess=python3 /home/app/index.py"},
		{LangPython, map[string]string{"handler.py": "def handle(req):\n    return req\n"},
			[]string{"python classic entry point", "handler code"}, "fprocess=python3 /home/app/index.py"},
	}
	for _, tc := range tests {
		t.Run(tc.lang, func(t *testing.T) {
			pl, _ := plan(t, newPack(t, WithEnv(os.Environ())), function(t, tc.files), tc.lang, linuxAMD64)
			if got := stepNames(pl); !slices.Equal(got, tc.wantSteps) {
				t.Errorf("Plan() steps = %v, want %v", got, tc.wantSteps)
			}
			if pl.Base != "python" {
				t.Errorf("Plan() base = %q, want python", pl.Base)
			}
			classic := tc.lang == LangPython3 || tc.lang == LangPython
			for _, want := range []string{tc.wantEnv, "mode=http", "upstream_url=http://127.0.0.1:5000"} {
				if !slices.Contains(pl.Env, want) && (want == tc.wantEnv || !classic) {
					t.Errorf("Plan() env = %v, want %s in it", pl.Env, want)
				}
			}
			// The classic template sets no mode: the watchdog forks
			// index.py per request.
			if classic && slices.ContainsFunc(pl.Env, func(e string) bool { return strings.HasPrefix(e, "mode=") || strings.HasPrefix(e, "upstream_url=") }) {
				t.Errorf("Plan() env = %v, want no mode and no upstream_url", pl.Env)
			}
			// deploy falls back on the fprocess Langs declares.
			i := slices.IndexFunc(Langs(), func(l languages.Lang) bool { return l.Name == tc.lang })
			if i < 0 || "fprocess="+Langs()[i].FProcess != tc.wantEnv {
				t.Errorf("Langs() declares %s with another fprocess than its Plan's %s", tc.lang, tc.wantEnv)
			}
		})
	}
}

func TestSourceErrors(t *testing.T) {
	needPython(t)
	tests := []struct {
		name     string
		lang     string
		files    map[string]string
		wantFile string
		wantLine int
		want     string
	}{
		{"syntax error in handler.py", LangHTTP, map[string]string{"handler.py": "def handle(event, context):\n    return {\n\n"},
			"handler.py", 2, "syntax error"},
		{"syntax error in a helper", LangFlask, map[string]string{"handler.py": "from . import util\n\ndef handle(req):\n    return req\n", "util/__init__.py": "x = 1\ny = = 2\n"},
			"util/__init__.py", 2, "syntax error"},
		{"no handle", LangHTTP, map[string]string{"handler.py": "def handler(event, context):\n    return None\n"},
			"handler.py", 0, "no top-level handle function; python3-http calls handle(event, context)"},
		{"handle only nested", LangFlask, map[string]string{"handler.py": "class A:\n    def handle(self, req):\n        return req\n"},
			"handler.py", 0, "no top-level handle function"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := function(t, tc.files)
			pl, _ := plan(t, newPack(t, WithEnv(os.Environ())), dir, tc.lang, linuxAMD64)
			code := pl.Steps[len(pl.Steps)-1]
			err := code.Build(context.Background(), io.Discard)
			var se *languages.SourceError
			if !errors.As(err, &se) {
				t.Fatalf("Build() = %v, want a *languages.SourceError", err)
			}
			if se.Path != filepath.Join(dir, tc.wantFile) || se.Line != tc.wantLine || !strings.Contains(se.Reason, tc.want) {
				t.Errorf("Build() = %s:%d %q, want %s:%d and %q", se.Path, se.Line, se.Reason, filepath.Join(dir, tc.wantFile), tc.wantLine, tc.want)
			}
		})
	}
	t.Run("no handler.py", func(t *testing.T) {
		dir := function(t, map[string]string{"main.py": "x = 1\n"})
		_, err := newPack(t, WithEnv(os.Environ())).Plan(context.Background(), languages.Function{Dir: dir, Lang: LangHTTP, Platform: linuxAMD64})
		var se *languages.SourceError
		if !errors.As(err, &se) || se.Path != filepath.Join(dir, "handler.py") {
			t.Errorf("Plan() = %v, want a SourceError on handler.py", err)
		}
	})
}

func TestCodeLayer(t *testing.T) {
	needPython(t)
	dir := function(t, map[string]string{
		"handler.py":             "from .util import greet\n\ndef handle(req):\n    return greet(req)\n",
		"util.py":                "def greet(s):\n    return 'hi ' + s\n",
		"requirements.txt":       "",
		"__pycache__/old.pyc":    "stale",
		".git/HEAD":              "ref",
		"template/x/index.py":    "no",
		".venv/bin/python":       "no",
		"static/readme.txt":      "kept",
		"tests/test_handler.py":  "def test():\n    pass\n",
		"tests/__pycache__/t.py": "no",
	})
	p := newPack(t, WithEnv(os.Environ()))
	pl, _ := plan(t, p, dir, LangFlask, linuxAMD64)
	code := pl.Steps[len(pl.Steps)-1]
	got, first := build(t, code)
	var names []string
	for n := range got {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{
		"home/", "home/app/", "home/app/function/",
		"home/app/function/__init__.py",
		"home/app/function/handler.py",
		"home/app/function/static/", "home/app/function/static/readme.txt",
		"home/app/function/tests/", "home/app/function/tests/test_handler.py",
		"home/app/function/util.py",
	}
	if p.hostMinor(t) == pythonVersion {
		want = append(want,
			"home/app/function/__pycache__/",
			"home/app/function/__pycache__/handler.cpython-311.pyc",
			"home/app/function/__pycache__/util.cpython-311.pyc",
			"home/app/function/tests/__pycache__/",
			"home/app/function/tests/__pycache__/test_handler.cpython-311.pyc",
		)
		sort.Strings(want)
		pyc := got["home/app/function/__pycache__/handler.cpython-311.pyc"]
		// Flags 0b01: a hash-based pyc whose source is never checked.
		if len(pyc) < 16 || pyc[4] != 1 {
			t.Errorf("handler.pyc flags = %x, want an unchecked-hash pyc", pyc[4:8])
		}
		if !strings.Contains(pyc, "/home/app/function/handler.py") || strings.Contains(pyc, dir) {
			t.Errorf("handler.pyc does not name /home/app/function/handler.py, or names the host folder %s", dir)
		}
	}
	if !slices.Equal(names, want) {
		t.Errorf("code layer = %v, want %v", names, want)
	}
	// Build again from another scratch folder: the same bytes.
	pl2, _ := plan(t, p, dir, LangFlask, linuxAMD64)
	if _, second := build(t, pl2.Steps[len(pl2.Steps)-1]); !bytes.Equal(first, second) {
		t.Errorf("code layer built twice differs")
	}
}

// hostMinor is the host's python3 version, major.minor.
func (p *Pack) hostMinor(t *testing.T) string {
	t.Helper()
	h, err := p.hostPython(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Minor
}

// TestEditsChangeOneKey: an edit of handler.py changes only the code
// layer's key, one of requirements.txt only the requirements layer's.
func TestEditsChangeOneKey(t *testing.T) {
	needPython(t)
	dir := function(t, map[string]string{"handler.py": "def handle(req):\n    return 'a'\n", "requirements.txt": "kilndep==1.0\n"})
	p := newPack(t, WithEnv(os.Environ()))
	key := func() map[string]v1.Hash {
		pl, _ := plan(t, p, dir, LangFlask, linuxAMD64)
		return keys(t, pl)
	}
	before := key()
	write(t, filepath.Join(dir, "handler.py"), "def handle(req):\n    return 'b'\n")
	afterHandler := key()
	write(t, filepath.Join(dir, "requirements.txt"), "kilndep==2.0\n")
	afterReqs := key()
	for name := range before {
		if changed := before[name] != afterHandler[name]; changed != (name == "handler code") {
			t.Errorf("handler.py edit: key of %q changed = %v", name, changed)
		}
		if changed := afterHandler[name] != afterReqs[name]; changed != (name == "requirements") {
			t.Errorf("requirements.txt edit: key of %q changed = %v", name, changed)
		}
	}
}

func TestRequirementsKey(t *testing.T) {
	needPython(t)
	dir := function(t, map[string]string{"handler.py": "def handle(req):\n    return req\n", "requirements.txt": "kilndep\n"})
	key := func(platform v1.Platform, epoch time.Time, env ...string) v1.Hash {
		p := newPack(t, WithEnv(append([]string{"HOME=/nonexistent"}, env...)))
		fn := languages.Function{Dir: dir, Lang: LangHTTP, Platform: platform, Epoch: epoch, ScratchDir: t.TempDir()}
		pl, err := p.Plan(context.Background(), fn)
		if err != nil {
			t.Fatal(err)
		}
		return keys(t, pl)["requirements"]
	}
	home := t.TempDir()
	withConf := func(conf string) v1.Hash {
		write(t, filepath.Join(home, ".config", "pip", "pip.conf"), conf)
		return key(linuxAMD64, time.Unix(0, 0), "HOME="+home)
	}
	if a, b := withConf("[global]\nindex-url = http://127.0.0.1:1/a\n"), withConf("[global]\nindex-url = http://127.0.0.1:1/b\n"); a == b {
		t.Errorf("requirements key with another pip.conf = %s, want a different key", b)
	}
	base := key(linuxAMD64, time.Unix(0, 0))
	for name, other := range map[string]v1.Hash{
		"platform":            key(v1.Platform{OS: "linux", Architecture: "arm64"}, time.Unix(0, 0)),
		"epoch":               key(linuxAMD64, time.Unix(1700000000, 0)),
		"PIP_INDEX_URL":       key(linuxAMD64, time.Unix(0, 0), "PIP_INDEX_URL=http://127.0.0.1:1/simple"),
		"PIP_EXTRA_INDEX_URL": key(linuxAMD64, time.Unix(0, 0), "PIP_EXTRA_INDEX_URL=http://127.0.0.1:1/simple"),
		"PIP_FIND_LINKS":      key(linuxAMD64, time.Unix(0, 0), "PIP_FIND_LINKS=/wheels"),
	} {
		if other == base {
			t.Errorf("requirements key with another %s = %s, want a different key", name, other)
		}
	}
	if again := key(linuxAMD64, time.Unix(0, 0), "UNRELATED=1"); again != base {
		t.Errorf("requirements key with an unrelated variable = %s, want %s", again, base)
	}
}

func TestRequirements(t *testing.T) {
	needPython(t)
	env := kilndepIndex(t)
	tests := []struct {
		name     string
		platform v1.Platform
	}{
		{"host platform", linuxAMD64},
		{"another platform, wheels only", v1.Platform{OS: "linux", Architecture: "arm64"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := function(t, map[string]string{"handler.py": "def handle(req):\n    return req\n", "requirements.txt": "# pinned\nkilndep==2.0\n"})
			pl, _ := plan(t, newPack(t, WithEnv(env)), dir, LangHTTP, tc.platform)
			got, first := build(t, stepNamed(t, pl, "requirements"))
			if v := got["home/app/packages/kilndep/__init__.py"]; v != "VERSION = '2.0'\n" {
				t.Errorf("kilndep/__init__.py = %q, want version 2.0", v)
			}
			if got["home/app/function/requirements.txt"] != "# pinned\nkilndep==2.0\n" {
				t.Errorf("requirements layer lacks home/app/function/requirements.txt: %v", got)
			}
			if _, ok := got["home/app/packages/kilndep-2.0.dist-info/METADATA"]; !ok {
				t.Errorf("requirements layer lacks the dist-info: %v", got)
			}
			pl2, _ := plan(t, newPack(t, WithEnv(env)), dir, LangHTTP, tc.platform)
			if _, second := build(t, stepNamed(t, pl2, "requirements")); !bytes.Equal(first, second) {
				t.Errorf("requirements layer built twice differs")
			}
		})
	}
	t.Run("comments only", func(t *testing.T) {
		dir := function(t, map[string]string{"handler.py": "def handle(req):\n    return req\n", "requirements.txt": "# nothing yet\n\n"})
		pl, _ := plan(t, newPack(t, WithEnv(env)), dir, LangHTTP, linuxAMD64)
		got, _ := build(t, stepNamed(t, pl, "requirements"))
		if _, ok := got["home/app/function/requirements.txt"]; !ok || len(got) != 4 {
			t.Errorf("requirements layer = %v, want only home/app/function/requirements.txt and its folders", got)
		}
	})
	t.Run("unknown dependency", func(t *testing.T) {
		dir := function(t, map[string]string{"handler.py": "def handle(req):\n    return req\n", "requirements.txt": "kilndep==2.0\n\nno-such_pkg>=1\n"})
		pl, _ := plan(t, newPack(t, WithEnv(env)), dir, LangHTTP, linuxAMD64)
		err := stepNamed(t, pl, "requirements").Build(context.Background(), io.Discard)
		var se *languages.SourceError
		if !errors.As(err, &se) {
			t.Fatalf("Build() = %v, want a *languages.SourceError", err)
		}
		if se.Path != filepath.Join(dir, "requirements.txt") || se.Line != 3 || !strings.Contains(se.Reason, "no-such_pkg") {
			t.Errorf("Build() = %s:%d %q, want requirements.txt:3 naming no-such_pkg", se.Path, se.Line, se.Reason)
		}
	})
}

func TestFixScripts(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "tool"), "#!/root/.pyenv/versions/3.11.7/bin/python3\nimport sys\n")
	write(t, filepath.Join(dir, "sh"), "#!/bin/sh\necho\n")
	if err := fixScripts(dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"tool": "#!/usr/bin/python3\nimport sys\n", "sh": "#!/bin/sh\necho\n"} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		if string(b) != want {
			t.Errorf("fixScripts() left %s = %q, want %q", name, b, want)
		}
	}
	if err := fixScripts(filepath.Join(dir, "none")); err != nil {
		t.Errorf("fixScripts() of a missing folder = %v, want nil", err)
	}
}

// TestHostInterpreter: the host query names the interpreter itself, which
// the build runs directly, and it is the same Python.
func TestHostInterpreter(t *testing.T) {
	needPython(t)
	p := newPack(t, WithEnv(os.Environ()))
	h, err := p.hostPython(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(h.Executable) {
		t.Fatalf("host executable = %q, want an absolute path", h.Executable)
	}
	out, err := exec.Command(h.python("python3"), "-I", "-c", "import platform; print(platform.python_version())").Output()
	if err != nil || strings.TrimSpace(string(out)) != h.Version {
		t.Errorf("%s says it is %q (%v), want %s", h.Executable, out, err, h.Version)
	}
}

// TestPythonVersionArg: a PYTHON_VERSION build argument, the templates'
// way to choose their Python, builds when it names the image's 3.11 and
// fails, naming what kiln has, when it asks for another.
func TestPythonVersionArg(t *testing.T) {
	dir := function(t, map[string]string{"handler.py": "def handle(req):\n    return req\n"})
	tests := []struct {
		version string
		wantErr bool
	}{
		{"", false},
		{"3.11", false},
		{"3.11.2", false},
		{"3.12", true},
		{"3.1", true},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			fn := languages.Function{Dir: dir, Lang: LangHTTP, Platform: linuxAMD64, BuildArgs: map[string]string{"PYTHON_VERSION": tc.version}}
			_, err := newPack(t).Plan(context.Background(), fn)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Plan(PYTHON_VERSION=%s) = %v, want an error: %v", tc.version, err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "PYTHON_VERSION="+tc.version) || err != nil && !strings.Contains(err.Error(), "CPython 3.11") {
				t.Errorf("Plan() = %v, want it to name PYTHON_VERSION=%s and CPython 3.11", err, tc.version)
			}
		})
	}
}
