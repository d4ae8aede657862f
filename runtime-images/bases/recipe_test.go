package bases

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLookup(t *testing.T) {
	// Every embedded recipe must come with a current lock for each of its
	// architectures: a recipe edited without `kiln base lock` fails here.
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			r, err := Lookup(name)
			if err != nil {
				t.Fatalf("Lookup(%s) = %v", name, err)
			}
			if r.Lock == nil {
				t.Fatalf("Lookup(%s).Lock = nil, want the committed lock", name)
			}
			for _, arch := range r.Architectures {
				if _, err := r.locked(arch); err != nil {
					t.Errorf("the committed lock of %s for %s: %v", name, arch, err)
				}
			}
		})
	}
	for _, name := range []string{"nope", "", "../static", "static.lock"} {
		t.Run("unknown "+name, func(t *testing.T) {
			_, err := Lookup(name)
			var ue *UnknownRecipeError
			if !errors.As(err, &ue) {
				t.Fatalf("Lookup(%q) = %v, want an *UnknownRecipeError", name, err)
			}
			if !strings.Contains(err.Error(), "static") {
				t.Errorf("Lookup(%q) = %q, want it to list the known bases", name, err)
			}
		})
	}
	if got := Names(); !slices.IsSorted(got) || !slices.Contains(got, "static") {
		t.Errorf("Names() = %v, want a sorted list with static", got)
	}
}

func TestParseRecipe(t *testing.T) {
	const good = "suites: [bookworm]\narchitectures: [amd64]\npackages:\n  - name: netbase\n"
	tests := []struct {
		name  string
		yaml  string
		field string // "" for a valid recipe
	}{
		{"valid", good, ""},
		{"valid with a shell's fields", good + "merged_usr: true\nconfigure: true\nuser: \"0:0\"\n", ""},
		{"unknown field", good + "packges: []\n", ""},
		{"no suites", "architectures: [amd64]\npackages: [{name: a}]\n", "suites"},
		{"no architectures", "suites: [bookworm]\npackages: [{name: a}]\n", "architectures"},
		{"package without a name", "suites: [bookworm]\narchitectures: [amd64]\npackages: [{depends: true}]\n", "packages[0]"},
		{"package twice", "suites: [bookworm]\narchitectures: [amd64]\npackages: [{name: a}, {name: a}]\n", "packages[1]"},
		{"unknown package arch", "suites: [bookworm]\narchitectures: [amd64]\npackages: [{name: a, arch: [arm64]}]\n", "packages[0].arch"},
		{"bad pattern", "suites: [bookworm]\narchitectures: [amd64]\npackages: [{name: a, drop: ['usr/[']}]\n", "packages[0].drop"},
		{"absolute pattern", "suites: [bookworm]\narchitectures: [amd64]\npackages: [{name: a}]\ndrop: [/usr]\n", "drop"},
		{"excluded and listed", "suites: [bookworm]\narchitectures: [amd64]\npackages: [{name: a}]\nexclude: [a]\n", "packages[0]"},
		{"env without =", good + "env: [JAVA_HOME]\n", "env[0]"},
		{"absolute trust store", good + "java_truststore: /etc/ssl/certs/java/cacerts\n", "java_truststore"},
		{"unclean trust store", good + "java_truststore: etc/../cacerts\n", "java_truststore"},
		{"user by name", good + "user: root\n", "user"},
		{"user without a group", good + "user: \"0\"\n", "user"},
		{"negative group", good + "user: \"0:-1\"\n", "user"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRecipe("test", []byte(tc.yaml))
			if tc.field == "" && tc.name != "unknown field" {
				if err != nil {
					t.Fatalf("ParseRecipe() = %v", err)
				}
				if r.Component != "main" || r.Name != "test" {
					t.Errorf("ParseRecipe() = component %q name %q, want main test", r.Component, r.Name)
				}
				return
			}
			var re *RecipeError
			if !errors.As(err, &re) {
				t.Fatalf("ParseRecipe() = %v, want a *RecipeError", err)
			}
			if re.File != "test.yaml" || re.Field != tc.field {
				t.Errorf("ParseRecipe() = %q in %q at %q, want test.yaml at %q", err, re.File, re.Field, tc.field)
			}
		})
	}
}

func TestCABundle(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    string
		wantErr bool
	}{
		{
			name:  "sorted by path, newline added where missing",
			files: map[string]string{"usr/share/ca-certificates/mozilla/b.crt": "B", "usr/share/ca-certificates/mozilla/A.crt": "A\n", "usr/share/ca-certificates/mozilla/a.crt": "a\n"},
			want:  "A\na\nB\n",
		},
		{
			name:  "only .crt files under usr/share/ca-certificates",
			files: map[string]string{"usr/share/ca-certificates/mozilla/a.crt": "a\n", "usr/share/ca-certificates/mozilla/README": "x", "etc/ssl/x.crt": "y"},
			want:  "a\n",
		},
		{name: "no certificates", files: map[string]string{"etc/x": "x"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var files []layerFile
			for p, d := range tc.files {
				files = append(files, layerFile{p, d})
			}
			got, err := caBundle(toLayerFiles(files))
			if (err != nil) != tc.wantErr {
				t.Fatalf("caBundle() = %v, want error %v", err, tc.wantErr)
			}
			if string(got) != tc.want {
				t.Errorf("caBundle() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDropPaths(t *testing.T) {
	files := toLayerFiles([]layerFile{{"usr/sbin", ""}, {"usr/sbin/update-ca-certificates", "x"}, {"usr/share/a.crt", "a"}, {"usr/share/b.txt", "b"}, {"etc/x", "x"}})
	tests := []struct {
		name     string
		patterns []string
		want     []string
	}{
		{"none", nil, []string{"usr/sbin", "usr/sbin/update-ca-certificates", "usr/share/a.crt", "usr/share/b.txt", "etc/x"}},
		{"a directory and all below", []string{"usr/sbin"}, []string{"usr/share/a.crt", "usr/share/b.txt", "etc/x"}},
		{"a glob", []string{"usr/share/*.crt"}, []string{"usr/sbin", "usr/sbin/update-ca-certificates", "usr/share/b.txt", "etc/x"}},
		{"a glob on a parent", []string{"u*"}, []string{"etc/x"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, f := range dropPaths(files, tc.patterns) {
				got = append(got, f.Path)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("dropPaths(%v) (-want +got):\n%s", tc.patterns, diff)
			}
		})
	}
}
