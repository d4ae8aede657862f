package packs

import (
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/languages"
)

func TestNew(t *testing.T) {
	if _, err := New(); err == nil {
		t.Errorf("New() without a cache folder = nil error, want one")
	}
	all, err := New(WithCacheDir(t.TempDir()), WithEnv([]string{"PATH=/nonexistent"}))
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	var built []string
	for _, p := range all {
		for _, lang := range p.Langs() {
			if slices.Contains(built, lang) {
				t.Errorf("two packs build %s", lang)
			}
			built = append(built, lang)
		}
	}
	if want := languages.Built(Langs()); !slices.Equal(built, want) {
		t.Errorf("the packs build %v, want the registry's %v", built, want)
	}
}

func TestLangs(t *testing.T) {
	var names []string
	for _, l := range Langs() {
		if slices.Contains(names, l.Name) {
			t.Errorf("lang %s is declared twice", l.Name)
		}
		names = append(names, l.Name)
	}
	// What `kiln build --lang` has always listed, in this order.
	if got, want := strings.Join(Listed(), ", "), "golang-middleware, go, golang-http, node20, node22, python3-http, python3-flask, java11, java17, java"; got != want {
		t.Errorf("Listed() = %s, want %s", got, want)
	}
	if got, want := strings.Join(Scaffolds(), ","), "go,golang-http,golang-middleware,java,java11,java17,node,node18,node20,node22,python,python3,python3-flask,python3-http"; got != want {
		t.Errorf("Scaffolds() = %s, want %s", got, want)
	}
}

// The fprocess deploy falls back on is what the packs' images start.
func TestFProcess(t *testing.T) {
	tests := []struct {
		lang string
		want string // "" for none
	}{
		{"golang-middleware", "./handler"},
		{"go", "./handler"},
		{"golang-http", "./handler"},
		{"node", "node index.js"},
		{"node18", "node index.js"},
		{"node20", "node index.js"},
		{"node22", "node index.js"},
		{"python3-http", "python3 /home/app/index.py http"},
		{"python3-flask", "python3 /home/app/index.py flask"},
		{"python3", "python3 /home/app/index.py"},
		{"python", "python3 /home/app/index.py"},
		{"java11", ""},
		{"java17", ""},
		{"java", ""},
		{"dockerfile", ""},
		{"cobol", ""},
	}
	for _, tc := range tests {
		t.Run(tc.lang, func(t *testing.T) {
			got, ok := FProcess(tc.lang)
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("FProcess(%s) = %q, %v; want %q", tc.lang, got, ok, tc.want)
			}
		})
	}
}

func TestScaffolds(t *testing.T) {
	for _, l := range Langs() {
		if l.Scaffold == nil {
			continue
		}
		t.Run(l.Name, func(t *testing.T) {
			n := 0
			err := fs.WalkDir(l.Scaffold, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				n++
				if !strings.HasSuffix(p, ".tmpl") {
					t.Errorf("%s: a scaffold file not named NAME.tmpl", p)
				}
				return nil
			})
			if err != nil || n == 0 {
				t.Errorf("scaffold of %s: %d files, %v; want some", l.Name, n, err)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	if l, ok := Lookup("node22"); !ok || l.Name != "node22" || !l.Listed {
		t.Errorf("Lookup(node22) = %+v, %v", l, ok)
	}
	if l, ok := Lookup("golang-http"); !ok || l.DeployOnly || l.Scaffold == nil || !l.Listed {
		t.Errorf("Lookup(golang-http) = %+v, %v; want a built, listed lang with a scaffold", l, ok)
	}
	if _, ok := Lookup("cobol"); ok {
		t.Errorf("Lookup(cobol) found a lang")
	}
}
