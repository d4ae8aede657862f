package scaffold

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/envlist"
	"github.com/kiln-build/kiln/languages"
	"github.com/kiln-build/kiln/languages/packs"
	"github.com/kiln-build/kiln/stack"
)

func TestLangs(t *testing.T) {
	got := strings.Join(Langs(), ",")
	if got != "go,golang-http,golang-middleware,java,java11,java17,node,node18,node20,node22,python,python3,python3-flask,python3-http" {
		t.Errorf("Langs() = %s", got)
	}
}

func TestFunction(t *testing.T) {
	for _, lang := range Langs() {
		t.Run(lang, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hello-fn")
			if err := Function(dir, "hello-fn", lang); err != nil {
				t.Fatalf("Function() = %v", err)
			}
			found := 0
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if d.IsDir() {
					return nil
				}
				found++
				if strings.HasSuffix(p, ".tmpl") {
					t.Errorf("%s kept its .tmpl suffix", p)
				}
				b, _ := os.ReadFile(p)
				if strings.Contains(string(b), "{{") {
					t.Errorf("%s holds an unexpanded template", p)
				}
				return nil
			})
			if found == 0 {
				t.Errorf("Function(%s) wrote no file", lang)
			}
			if err := Function(dir, "hello-fn", lang); err == nil {
				t.Errorf("Function() over an existing folder = nil error")
			}
		})
	}
	if err := Function(filepath.Join(t.TempDir(), "x"), "x", "cobol"); err == nil || !strings.Contains(err.Error(), "golang-middleware") {
		t.Errorf("Function(cobol) = %v, want an error listing the langs", err)
	}
	if err := Function(filepath.Join(t.TempDir(), "x"), "Bad_Name", "go"); err == nil {
		t.Errorf("Function(Bad_Name) = nil error")
	}
}

// TestFunctionLayouts: each scaffold holds the files of the OpenFaaS
// template it is named after, and its pack plans it in that template's
// layout: lang go is the classic go template's package function, run
// behind the classic watchdog (no mode). That it builds and answers is
// test/e2e's TestStackNew, which needs the network for Node's runtime and
// Maven.
func TestFunctionLayouts(t *testing.T) {
	tests := []struct {
		lang  string
		files []string
		// mode is the watchdog mode the plan sets, "" for the classic
		// watchdog's contract; "later" when the plan sets its environment
		// only once its steps ran (Java's class path).
		mode string
		// contains holds text of files, by name.
		contains map[string][]string
	}{
		{"go", []string{"go.mod", "handler.go"}, "", map[string][]string{
			"go.mod":     {"module handler/function"},
			"handler.go": {"package function", "func Handle(req []byte) string {"},
		}},
		{"golang-middleware", []string{"go.mod", "handler.go", "handler_test.go"}, "http", map[string][]string{
			"handler.go": {"package function", "func Handle(w http.ResponseWriter, r *http.Request) {"},
		}},
		{"golang-http", []string{"go.mod", "handler.go", "handler_test.go"}, "http", map[string][]string{
			"handler.go": {"package function", "func Handle(req handler.Request) (handler.Response, error) {"},
		}},
		{"node", []string{"handler.js", "package.json"}, "", map[string][]string{"handler.js": {"module.exports = (content, callback) =>"}}},
		{"node18", []string{"handler.js", "package.json"}, "http", map[string][]string{"handler.js": {"module.exports = async (event, context) =>"}}},
		{"node20", []string{"handler.js", "package.json"}, "http", nil},
		{"node22", []string{"handler.js", "package.json"}, "http", nil},
		{"python", []string{"handler.py", "requirements.txt"}, "", map[string][]string{"handler.py": {"def handle(req):"}}},
		{"python3", []string{"handler.py", "requirements.txt"}, "", nil},
		{"python3-http", []string{"handler.py", "requirements.txt"}, "http", map[string][]string{"handler.py": {"def handle(event, context):"}}},
		{"python3-flask", []string{"handler.py", "requirements.txt"}, "http", map[string][]string{"handler.py": {"def handle(req):"}}},
		{"java11", []string{"build.gradle", "settings.gradle", "src/main/java/com/openfaas/function/Handler.java", "src/test/java/com/openfaas/function/HandlerTest.java"}, "later", nil},
		{"java17", []string{"build.gradle", "settings.gradle", "src/main/java/com/openfaas/function/Handler.java", "src/test/java/com/openfaas/function/HandlerTest.java"}, "later", nil},
		{"java", []string{"pom.xml", "src/main/java/com/openfaas/app/Main.java"}, "later", nil},
	}
	var langs []string
	for _, tc := range tests {
		langs = append(langs, tc.lang)
	}
	if got := Langs(); !slices.Equal(slices.Sorted(slices.Values(langs)), got) {
		t.Fatalf("the table covers %v, want every scaffold: %v", langs, got)
	}
	all, err := packs.New(packs.WithCacheDir(t.TempDir()), packs.WithEnv(os.Environ()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.lang, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "hello-fn")
			if err := Function(dir, "hello-fn", tc.lang); err != nil {
				t.Fatalf("Function() = %v", err)
			}
			var files []string
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dir, p)
					files = append(files, filepath.ToSlash(rel))
				}
				return err
			})
			if !slices.Equal(files, tc.files) {
				t.Errorf("Function(%s) wrote %v, want %v", tc.lang, files, tc.files)
			}
			for name, texts := range tc.contains {
				b, _ := os.ReadFile(filepath.Join(dir, name))
				for _, text := range texts {
					if !strings.Contains(string(b), text) {
						t.Errorf("%s of %s does not hold %q:\n%s", name, tc.lang, text, b)
					}
				}
			}
			i := slices.IndexFunc(all, func(p languages.Pack) bool { return slices.Contains(p.Langs(), tc.lang) })
			if i < 0 {
				t.Fatalf("no pack builds %s", tc.lang)
			}
			plan, err := all[i].Plan(context.Background(), languages.Function{Name: "hello-fn", Dir: dir, Lang: tc.lang, Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, ScratchDir: t.TempDir()})
			if err != nil {
				t.Fatalf("Plan() = %v", err)
			}
			if mode := envlist.Get(plan.Env, "mode"); tc.mode != "later" && mode != tc.mode {
				t.Errorf("Plan() sets mode=%q, want %q", mode, tc.mode)
			}
		})
	}
}

func TestAddToStack(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stack.yml")
	if err := AddToStack(path, Entry{Name: "one", Lang: "go", Handler: "./one", Image: "one:latest"}, "http://127.0.0.1:8080"); err != nil {
		t.Fatalf("AddToStack(new file) = %v", err)
	}
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("# my project\n"), b...), 0o644)
	if err := AddToStack(path, Entry{Name: "two", Lang: "python3-http", Handler: "./two", Image: "reg/two:latest"}, ""); err != nil {
		t.Fatalf("AddToStack(existing file) = %v", err)
	}
	if err := AddToStack(path, Entry{Name: "two", Lang: "go", Handler: "./two", Image: "two"}, ""); err == nil {
		t.Errorf("AddToStack(duplicate) = nil error")
	}
	sf, err := stack.Read(context.Background(), path)
	if err != nil {
		t.Fatalf("the stack file does not read back: %v", err)
	}
	if got := strings.Join(sf.Names(), ","); got != "one,two" || sf.Functions["two"].Lang != "python3-http" || sf.Provider.Gateway != "http://127.0.0.1:8080" {
		t.Errorf("stack after two adds: %v %+v", got, sf)
	}
	b, _ = os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# my project\n") {
		t.Errorf("AddToStack dropped the comment:\n%s", b)
	}
}
