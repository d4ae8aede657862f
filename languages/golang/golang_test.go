package golang

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/lazy"
	"github.com/kiln-build/kiln/languages"
)

func TestCheckModulePath(t *testing.T) {
	tests := []struct {
		mod      string
		wantLine int
		wantErr  bool
	}{
		{"module handler/function\n\ngo 1.24\n", 0, false},
		{"// comment\nmodule \"handler/function\"\n", 0, false},
		{"\n\nmodule example.com/fn\n", 3, true},
		{"go 1.24\n", 0, true},
	}
	for _, tc := range tests {
		err := checkModulePath("go.mod", []byte(tc.mod))
		var se *languages.SourceError
		if got := errors.As(err, &se); got != tc.wantErr {
			t.Errorf("checkModulePath(%q) = %v, want error %v", tc.mod, err, tc.wantErr)
			continue
		}
		if se != nil && se.Line != tc.wantLine {
			t.Errorf("checkModulePath(%q) line = %d, want %d", tc.mod, se.Line, tc.wantLine)
		}
	}
}

// TestStaticKey: static/ has a layer of its own, so an edit there leaves the
// binary's key alone, unless the code embeds files.
func TestStaticKey(t *testing.T) {
	tests := []struct {
		name       string
		code       string
		wantChange bool
	}{
		{"no embed", "package function\n", false},
		{"embed", "package function\n\nimport _ \"embed\"\n\n//go:embed static/x.txt\nvar x string\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "go.mod"), "module handler/function\n\ngo 1.24\n")
			write(t, filepath.Join(dir, "handler.go"), tc.code)
			write(t, filepath.Join(dir, "static", "x.txt"), "one")
			step := &binaryStep{pack: newPack(t), fn: languages.Function{Dir: dir, Lang: LangMiddleware, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}}, goVersion: known("go1.26.0")}
			before, err := step.Key(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(dir, "static", "x.txt"), "two")
			after, err := step.Key(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if changed := before != after; changed != tc.wantChange {
				t.Errorf("binary key changed = %v after a static edit, want %v", changed, tc.wantChange)
			}
		})
	}
}

func TestKeyCoversPlatformAndGo(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module handler/function\n")
	key := func(arch, goVersion, goflags string) v1.Hash {
		s := &binaryStep{pack: newPack(t), fn: languages.Function{Dir: dir, Lang: LangMiddleware, Platform: v1.Platform{OS: "linux", Architecture: arch}, BuildArgs: map[string]string{"GOFLAGS": goflags}}, goVersion: known(goVersion)}
		k, err := s.Key(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key("amd64", "go1.26.0", "")
	for name, other := range map[string]v1.Hash{
		"arch":    key("arm64", "go1.26.0", ""),
		"go":      key("amd64", "go1.26.1", ""),
		"GOFLAGS": key("amd64", "go1.26.0", "-mod=vendor"),
	} {
		if other == base {
			t.Errorf("key with another %s = %s, want a different key", name, other)
		}
	}
}

// TestGoMissing: Plan needs no go command; the binary step says it is
// missing.
func TestGoMissing(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module handler/function\n")
	p := newPack(t, WithGo(filepath.Join(t.TempDir(), "no-go-here")))
	plan, err := p.Plan(context.Background(), languages.Function{Dir: dir, Lang: LangMiddleware})
	if err != nil {
		t.Fatalf("Plan() without a go command = %v, want a plan", err)
	}
	if _, err := plan.Steps[0].Key(context.Background()); err == nil || !strings.Contains(err.Error(), "needs the go command") {
		t.Fatalf("Key() without a go command = %v, want one saying Go is needed", err)
	}
}

// known is a go version already asked.
func known(v string) *lazy.Value[string] { return lazy.Known(v) }

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The plan's environment is the watchdog's, with the fprocess Langs
// declares, which deploy falls back on. A classic go function sets no
// mode: the watchdog runs it once per request, as the classic watchdog.
func TestPlanEnv(t *testing.T) {
	tests := []struct {
		name, lang, code string
		want             []string
	}{
		{LangMiddleware, LangMiddleware, middleCode, httpEnv},
		{LangMain, LangMain, mainCode, httpEnv},
		{"classic go", LangMain, classicCode, forkEnv},
		{LangHTTP, LangHTTP, httpCode, httpEnv},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "go.mod"), "module handler/function\n\ngo 1.22\n")
			write(t, filepath.Join(dir, "handler.go"), tc.code)
			pl, err := newPack(t, WithEnv(os.Environ())).Plan(context.Background(), languages.Function{Dir: dir, Lang: tc.lang, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
			if err != nil {
				t.Fatalf("Plan() = %v", err)
			}
			if !slices.Equal(pl.Env, tc.want) {
				t.Errorf("Plan() env = %q, want %q", pl.Env, tc.want)
			}
			i := slices.IndexFunc(Langs(), func(l languages.Lang) bool { return l.Name == tc.lang })
			if i < 0 || "fprocess="+Langs()[i].FProcess != tc.want[0] {
				t.Errorf("Langs() declares %s with another fprocess than its Plan's", tc.lang)
			}
		})
	}
}
