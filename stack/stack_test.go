package stack

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestParse runs every folder under testdata: a folder with a want-error
// file ("LINE KEY") must fail there; the others must parse.
func TestParse(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		t.Run(d.Name(), func(t *testing.T) {
			path := filepath.Join("testdata", d.Name(), "stack.yml")
			f, err := Read(path)
			want, rerr := os.ReadFile(filepath.Join("testdata", d.Name(), "want-error"))
			if rerr != nil {
				if err != nil {
					t.Fatalf("Read(%s) = %v", path, err)
				}
				if len(f.Functions) == 0 {
					t.Errorf("Read(%s) found no functions", path)
				}
				return
			}
			lineStr, key, _ := strings.Cut(strings.TrimSpace(string(want)), " ")
			line, _ := strconv.Atoi(lineStr)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Read(%s) = %v, want a stack.Error", path, err)
			}
			if se.Line != line || se.Key != key || se.Path != path {
				t.Errorf("Read(%s) error at %s:%d key %q, want line %d key %q", path, se.Path, se.Line, se.Key, line, key)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	f, err := Read(filepath.Join("testdata", "valid", "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Function{
		Name: "hello", Lang: "golang-middleware", Handler: "./hello", Image: "localhost:5000/hello:latest", Line: 6,
		BuildArgs:   map[string]string{"GOFLAGS": "-mod=mod"},
		Environment: map[string]string{"debug": "true", "retries": "10"},
	}
	if diff := cmp.Diff(want, f.Functions["hello"]); diff != "" {
		t.Errorf("functions.hello (-want +got):\n%s", diff)
	}
	if got := f.Names(); !cmp.Equal(got, []string{"hello", "plain"}) {
		t.Errorf("Names() = %v", got)
	}
}
