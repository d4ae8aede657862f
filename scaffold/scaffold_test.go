package scaffold

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
