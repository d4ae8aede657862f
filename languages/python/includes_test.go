package python

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/test/wheelhouse"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		text    string
		want    ref
		wantErr bool
	}{
		{"kilndep==1.0", ref{}, false},
		{"kilndep==1.0 --hash=sha256:abc", ref{}, false},
		{"-r ../common/requirements.txt", ref{path: "../common/requirements.txt", label: "-r ../common/requirements.txt", include: true}, false},
		{"-rbase.txt", ref{path: "base.txt", label: "-r base.txt", include: true}, false},
		{"--requirement=base.txt", ref{path: "base.txt", label: "--requirement base.txt", include: true}, false},
		{"-c constraints.txt", ref{path: "constraints.txt", label: "-c constraints.txt", include: true}, false},
		{"--constraint https://example.com/c.txt", ref{}, false},
		{"-e ../pkg", ref{}, true},
		{"--editable=git+https://example.com/x.git#egg=x", ref{}, true},
		{"-f ../wheels", ref{path: "../wheels", label: "-f ../wheels", findLinks: true}, false},
		{"--find-links https://example.com/wheels", ref{}, false},
		{"-i https://example.com/simple", ref{}, false},
		{"../pkg", ref{path: "../pkg", label: "../pkg"}, false},
		{"./pkg[extra] ; python_version >= '3'", ref{path: "./pkg", label: "./pkg"}, false},
		{"wheels/kilndep-1.0-py3-none-any.whl", ref{path: "wheels/kilndep-1.0-py3-none-any.whl", label: "wheels/kilndep-1.0-py3-none-any.whl"}, false},
		{"kilndep-1.0.tar.gz", ref{path: "kilndep-1.0.tar.gz", label: "kilndep-1.0.tar.gz"}, false},
		{"kilndep @ https://example.com/kilndep-1.0.tar.gz", ref{}, false},
		{"kilndep @ file:///opt/kilndep", ref{path: "/opt/kilndep", label: "/opt/kilndep"}, false},
		{"git+https://example.com/x.git#egg=x", ref{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			got, err := parseLine(tc.text)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseLine() = %v, want an error: %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(ref{})); diff != "" {
				t.Errorf("parseLine() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLogicalLines(t *testing.T) {
	got := logicalLines("# top\nkilndep==1.0 # pinned\n-r \\\n  base.txt\n\nx#y\n")
	want := []line{{2, "kilndep==1.0"}, {3, "-r   base.txt"}, {6, "x#y"}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(line{})); diff != "" {
		t.Errorf("logicalLines() mismatch (-want +got):\n%s", diff)
	}
}

// includesFunction writes, under a folder of its own, a handler folder fn
// whose requirements.txt is reqs, with common/requirements.txt beside it
// pinning kilndep to 1.0 and a constraints file; it returns the folder.
func includesFunction(t *testing.T, reqs string) string {
	t.Helper()
	parent := t.TempDir()
	dir := filepath.Join(parent, "fn")
	write(t, filepath.Join(dir, "handler.py"), "def handle(event, context):\n    return 'ok'\n")
	write(t, filepath.Join(dir, "requirements.txt"), reqs)
	write(t, filepath.Join(dir, "constraints.txt"), "kilndep<3\n")
	write(t, filepath.Join(parent, "common", "requirements.txt"), "kilndep==1.0\n-c more.txt\n")
	write(t, filepath.Join(parent, "common", "more.txt"), "kilndep<4\n")
	return dir
}

// TestRequirementRefs lists what requirements.txt names by path, and
// refuses what pip would read from elsewhere than named.
func TestRequirementRefs(t *testing.T) {
	tests := []struct {
		name       string
		reqs       string
		setup      func(t *testing.T, parent string)
		want       []string
		wantFile   string // the file a SourceError names, relative to the parent
		wantLine   int
		wantReason string
	}{
		{"none", "kilndep==1.0\n", nil, nil, "", 0, ""},
		{"includes, nested", "-r ../common/requirements.txt\n-c constraints.txt\n", nil,
			[]string{"../common/requirements.txt", "../common/more.txt", "constraints.txt"}, "", 0, ""},
		{"local projects and wheels", "../pkg\n-f ../wheels\n", func(t *testing.T, parent string) {
			write(t, filepath.Join(parent, "pkg", "pyproject.toml"), "[project]\nname = 'pkg'\n")
			write(t, filepath.Join(parent, "wheels", "x.whl"), "")
		}, []string{"../pkg", "../wheels"}, "", 0, ""},
		{"editable", "kilndep\n-e ../pkg\n", nil, nil, "fn/requirements.txt", 2, "editable install"},
		{"absolute include", "-r /etc/shadow\n", nil, nil, "fn/requirements.txt", 1, "absolute path"},
		{"include through a linked folder", "-r ../linked/requirements.txt\n", func(t *testing.T, parent string) {
			if err := os.Symlink("common", filepath.Join(parent, "linked")); err != nil {
				t.Fatal(err)
			}
		}, nil, "fn/requirements.txt", 1, "is a symlink"},
		{"an include linked out", "-r ../common/requirements.txt\n", func(t *testing.T, parent string) {
			if err := os.Remove(filepath.Join(parent, "common", "more.txt")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/etc/shadow", filepath.Join(parent, "common", "more.txt")); err != nil {
				t.Fatal(err)
			}
		}, nil, "common/requirements.txt", 2, "is a symlink to /etc/shadow"},
		{"missing include", "-r ../nothere.txt\n", nil, nil, "fn/requirements.txt", 1, "not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := includesFunction(t, tc.reqs)
			parent := filepath.Dir(dir)
			if tc.setup != nil {
				tc.setup(t, parent)
			}
			got, err := requirementRefs(languages.Function{Dir: dir})
			if tc.wantReason != "" {
				var se *languages.SourceError
				if !errors.As(err, &se) || se.Path != filepath.Join(parent, tc.wantFile) || se.Line != tc.wantLine || !strings.Contains(se.Reason, tc.wantReason) {
					t.Fatalf("requirementRefs() = %v, want a SourceError on %s:%d saying %q", err, tc.wantFile, tc.wantLine, tc.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("requirementRefs() = %v", err)
			}
			var rels []string
			for _, n := range got {
				rels = append(rels, n.Rel)
			}
			if diff := cmp.Diff(tc.want, rels); diff != "" {
				t.Errorf("requirementRefs() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestIncludesNamed: the plan names what requirements.txt includes, for
// `kiln dev` to watch those outside the handler folder.
func TestIncludesNamed(t *testing.T) {
	dir := includesFunction(t, "-r ../common/requirements.txt\n-c constraints.txt\n")
	parent := filepath.Dir(dir)
	pl, _ := plan(t, newPack(t), dir, LangHTTP, linuxAMD64)
	var outside, inside []string
	for _, n := range pl.Named {
		if n.Outside() {
			outside = append(outside, n.Path)
		} else {
			inside = append(inside, n.Rel)
		}
	}
	if want := []string{filepath.Join(parent, "common", "requirements.txt"), filepath.Join(parent, "common", "more.txt")}; !slices.Equal(outside, want) {
		t.Errorf("Plan().Named outside = %v, want %v", outside, want)
	}
	if want := []string{"constraints.txt"}; !slices.Equal(inside, want) {
		t.Errorf("Plan().Named inside = %v, want %v", inside, want)
	}
}

// TestIncludesBuild installs, with the real pip, requirements that include
// a file beside the handler folder and name a wheel there: pip reads their
// staged copies, an edit in an included file changes the requirements
// layer's key and what it installs, and an edit elsewhere outside the
// handler folder does not.
func TestIncludesBuild(t *testing.T) {
	needPython(t)
	env := kilndepIndex(t)
	dir := includesFunction(t, "-r ../common/requirements.txt\n-c constraints.txt\n../wheels/kilnlocal-1.0-py3-none-any.whl\n")
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(filepath.Join(parent, "wheels"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := wheelhouse.Write(filepath.Join(parent, "wheels"), "kilnlocal", "1.0", map[string]string{"kilnlocal/__init__.py": "LOCAL = 1\n"}); err != nil {
		t.Fatal(err)
	}
	p := newPack(t, WithEnv(env))
	step := func() (map[string]string, v1.Hash) {
		t.Helper()
		pl, _ := plan(t, p, dir, LangHTTP, linuxAMD64)
		s := stepNamed(t, pl, "requirements")
		k, err := s.Key(context.Background())
		if err != nil {
			t.Fatalf("Key() = %v", err)
		}
		got, _ := build(t, s)
		return got, k
	}
	got, first := step()
	if v := got["home/app/packages/kilndep/__init__.py"]; v != "VERSION = '1.0'\n" {
		t.Errorf("kilndep/__init__.py = %q, want the included pin's 1.0", v)
	}
	if _, ok := got["home/app/packages/kilnlocal/__init__.py"]; !ok {
		t.Errorf("requirements layer lacks the local wheel's kilnlocal")
	}
	write(t, filepath.Join(parent, "elsewhere.txt"), "kilndep==2.0\n")
	if _, again := step(); again != first {
		t.Errorf("requirements key after an edit outside what requirements.txt names = %s, want %s", again, first)
	}
	write(t, filepath.Join(parent, "common", "requirements.txt"), "kilndep==2.0\n-c more.txt\n")
	got, edited := step()
	if edited == first {
		t.Errorf("requirements key after an edit of the included file = the same, want another")
	}
	if v := got["home/app/packages/kilndep/__init__.py"]; v != "VERSION = '2.0'\n" {
		t.Errorf("kilndep/__init__.py = %q after the edit, want 2.0", v)
	}
	write(t, filepath.Join(parent, "common", "more.txt"), "kilndep<2\n")
	pl, _ := plan(t, p, dir, LangHTTP, linuxAMD64)
	err := stepNamed(t, pl, "requirements").Build(context.Background(), discard{})
	var se *languages.SourceError
	if !errors.As(err, &se) || se.Path != filepath.Join(dir, "requirements.txt") || strings.Contains(err.Error(), "kiln-function") {
		t.Errorf("Build() with conflicting pins = %v, want a SourceError on the user's requirements.txt", err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
