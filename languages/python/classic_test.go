package python

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestClassicEntryPoint runs shim/classic.py with the host's python3, as
// the watchdog forks it, on handlers of the classic python3 template:
// stdout is handle's return value printed, nothing for None; an exception
// is a traceback on stderr and exit status 1, which the watchdog answers
// with 500.
func TestClassicEntryPoint(t *testing.T) {
	needPython(t)
	tests := []struct {
		name, handler, stdin string
		wantOut              string
		wantExit             int
		wantErr              string
	}{
		{"a string", "def handle(req):\n    return 'got ' + req\n", "hi", "got hi\n", 0, ""},
		{"the body as it came", "def handle(req):\n    return repr(req)\n", "a\r\nb\n", "'a\\r\\nb\\n'\n", 0, ""},
		{"no body", "def handle(req):\n    return repr(req)\n", "", "''\n", 0, ""},
		{"None prints nothing", "def handle(req):\n    return None\n", "x", "", 0, ""},
		{"a dict is printed as Python prints it", "def handle(req):\n    return {'a': 1}\n", "", "{'a': 1}\n", 0, ""},
		{"utf-8", "def handle(req):\n    return str(len(req)) + ' ' + req\n", "héllo", "5 héllo\n", 0, ""},
		{"an exception", "def handle(req):\n    raise ValueError('bad input')\n", "", "", 1, "ValueError: bad input"},
		{"a package of the requirements", "from kiln_pkg import VALUE\n\ndef handle(req):\n    return VALUE\n", "", "from packages\n", 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range map[string]string{
				"index.py":                      string(classicScript),
				"function/__init__.py":          "",
				"function/handler.py":           tc.handler,
				"packages/kiln_pkg/__init__.py": "VALUE = 'from packages'\n",
			} {
				path := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("python3", filepath.Join(dir, "index.py"))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8")
			cmd.Stdin = strings.NewReader(tc.stdin)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			exit := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				exit = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if stdout.String() != tc.wantOut || exit != tc.wantExit || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("python3 index.py = exit %d stdout %q stderr %q, want exit %d stdout %q stderr with %q", exit, stdout.String(), stderr.String(), tc.wantExit, tc.wantOut, tc.wantErr)
			}
		})
	}
}
