package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/kiln-build/kiln/languages"
)

// TestClassicBuild builds a function of the classic node template: the
// image holds the classic entry point as index.js and sets fprocess but
// no mode and no upstream, so the watchdog forks node index.js per
// request; two cold builds give one digest.
func TestClassicBuild(t *testing.T) {
	bin, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := serveMajor(t, "22", "22.0.0-test", bin)
	dir := function(t, map[string]string{"handler.js": "'use strict';\nmodule.exports = (context, callback) => callback(undefined, context);\n"})
	fn := languages.Function{Name: "fn", Dir: dir, Lang: LangNode, Platform: linuxAMD64}
	var digests []string
	for range 2 {
		res, err := newBuilder(t, reg).Build(context.Background(), fn)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(res.Image); err != nil {
			t.Errorf("validate.Image() = %v", err)
		}
		var names []string
		for _, l := range res.Layers {
			names = append(names, l.Name)
		}
		want := []string{"test base", "watchdog", "node 22.0.0-test runtime", "node dependencies", "node classic entry point", "handler code"}
		if !slices.Equal(names, want) {
			t.Errorf("layers = %v, want %v", names, want)
		}
		cfg, err := res.Image.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(cfg.Config.Env, "fprocess=node index.js") {
			t.Errorf("env = %v, want fprocess=node index.js", cfg.Config.Env)
		}
		for _, e := range cfg.Config.Env {
			if strings.HasPrefix(e, "mode=") || strings.HasPrefix(e, "upstream_url=") {
				t.Errorf("env holds %s, want no mode and no upstream: the classic watchdog's contract", e)
			}
		}
		ls, err := res.Image.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if got := layerPaths(t, ls[4]); !slices.Contains(got, "home/app/index.js") {
			t.Errorf("entry point layer = %v, want home/app/index.js", got)
		}
		d, err := res.Image.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d.String())
	}
	if digests[0] != digests[1] {
		t.Errorf("digests of two cold builds = %v, want equal", digests)
	}
}

// TestClassicEntryPoint runs shim/classic.js with the host's node on
// handlers of the classic template's two forms, callback and promise, and
// compares stdout and stderr with what the template's index.js prints.
func TestClassicEntryPoint(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("no node on PATH")
	}
	tests := []struct {
		name, handler, stdin string
		wantOut, wantErr     string
	}{
		{"callback with a string", "module.exports = (context, callback) => callback(undefined, 'got ' + context);", "hi", "got hi", ""},
		{"callback with an object", "module.exports = (context, callback) => callback(undefined, {status: 'done', said: context});", "hi", `{"status":"done","said":"hi"}` + "\n", ""},
		{"callback with an array", "module.exports = (context, callback) => callback(undefined, [1, context]);", "x", `[1,"x"]` + "\n", ""},
		{"callback with nothing", "module.exports = (context, callback) => callback(undefined, '');", "x", "", ""},
		{"callback with an error", "module.exports = (context, callback) => callback('bad input');", "x", "", "bad input\n"},
		{"async function", "module.exports = async (context) => 'async ' + context;", "hi", "async hi", ""},
		{"promise of an object", "module.exports = () => Promise.resolve({ok: true});", "", `{"ok":true}` + "\n", ""},
		{"rejected promise", "module.exports = async () => { throw 'rejected'; };", "", "", "rejected\n"},
		{"a number", "module.exports = (context, callback) => callback(undefined, 42);", "", "42", ""},
		{"utf-8 body", "module.exports = (context, callback) => callback(undefined, context.length + ' ' + context);", "héllo", "5 héllo", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "index.js"), string(classicJS))
			write(t, filepath.Join(dir, "function", "handler.js"), "'use strict';\n"+tc.handler+"\n")
			cmd := exec.Command("node", "index.js")
			cmd.Dir = dir
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("node index.js = %v, want exit 0\n%s", err, stderr.String())
			}
			if stdout.String() != tc.wantOut || stderr.String() != tc.wantErr {
				t.Errorf("node index.js = stdout %q stderr %q, want %q %q", stdout.String(), stderr.String(), tc.wantOut, tc.wantErr)
			}
		})
	}
}

// TestClassicPlan: lang node plans the classic entry point, other langs
// the server; a missing handler.js names the classic signature.
func TestClassicPlan(t *testing.T) {
	p := newPack(t, WithCacheDir(t.TempDir()))
	dir := function(t, nil)
	for lang, want := range map[string]string{LangNode: "node classic entry point", LangNode20: "node server"} {
		plan, err := p.Plan(context.Background(), languages.Function{Dir: dir, Lang: lang, Platform: linuxAMD64})
		if err != nil {
			t.Fatalf("Plan(%s) = %v", lang, err)
		}
		if got := plan.Steps[2].Name(); got != want {
			t.Errorf("Plan(%s).Steps[2] = %q, want %q", lang, got, want)
		}
		if hasMode := slices.ContainsFunc(plan.Env, func(e string) bool { return strings.HasPrefix(e, "mode=") }); hasMode == (lang == LangNode) {
			t.Errorf("Plan(%s).Env = %v: mode set %v", lang, plan.Env, hasMode)
		}
	}
	empty := t.TempDir()
	write(t, filepath.Join(empty, "package.json"), "{}")
	_, err := p.Plan(context.Background(), languages.Function{Dir: empty, Lang: LangNode, Platform: linuxAMD64})
	if err == nil || !strings.Contains(err.Error(), "(context, callback)") {
		t.Errorf("Plan() without handler.js = %v, want it to name (context, callback)", err)
	}
}
