package stack

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the want.json files of the valid cases")

// readKeyValues reads KEY=VALUE lines; a missing file is empty.
func readKeyValues(t *testing.T, path string) map[string]string {
	t.Helper()
	out := map[string]string{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return out
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out
}

// TestParse runs every folder under testdata through Read and Select, as
// every command reads a stack file. Each holds a stack.yml, and
// optionally env (the environment, KEY=VALUE lines) and options
// (envsubst=false). A folder with a want-error file ("LINE [KEY]", then
// optionally a line the message must contain) must fail there; the others
// must decode to want.json (rewritten with -update), warnings included.
func TestParse(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		t.Run(d.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", d.Name())
			path := filepath.Join(dir, "stack.yml")
			env := readKeyValues(t, filepath.Join(dir, "env"))
			opts := []Option{WithEnv(func(k string) string { return env[k] })}
			if readKeyValues(t, filepath.Join(dir, "options"))["envsubst"] == "false" {
				opts = append(opts, WithEnvsubst(false))
			}
			f, err := Read(context.Background(), path, opts...)
			if err == nil {
				_, err = f.Select("", "")
			}
			want, rerr := os.ReadFile(filepath.Join(dir, "want-error"))
			if rerr != nil {
				if err != nil {
					t.Fatalf("Read(%s) = %v", path, err)
				}
				got, jerr := json.MarshalIndent(f, "", "  ")
				if jerr != nil {
					t.Fatal(jerr)
				}
				golden := filepath.Join(dir, "want.json")
				if *update {
					if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				wantJSON, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if diff := cmp.Diff(strings.TrimSpace(string(wantJSON)), string(got)); diff != "" {
					t.Errorf("Read(%s) (-want +got):\n%s", path, diff)
				}
				return
			}
			first, wantMsg, _ := strings.Cut(strings.TrimSpace(string(want)), "\n")
			lineStr, key, _ := strings.Cut(first, " ")
			line, _ := strconv.Atoi(lineStr)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("Read(%s) = %v, want a stack.Error", path, err)
			}
			if se.Line != line || se.Key != key || se.Path != path {
				t.Errorf("Read(%s) = %v: at %s:%d key %q, want line %d key %q", path, err, se.Path, se.Line, se.Key, line, key)
			}
			if !strings.HasPrefix(err.Error(), path+":"+lineStr+":") {
				t.Errorf("Read(%s) = %q, want it to start with file:line", path, err)
			}
			if !strings.Contains(err.Error(), wantMsg) {
				t.Errorf("Read(%s) = %q, want it to contain %q", path, err, wantMsg)
			}
		})
	}
}

func TestReadURL(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("testdata", "valid", "stack.yml"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stack.yml" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	f, err := Read(context.Background(), srv.URL+"/stack.yml")
	if err != nil {
		t.Fatalf("Read(URL) = %v", err)
	}
	if got := f.Names(); !cmp.Equal(got, []string{"hello", "plain"}) {
		t.Errorf("Read(URL).Names() = %v, want [hello plain]", got)
	}
	if _, err := Read(context.Background(), srv.URL+"/missing.yml"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Read(missing URL) = %v, want a 404 error", err)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if _, err := Find(""); err == nil {
		t.Errorf("Find(\"\") in an empty folder = nil error")
	}
	os.WriteFile("stack.yml", nil, 0o644)
	if got, _ := Find(""); got != "stack.yml" {
		t.Errorf("Find(\"\") = %q, want stack.yml", got)
	}
	os.WriteFile("stack.yaml", nil, 0o644)
	if got, _ := Find(""); got != "stack.yaml" {
		t.Errorf("Find(\"\") = %q, want stack.yaml (checked first)", got)
	}
	if got, _ := Find("other.yml"); got != "other.yml" {
		t.Errorf("Find(other.yml) = %q", got)
	}
}

func TestSelect(t *testing.T) {
	f := &File{Path: "stack.yml", Functions: map[string]Function{"fn": {}, "myfn2": {}, "api-a": {}, "api-b": {}}}
	tests := []struct {
		filter, regex string
		want          []string
		wantErr       bool
	}{
		{want: []string{"api-a", "api-b", "fn", "myfn2"}},
		{filter: "api-*", want: []string{"api-a", "api-b"}},
		{filter: "fn", want: []string{"fn"}},
		{filter: "f?", wantErr: true},
		{filter: "*fn*", want: []string{"fn", "myfn2"}},
		{regex: "fn", want: []string{"fn", "myfn2"}},
		{regex: "^fn$", want: []string{"fn"}},
		{regex: "api-[ab]", want: []string{"api-a", "api-b"}},
		{filter: "fn", regex: "fn", wantErr: true},
		{regex: "nothing", wantErr: true},
		{regex: "(", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.filter+"/"+tt.regex, func(t *testing.T) {
			got, err := f.Select(tt.filter, tt.regex)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Select(%q, %q) = %v, want error %v", tt.filter, tt.regex, err, tt.wantErr)
			}
			if !tt.wantErr && !cmp.Equal(got, tt.want) {
				t.Errorf("Select(%q, %q) = %v, want %v", tt.filter, tt.regex, got, tt.want)
			}
		})
	}
}

func TestHandlerDir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.Mkdir("hello", 0o755)
	os.WriteFile("file", nil, 0o644)
	f := &File{Path: "stack.yml"}
	tests := []struct {
		handler string
		wantErr string
	}{
		{handler: "./hello"},
		{handler: "", wantErr: "stack.yml:3: functions.x.handler: missing"},
		{handler: "./nope", wantErr: "stack.yml:4: functions.x.handler: folder ./nope not found"},
		{handler: "./file", wantErr: "stack.yml:4: functions.x.handler: ./file is a file; handler names a folder"},
	}
	for _, tt := range tests {
		t.Run(tt.handler, func(t *testing.T) {
			fn := Function{Name: "x", Handler: tt.handler, Line: 3, Lines: map[string]int{}}
			if tt.handler != "" {
				fn.Lines["handler"] = 4
			}
			got, err := f.HandlerDir(fn)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("HandlerDir(%q) = %v, want %q", tt.handler, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != filepath.Join(dir, "hello") {
				t.Errorf("HandlerDir(%q) = %q, %v, want %s", tt.handler, got, err, filepath.Join(dir, "hello"))
			}
		})
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"hello", "hello", true},
		{"hello", "hello2", false},
		{"hel*", "hello", true},
		{"*lo", "hello", true},
		{"h*l*o", "hello", true},
		{"h*x", "hello", false},
		{"*", "anything", true},
		{"h?llo", "hello", false},
		{"[h]ello", "hello", false},
	}
	for _, tc := range tests {
		if got := Glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestSelectNoMatchMessage(t *testing.T) {
	f := &File{Path: "stack.yml", Functions: map[string]Function{"fn": {}}}
	for _, tt := range []struct{ filter, regex, want string }{
		{filter: "nomatch", want: `no functions matching --filter "nomatch" were found in stack.yml`},
		{regex: "^x", want: `no functions matching --regex "^x" were found in stack.yml`},
	} {
		_, err := f.Select(tt.filter, tt.regex)
		var nm *NoMatchError
		if !errors.As(err, &nm) || err.Error() != tt.want {
			t.Errorf("Select(%q, %q) = %v, want %q", tt.filter, tt.regex, err, tt.want)
		}
	}
}
